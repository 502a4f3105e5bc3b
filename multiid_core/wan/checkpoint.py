"""A Wan 2.1 DiT in the original layout (Wan-Video's, ComfyUI's and Comfy-Org's repackaged files): its sizes,
read off the tensors, and the shape of every tensor, so a load can be checked key by key."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch

HEAD_DIM = 128  # every Wan2.1 DiT (1.3B: 1536 / 12, 14B: 5120 / 40); heads are not in the tensors
DIT_MARKER = "head.modulation"  # a tensor every Wan DiT has, outside the blocks


@dataclass(frozen=True)
class WanConfig:
    """Sizes of a Wan2.1 text-to-video DiT (defaults: Wan2.1-T2V-1.3B)."""

    dim: int = 1536
    ffn_dim: int = 8960
    num_heads: int = 12
    num_layers: int = 30
    in_dim: int = 16
    out_dim: int = 16
    text_dim: int = 4096
    freq_dim: int = 256
    patch_size: tuple[int, int, int] = (1, 2, 2)

    @classmethod
    def sizes(cls, sd: Mapping[str, torch.Tensor]) -> dict[str, Any]:
        """The sizes read off the tensors (heads: dim / 128, as for every Wan2.1 model)."""
        dim, in_dim, *patch = sd["patch_embedding.weight"].shape
        layers = {int(k.split(".")[1]) for k in sd if k.startswith("blocks.") and k.endswith(".self_attn.q.weight")}
        return dict(
            dim=dim,
            ffn_dim=sd["blocks.0.ffn.0.weight"].shape[0],
            num_heads=max(1, dim // HEAD_DIM),
            num_layers=max(layers) + 1,
            in_dim=in_dim,
            out_dim=sd["head.head.weight"].shape[0] // math.prod(patch),
            text_dim=sd["text_embedding.0.weight"].shape[1],
            freq_dim=sd["time_embedding.0.weight"].shape[1],
            patch_size=tuple(patch),
        )

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, torch.Tensor]) -> WanConfig:
        return cls(**cls.sizes(sd))

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def wan_shapes(config: WanConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor of a Wan2.1 text-to-video DiT in the original layout."""
    dim, ffn = config.dim, config.ffn_dim
    shapes: dict[str, tuple[int, ...]] = {
        "patch_embedding.weight": (dim, config.in_dim, *config.patch_size),
        "patch_embedding.bias": (dim,),
        "head.head.weight": (config.out_dim * math.prod(config.patch_size), dim),
        "head.head.bias": (config.out_dim * math.prod(config.patch_size),),
        "head.modulation": (1, 2, dim),
    }
    linears = {
        "text_embedding.0": (dim, config.text_dim),
        "text_embedding.2": (dim, dim),
        "time_embedding.0": (dim, config.freq_dim),
        "time_embedding.2": (dim, dim),
        "time_projection.1": (6 * dim, dim),
    }
    for i in range(config.num_layers):
        block = f"blocks.{i}"
        shapes[f"{block}.modulation"] = (1, 6, dim)
        for attention in ("self_attn", "cross_attn"):
            linears.update({f"{block}.{attention}.{name}": (dim, dim) for name in "qkvo"})
            shapes.update({f"{block}.{attention}.{norm}.weight": (dim,) for norm in ("norm_q", "norm_k")})
        shapes.update({f"{block}.norm3.weight": (dim,), f"{block}.norm3.bias": (dim,)})
        linears.update({f"{block}.ffn.0": (ffn, dim), f"{block}.ffn.2": (dim, ffn)})
    for name, (out, inp) in linears.items():
        shapes.update({f"{name}.weight": (out, inp), f"{name}.bias": (out,)})
    return shapes


def dit_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The DiT's tensors without a wrapper prefix (`model.diffusion_model.`, `module.`, `dit.` ...)."""
    prefix = next((k[: -len(DIT_MARKER)] for k in sd if k.endswith(DIT_MARKER) and "blocks." not in k), None)
    if not prefix:
        return sd
    return {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}
