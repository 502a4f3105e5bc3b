"""Loading CogVideoX-family models (ConsisID, Ingredients) from the released diffusers layout.

A snapshot folder (`transformer/`, `vae/`, `scheduler/`) is read as released; single files from
ComfyUI's diffusion_models / vae folders get the released configs, with the transformer's sizes read
from its tensors. Every load is strict: a mismatch is reported key by key, never silently skipped.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..catalog import CONCAT_ID_COGVIDEOX_FILES
from ..errors import MultiIDError
from ..families import Family, Loader, detect_family
from ..loading import check_finite, check_keys, load_sharded_folder, load_state_dict, read_json_config
from .sat_conversion import (
    CONCAT_ID_SOURCE,
    SAT_NORM_EPS,
    is_sat_transformer,
    load_sat_pickle,
    sat_checkpoint_file,
    sat_transformer_to_diffusers,
    sat_vae_to_diffusers,
)
from .transformer import CogVideoXConfig, CogVideoXTransformer

# BestWishYsh/ConsisID-preview transformer/config.json (the 5B I2V layout with ConsisID's modules).
RELEASED_TRANSFORMER_CONFIG: dict[str, Any] = {
    "num_attention_heads": 48,
    "attention_head_dim": 64,
    "in_channels": 32,
    "out_channels": 16,
    "time_embed_dim": 512,
    "text_embed_dim": 4096,
    "num_layers": 42,
    "sample_width": 90,
    "sample_height": 60,
    "sample_frames": 49,
    "patch_size": 2,
    "max_text_seq_length": 226,
    "use_rotary_positional_embeddings": True,
    "use_learned_positional_embeddings": True,
    "is_train_face": True,
    "cross_attn_interval": 2,
    "cross_attn_dim_head": 128,
    "LFE_dim_head": 64,
    "cross_attn_num_heads": 16,
    "local_face_scale": 1.0,
}
LFE_HEAD_DIM = 64  # head sizes are not in the tensors; single files use the released ones
CROSS_ATTN_HEAD_DIM = 128

# Keys of a config.json written before ConsisID's Jan-2025 renaming (Ingredients ships one). The code
# that trained those weights built its LFE from hard-coded sizes, so the file's LFE_* values (e.g.
# LFE_output_dim 768 against 2048-wide weights) are wrong: such configs get their LFE sizes from the tensors.
STALE_LFE_KEYS = ("LFE_num_tokens", "LFE_heads")

# CogVideoX-5B text-to-video (Concat-ID's base; its SAT config: 42 layers, 48 heads of 64, RoPE, no learned
# positions, 16 input channels).
RELEASED_T2V_CONFIG: dict[str, Any] = {
    key: value
    for key, value in RELEASED_TRANSFORMER_CONFIG.items()
    if not key.startswith(("cross_attn", "local_face", "LFE_"))
} | {"in_channels": 16, "use_learned_positional_embeddings": False, "is_train_face": False}

# CogVideoX-5B's VAE (diffusers AutoencoderKLCogVideoX defaults, with the 5B's scaling factor).
RELEASED_VAE_CONFIG: dict[str, Any] = {"scaling_factor": 0.7, "temporal_compression_ratio": 4}

# Where each release's VAE comes from, worded for the loaders' "Download {source}." messages.
CONSISID_VAE_SOURCE = "the vae/ folder of https://huggingface.co/BestWishYsh/ConsisID-preview"
CONCAT_ID_VAE = next(f for f in CONCAT_ID_COGVIDEOX_FILES if f.repo_path == "vae/3d-vae.pt")
CONCAT_ID_VAE_SOURCE = (
    f"{CONCAT_ID_VAE.repo_path} of the ModelScope repository {CONCAT_ID_VAE.repo} ({CONCAT_ID_VAE.url}) "
    f"into {CONCAT_ID_VAE.where}"
)

# CogVideoX-5B's scheduler/scheduler_config.json.
RELEASED_SCHEDULER_CONFIG: dict[str, Any] = {
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "clip_sample_range": 1.0,
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "rescale_betas_zero_snr": True,
    "sample_max_value": 1.0,
    "set_alpha_to_one": True,
    "snr_shift_scale": 1.0,
    "steps_offset": 0,
    "timestep_spacing": "trailing",
}


@dataclass
class CogVideoXModel:
    """Everything the sampler and decoder need of one loaded model."""

    family: Family
    transformer: CogVideoXTransformer
    vae: torch.nn.Module  # diffusers AutoencoderKLCogVideoX
    scheduler_config: dict[str, Any]
    dtype: torch.dtype
    source: str
    trained_identities: int = 0  # 0: the family's

    @property
    def identities_trained(self) -> int:
        return self.trained_identities or self.family.trained_identities

    @property
    def vae_scale(self) -> tuple[int, int]:
        """(spatial, temporal) compression of the VAE."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1), self.vae.config.temporal_compression_ratio


