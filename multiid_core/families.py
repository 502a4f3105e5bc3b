"""The model families the pack runs, and how a checkpoint says which one it is.

A family is data, not an if-chain: detection and how identities enter. LoadMultiIDModel asks
`detect_family`, the sampler reads the rest. The authors' settings belong to the base model the families
share (CogVideoX-5B, Wan2.1-T2V-1.3B): the sampler nodes' defaults and the core samplers' defaults read them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from . import models
from .errors import MultiIDError
from .models import ModelFile

EvaStyle = Literal["consisid", "ingredients"]  # which EVA-CLIP features a perceiver was trained on


@dataclass(frozen=True)
class SamplingDefaults:
    """The authors' settings: what the model was trained and evaluated at (fps: the frame rate of their videos)."""

    width: int
    height: int
    frames: int
    steps: int
    cfg: float
    fps: float


@dataclass(frozen=True)
class Family:
    name: str
    repo: str  # where users download it
    matches: Callable[[Mapping[str, Any], Collection[str]], bool]
    eva_style: EvaStyle | None  # which EVA features the perceiver reads (None: no perceiver)
    trained_identities: int  # identities the released weights were trained with
    files: tuple[ModelFile, ...]  # everything a user downloads for it (models.py)
    learned_router: bool = False
    # How a person enters: "first_frame" (the face as the I2V first latent frame plus perceiver tokens) or
    # "references" (clean reference latents appended after the video frames: Concat-ID).
    conditioning: str = "first_frame"
    max_references: int = 0


COGVIDEOX_5B_DEFAULTS = SamplingDefaults(width=720, height=480, frames=49, steps=50, cfg=6.0, fps=8.0)


def _has_face_modules(keys: Collection[str]) -> bool:
    return "local_facial_extractor.latents" in keys


INGREDIENTS = Family(
    name="Ingredients",
    repo="feizhengcong/Ingredients",
    matches=lambda config, keys: _has_face_modules(keys) and "router.0.to_q.weight" in keys,
    eva_style="ingredients",
    trained_identities=2,
    files=models.INGREDIENTS_FACE_FILES + models.INGREDIENTS_CONFIG_FILES + models.INGREDIENTS_MODEL_FILES,
    learned_router=True,
)

CONSISID = Family(
    name="ConsisID",
    repo="BestWishYsh/ConsisID-preview",
    matches=lambda config, keys: _has_face_modules(keys),
    eva_style="consisid",
    trained_identities=1,
    files=models.FACE_FILES + models.CONSISID_CONFIG_FILES + models.CONSISID_MODEL_FILES,
)

CONCAT_ID_COGVIDEOX = Family(
    name="Concat-ID (CogVideoX)",
    repo="yongzhong/Concat-ID (ModelScope)",
    # A CogVideoX-5B text-to-video transformer without identity modules: Concat-ID's release is the only such
    # checkpoint the pack runs (it arrives in SAT format and is converted on load).
    matches=lambda config, keys: config.get("in_channels") == 16 and not _has_face_modules(keys),
    eva_style=None,
    trained_identities=1,
    files=models.CONCAT_ID_FACE_FILES + models.CONCAT_ID_COGVIDEOX_FILES,
    conditioning="references",
    max_references=3,  # the release's RoPE table has room for 13 + 5 latent frames and asserts <= 3 references
)

FAMILIES: tuple[Family, ...] = (INGREDIENTS, CONSISID, CONCAT_ID_COGVIDEOX)

# Concat-ID on Wan2.1-T2V-1.3B runs as a native ComfyUI MODEL (Load Concat-ID Wan Model, native samplers),
# so these families are detected by their own loader and are not in FAMILIES. AdaLN first: more specific.
WAN_2_1_T2V_DEFAULTS = SamplingDefaults(width=832, height=480, frames=81, steps=50, cfg=5.0, fps=16.0)

CONCAT_ID_WAN_ADALN = Family(
    name="Concat-ID-Wan-AdaLN",
    repo="yongzhong/Concat-ID-Wan",
    matches=lambda config, keys: "time_projection_ref.1.weight" in keys,
    eva_style=None,
    trained_identities=1,
    files=models.CONCAT_ID_FACE_FILES + (models.CONCAT_ID_WAN_ADALN_FILE,) + models.CONCAT_ID_WAN_MODEL_FILES,
    conditioning="references",
)

CONCAT_ID_WAN = Family(
    name="Concat-ID-Wan",
    repo="yongzhong/Concat-ID-Wan",
    matches=lambda config, keys: "head.modulation" in keys and "time_projection.1.weight" in keys,
    eva_style=None,
    trained_identities=1,
    files=models.CONCAT_ID_FACE_FILES + (models.CONCAT_ID_WAN_FIRST_STAGE_FILE,) + models.CONCAT_ID_WAN_MODEL_FILES,
    conditioning="references",
)

WAN_FAMILIES: tuple[Family, ...] = (CONCAT_ID_WAN_ADALN, CONCAT_ID_WAN)

# Every family, in the order `models check` lists them.
ALL_FAMILIES: tuple[Family, ...] = (CONSISID, INGREDIENTS, CONCAT_ID_WAN_ADALN, CONCAT_ID_WAN, CONCAT_ID_COGVIDEOX)
FAMILY_FILES: dict[str, tuple[ModelFile, ...]] = {family.name: family.files for family in ALL_FAMILIES}


def detect_family(config: Mapping[str, Any], keys: Collection[str], where: str) -> Family:
    """The first family whose checkpoint signature matches (most specific first)."""
    for family in FAMILIES:
        if family.matches(config, keys):
            return family
    known = ", ".join(f"{f.name} ({f.repo})" for f in FAMILIES)
    raise MultiIDError(
        f"{where} is not a checkpoint of a model family MultiID runs (it has no identity modules such as "
        f"local_facial_extractor.*). Supported: {known}."
    )
