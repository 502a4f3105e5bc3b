"""T5-v1.1 prompt encoding as the CogVideoX family (ConsisID, Ingredients, Concat-ID) was trained with it.

The authors' pipelines (diffusers `ConsisIDPipeline._get_t5_prompt_embeds`) tokenize every prompt to exactly
226 tokens (the text, EOS, then pads; longer prompts are cut) and run the T5 encoder WITHOUT an attention
mask, so the pad tokens attend and are attended to. The transformer was trained on exactly those 226
vectors; a shorter or masked encoding is a different conditioning.

This module reads the released `text_encoder/` folder (transformers' T5EncoderModel: config.json, sharded
safetensors, index) and single T5 files (ComfyUI's `text_encoders` layout), describes the encoder as a
config dict in ComfyUI's T5 vocabulary, and turns a prompt into the 226 token ids.

Tokenizers: the snapshot's tokenizer/ (spiece.model, read by transformers' T5Tokenizer as the pipelines
do) and ComfyUI's bundled comfy/text_encoders/t5_tokenizer (tokenizer.json) hold the same vocabulary,
scores and normaliser. They gave identical ids on 3,000 mixed prompts (punctuation, repeated spaces,
newlines, tabs, accents, CJK, emoji, 300-word prompts). The one difference found: with transformers 4.x,
which reads tokenizer.json as it is, text glued to a literal special token ("x</s>y",
"a<extra_id_5>b") loses the word-start marker after it; with transformers 5.x both load identically.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import torch

from .catalog import CONSISID_REPO
from .errors import MultiIDError
from .loading import check_floats, load_sharded_folder, load_state_dict, read_json_config, safetensors_layout

log = logging.getLogger(__name__)

MAX_SEQUENCE_LENGTH = 226
T5_SOURCE = (
    f"the text_encoder/ and tokenizer/ folders of https://huggingface.co/{CONSISID_REPO} (T5-v1.1-XXL; "
    "every CogVideoX-based model uses the same one), or t5xxl_fp16.safetensors into ComfyUI/models/text_encoders"
)
_FINAL_NORM = "encoder.final_layer_norm.weight"
_GATED_WI = "encoder.block.0.layer.1.DenseReluDense.wi_0.weight"
_RELATIVE_BIAS = "encoder.block.{}.layer.0.SelfAttention.relative_attention_bias.weight"
# config.json keys read below, with their JSON types (absent settings take transformers' defaults)
_T5_SIZES = dict.fromkeys(("d_model", "d_kv", "d_ff", "num_heads", "num_layers", "vocab_size"), int)
_T5_SETTINGS = {
    "feed_forward_proj": str,
    "dense_act_fn": str,
    "model_type": str,
    "layer_norm_epsilon": float,
    "relative_attention_num_buckets": int,
}
# transformers' names for the tanh-approximated GELU of T5 v1.1 ("gated-gelu"); ComfyUI calls it gelu_pytorch_tanh
_GELU_TANH = ("gelu_new", "gelu_pytorch_tanh")


def t5_config_from_json(path: str | os.PathLike) -> dict[str, Any]:
    """transformers' T5Config (config.json) -> the config dict ComfyUI's T5 class takes."""
    raw = read_json_config(path, "T5 text encoder", T5_SOURCE, required=_T5_SIZES, typed=_T5_SETTINGS)
    projection = raw.get("feed_forward_proj", "relu")
    activation = raw.get("dense_act_fn", "gelu_new" if projection == "gated-gelu" else projection.split("-")[-1])
    if raw.get("model_type", "t5") != "t5" or not projection.startswith("gated-") or activation not in _GELU_TANH:
        raise MultiIDError(
            f"{path} describes a {raw.get('model_type')} encoder with {projection} feed-forward layers; the "
            f"CogVideoX family needs T5 v1.1 (gated-gelu). Download {T5_SOURCE}."
        )
    for key, expected in (("layer_norm_epsilon", 1e-6), ("relative_attention_num_buckets", 32)):
        if raw.get(key, expected) != expected:
            raise MultiIDError(f"{path} sets {key}={raw[key]}; ComfyUI's T5 implements {expected} only.")
    return {
        "d_model": raw["d_model"],
        "d_kv": raw["d_kv"],
        "d_ff": raw["d_ff"],
        "num_heads": raw["num_heads"],
        "num_layers": raw["num_layers"],
        "vocab_size": raw["vocab_size"],
        "dense_act_fn": "gelu_pytorch_tanh",
        "is_gated_act": True,
        "model_type": "t5",
    }


def t5_config_from_state_dict(sd: dict[str, torch.Tensor], where: str) -> dict[str, Any]:
    """The same dict read off tensor shapes (single files carry no config)."""
    if _GATED_WI not in sd or _RELATIVE_BIAS.format(0) not in sd or "shared.weight" not in sd:
        kind = "T5 v1.0 (relu, not gated)" if "encoder.block.0.layer.1.DenseReluDense.wi.weight" in sd else "not T5"
        raise MultiIDError(f"{where} is {kind}; the CogVideoX family needs T5-v1.1-XXL. Use {T5_SOURCE}.")
    if _RELATIVE_BIAS.format(1) in sd:
        raise MultiIDError(
            f"{where} is UMT5 (Wan's text encoder: a relative position bias in every block), not T5-v1.1-XXL. "
            f"Use {T5_SOURCE}."
        )
    return _gated_encoder_sizes(sd, "t5")


def _block_count(sd: dict[str, torch.Tensor]) -> int:
    return max(int(m.group(1)) for k in sd if (m := re.match(r"encoder\.block\.(\d+)\.", k))) + 1


def _gated_encoder_sizes(sd: dict[str, torch.Tensor], model_type: str) -> dict[str, Any]:
    """Config of a gated-GELU T5-family encoder (T5 v1.1, UMT5), read off its tensors."""
    heads = sd[_RELATIVE_BIAS.format(0)].shape[1]
    vocab_size, d_model = sd["shared.weight"].shape
    return {
        "d_model": d_model,
        "d_kv": sd["encoder.block.0.layer.0.SelfAttention.q.weight"].shape[0] // heads,
        "d_ff": sd[_GATED_WI].shape[0],
        "num_heads": heads,
        "num_layers": _block_count(sd),
        "vocab_size": vocab_size,
        "dense_act_fn": "gelu_pytorch_tanh",
        "is_gated_act": True,
        "model_type": model_type,
    }


def check_encoder_floats(sd: dict[str, torch.Tensor], what: str, where: str | os.PathLike, source: str) -> None:
    """The encoder's weights are floats; other keys of ComfyUI's files (quantisation markers) pass unchecked."""
    check_floats({k: v for k, v in sd.items() if k.startswith(("encoder.", "shared."))}, what, where, source)


def t5_encoder_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The encoder's tensors under ComfyUI's (= transformers') names.

    transformers saves the tied input embedding once, as `shared.weight` (some exports keep only
    `encoder.embed_tokens.weight`); checkpoints that bundle encoders prefix the names
    (`text_encoders.t5xxl.transformer.`). Other keys (`scaled_fp8`, quantisation scales) pass through.
    """
    prefix = next((k[: -len(_FINAL_NORM)] for k in sd if k.endswith(_FINAL_NORM)), None)
    if prefix is None:
        return sd
    out = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}
    embed = out.pop("encoder.embed_tokens.weight", None)
    if "shared.weight" not in out and embed is not None:
        out["shared.weight"] = embed
    return out


