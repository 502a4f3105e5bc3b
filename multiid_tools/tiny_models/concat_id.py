"""Tiny Concat-ID CogVideoX release in its ModelScope layout (SAT format), for tests and smoke tests.

    Concat-ID/single-identity/{latest, 1000/mp_rank_00_model_states.pt}
    Concat-ID/two-identities/{latest, 1000/mp_rank_00_model_states.pt}
    Concat-ID/vae/3d-vae.pt
    Concat-ID/t5-v1_1-xxl/   (T5 encoder and its tokenizer files in one folder)

Weights are written in diffusers layout first and mapped to SAT keys with the inverse of
`pipelines.sat_conversion`, so loading exercises the real conversion.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import torch

from multiid_core.cogvideox.sat_conversion import SAT_PREFIX
from multiid_core.cogvideox.transformer import CogVideoXConfig, CogVideoXTransformer

from .cogvideox import TINY_TRANSFORMER, TINY_VAE
from .t5 import write_tiny_t5_snapshot

TINY_T2V = {k: v for k, v in TINY_TRANSFORMER.items() if not k.startswith(("LFE_", "cross_attn", "local_face"))} | {
    "in_channels": 16,
    "use_learned_positional_embeddings": False,
    "is_train_face": False,
}
ITERATION = "1000"


def diffusers_to_sat_transformer(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of `sat_transformer_to_diffusers`."""
    out: dict[str, torch.Tensor] = {}
    blocks = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("transformer_blocks."))
    for i in range(blocks):
        b, layer = f"transformer_blocks.{i}.", f"transformer.layers.{i}."
        for kind in ("weight", "bias"):
            out[f"{layer}attention.query_key_value.{kind}"] = torch.cat([sd[f"{b}attn1.to_{x}.{kind}"] for x in "qkv"])
            n1, n2 = sd[f"{b}norm1.linear.{kind}"].chunk(6), sd[f"{b}norm2.linear.{kind}"].chunk(6)
            out[f"mixins.adaln_layer.adaLN_modulations.{i}.1.{kind}"] = torch.cat(n1[0:3] + n2[0:3] + n1[3:6] + n2[3:6])
            out[f"mixins.adaln_layer.query_layernorm_list.{i}.{kind}"] = sd[f"{b}attn1.norm_q.{kind}"]
            out[f"mixins.adaln_layer.key_layernorm_list.{i}.{kind}"] = sd[f"{b}attn1.norm_k.{kind}"]
            for ours, theirs in (
                ("attn1.to_out.0", "attention.dense"),
                ("norm1.norm", "input_layernorm"),
                ("norm2.norm", "post_attention_layernorm"),
                ("ff.net.0.proj", "mlp.dense_h_to_4h"),
                ("ff.net.2", "mlp.dense_4h_to_h"),
            ):
                out[f"{layer}{theirs}.{kind}"] = sd[f"{b}{ours}.{kind}"]
    renames = (
        ("norm_final.", "transformer.final_layernorm."),
        ("patch_embed.", "mixins.patch_embed."),
        ("time_embedding.linear_1.", "time_embed.0."),
        ("time_embedding.linear_2.", "time_embed.2."),
        ("norm_out.norm.", "mixins.final_layer.norm_final."),
        ("norm_out.linear.", "mixins.final_layer.adaLN_modulation.1."),
        ("proj_out.", "mixins.final_layer.linear."),
    )
    for key, value in sd.items():
        for ours, theirs in renames:
            if key.startswith(ours):
                out[theirs + key.removeprefix(ours)] = value
    return {SAT_PREFIX + k: v for k, v in out.items()}


def diffusers_to_sat_vae(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of `sat_vae_to_diffusers`."""
    renames = (
        ("encoder.mid_block.resnets.0", "encoder.mid.block_1"),
        ("encoder.mid_block.resnets.1", "encoder.mid.block_2"),
        ("decoder.mid_block.resnets.0", "decoder.mid.block_1"),
        ("decoder.mid_block.resnets.1", "decoder.mid.block_2"),
        ("conv_shortcut", "nin_shortcut"),
        ("upsamplers.0", "upsample"),
        ("downsamplers.0", "downsample"),
        ("down_blocks.", "down."),
        ("resnets.", "block."),
    )
    out = {}
    for key, value in sd.items():
        if key.startswith("decoder.up_blocks."):
            parts = key.split(".")
            parts[1], parts[2] = "up", str(4 - 1 - int(parts[2]))
            key = ".".join(parts)
        for ours, theirs in renames:
            key = key.replace(ours, theirs)
        out[key] = value
    return out


def write_sat_checkpoint(folder: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    model = CogVideoXTransformer(CogVideoXConfig.from_dict(TINY_T2V))
    state = diffusers_to_sat_transformer({k: v.contiguous() for k, v in model.state_dict().items()})
    path = folder / ITERATION / "mp_rank_00_model_states.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    args = argparse.Namespace(mode="inference", iteration=int(ITERATION))
    torch.save({"module": state, "args": args, "iteration": int(ITERATION)}, path)
    (folder / "latest").write_text(ITERATION)
    return path


def write_tiny_concat_id_snapshot(snapshot: Path, seed: int = 0) -> list[Path]:
    from diffusers import AutoencoderKLCogVideoX

    snapshot = Path(snapshot)
    written = [
        write_sat_checkpoint(snapshot / "single-identity", seed),
        write_sat_checkpoint(snapshot / "two-identities", seed + 1),
    ]
    torch.manual_seed(seed)
    vae = AutoencoderKLCogVideoX(**{**TINY_VAE, "norm_num_groups": min(TINY_VAE["block_out_channels"])})
    vae_path = snapshot / "vae" / "3d-vae.pt"
    vae_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": diffusers_to_sat_vae(vae.state_dict())}, vae_path)
    written.append(vae_path)
    with tempfile.TemporaryDirectory() as scratch:
        t5 = snapshot / "t5-v1_1-xxl"
        t5.mkdir(exist_ok=True)
        for path in write_tiny_t5_snapshot(Path(scratch)):
            written.append(Path(shutil.copy(path, t5 / path.name)))
    return written