def _json_types(config_class: type) -> dict[str, tuple[type, ...]]:
    """The JSON types each field of a config dataclass takes (`float | None`: a number or null)."""
    return {name: typing.get_args(hint) or (hint,) for name, hint in typing.get_type_hints(config_class).items()}


TRANSFORMER_CONFIG_TYPES = _json_types(CogVideoXConfig)
# The VAE config.json values the loader and the decoder read (diffusers' defaults stand in for absent ones).
VAE_CONFIG_TYPES = {
    "block_out_channels": list,
    "latent_channels": int,
    "layers_per_block": int,
    "norm_num_groups": int,
    "temporal_compression_ratio": float,
    "scaling_factor": float,
}
SCHEDULER_CONFIG_TYPES = {
    key: type(value) for key, value in RELEASED_SCHEDULER_CONFIG.items()
}  # the released file's keys, each of the type it has there


def _count(sd: dict[str, torch.Tensor], prefix: str, suffix: str) -> int:
    """How many indexed modules `prefix.<i>...suffix` the state dict holds."""
    return sum(1 for k in sd if k.startswith(prefix) and k.endswith(suffix))


def sizes_from_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Widths and depths a single-file transformer's tensors fix (the rest comes from the release)."""
    head_dim = sd["transformer_blocks.0.attn1.norm_q.weight"].shape[0]
    inner, in_channels, patch, _ = sd["patch_embed.proj.weight"].shape
    sizes = {
        "num_layers": _count(sd, "transformer_blocks.", ".norm1.linear.weight"),
        "attention_head_dim": head_dim,
        "num_attention_heads": inner // head_dim,
        "in_channels": in_channels,
        "patch_size": patch,
        "out_channels": sd["proj_out.weight"].shape[0] // patch**2,
        "text_embed_dim": sd["patch_embed.text_proj.weight"].shape[1],
        "time_embed_dim": sd["time_embedding.linear_1.weight"].shape[0],
    }
    if "local_facial_extractor.latents" in sd:
        _, queries, vit_dim = sd["local_facial_extractor.latents"].shape
        cross = _count(sd, "perceiver_cross_attention.", ".to_q.weight")
        sizes.update(
            LFE_vit_dim=vit_dim,
            LFE_num_querie=queries,
            LFE_output_dim=sd["local_facial_extractor.proj_out"].shape[1],
            LFE_id_dim=sd["local_facial_extractor.id_embedding_mapping.0.weight"].shape[1],
            LFE_depth=_count(sd, "local_facial_extractor.layers.", ".0.to_q.weight"),
            LFE_num_scale=_count(sd, "local_facial_extractor.mapping_", ".0.weight"),
            LFE_num_id_token=sd["local_facial_extractor.id_embedding_mapping.6.weight"].shape[0] // vit_dim,
            LFE_num_heads=sd["local_facial_extractor.layers.0.0.to_q.weight"].shape[0] // LFE_HEAD_DIM,
            cross_attn_interval=sizes["num_layers"] // max(cross, 1),
            cross_attn_num_heads=sd["perceiver_cross_attention.0.to_q.weight"].shape[0] // CROSS_ATTN_HEAD_DIM,
        )
    return sizes


def _without_stale_lfe(config: dict[str, Any], sd: dict[str, torch.Tensor]) -> dict[str, Any]:
    """A stale config (see STALE_LFE_KEYS) with its LFE_* values replaced by the tensors' sizes."""
    if not any(k in config for k in STALE_LFE_KEYS):
        return config
    kept = {k: v for k, v in config.items() if not k.startswith("LFE_")}
    lfe = {k: v for k, v in sizes_from_state_dict(sd).items() if k.startswith("LFE_")}
    return {**kept, **lfe, "LFE_dim_head": LFE_HEAD_DIM}


