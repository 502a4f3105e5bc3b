"""Settings shared by the T5 loaders (T5-v1.1 for CogVideoX, UMT5 for Wan).

Both build their CLIP through ComfyUI's public text-encoder loading (`comfy.sd.load_clip`, what Load CLIP
does), with the encoder's config read from the file so tiny test files and the released ones load alike.
"""

from __future__ import annotations

import torch


def clip_options(config_key: str, config: dict, device: str) -> dict:
    """The CLIP's model_options: the encoder's config under `config_key`; `cpu` loads and offloads on the CPU."""
    model_options = {config_key: config}
    if device == "cpu":
        model_options["load_device"] = model_options["offload_device"] = torch.device("cpu")
    return model_options
