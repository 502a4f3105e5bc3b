"""Tiny random Wan-family files in the released layouts: Concat-ID-Wan DiTs, the Wan 2.1 VAE, UMT5.

- `first_stage.pt` / `second_stage_adaln.pt`: plain `torch.save` state dicts with the keys of
  yongzhong/Concat-ID-Wan (Wan2.1 layout; the AdaLN file adds `time_projection_ref.1.*` and
  `blocks.N.modulation_ref`), bf16, 2 blocks of width 256 (head size 128 as in every Wan2.1), text width 4096.
- `wan_2.1_vae.safetensors`: the Wan 2.1 VAE's keys (Comfy-Org/Wan_2.1_ComfyUI_repackaged, the same as
  the original Wan2.1_VAE.pth) at base width 8 instead of 96; ComfyUI's VAELoader reads the width
  from `decoder.head.0.gamma`, so it loads the tiny file natively.
- `umt5_xxl_fp8_e4m3fn_scaled.safetensors`: ComfyUI's UMT5 file layout (scaled fp8 linear weights with
  `scale_weight`, a `scaled_fp8` marker, the tokenizer as a `spiece_model` byte tensor) at the released
  width 4096 with 24 thin blocks. Its tokenizer is T5's sentencepiece model rebuilt by tiny_t5, cut to
  1000 pieces (the real UMT5 vocabulary is not on disk).
- `diffusion_models/wan2.1_t2v_14B_{fp8_e4m3fn,bf16}.safetensors`, `wan2.2_t2v_{high,low}_noise_14B_fp8_scaled
  .safetensors`, `Phantom-Wan-1_3B_fp32.safetensors`, `Phantom-Wan-14B_fp16.safetensors`: the tiny plain Wan 2.1 DiT
  in the forms ComfyUI's Load Diffusion Model reads (plain fp8 linear weights; bf16; scaled fp8 with `scale_weight`
  and the `scaled_fp8` marker; fp32; fp16), for Stand-In and Phantom; `wan2.1_vace_14B_fp16.safetensors`: the same
  DiT with VACE's patch embedding and one VACE block.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

from multiid_core.catalog import (
    PHANTOM_WAN_1_3B,
    PHANTOM_WAN_14B,
    WAN21_T2V_14B,
    WAN21_VACE_14B,
    WAN22_T2V_HIGH_NOISE,
    WAN22_T2V_LOW_NOISE,
)
from multiid_core.concat_id_wan.checkpoint import ConcatIDWanConfig, expected_shapes
from multiid_core.wan.checkpoint import WanConfig

from .t5 import scaled_fp8, write_t5_tokenizer

# Text width 4096 as released: ComfyUI's Wan detection does not read it from the file, so the tiny UMT5 is
# 4096 wide too, with a vocabulary cut to T5's first 1000 pieces to keep its embedding small, and 24 thin
# blocks, so that ComfyUI's text-encoder detection (it looks for block 23) takes it for UMT5-XXL.
TINY_WAN = WanConfig(dim=256, ffn_dim=512, num_heads=2, num_layers=2, text_dim=4096)
TINY_UMT5_PIECES = 1000
TINY_UMT5 = {"d_model": 4096, "num_layers": 24, "num_heads": 2, "d_kv": 16, "d_ff": 64, "vocab_size": TINY_UMT5_PIECES}
TINY_VAE_DIM = 8
CONCAT_ID_WAN_FILES = {"first_stage.pt": False, "second_stage_adaln.pt": True}


def _randn(shape: tuple[int, ...], std: float, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=generator) * std


def tiny_concat_id_wan_state_dict(adaln: bool, seed: int = 0, sizes: WanConfig = TINY_WAN) -> dict[str, torch.Tensor]:
    """fp32 weights with sane scales (Linear ~ 1/sqrt(fan_in), norms near 1, modulations ~ 1/sqrt(dim)).

    `sizes` other than the tiny ones serve the benchmark (WanConfig() is the full 1.3B)."""
    config = ConcatIDWanConfig(**sizes.as_dict(), adaln_reference=adaln)
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in expected_shapes(config).items():
        if name.endswith("modulation") or name.endswith("modulation_ref"):
            out[name] = _randn(shape, config.dim**-0.5, generator)
        elif name.endswith(".bias"):
            out[name] = _randn(shape, 0.02, generator)
        elif len(shape) == 1:  # norm weights
            out[name] = 1.0 + _randn(shape, 0.1, generator)
        else:
            fan_in = math.prod(shape[1:])
            out[name] = _randn(shape, fan_in**-0.5, generator)
    return out


def write_tiny_concat_id_wan(folder: str | os.PathLike, seed: int = 0) -> list[Path]:
    """`first_stage.pt` and `second_stage_adaln.pt` as in yongzhong/Concat-ID-Wan (bf16 state dicts)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, adaln in CONCAT_ID_WAN_FILES.items():
        sd = {k: v.to(torch.bfloat16) for k, v in tiny_concat_id_wan_state_dict(adaln, seed).items()}
        torch.save(sd, folder / name)
        written.append(folder / name)
    return written


