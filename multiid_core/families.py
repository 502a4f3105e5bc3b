"""The model families the pack runs, and how a checkpoint says which one it is.

A family is data, not an if-chain: detection, paper defaults, how identities enter. LoadMultiIDModel
asks `detect_family`, the sampler reads the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import MultiIDError
from .faces.identity import EvaStyle


@dataclass(frozen=True)
class SamplingDefaults:
    """The authors' settings: what the model was trained and evaluated at."""

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
    defaults: SamplingDefaults
    eva_style: EvaStyle | None  # which EVA features the perceiver reads (None: no perceiver)
    trained_identities: int  # identities the released weights were trained with
    learned_router: bool = False


COGVIDEOX_5B_DEFAULTS = SamplingDefaults(width=720, height=480, frames=49, steps=50, cfg=6.0, fps=8.0)


def _has_face_modules(keys: Collection[str]) -> bool:
    return "local_facial_extractor.latents" in keys


INGREDIENTS = Family(
    name="Ingredients",
    repo="feizhengcong/Ingredients",
    matches=lambda config, keys: _has_face_modules(keys) and "router.0.to_q.weight" in keys,
    defaults=COGVIDEOX_5B_DEFAULTS,
    eva_style="ingredients",
    trained_identities=2,
    learned_router=True,
)

CONSISID = Family(
    name="ConsisID",
    repo="BestWishYsh/ConsisID-preview",
    matches=lambda config, keys: _has_face_modules(keys),
    defaults=COGVIDEOX_5B_DEFAULTS,
    eva_style="consisid",
    trained_identities=1,
)

FAMILIES: tuple[Family, ...] = (INGREDIENTS, CONSISID)


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
