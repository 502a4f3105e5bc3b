"""CogVideoX-family LoRAs through ComfyUI's own loaders (Load LoRA, LoraLoaderModelOnly, hooks).

A `MultiIDCogVideoX` keeps diffusers' parameter names under `diffusion_model.`, so ComfyUI's generic key map
already reads `diffusion_model.<name>` and kohya's `lora_unet_<name_with_underscores>`. CogVideoX-5B LoRAs are
mostly published in diffusers/PEFT style (`transformer.<name>.lora_A.weight`, `base_model.model.<name>...`),
which ComfyUI (0.3.75 and newest) maps only for its own model classes: `register_lora_support` adds those names
for this model and makes `comfy.sd.load_lora_for_models` refuse a LoRA that does not fit it, where ComfyUI would
only log "lora key not loaded" (or a shape error while sampling) and make the video without those layers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import comfy.lora
import comfy.lora_convert
import comfy.sd
import comfy.weight_adapter
import torch

from ...multiid_core.errors import MultiIDError
from .model import MultiIDCogVideoX

PREFIX = "diffusion_model."
# diffusers' save_lora_weights, raw PEFT (get_peft_model_state_dict of the transformer), bare transformer names.
LORA_PREFIXES = ("transformer.", "base_model.model.", "")
WRAPPED = "_multiid_cogvideox_lora"
BYPASS = "load_bypass_lora_for_models"
SHOWN = 5  # keys named in a refusal
FORMS = (
    "CogVideoX-5B LoRAs name the transformer's layers, e.g. `transformer.transformer_blocks.0.attn1.to_q.lora_A"
    ".weight` (diffusers), `base_model.model.transformer_blocks.0.attn1.to_q.lora_A.weight` (PEFT), "
    "`lora_unet_transformer_blocks_0_attn1_to_q.lora_down.weight` (kohya) or `diffusion_model.transformer_blocks.0"
    ".attn1.to_q.lora_down.weight`."
)


def cogvideox_lora_keys(model: MultiIDCogVideoX, key_map: dict) -> dict:
    """Adds the diffusers/PEFT names of every weight (`transformer.<name>` -> `diffusion_model.<name>.weight`)."""
    for key in model.state_dict():
        if key.startswith(PREFIX) and key.endswith(".weight"):
            name = key[len(PREFIX) : -len(".weight")]
            for prefix in LORA_PREFIXES:
                key_map[prefix + name] = key
    return key_map


def names_a_layer(key: str, key_map: Mapping) -> bool:
    """Whether a LoRA key is `<mapped name>.<anything>` (or diffusers' old `<name>_lora.up.weight`): the only
    keys ComfyUI's `load_lora` reads for a map entry."""
    for i, char in enumerate(key):
        if (char == "." or key.startswith("_lora.", i)) and key[:i] in key_map:
            return True
    return False


def shape_misfits(patches: Mapping, weights: Mapping[str, torch.Tensor]) -> list[tuple[str, list[int], list[int]]]:
    """(model key, LoRA product shape, weight shape) of each plain LoRA or diff that cannot merge into its weight."""
    misfits = []
    for key, patch in sorted(patches.items()):
        weight = weights.get(key)
        if weight is None:
            continue  # a CLIP key (Load LoRA with a CLIP): ComfyUI's text encoder, not this model
        if isinstance(patch, comfy.weight_adapter.LoRAAdapter):
            up, down, _, mid, _, reshape = patch.weights
            if mid is not None or reshape is not None:
                continue
            if up[0].numel() != down.shape[0] or up.shape[0] * down[0].numel() != weight.numel():
                misfits.append((key, [up.shape[0], down[0].numel()], list(weight.shape)))
        elif isinstance(patch, tuple) and len(patch) == 2 and patch[0] == "diff" and len(patch[1]) == 1:
            if patch[1][0].shape != weight.shape:
                misfits.append((key, list(patch[1][0].shape), list(weight.shape)))
    return misfits


def check_lora(model, clip, lora: Mapping[str, torch.Tensor]) -> None:
    """Refuses a LoRA for a MultiIDCogVideoX MODEL unless every key names one of its layers, in its shape.

    The key map and the parsing are ComfyUI's own (what `load_lora_for_models` is about to use)."""
    key_map = comfy.lora.model_lora_keys_unet(model.model, {})
    if clip is not None:
        key_map = comfy.lora.model_lora_keys_clip(clip.cond_stage_model, key_map)
    lora = comfy.lora_convert.convert_lora(lora)
    unmatched = sorted(key for key in lora if not names_a_layer(key, key_map))
    if unmatched:
        shown = ", ".join(f"`{key}`" for key in unmatched[:SHOWN])
        more = f" and {len(unmatched) - SHOWN} more" if len(unmatched) > SHOWN else ""
        raise MultiIDError(
            f"This LoRA does not fit the CogVideoX-family model: {len(unmatched)} of its {len(lora)} keys name no "
            f"layer of it ({shown}{more}). {FORMS} A LoRA for another model (SDXL `lora_unet_down_blocks_...`, Wan "
            "`diffusion_model.blocks.0.self_attn.q...`) would be skipped with a log line only, so it is refused: load "
            "a LoRA trained for CogVideoX-5B (or for this fine-tune), or remove the LoRA loader."
        )
    misfits = shape_misfits(comfy.lora.load_lora(lora, key_map, log_missing=False), model.model.state_dict())
    if misfits:
        shown = ", ".join(
            f"`{key[len(PREFIX) :].removesuffix('.weight')}` (LoRA {got}, model {want})"
            for key, got, want in misfits[:SHOWN]
        )
        more = f" and {len(misfits) - SHOWN} more" if len(misfits) > SHOWN else ""
        raise MultiIDError(
            f"This LoRA does not fit the CogVideoX-family model: {len(misfits)} of its layers have other shapes "
            f"than the model's: {shown}{more}. It was trained for a model of another size or input (a CogVideoX-2B "
            "LoRA does not fit a 5B model, a text-to-video LoRA's patch_embed does not fit an image-to-video "
            "model): load a LoRA trained for CogVideoX-5B (or for this fine-tune), or remove the LoRA loader."
        )


def _adds_cogvideox_keys(original: Callable) -> Callable:
    @functools.wraps(original)
    def model_lora_keys_unet(model, *args, **kwargs):
        key_map = original(model, *args, **kwargs)
        if isinstance(model, MultiIDCogVideoX):
            cogvideox_lora_keys(model, key_map)
        return key_map

    setattr(model_lora_keys_unet, WRAPPED, True)
    return model_lora_keys_unet


def _checks_cogvideox_loras(original: Callable) -> Callable:
    @functools.wraps(original)
    def load_lora_for_models(model, clip, lora, *args, **kwargs):
        if model is not None and isinstance(model.model, MultiIDCogVideoX):
            check_lora(model, clip, lora)
        return original(model, clip, lora, *args, **kwargs)

    setattr(load_lora_for_models, WRAPPED, True)
    return load_lora_for_models


def register_lora_support() -> None:
    """Wraps ComfyUI's key map and LoRA loading once; other models get ComfyUI's results unchanged.

    `comfy.lora.model_lora_keys_unet` is what Load LoRA, LoRA hooks and newer ComfyUI's bypass loader call for
    the key map; `comfy.sd.load_lora_for_models` is what Load LoRA and LoraLoaderModelOnly call, and newer
    ComfyUI's `load_bypass_lora_for_models` (absent in 0.3.75, hence `getattr`) takes the same arguments."""
    if not getattr(comfy.lora.model_lora_keys_unet, WRAPPED, False):
        comfy.lora.model_lora_keys_unet = _adds_cogvideox_keys(comfy.lora.model_lora_keys_unet)
    if not getattr(comfy.sd.load_lora_for_models, WRAPPED, False):
        comfy.sd.load_lora_for_models = _checks_cogvideox_loras(comfy.sd.load_lora_for_models)
    bypass = getattr(comfy.sd, BYPASS, None)
    if bypass is not None and not getattr(bypass, WRAPPED, False):
        setattr(comfy.sd, BYPASS, _checks_cogvideox_loras(bypass))