def wan_vae_shapes(dim: int = 96, z_dim: int = 16) -> dict[str, tuple[int, ...]]:
    """Every tensor of the Wan 2.1 VAE (original key names), for base width `dim` (96 released)."""
    shapes: dict[str, tuple[int, ...]] = {}

    def conv3d(name: str, cin: int, cout: int, kernel: tuple[int, int, int] = (3, 3, 3)) -> None:
        shapes[f"{name}.weight"] = (cout, cin, *kernel)
        shapes[f"{name}.bias"] = (cout,)

    def conv2d(name: str, cin: int, cout: int, kernel: int) -> None:
        shapes[f"{name}.weight"] = (cout, cin, kernel, kernel)
        shapes[f"{name}.bias"] = (cout,)

    def residual(name: str, cin: int, cout: int) -> None:
        shapes[f"{name}.residual.0.gamma"] = (cin, 1, 1, 1)
        conv3d(f"{name}.residual.2", cin, cout)
        shapes[f"{name}.residual.3.gamma"] = (cout, 1, 1, 1)
        conv3d(f"{name}.residual.6", cout, cout)
        if cin != cout:
            conv3d(f"{name}.shortcut", cin, cout, (1, 1, 1))

    def middle(name: str, channels: int) -> None:
        residual(f"{name}.0", channels, channels)
        shapes[f"{name}.1.norm.gamma"] = (channels, 1, 1)
        conv2d(f"{name}.1.to_qkv", channels, 3 * channels, 1)
        conv2d(f"{name}.1.proj", channels, channels, 1)
        residual(f"{name}.2", channels, channels)

    mult = (1, 2, 4, 4)
    # encoder: downsample2d, downsample3d, downsample3d (temperal_downsample False, True, True)
    conv3d("encoder.conv1", 3, dim)
    index, cin = 0, dim
    for level, m in enumerate(mult):
        cout = dim * m
        for _ in range(2):
            residual(f"encoder.downsamples.{index}", cin, cout)
            index, cin = index + 1, cout
        if level < len(mult) - 1:
            conv2d(f"encoder.downsamples.{index}.resample.1", cout, cout, 3)
            if level > 0:
                conv3d(f"encoder.downsamples.{index}.time_conv", cout, cout, (3, 1, 1))
            index += 1
    middle("encoder.middle", cin)
    shapes["encoder.head.0.gamma"] = (cin, 1, 1, 1)
    conv3d("encoder.head.2", cin, 2 * z_dim)
    conv3d("conv1", 2 * z_dim, 2 * z_dim, (1, 1, 1))
    conv3d("conv2", z_dim, z_dim, (1, 1, 1))
    # decoder: upsample3d, upsample3d, upsample2d; each upsample halves the channels it hands on
    top = dim * mult[-1]
    conv3d("decoder.conv1", z_dim, top)
    middle("decoder.middle", top)
    index, cin = 0, top
    outs = [dim * m for m in reversed(mult)]
    for level, cout in enumerate(outs):
        if level > 0:
            cin //= 2
        for _ in range(3):
            residual(f"decoder.upsamples.{index}", cin, cout)
            index, cin = index + 1, cout
        if level < len(outs) - 1:
            conv2d(f"decoder.upsamples.{index}.resample.1", cout, cout // 2, 3)
            if level < 2:
                conv3d(f"decoder.upsamples.{index}.time_conv", cout, 2 * cout, (3, 1, 1))
            index += 1
    shapes["decoder.head.0.gamma"] = (cin, 1, 1, 1)
    conv3d("decoder.head.2", cin, 3)
    return shapes


def write_tiny_wan_vae(path: str | os.PathLike, dim: int = TINY_VAE_DIM, seed: int = 0) -> Path:
    """The Wan 2.1 VAE's keys at a tiny width, bf16 like the repackaged file."""
    generator = torch.Generator().manual_seed(seed)
    sd = {}
    for name, shape in wan_vae_shapes(dim).items():
        if name.endswith("gamma"):
            sd[name] = 1.0 + _randn(shape, 0.05, generator)
        elif name.endswith("bias"):
            sd[name] = _randn(shape, 0.01, generator)
        else:
            fan_in = max(1, int(torch.tensor(shape[1:]).prod()))
            sd[name] = _randn(shape, 0.5 * fan_in**-0.5, generator)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in sd.items()}, str(path))
    return path