# ComfyUI's text-encoder loader (comfy.sd.detect_te_model) takes a T5 for T5-XXL by this tensor, 4096 wide
_XXL_PROBE = "encoder.block.23.layer.1.DenseReluDense.wi_1.weight"
T5_XXL_WIDTH = 4096


def t5_expected_keys(config: dict[str, Any]) -> list[str]:
    """The tensors ComfyUI's T5 at `config` loads (T5 v1.1: one position bias, in block 0)."""
    keys = ["shared.weight", "encoder.final_layer_norm.weight", _RELATIVE_BIAS.format(0)]
    for i in range(config["num_layers"]):
        block = f"encoder.block.{i}.layer"
        keys += [f"{block}.0.SelfAttention.{name}.weight" for name in "qkvo"]
        keys += [f"{block}.1.DenseReluDense.{name}.weight" for name in ("wi_0", "wi_1", "wo")]
        keys += [f"{block}.{j}.layer_norm.weight" for j in (0, 1)]
    return keys


def check_t5_xxl(sd: dict[str, torch.Tensor], config: dict[str, Any], where: str | os.PathLike) -> None:
    """Every tensor of the encoder `config` describes is there, and ComfyUI's loader will see T5-XXL in it.

    ComfyUI's loader only logs missing tensors and, with no block 23 4096 wide, builds another encoder;
    both are refused here, before anything is loaded."""
    missing = [k for k in t5_expected_keys(config) if k not in sd]
    if missing:
        raise MultiIDError(
            f"{where} lacks {len(missing)} tensors of the T5 encoder (e.g. {', '.join(missing[:3])}): the download "
            f"is incomplete or this is not T5-v1.1. Download {T5_SOURCE}."
        )
    if config["d_model"] != T5_XXL_WIDTH or _XXL_PROBE not in sd or sd[_XXL_PROBE].shape[-1] != T5_XXL_WIDTH:
        raise MultiIDError(
            f"{where} is a T5 {config['d_model']} wide with {config['num_layers']} blocks, not T5-v1.1-XXL (4096 "
            f"wide, 24 blocks), which the CogVideoX family was trained with. Download {T5_SOURCE}."
        )


