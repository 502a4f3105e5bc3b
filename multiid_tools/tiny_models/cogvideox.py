"""Tiny CogVideoX-family snapshots in the released diffusers layout, written by diffusers itself.

The token grid is the real one (49 frames, 60x90 latents: 480x720 video), so workflows run unchanged;
only widths and depths are tiny. Text width 4096 (as released) matches the tiny T5 (t5.py); LFE width 64 and id
width 1280 match the tiny EVA tower and real ArcFace.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from multiid_core.cogvideox.checkpoint import RELEASED_SCHEDULER_CONFIG, RELEASED_TRANSFORMER_CONFIG

from .t5 import TINY_T5

TINY_TEXT_DIM = TINY_T5["d_model"]  # the T5 width the transformers read (4096, as released)

# The released ConsisID layout at a tiny width and depth (the LFE sizes are spelled out: the release's config
# leaves most of them to the code's defaults).
TINY_TRANSFORMER: dict[str, Any] = {
    **RELEASED_TRANSFORMER_CONFIG,
    "num_attention_heads": 1,
    "attention_head_dim": 48,
    "time_embed_dim": 32,
    "text_embed_dim": TINY_TEXT_DIM,
    "num_layers": 2,
    "is_kps": False,
    "cross_attn_num_heads": 1,
    "LFE_id_dim": 1280,
    "LFE_vit_dim": 64,
    "LFE_depth": 5,
    "LFE_num_heads": 1,
    "LFE_num_id_token": 5,
    "LFE_num_querie": 32,
    "LFE_output_dim": 32,
    "LFE_ff_mult": 4,
    "LFE_num_scale": 5,
}

TINY_VAE: dict[str, Any] = {
    "block_out_channels": (8, 8, 8, 8),
    "layers_per_block": 1,
    "latent_channels": 16,
    "norm_num_groups": 4,
    "temporal_compression_ratio": 4,
    "sample_height": 480,
    "sample_width": 720,
    "scaling_factor": 0.7,
}


def tiny_consisid_transformer(seed: int = 0, **overrides: Any) -> torch.nn.Module:
    """diffusers' ConsisIDTransformer3DModel at tiny width, random weights with sane scales."""
    from diffusers import ConsisIDTransformer3DModel

    torch.manual_seed(seed)
    model = ConsisIDTransformer3DModel(**{**TINY_TRANSFORMER, **overrides})
    with torch.no_grad():
        model.patch_embed.pos_embedding.normal_(std=0.02)
    return model.eval()


def tiny_vae(seed: int = 0) -> torch.nn.Module:
    from diffusers import AutoencoderKLCogVideoX

    torch.manual_seed(seed)
    return AutoencoderKLCogVideoX(**TINY_VAE).eval()


def write_tiny_consisid_snapshot(snapshot: Path, seed: int = 0) -> list[Path]:
    """transformer/ (two shards + index), vae/, scheduler/ and model_index.json, as on the hub."""
    snapshot = Path(snapshot)
    transformer = tiny_consisid_transformer(seed)
    transformer.save_config(snapshot / "transformer")
    state = {k: v.contiguous() for k, v in transformer.state_dict().items()}
    names = sorted(state)
    write_two_shards(snapshot / "transformer", state, names[: len(names) // 2], names)
    tiny_vae(seed).save_pretrained(snapshot / "vae")
    write_scheduler(snapshot)
    (snapshot / "model_index.json").write_text(
        json.dumps(
            {
                "_class_name": "ConsisIDPipeline",
                "scheduler": ["diffusers", "CogVideoXDPMScheduler"],
                "text_encoder": ["transformers", "T5EncoderModel"],
                "tokenizer": ["transformers", "T5Tokenizer"],
                "transformer": ["diffusers", "ConsisIDTransformer3DModel"],
                "vae": ["diffusers", "AutoencoderKLCogVideoX"],
            },
            indent=2,
        )
    )
    return sorted(p for p in snapshot.rglob("*") if p.is_file() and "face_encoder" not in p.parts)


def write_two_shards(folder: Path, state: dict[str, torch.Tensor], first: list[str], indexed: list[str]) -> None:
    """The released shard names (`-0000k-of-00002`) and index.json, whatever size the tiny tensors have
    (diffusers' own sharding would pick another count); the index names only `indexed`."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    shards = {
        "diffusion_pytorch_model-00001-of-00002.safetensors": first,
        "diffusion_pytorch_model-00002-of-00002.safetensors": [k for k in state if k not in set(first)],
    }
    for shard, keys in shards.items():
        save_file({k: state[k] for k in keys}, str(folder / shard), metadata={"format": "pt"})
    weight_map = {k: shard for shard, keys in shards.items() for k in keys if k in set(indexed)}
    total = sum(state[k].numel() * state[k].element_size() for k in weight_map)
    (folder / "diffusion_pytorch_model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2)
    )


def write_scheduler(snapshot: Path) -> Path:
    path = snapshot / "scheduler" / "scheduler_config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"_class_name": "CogVideoXDPMScheduler", **RELEASED_SCHEDULER_CONFIG}, indent=2))
    return path


def write_tiny_ingredients_snapshot(snapshot: Path, seed: int = 0) -> list[Path]:
    """The Ingredients release's quirks at tiny size, plus vae/ and scheduler/.

    A ConsisID-style config whose LFE_* keys predate the renaming (LFE_output_dim 768 against 32-wide
    weights here, 2048-wide in the release), and two shards whose index.json omits the router tensors
    (one per injection point: one here, 21 in the release) and so understates the total size.
    """
    from multiid_core.cogvideox.transformer import CogVideoXConfig, CogVideoXTransformer

    snapshot = Path(snapshot)
    consisid = tiny_consisid_transformer(seed)
    config = CogVideoXConfig.from_dict(dict(TINY_TRANSFORMER))
    config.num_routers = config.num_cross_attn  # one router per injection point, as released
    torch.manual_seed(seed + 1)
    routed = CogVideoXTransformer(config)
    state = {k: v.contiguous() for k, v in consisid.state_dict().items()}
    state.update({k: v.contiguous() for k, v in routed.state_dict().items() if k.startswith("router.")})
    folder = snapshot / "transformer"
    names = sorted(state)
    first = [k for k in names[: len(names) // 2] if not k.startswith("router.")]
    write_two_shards(folder, state, first, [k for k in names if not k.startswith("router.")])
    released = {k: v for k, v in TINY_TRANSFORMER.items() if not k.startswith("LFE_")}
    released.update(
        {
            "_class_name": "ConsisIDTransformer3DModel",
            "_diffusers_version": "0.32.0.dev0",
            "LFE_num_tokens": 32,
            "LFE_output_dim": 768,
            "LFE_heads": 12,
        }
    )
    (folder / "config.json").write_text(json.dumps(released, indent=2))
    tiny_vae(seed).save_pretrained(snapshot / "vae")
    write_scheduler(snapshot)
    return sorted(p for p in snapshot.rglob("*") if p.is_file() and p.parts[-2] in ("transformer", "vae", "scheduler"))