def tiny_umt5_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """fp32 UMT5 encoder weights under ComfyUI's / transformers' names (a relative bias in every block)."""
    c = TINY_UMT5
    inner = c["num_heads"] * c["d_kv"]
    generator = torch.Generator().manual_seed(seed)
    sd = {"shared.weight": _randn((c["vocab_size"], c["d_model"]), 1.0, generator)}
    for i in range(c["num_layers"]):
        block = f"encoder.block.{i}.layer"
        for name in "qkv":
            sd[f"{block}.0.SelfAttention.{name}.weight"] = _randn(
                (inner, c["d_model"]), c["d_model"] ** -0.5, generator
            )
        sd[f"{block}.0.SelfAttention.o.weight"] = _randn((c["d_model"], inner), inner**-0.5, generator)
        sd[f"{block}.0.SelfAttention.relative_attention_bias.weight"] = _randn((32, c["num_heads"]), 1.0, generator)
        sd[f"{block}.0.layer_norm.weight"] = 1.0 + _randn((c["d_model"],), 0.1, generator)
        for name in ("wi_0", "wi_1"):
            sd[f"{block}.1.DenseReluDense.{name}.weight"] = _randn(
                (c["d_ff"], c["d_model"]), c["d_model"] ** -0.5, generator
            )
        sd[f"{block}.1.DenseReluDense.wo.weight"] = _randn((c["d_model"], c["d_ff"]), c["d_ff"] ** -0.5, generator)
        sd[f"{block}.1.layer_norm.weight"] = 1.0 + _randn((c["d_model"],), 0.1, generator)
    sd["encoder.final_layer_norm.weight"] = 1.0 + _randn((c["d_model"],), 0.1, generator)
    return sd


