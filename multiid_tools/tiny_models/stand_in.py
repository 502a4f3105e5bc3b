"""Tiny random Stand-In adapters in the released layout: `models/multiid/Stand-In/Stand-In_wan2.1_T2V_14B_ver1.0.ckpt`
and the Wan2.2 `_high` / `_low` files, plain `torch.save` dicts with the 240-tensor layout of BowenXue/Stand-In
(`blocks.N.self_attn.{q,k,v}_loras.{down,up}.weight`, rank 128) at the tiny Wan's width and depth, up weights
non-zero (the released ones are trained). The Wan DiTs they apply to are tiny_models.wan's."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from multiid_core.stand_in.files import WAN21 as ADAPTER_WAN21
from multiid_core.stand_in.files import WAN22_HIGH, WAN22_LOW
from multiid_core.wan.checkpoint import WanConfig

from .wan import TINY_WAN

RANK = 128


def tiny_adapter_state_dict(sizes: WanConfig = TINY_WAN, seed: int = 0, rank: int = RANK) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    sd = {}
    for i in range(sizes.num_layers):
        for projection in "qkv":
            name = f"blocks.{i}.self_attn.{projection}_loras"
            sd[f"{name}.down.weight"] = torch.randn(rank, sizes.dim, generator=generator) / rank
            sd[f"{name}.up.weight"] = torch.randn(sizes.dim, rank, generator=generator) * 0.02
    return sd


def write_tiny_stand_in(models_dir: str | os.PathLike) -> list[Path]:
    """The Stand-In adapters, where users put the real ones (models/multiid/Stand-In/)."""
    models = Path(models_dir)
    written = []
    for seed, file in enumerate((ADAPTER_WAN21, WAN22_HIGH, WAN22_LOW)):
        path = models / file.folder / file.path
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(tiny_adapter_state_dict(seed=seed), path)
        written.append(path)
    return written