def _check_router(path: Path, family: Family, sd: dict[str, torch.Tensor]) -> None:
    """An Ingredients snapshot without routers is a broken download, not a ConsisID model."""
    snapshot = path.parent if path.name == "transformer" else path
    if "ingredients" in snapshot.name.lower() and not family.learned_router:
        raise MultiIDError(
            f"{snapshot} looks like the Ingredients release but its transformer has no router.* tensors (the 21 "
            f"routers sit in the second shard, which the release's index.json does not list). Download "
            f"transformer/diffusion_pytorch_model-00002-of-00002.safetensors again from "
            f"https://huggingface.co/feizhengcong/Ingredients."
        )


_SINGLE_FILE_MARKER = "transformer_blocks.0.attn1.norm_q.weight"
# The identity modules, checked for NaN at load; the blocks are checked on the first step's prediction.
IDENTITY_MODULES = ("local_facial_extractor.", "perceiver_cross_attention.", "router.")


def not_a_cogvideox_transformer(path: Path, keys) -> str:
    """Why a single file is not a diffusers-format CogVideoX-family transformer, and what to load instead."""
    if "head.modulation" in keys:
        return (
            f"{path} is a Wan DiT, not a CogVideoX-family transformer: load Concat-ID-Wan with the Load Concat-ID "
            f"Wan Model node (it reads first_stage.pt / second_stage_adaln.pt from models/multiid/Concat-ID-Wan)."
        )
    return (
        f"{path} is not a diffusers-format CogVideoX-family transformer (ConsisID, Ingredients): it has no "
        f"transformer_blocks.* tensors. Choose a snapshot folder from models/multiid (e.g. ConsisID-preview), or "
        f"the transformer of one saved as a single .safetensors file."
    )


def check_transformer_file(path: Path) -> None:
    """Reads only a .safetensors header, so a wrong file is named before anything else is asked of it."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            keys = set(f.keys())
    except Exception:  # unreadable files are reported by load_state_dict with the reason
        return
    if _SINGLE_FILE_MARKER not in keys:
        raise MultiIDError(not_a_cogvideox_transformer(path, keys))


def load_transformer(
    path: Path, dtype: torch.dtype, operations: Any = torch.nn, device: torch.device | str = "cpu"
) -> tuple[CogVideoXTransformer, Family]:
    """A snapshot's `transformer/` folder (config.json + shards) or one safetensors file."""
    if path.is_dir():
        config_dict = read_json_config(
            path / "config.json", "transformer", "the model's Hugging Face repository", typed=TRANSFORMER_CONFIG_TYPES
        )
        sd = load_sharded_folder(path, "transformer", "the model's Hugging Face repository")
        config_dict = _without_stale_lfe(config_dict, sd)
    else:
        sd = load_state_dict(path, "transformer", "the model's Hugging Face repository")
        if _SINGLE_FILE_MARKER not in sd:
            raise MultiIDError(not_a_cogvideox_transformer(path, sd.keys()))
        config_dict = {**RELEASED_TRANSFORMER_CONFIG, **sizes_from_state_dict(sd)}
    family = detect_family(config_dict, sd.keys(), str(path), Loader.VIDEO_MODEL)
    _check_router(path, family, sd)
    source = f"https://huggingface.co/{family.repo}"
    try:
        config = CogVideoXConfig.from_dict(config_dict)
    except ValueError as err:  # a CogVideoX 1.5 layout or another activation
        raise MultiIDError(f"{path}: {err}. Download the {family.name} transformer from {source}.") from None
    if family.learned_router:
        config.num_routers = config.num_cross_attn  # one router per injection point, all required
    transformer = _checked_transformer(config, sd, family, path, source, operations, dtype, device)
    identity_modules = {k: v for k, v in sd.items() if k.startswith(IDENTITY_MODULES)}
    check_finite(identity_modules, f"{family.name} identity modules", path, source)
    return transformer, family


def _checked_transformer(
    config: CogVideoXConfig,
    sd: dict[str, torch.Tensor],
    family: Family,
    path: Path,
    source: str,
    operations: Any,
    dtype: torch.dtype,
    device: torch.device | str,
) -> CogVideoXTransformer:
    """The transformer holding `sd`, once every key and shape is checked (a report that names what is off)."""
    expected = {k: v.shape for k, v in CogVideoXTransformer(config, device="meta").state_dict().items()}
    check_keys(expected, sd, f"{family.name} transformer", path, source)
    return CogVideoXTransformer.from_state_dict(config, sd, operations, dtype=dtype, device=device)


