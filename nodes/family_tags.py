"""Which model family made a LATENT or a CONDITIONING, so a node given another family's output says what to use.

The CogVideoX family and Concat-ID-Wan make look-alike outputs (16-channel video latents; 4096-wide text
embeddings in the released models), so shapes cannot tell them apart. The node that makes one writes its
family under FAMILY_KEY: in the LATENT dict (KSampler copies the extra keys of its input latent to its
output) and in each conditioning entry's dict. ComfyUI passes a conditioning entry's keys to
`model.extra_conds(**kwargs)`, and every extra_conds (comfy/model_base.py, nodes/wan_model.py) reads only the
keys it knows with kwargs.get, so the tag changes nothing in sampling.
"""

from __future__ import annotations

from typing import Any

import torch

FAMILY_KEY = "multiid_family"
COGVIDEOX = "cogvideox"  # ConsisID, Ingredients, Concat-ID on CogVideoX-5B: T5 prompts, the CogVideoX VAE
CONCAT_ID_WAN = "concat_id_wan"  # Concat-ID on Wan2.1-T2V-1.3B: UMT5 prompts, the Wan 2.1 VAE


def tag_latent(latent: dict[str, Any], family: str) -> dict[str, Any]:
    """A copy of a LATENT dict that says which family made it."""
    return {**latent, FAMILY_KEY: family}


def latent_family(latent: dict[str, Any]) -> str | None:
    """The family that made a LATENT, or None when no MultiID node made it."""
    return latent.get(FAMILY_KEY)


def tag_conditioning(embedding: torch.Tensor, family: str) -> list[list]:
    """A one-entry CONDITIONING holding `embedding`, saying which family's text encoder made it."""
    return [[embedding, {FAMILY_KEY: family}]]


def conditioning_family(conditioning: list) -> str | None:
    """The family of the first entry of a CONDITIONING that carries one (None: no MultiID node made it)."""
    for entry in conditioning:
        if isinstance(entry, (list, tuple)) and len(entry) > 1 and isinstance(entry[1], dict):
            family = entry[1].get(FAMILY_KEY)
            if family is not None:
                return family
    return None