def write_tiny_umt5(path: str | os.PathLike, seed: int = 0) -> Path:
    """A UMT5 text encoder file as ComfyUI's Wan templates use it (scaled fp8, tokenizer inside)."""
    sd = scaled_fp8(tiny_umt5_state_dict(seed))
    with tempfile.TemporaryDirectory() as folder:
        spiece = write_t5_tokenizer(folder, pieces=TINY_UMT5_PIECES)[0].read_bytes()
    sd["spiece_model"] = torch.frombuffer(bytearray(spiece), dtype=torch.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    return path


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


VACE_IN_DIM = 96  # VACE's context: 16 inactive + 16 reactive latent channels and 64 mask channels (8x8 pixels)


def tiny_vace_state_dict(seed: int = 0, sizes: WanConfig = TINY_WAN, vace_layers: int = 1) -> dict[str, torch.Tensor]:
    """A Wan VACE DiT in the original layout (Comfy-Org's wan2.1_vace files): the plain DiT, the VACE patch
    embedding and `vace_layers` VACE blocks (a Wan block plus `after_proj`; the first also `before_proj`)."""
    sd = tiny_concat_id_wan_state_dict(adaln=False, seed=seed, sizes=sizes)
    generator = torch.Generator().manual_seed(seed + 100)
    dim = sizes.dim
    sd["vace_patch_embedding.weight"] = _randn(
        (dim, VACE_IN_DIM, *sizes.patch_size), (VACE_IN_DIM * 4) ** -0.5, generator
    )
    sd["vace_patch_embedding.bias"] = _randn((dim,), 0.02, generator)
    for j in range(vace_layers):
        for name, tensor in list(sd.items()):
            if name.startswith("blocks.0."):
                sd[f"vace_blocks.{j}." + name[len("blocks.0.") :]] = tensor + _randn(
                    tuple(tensor.shape), 0.01, generator
                )
        for proj in ("after_proj", *(("before_proj",) if j == 0 else ())):
            sd[f"vace_blocks.{j}.{proj}.weight"] = _randn((dim, dim), dim**-0.5, generator)
            sd[f"vace_blocks.{j}.{proj}.bias"] = _randn((dim,), 0.02, generator)
    return sd


def write_tiny_comfy_wan_dits(models_dir: Path) -> list[Path]:
    """Plain Wan 2.1 DiTs in models/diffusion_models, as ComfyUI's Load Diffusion Model reads the released ones:
    Wan2.1-T2V-14B (Comfy-Org's fp8 and bf16 files), the Wan2.2-T2V-A14B experts (scaled fp8) and Phantom-Wan."""
    dits = {
        WAN21_T2V_14B.path: fp8_weights(tiny_concat_id_wan_state_dict(adaln=False, seed=3), scaled=False),
        "wan2.1_t2v_14B_bf16.safetensors": {
            k: v.to(torch.bfloat16) for k, v in tiny_concat_id_wan_state_dict(adaln=False, seed=3).items()
        },
        WAN22_T2V_HIGH_NOISE.path: fp8_weights(tiny_concat_id_wan_state_dict(adaln=False, seed=4), scaled=True),
        WAN22_T2V_LOW_NOISE.path: fp8_weights(tiny_concat_id_wan_state_dict(adaln=False, seed=5), scaled=True),
        PHANTOM_WAN_1_3B.path: tiny_concat_id_wan_state_dict(adaln=False, seed=6),
        PHANTOM_WAN_14B.path: {k: v.half() for k, v in tiny_concat_id_wan_state_dict(adaln=False, seed=7).items()},
        WAN21_VACE_14B.path: {k: v.half() for k, v in tiny_vace_state_dict(seed=8).items()},
    }
    written = []
    for name, sd in dits.items():
        path = Path(models_dir) / "diffusion_models" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
        written.append(path)
    return written


def write_tiny_wan_models(models_dir: str | os.PathLike) -> list[Path]:
    """Everything concat_id_wan.json loads, at the paths users put the real files (models/...)."""
    models = Path(models_dir)
    return [
        *write_tiny_concat_id_wan(models / "multiid" / "Concat-ID-Wan"),
        write_tiny_wan_vae(models / "vae" / "wan_2.1_vae.safetensors"),
        write_tiny_umt5(models / "text_encoders" / "umt5_xxl_fp8_e4m3fn_scaled.safetensors"),
        *write_tiny_comfy_wan_dits(models),
    ]
