"""Which model family made a LATENT or a CONDITIONING, so a node given another family's output says what to use.

The CogVideoX family and Concat-ID-Wan make look-alike outputs (16-channel video latents; 4096-wide text
embeddings in the released models), so shapes cannot tell them apart. The node that makes one writes its
family under FAMILY_KEY: in the LATENT dict (KSampler copies the extra keys of its input latent to its
output) and in each conditioning entry's dict. ComfyUI passes a conditioning entry's keys to
`model.extra_conds(**kwargs)` when sampling starts: the pack's models read the tag there (`refuse_other_family`)
and refuse another family's conditioning by name; ComfyUI's own models read only the keys they know.
"""

from __future__ import annotations

from typing import Any

import torch

from ..multiid_core.errors import MultiIDError

FAMILY_KEY = "multiid_family"
COGVIDEOX = "cogvideox"  # ConsisID, Ingredients, Concat-ID on CogVideoX-5B: T5 prompts, the CogVideoX VAE
CONCAT_ID_WAN = "concat_id_wan"  # Concat-ID on Wan2.1-T2V-1.3B: UMT5 prompts, the Wan 2.1 VAE
STAND_IN = "stand_in"  # Stand-In on Wan 14B: ComfyUI's own Wan prompts and latents (it tags nothing)
PHANTOM = "phantom"  # ComfyUI's own Phantom, placed: its own conditioning (it tags nothing)
MADE_BY = {
    COGVIDEOX: "MultiID Text Encode or MultiID Identity Conditioning (the T5 prompts of ConsisID, Ingredients and "
    "Concat-ID CogVideoX)",
    CONCAT_ID_WAN: "Concat-ID Wan Reference (the UMT5 prompts of Concat-ID-Wan)",
}


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


def refuse_other_family(conditions: dict[str, Any], family: str, loader: str) -> None:
    """Called from a model's extra_conds with one conditioning entry's keys: another family's entry is refused,
    before the first step, naming the node that made it and the loader of the MODEL it met."""
    tag = conditions.get(FAMILY_KEY)
    if tag is not None and tag != family:
        raise MultiIDError(
            f"This conditioning was made by {MADE_BY.get(tag, tag)}, but it is sampled with the MODEL of {loader}, "
            "another model family: condition the prompts with the node made for this MODEL, or sample the MODEL "
            "the conditioning was made for."
        )