def load_t5_folder(folder: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """A transformers T5EncoderModel folder (config.json + safetensors shards) -> (config, state dict)."""
    folder = Path(folder)
    config = t5_config_from_json(folder / "config.json")
    sd = t5_encoder_keys(load_sharded_folder(folder, "T5 text encoder", T5_SOURCE))
    if "shared.weight" not in sd:
        raise MultiIDError(f"{folder} holds no T5 input embedding (shared.weight). Download {T5_SOURCE}.")
    check_encoder_floats(sd, "T5 text encoder", folder, T5_SOURCE)
    check_t5_xxl(sd, config, folder)
    return config, sd


def check_t5_file(path: str | os.PathLike) -> tuple[dict[str, Any], bool]:
    """What a single T5 file holds, from its header: (ComfyUI's T5 config sized from it, whether the encoder
    is under ComfyUI's names). Only the header is read; ComfyUI's own loader reads the weights."""
    raw = safetensors_layout(path, "T5 text encoder", T5_SOURCE)
    sd = t5_encoder_keys(raw)
    config = t5_config_from_state_dict(sd, str(path))
    check_encoder_floats(sd, "T5 text encoder", path, T5_SOURCE)
    check_t5_xxl(sd, config, path)
    return config, set(sd) == set(raw)


def load_t5_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A single T5 file's encoder under ComfyUI's names (for files that keep it under others)."""
    return t5_encoder_keys(load_state_dict(path, "T5 text encoder", T5_SOURCE))


def tokenizer_folder(text_encoder_folder: str | os.PathLike) -> Path | None:
    """The snapshot's own `tokenizer/` next to `text_encoder/`, or the tokenizer files inside the encoder's
    folder (Concat-ID's SAT release keeps both in t5-v1_1-xxl/), when they are there."""
    encoder = Path(text_encoder_folder)
    for folder in (encoder.parent / "tokenizer", encoder):
        if (folder / "spiece.model").is_file() or (folder / "tokenizer.json").is_file():
            return folder
    return None


def load_t5_tokenizer(folder: str | os.PathLike):
    """transformers' T5Tokenizer from a snapshot's tokenizer/ folder (the class the authors' pipelines use)."""
    from transformers import T5Tokenizer

    try:
        return T5Tokenizer.from_pretrained(str(folder))
    except (OSError, ValueError, RuntimeError, TypeError) as err:
        raise MultiIDError(
            f"Could not read the T5 tokenizer in {folder} ({type(err).__name__}: {str(err)[:200]}). Download "
            f"{T5_SOURCE}."
        ) from None


def t5_token_ids(tokenizer, prompt: str, max_length: int = MAX_SEQUENCE_LENGTH) -> list[int]:
    """Exactly `max_length` ids as diffusers makes them: text, EOS, pads; a longer prompt is cut (with a warning)."""
    ids = tokenizer(prompt, padding="max_length", max_length=max_length, truncation=True, add_special_tokens=True)
    ids = list(ids["input_ids"])
    untruncated = list(tokenizer(prompt, padding="longest")["input_ids"])
    if len(untruncated) >= len(ids) and untruncated != ids:
        removed = tokenizer.decode(untruncated[max_length - 1 : -1])
        log.warning(
            "MultiID: the prompt is longer than the %d T5 tokens the model was trained with; this part was cut: %s",
            max_length,
            removed,
        )
    return ids


# UMT5-XXL: Wan2.1's text encoder (Concat-ID-Wan), read the same way: ComfyUI's own T5 class with the config
# taken from the tensors, so the released files and tiny test files load through one path.

UMT5_SOURCE = (
    "umt5_xxl_fp8_e4m3fn_scaled.safetensors (or umt5_xxl_fp16.safetensors) from "
    "https://huggingface.co/Comfy-Org/Wan_2.1_ComfyUI_repackaged (split_files/text_encoders), into "
    "ComfyUI/models/text_encoders"
)


def umt5_config_from_state_dict(sd: dict[str, torch.Tensor], where: str) -> dict[str, Any]:
    """ComfyUI's T5 config for a UMT5 encoder (a relative position bias in every block), from tensor shapes."""
    if _GATED_WI not in sd or _RELATIVE_BIAS.format(0) not in sd or "shared.weight" not in sd:
        raise MultiIDError(
            f"{where} is not a UMT5 text encoder (no gated encoder.block.N.* tensors). Use {UMT5_SOURCE}."
        )
    if any(_RELATIVE_BIAS.format(i) not in sd for i in range(1, _block_count(sd))):
        raise MultiIDError(
            f"{where} is T5-v1.1 (the CogVideoX family's encoder: one shared position bias), not UMT5, Wan's "
            f"encoder. Use {UMT5_SOURCE}."
        )
    return _gated_encoder_sizes(sd, "umt5")


def check_umt5_file(path: str | os.PathLike) -> dict[str, Any]:
    """What a UMT5 file in ComfyUI's layout holds, from its header: ComfyUI's T5 config sized from it.

    Only the header is read; the weights are read once, by ComfyUI's own loader (the path Load CLIP takes)."""
    raw = safetensors_layout(path, "UMT5 text encoder", UMT5_SOURCE)
    sd = t5_encoder_keys(raw)
    if set(sd) - set(raw):
        raise MultiIDError(
            f"{path} keeps the encoder under other names (e.g. {sorted(set(raw) - set(sd))[0]}) than ComfyUI's "
            f"UMT5 files, which ComfyUI's text-encoder loader reads: use {UMT5_SOURCE}."
        )
    config = umt5_config_from_state_dict(sd, str(path))
    check_encoder_floats(sd, "UMT5 text encoder", path, UMT5_SOURCE)
    if "spiece_model" not in raw:
        raise MultiIDError(
            f"{path} carries no tokenizer (spiece_model tensor). ComfyUI's UMT5 files do: use {UMT5_SOURCE}."
        )
    return config
