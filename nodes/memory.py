"""ComfyUI model management for the pack's torch modules: devices, dtypes, ModelPatchers."""

from __future__ import annotations

import comfy.model_management as mm
import comfy.model_patcher
import torch

from ..multiid_core.precision import COMPUTE_PRECISIONS, DTYPES

PRECISIONS = ("auto", *COMPUTE_PRECISIONS)


def compute_dtype(choice: str, device: torch.device | None = None) -> torch.dtype:
    """`auto`: bf16 where the device handles it well, else fp16, else fp32 (CPU)."""
    if choice != "auto":
        return DTYPES[choice]
    device = device or mm.get_torch_device()
    if mm.should_use_bf16(device):
        return torch.bfloat16
    if mm.should_use_fp16(device):
        return torch.float16
    return torch.float32


class Held(torch.nn.Module):
    """What a ModelPatcher holds: the module plus the `device` attribute the patcher writes on load.

    diffusers models expose `device` as a read-only property, so they cannot be handed over directly.
    """

    def __init__(self, module: torch.nn.Module, device: torch.device):
        super().__init__()
        self.module = module
        self.device = device


def patcher(module: torch.nn.Module) -> comfy.model_patcher.ModelPatcher:
    """Hands a module to ComfyUI: built on the offload device, moved by `load_models_gpu`."""
    offload = mm.unet_offload_device()
    return comfy.model_patcher.ModelPatcher(
        Held(module, offload), load_device=mm.get_torch_device(), offload_device=offload
    )