def load_vae(
    path: Path, dtype: torch.dtype, device: torch.device | str = "cpu", source: str = CONSISID_VAE_SOURCE
) -> torch.nn.Module:
    """A snapshot's `vae/` folder, or a single CogVideoX VAE file (diffusers or SAT format).

    `source` is where the release being loaded keeps its VAE: errors send the user there, not to another
    release whose VAE has another layout.
    """
    from diffusers import AutoencoderKLCogVideoX

    if path.is_dir():
        config = read_json_config(path / "config.json", "VAE", source, typed=VAE_CONFIG_TYPES)
        sd = load_sharded_folder(path, "CogVideoX VAE", source)
    else:
        config = RELEASED_VAE_CONFIG
        sd = load_state_dict(path, "CogVideoX VAE", source)
        if any(k.startswith("encoder.down.") for k in sd):  # SAT layout (Concat-ID's vae/3d-vae.pt)
            sd = sat_vae_to_diffusers(sd)
            config = {**config, **_vae_sizes(sd)}
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    with torch.device("meta"):
        vae = AutoencoderKLCogVideoX.from_config(config)
    check_keys({k: v.shape for k, v in vae.state_dict().items()}, sd, "CogVideoX VAE", path, source)
    check_finite(sd, "CogVideoX VAE", path, source)  # NaN here would decode every video black
    vae.load_state_dict(sd, strict=True, assign=True)
    return vae.to(device=device, dtype=dtype).eval()


def _vae_sizes(sd: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Sizes of a converted SAT VAE. Group counts are not in the tensors: the release uses 32 groups, and
    narrower test VAEs use their narrowest width."""
    blocks = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("encoder.down_blocks."))
    widths = tuple(sd[f"encoder.down_blocks.{i}.resnets.0.conv2.conv.weight"].shape[0] for i in range(blocks))
    return {
        "block_out_channels": widths,
        "latent_channels": sd["encoder.conv_out.conv.weight"].shape[0] // 2,
        "layers_per_block": 1 + max(int(k.split(".")[4]) for k in sd if k.startswith("encoder.down_blocks.0.resnets.")),
        "norm_num_groups": min(32, *widths),
    }


def load_concat_id_cogvideox(
    folder: Path,
    dtype: torch.dtype,
    operations: Any = torch.nn,
    vae_file: Path | None = None,
    device: torch.device | str = "cpu",
) -> CogVideoXModel:
    """A Concat-ID SAT checkpoint folder (single-identity/ or two-identities/), converted to our transformer."""
    sat = load_sat_pickle(sat_checkpoint_file(folder), "Concat-ID transformer")
    if not is_sat_transformer(sat):
        raise MultiIDError(
            f"{folder} does not hold a SAT CogVideoX transformer (no model.diffusion_model.transformer.layers.* "
            f"tensors). Download the Concat-ID checkpoint folders from {CONCAT_ID_SOURCE}."
        )
    sd = sat_transformer_to_diffusers(sat)
    config = CogVideoXConfig.from_dict({**RELEASED_T2V_CONFIG, **sizes_from_state_dict(sd), **SAT_NORM_EPS})
    family = detect_family({"in_channels": config.in_channels}, sd.keys(), str(folder), Loader.VIDEO_MODEL)
    return CogVideoXModel(
        family=family,
        transformer=_checked_transformer(config, sd, family, folder, CONCAT_ID_SOURCE, operations, dtype, device),
        vae=load_vae(vae_file or folder.parent / "vae" / "3d-vae.pt", dtype, device, CONCAT_ID_VAE_SOURCE),
        scheduler_config=dict(RELEASED_SCHEDULER_CONFIG),
        dtype=dtype,
        source=str(folder),
        trained_identities=2 if "two" in folder.name.lower() else 1,
    )


def load_snapshot(
    folder: Path,
    dtype: torch.dtype,
    operations: Any = torch.nn,
    transformer_file: Path | None = None,
    vae_file: Path | None = None,
    device: torch.device | str = "cpu",
) -> CogVideoXModel:
    """A released snapshot folder; `transformer_file`/`vae_file` replace its parts with single files."""
    transformer, family = load_transformer(transformer_file or folder / "transformer", dtype, operations, device)
    vae = load_vae(vae_file or folder / "vae", dtype, device)
    scheduler_json = folder / "scheduler" / "scheduler_config.json"
    scheduler = (
        read_json_config(scheduler_json, "scheduler", family.repo, typed=SCHEDULER_CONFIG_TYPES)
        if scheduler_json.exists()
        else None
    )
    return CogVideoXModel(
        family=family,
        transformer=transformer,
        vae=vae,
        scheduler_config=scheduler or dict(RELEASED_SCHEDULER_CONFIG),
        dtype=dtype,
        source=str(transformer_file or folder),
    )
