"""ComfyUI CLIPs around ComfyUI's own T5 classes, sized from the file (T5-v1.1 for CogVideoX, UMT5 for Wan).

Both loaders build `comfy.sd.CLIP` by hand, as ComfyUI's CLIPLoader would for the released sizes, so tiny
test files and the released ones load through one path; loading is strict and says what does not fit.
"""

from __future__ import annotations

import logging

import comfy.sd
import comfy.utils
import folder_paths
import torch

from ..multiid_core.errors import MultiIDError

log = logging.getLogger(__name__)

DEVICES = ("default", "cpu")


def clip_options(config_key: str, config: dict, device: str) -> dict:
    """The CLIP's model_options: the encoder's config under `config_key`; `cpu` loads and offloads on the CPU."""
    model_options = {config_key: config}
    if device == "cpu":
        model_options["load_device"] = model_options["offload_device"] = torch.device("cpu")
    return model_options


def loaded_clip(
    target,
    sd: dict,
    model_options: dict,
    where: str,
    *,
    name: str,
    encoder: str,
    incomplete: str,
    advice: str,
    tokenizer_data: dict | None = None,
) -> comfy.sd.CLIP:
    """comfy.sd.CLIP(target) holding `sd`: weights that do not fit `encoder` or miss tensors are a MultiIDError."""
    clip = comfy.sd.CLIP(
        target,
        embedding_directory=folder_paths.get_folder_paths("embeddings"),
        tokenizer_data=tokenizer_data or {},
        parameters=comfy.utils.calculate_parameters(sd),
        model_options=model_options,
    )
    try:
        missing, unexpected = clip.load_sd(sd)
    except RuntimeError as err:
        raise MultiIDError(f"The weights in {where} do not fit {encoder} ({str(err)[:300]}). {advice}.") from None
    if missing:
        raise MultiIDError(
            f"{where} lacks {len(missing)} tensors of the {name} encoder (e.g. {', '.join(missing[:3])}): "
            f"{incomplete}. {advice}."
        )
    if unexpected:
        log.debug("MultiID %s: ignored tensors in %s: %s", name, where, unexpected)
    return clip
