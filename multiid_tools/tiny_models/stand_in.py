"""Tiny random Stand-In files in the released layouts, and the Wan 14B DiT files they apply to.

- `models/multiid/Stand-In/Stand-In_wan2.1_T2V_14B_ver1.0.ckpt` and the Wan2.2 `_high` / `_low` files: plain
  `torch.save` dicts with the 240-tensor layout of BowenXue/Stand-In (`blocks.N.self_attn.{q,k,v}_loras.{down,up}
  .weight`, rank 128) at the tiny Wan's width and depth, up weights non-zero (the released ones are trained).
- `models/diffusion_models/wan2.1_t2v_14B_{fp8_e4m3fn,bf16}.safetensors` and
  `wan2.2_t2v_{high,low}_noise_14B_fp8_scaled.safetensors`: the tiny Wan 2.1 DiT in Comfy-Org's repackaged forms
  (plain fp8 linear weights; bf16; scaled fp8 with `scale_weight` and the `scaled_fp8` marker), loaded by ComfyUI's
  own Load Diffusion Model.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import save_file

from multiid_core.catalog import WAN21_T2V_14B, WAN22_T2V_HIGH_NOISE, WAN22_T2V_LOW_NOISE
from multiid_core.stand_in.checkpoint import WAN21_T2V_14B as ADAPTER_WAN21
from multiid_core.stand_in.checkpoint import WAN22_HIGH, WAN22_LOW
from multiid_core.wan.checkpoint import WanConfig

from .wan import TINY_WAN, tiny_concat_id_wan_state_dict

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


def _is_block_linear(name: str, tensor: torch.Tensor) -> bool:
    return name.startswith("blocks.") and name.endswith(".weight") and tensor.ndim == 2


def fp8_weights(sd: dict[str, torch.Tensor], scaled: bool) -> dict[str, torch.Tensor]:
    """Comfy-Org's fp8 files: the blocks' linear weights in float8_e4m3fn (scaled: divided by `scale_weight`, with
    the `scaled_fp8` marker), the rest in bf16."""
    out = {}
    for name, tensor in sd.items():
        if not _is_block_linear(name, tensor):
            out[name] = tensor.to(torch.bfloat16)
        elif scaled:
            scale = tensor.abs().max() / 448.0
            out[name] = (tensor / scale).to(torch.float8_e4m3fn)
            out[name[: -len("weight")] + "scale_weight"] = scale.reshape(()).float()
        else:
            out[name] = tensor.to(torch.float8_e4m3fn)
    if scaled:
        out["scaled_fp8"] = torch.empty(0, dtype=torch.float8_e4m3fn)
    return out


def write_tiny_stand_in(models_dir: str | os.PathLike) -> list[Path]:
    """Everything the Stand-In workflows load, at the paths users put the real files (models/...)."""
    models = Path(models_dir)
    written = []
    for seed, file in enumerate((ADAPTER_WAN21, WAN22_HIGH, WAN22_LOW)):
        path = models / file.folder / file.path
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(tiny_adapter_state_dict(seed=seed), path)
        written.append(path)
    dits = {
        WAN21_T2V_14B.path: fp8_weights(tiny_concat_id_wan_state_dict(adaln=False, seed=3), scaled=False),
        "wan2.1_t2v_14B_bf16.safetensors": {
            k: v.to(torch.bfloat16) for k, v in tiny_concat_id_wan_state_dict(adaln=False, seed=3).items()
        },
        WAN22_T2V_HIGH_NOISE.path: fp8_weights(tiny_concat_id_wan_state_dict(adaln=False, seed=4), scaled=True),
        WAN22_T2V_LOW_NOISE.path: fp8_weights(tiny_concat_id_wan_state_dict(adaln=False, seed=5), scaled=True),
    }
    for name, sd in dits.items():
        path = models / "diffusion_models" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
        written.append(path)
    return written
