"""Concat-ID-Wan's released checkpoints, read without ComfyUI.

The released `.pt` files are full Wan2.1-T2V-1.3B state dicts (`first_stage.pt`) plus the AdaLN reference
branch (`second_stage_adaln.pt`), read with `weights_only=True`. Which one a file is comes from its keys,
never from the user; every load is strict and names what is missing or extra. The model itself is ComfyUI's
WanModel (nodes/concat_id_wan/model.py); `expected_shapes` is its key table in the original Wan layout, which is
also ComfyUI's, plus the AdaLN branch.

Sampling (`WanVideoPipeline.__call__` of the release): flow matching, sigmas linspace(1, 0, steps + 1)
without the last, shifted by `shift` (5), Euler steps; the reference is appended to the latents for every
forward and its slot dropped before the step; text CFG with the reference in both branches. ComfyUI's
KSampler (euler) with the pack's `multiid_linear_time` scheduler takes the very same steps at any
step count; ComfyUI's `simple` scheduler only when the count divides 1000 (e.g. 50, not 30).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import MultiIDError
from ..families import Family, Loader, detect_family
from ..loading import check_keys, load_state_dict
from ..wan.checkpoint import DIT_MARKER, WanConfig, dit_keys, wan_shapes

log = logging.getLogger(__name__)

SOURCE = "https://huggingface.co/yongzhong/Concat-ID-Wan (first_stage.pt or second_stage_adaln.pt)"
SHIFT = 5.0
ADALN_KEY = "time_projection_ref.1.weight"


@dataclass(frozen=True)
class ConcatIDWanConfig(WanConfig):
    """A Wan2.1 DiT's sizes, and whether it has Concat-ID's AdaLN reference branch."""

    adaln_reference: bool = False

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, torch.Tensor]) -> ConcatIDWanConfig:
        return cls(**cls.sizes(sd), adaln_reference=ADALN_KEY in sd)


def expected_shapes(config: ConcatIDWanConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor of a Wan2.1 T2V DiT in the original layout, plus Concat-ID's AdaLN reference branch."""
    shapes = wan_shapes(config)
    if config.adaln_reference:
        dim = config.dim
        shapes.update({"time_projection_ref.1.weight": (6 * dim, dim), "time_projection_ref.1.bias": (6 * dim,)})
        shapes.update({f"blocks.{i}.modulation_ref": (1, 6, dim) for i in range(config.num_layers)})
    return shapes


def _not_concat_id(keys: set[str], path: str) -> str | None:
    """Why a state dict is not a Wan2.1 T2V DiT in the original layout, or None when it is one."""
    if any(k.startswith("transformer_blocks.") for k in keys):
        return (
            f"{path} is a CogVideoX-family transformer (ConsisID, Ingredients, Concat-ID-CogVideoX), not a Wan DiT: "
            "load it with Load MultiID Video Model."
        )
    if "condition_embedder.time_proj.weight" in keys or any(".attn1.to_q." in k for k in keys):
        return (
            f"{path} is a Wan DiT in diffusers' layout (condition_embedder.*, attn1.*). Concat-ID-Wan is released "
            f"in the original Wan layout: download {SOURCE}."
        )
    if DIT_MARKER not in keys or "blocks.0.self_attn.q.weight" not in keys:
        return f"{path} is not a Wan2.1 DiT (no head.modulation / blocks.N.self_attn.* tensors). Download {SOURCE}."
    if any(k.startswith(("img_emb.", "vace_", "control_adapter.", "ref_conv.")) for k in keys):
        kind = "image-to-video (img_emb.*)" if any(k.startswith("img_emb.") for k in keys) else "control/VACE"
        return f"{path} is a Wan {kind} DiT; Concat-ID-Wan is built on Wan2.1 text-to-video. Download {SOURCE}."
    return None


def detect_wan_family(keys: set[str], path: str) -> Family:
    """Concat-ID-Wan-AdaLN when the reference branch is there, else the first-stage model."""
    problem = _not_concat_id(keys, path)
    if problem:
        raise MultiIDError(problem)
    return detect_family({}, keys, path, Loader.CONCAT_ID_WAN)


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], ConcatIDWanConfig, Family]:
    """A Concat-ID-Wan checkpoint, checked key by key: (state dict, sizes, first stage or AdaLN)."""
    path = Path(path)
    sd = dit_keys(load_state_dict(path, "Concat-ID-Wan DiT", SOURCE))
    family = detect_wan_family(set(sd), str(path))
    config = ConcatIDWanConfig.from_state_dict(sd)
    if config.patch_size != (1, 2, 2) or config.in_dim != 16 or config.out_dim != 16:
        raise MultiIDError(
            f"{path} is a Wan DiT with {config.in_dim} input channels and patch {config.patch_size}; Concat-ID-Wan "
            f"is Wan2.1 text-to-video (16 channels, patch 1x2x2, the Wan 2.1 VAE). Download {SOURCE}."
        )
    check_keys(expected_shapes(config), sd, f"{family.name} DiT", path, SOURCE)
    if config.dim != WanConfig().dim:
        log.warning(
            "MultiID: %s is a Wan2.1 DiT of width %d; Concat-ID-Wan was released for the 1.3B (width 1536) only.",
            path,
            config.dim,
        )
    return sd, config, family
