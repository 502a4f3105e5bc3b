"""Stand-In's released adapter (WeChatCV/Stand-In, weights at BowenXue/Stand-In), read without ComfyUI.

The adapter is a rank-128 LoRA on the self-attention q, k and v projections of every block of a Wan 14B DiT,
applied to the reference (face) tokens only, never merged into the model: 240 tensors
`blocks.{i}.self_attn.{q,k,v}_loras.{down,up}.weight`, down [128, 5120] and up [5120, 128], no alpha (scale 1),
nothing else (`models/set_condition_branch.py` loads them strictly). The release stores them in a `.ckpt` (a plain
dict of tensors, maybe under `state_dict`); Kijai's repackaged safetensors prefix them with `diffusion_model.`.
The authors compute the LoRA in fp32 whatever the model's dtype (`LoRALinearLayer`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import MultiIDError
from ..loading import check_finite, check_floats, load_state_dict
from .files import SOURCE

KEY = re.compile(r"^blocks\.(\d+)\.self_attn\.([qkv])_loras\.(down|up)\.weight$")
PREFIXES = ("diffusion_model.", "model.diffusion_model.", "dit.", "module.")
SHIFT = 5.0  # the flow shift `infer.py` samples with, on Wan2.1-T2V-14B and both Wan2.2-T2V-A14B experts


@dataclass(frozen=True)
class AdapterSizes:
    """What an adapter file fits: the DiT's width and block count, and the LoRA's rank."""

    dim: int
    layers: int
    rank: int


def adapter_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The adapter's tensors without a wrapper prefix."""
    for prefix in PREFIXES:
        if sd and all(k.startswith(prefix) for k in sd):
            return {k[len(prefix) :]: v for k, v in sd.items()}
    return sd


def read_adapter(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], AdapterSizes]:
    """A Stand-In adapter file, checked key by key: (tensors, sizes)."""
    path = Path(path)
    sd = adapter_keys(load_state_dict(path, "Stand-In adapter", SOURCE))
    foreign = sorted(k for k in sd if not KEY.match(k))
    if foreign or not sd:
        hint = _what_it_is(set(sd))
        raise MultiIDError(
            f"{path} is not a Stand-In adapter{hint}: it has {len(foreign)} tensors that are not "
            f"blocks.N.self_attn.{{q,k,v}}_loras.{{down,up}}.weight (e.g. {', '.join(foreign[:3]) or 'none at all'}). "
            f"Download {SOURCE}."
        )
    check_floats(sd, "Stand-In adapter", path, SOURCE)
    rank, dim = (
        sd["blocks.0.self_attn.q_loras.down.weight"].shape if "blocks.0.self_attn.q_loras.down.weight" in sd else (0, 0)
    )
    layers = 1 + max(int(KEY.match(k).group(1)) for k in sd)
    expected = {
        f"blocks.{i}.self_attn.{p}_loras.{part}.weight": (rank, dim) if part == "down" else (dim, rank)
        for i in range(layers)
        for p in "qkv"
        for part in ("down", "up")
    }
    missing = sorted(set(expected) - set(sd))
    wrong = sorted(k for k in expected if k in sd and tuple(sd[k].shape) != expected[k])
    if missing or wrong or not rank:
        problem = (
            f"{len(missing)} tensors are missing (e.g. {', '.join(missing[:3])})"
            if missing
            else f"{wrong[0]} has shape {tuple(sd[wrong[0]].shape)}, not {expected[wrong[0]]}"
        )
        raise MultiIDError(f"{path} is a damaged Stand-In adapter: {problem}. Download it again from {SOURCE}.")
    check_finite(sd, "Stand-In adapter", path, SOURCE)
    return sd, AdapterSizes(dim=dim, layers=layers, rank=rank)


def _what_it_is(keys: set[str]) -> str:
    if any(
        k.startswith(("blocks.", "head.")) and ".lora_" in k or k.endswith((".lora_A.weight", ".lora_down.weight"))
        for k in keys
    ):
        return " (it is an ordinary LoRA: load it with a LoRA loader)"
    if "head.modulation" in keys:
        return " (it is a whole Wan DiT: load it with Load Diffusion Model)"
    return ""


def check_fits(sizes: AdapterSizes, dim: int, layers: int, where: str) -> None:
    """Refuse an adapter on a model of another width or depth (Wan2.1-T2V-1.3B, Wan2.2-TI2V-5B)."""
    if (sizes.dim, sizes.layers) != (dim, layers):
        raise MultiIDError(
            f"The Stand-In adapter {where} was made for a Wan DiT of width {sizes.dim} with {sizes.layers} blocks "
            f"(Wan2.1-T2V-14B and the Wan2.2-T2V-A14B experts: 5120, 40), but this MODEL has width {dim} and {layers} "
            "blocks (1536/30: Wan2.1 1.3B; 3072/30: Wan2.2 TI2V-5B). Load Wan2.1-T2V-14B (or a Wan2.2-T2V-A14B "
            "expert) with Load Diffusion Model."
        )
