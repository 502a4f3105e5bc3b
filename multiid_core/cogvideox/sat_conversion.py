"""Concat-ID's CogVideoX release is in SAT format (ModelScope `yongzhong/Concat-ID`); convert it on load.

The key mapping is the one diffusers' `scripts/convert_cogvideox_to_diffusers.py` applies to SAT
CogVideoX checkpoints: renames, the fused query_key_value split in three, per-layer q/k LayerNorms, and
each block's 12-way AdaLN modulation split between norm1 and norm2.

SAT folders hold a `latest` file naming an iteration and `<iteration>/mp_rank_00_model_states.pt`, a
DeepSpeed pickle. It is read with `weights_only=True`; `argparse.Namespace` (the training arguments
DeepSpeed stores beside the weights) is the one non-tensor class allowed, as it is plain data.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..errors import MultiIDError
from ..loading import load_state_dict

SAT_PREFIX = "model.diffusion_model."
CONCAT_ID_SOURCE = "https://modelscope.cn/models/yongzhong/Concat-ID"

# LayerNorm eps of the SAT model, which diffusers' converted layout (norm_eps everywhere) does not keep: the
# release's FinalLayerMixin builds its norm_final (our norm_out.norm) with eps=1e-6. The blocks' LayerNorms and
# final_layernorm get SAT's layernorm_epsilon, which the configs leave at its 1e-5 default (BaseTransformer passes
# it as eps=, overriding the 1e-6 in dit_video_concat's `layernorm` partial); the q/k LayerNorms are 1e-6 in both.
SAT_NORM_EPS = {"norm_eps": 1e-5, "norm_out_eps": 1e-6}

_TRANSFORMER_RENAMES = (
    ("transformer.final_layernorm", "norm_final"),
    ("transformer", "transformer_blocks"),
    ("attention", "attn1"),
    ("mlp", "ff.net"),
    ("dense_h_to_4h", "0.proj"),
    ("dense_4h_to_h", "2"),
    (".layers", ""),
    ("dense", "to_out.0"),
    ("input_layernorm", "norm1.norm"),
    ("post_attn1_layernorm", "norm2.norm"),
    ("time_embed.0", "time_embedding.linear_1"),
    ("time_embed.2", "time_embedding.linear_2"),
    ("mixins.patch_embed", "patch_embed"),
    ("mixins.final_layer.norm_final", "norm_out.norm"),
    ("mixins.final_layer.linear", "proj_out"),
    ("mixins.final_layer.adaLN_modulation.1", "norm_out.linear"),
)
_DROPPED = ("embed_tokens", "freqs_sin", "freqs_cos", "position_embedding")

_VAE_RENAMES = (
    ("block.", "resnets."),
    ("down.", "down_blocks."),
    ("downsample", "downsamplers.0"),
    ("upsample", "upsamplers.0"),
    ("nin_shortcut", "conv_shortcut"),
    ("encoder.mid.block_1", "encoder.mid_block.resnets.0"),
    ("encoder.mid.block_2", "encoder.mid_block.resnets.1"),
    ("decoder.mid.block_1", "decoder.mid_block.resnets.0"),
    ("decoder.mid.block_2", "decoder.mid_block.resnets.1"),
)


def is_sat_transformer(sd: dict[str, torch.Tensor]) -> bool:
    return any(k.startswith(SAT_PREFIX + "transformer.layers.") for k in sd)


def sat_transformer_to_diffusers(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """SAT CogVideoX transformer keys -> diffusers CogVideoXTransformer3DModel keys."""
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        key = key.removeprefix(SAT_PREFIX)
        for old, new in _TRANSFORMER_RENAMES:
            key = key.replace(old, new)
        if any(dropped in key for dropped in _DROPPED):
            continue
        if "query_key_value" in key:
            for name, part in zip(("to_q", "to_k", "to_v"), value.chunk(3, dim=0)):
                out[key.replace("query_key_value", name)] = part
        elif "query_layernorm_list" in key or "key_layernorm_list" in key:
            layer, kind = key.split(".")[-2:]
            norm = "norm_q" if "query" in key else "norm_k"
            out[f"transformer_blocks.{layer}.attn1.{norm}.{kind}"] = value
        elif "adaln_layer.adaLN_modulations" in key:
            layer, _, kind = key.split(".")[-3:]
            chunks = value.chunk(12, dim=0)
            out[f"transformer_blocks.{layer}.norm1.linear.{kind}"] = torch.cat(chunks[0:3] + chunks[6:9])
            out[f"transformer_blocks.{layer}.norm2.linear.{kind}"] = torch.cat(chunks[3:6] + chunks[9:12])
        else:
            out[key] = value
    return out


def sat_vae_to_diffusers(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """SAT CogVideoX VAE keys (3d-vae.pt) -> diffusers AutoencoderKLCogVideoX keys."""
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key.startswith("loss"):
            continue
        for old, new in _VAE_RENAMES:
            key = key.replace(old, new)
        if "up." in key:
            parts = key.split(".")
            parts[1], parts[2] = "up_blocks", str(4 - 1 - int(parts[2]))
            key = ".".join(parts)
        out[key] = value
    return out


def load_sat_pickle(path: Path, what: str) -> dict[str, torch.Tensor]:
    """Tensors of a SAT/DeepSpeed `.pt` (its `module`), never unpickling code."""
    return load_state_dict(path, what, CONCAT_ID_SOURCE, allowed_globals=(argparse.Namespace,))


def sat_checkpoint_file(folder: Path) -> Path:
    """`<folder>/<latest>/mp_rank_00_model_states.pt`, as SAT's loader finds it."""
    latest = folder / "latest"
    if not latest.is_file():
        raise MultiIDError(
            f"{folder} is not a SAT checkpoint folder (no 'latest' file). Download the whole single-identity/ or "
            f"two-identities/ folder from {CONCAT_ID_SOURCE}."
        )
    return folder / latest.read_text().strip() / "mp_rank_00_model_states.pt"
