"""The model families the pack runs: one registry, read by the loaders, the nodes and `models check`.

A family is data, not an if-chain: how its checkpoint is recognised (each signature excludes the others, so the
order never decides), which loader makes its MODEL, how identities enter it, and what users download. The
authors' settings belong to the base model the families share (CogVideoX-5B, Wan2.1-T2V-1.3B): the nodes'
defaults read them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from . import catalog
from .catalog import ModelFile
from .errors import MultiIDError
from .stand_in import files as stand_in

EvaStyle = Literal["consisid", "ingredients"]  # which EVA-CLIP features a perceiver was trained on


class Loader(Enum):
    """The node that loads a family's checkpoint (its display name)."""

    VIDEO_MODEL = "Load MultiID Video Model"
    CONCAT_ID_WAN = "Load Concat-ID Wan Model"
    STAND_IN = "Apply Stand-In"  # on the MODEL of ComfyUI's Load Diffusion Model
    PHANTOM = "MultiID Placed References (Phantom)"  # on ComfyUI's own Phantom MODEL


class IdentityInput(Enum):
    """How a person enters the model."""

    FIRST_FRAME = "the face as the first latent frame, plus perceiver tokens"  # ConsisID, Ingredients
    REFERENCES = "clean reference latents whose tokens join the video's self-attention"  # Concat-ID, Stand-In


@dataclass(frozen=True)
class SamplingDefaults:
    """The authors' settings: what the model was trained and evaluated at (fps: the frame rate of their videos)."""

    width: int
    height: int
    frames: int
    steps: int
    cfg: float
    fps: float


COGVIDEOX_5B_DEFAULTS = SamplingDefaults(width=720, height=480, frames=49, steps=50, cfg=6.0, fps=8.0)
WAN_2_1_T2V_DEFAULTS = SamplingDefaults(width=832, height=480, frames=81, steps=50, cfg=5.0, fps=16.0)
# Stand-In's infer.py: 20 steps, cfg 5, flow shift 5 (Wan2.1 and both Wan2.2 experts); Wan's 16 fps.
STAND_IN_DEFAULTS = SamplingDefaults(width=832, height=480, frames=81, steps=20, cfg=5.0, fps=16.0)


@dataclass(frozen=True)
class Family:
    name: str
    repo: str  # where users download it
    matches: Callable[[Mapping[str, Any], Collection[str]], bool]  # (config, state-dict keys) -> is it this family
    loader: Loader
    identity_input: IdentityInput
    eva_style: EvaStyle | None  # which EVA features the perceiver reads (None: no perceiver)
    trained_identities: int  # identities the released weights were trained with
    files: tuple[ModelFile, ...]  # everything a user downloads for it (catalog.py)
    defaults: SamplingDefaults
    learned_router: bool = False
    max_references: int = 0  # with IdentityInput.REFERENCES: the most the model's positions have room for


def _has_face_modules(keys: Collection[str]) -> bool:
    return "local_facial_extractor.latents" in keys


def _has_router(keys: Collection[str]) -> bool:
    return "router.0.to_q.weight" in keys


def _is_wan_dit(keys: Collection[str]) -> bool:
    return "head.modulation" in keys and "time_projection.1.weight" in keys


def _has_adaln_reference(keys: Collection[str]) -> bool:
    return "time_projection_ref.1.weight" in keys


CONSISID = Family(
    name="ConsisID",
    repo="BestWishYsh/ConsisID-preview",
    matches=lambda config, keys: _has_face_modules(keys) and not _has_router(keys),
    loader=Loader.VIDEO_MODEL,
    identity_input=IdentityInput.FIRST_FRAME,
    eva_style="consisid",
    trained_identities=1,
    files=catalog.FACE_FILES + catalog.CONSISID_CONFIG_FILES + catalog.CONSISID_MODEL_FILES,
    defaults=COGVIDEOX_5B_DEFAULTS,
)

INGREDIENTS = Family(
    name="Ingredients",
    repo="feizhengcong/Ingredients",
    matches=lambda config, keys: _has_face_modules(keys) and _has_router(keys),
    loader=Loader.VIDEO_MODEL,
    identity_input=IdentityInput.FIRST_FRAME,
    eva_style="ingredients",
    trained_identities=2,
    files=catalog.INGREDIENTS_FACE_FILES + catalog.INGREDIENTS_CONFIG_FILES + catalog.INGREDIENTS_MODEL_FILES,
    defaults=COGVIDEOX_5B_DEFAULTS,
    learned_router=True,
)

CONCAT_ID_WAN_ADALN = Family(
    name="Concat-ID-Wan-AdaLN",
    repo="yongzhong/Concat-ID-Wan",
    matches=lambda config, keys: _is_wan_dit(keys) and _has_adaln_reference(keys),
    loader=Loader.CONCAT_ID_WAN,
    identity_input=IdentityInput.REFERENCES,
    eva_style=None,
    trained_identities=1,
    files=catalog.CONCAT_ID_FACE_FILES + (catalog.CONCAT_ID_WAN_ADALN_FILE,) + catalog.CONCAT_ID_WAN_MODEL_FILES,
    defaults=WAN_2_1_T2V_DEFAULTS,
)

CONCAT_ID_WAN = Family(
    name="Concat-ID-Wan",
    repo="yongzhong/Concat-ID-Wan",
    matches=lambda config, keys: _is_wan_dit(keys) and not _has_adaln_reference(keys),
    loader=Loader.CONCAT_ID_WAN,
    identity_input=IdentityInput.REFERENCES,
    eva_style=None,
    trained_identities=1,
    files=catalog.CONCAT_ID_FACE_FILES + (catalog.CONCAT_ID_WAN_FIRST_STAGE_FILE,) + catalog.CONCAT_ID_WAN_MODEL_FILES,
    defaults=WAN_2_1_T2V_DEFAULTS,
)

CONCAT_ID_COGVIDEOX = Family(
    name="Concat-ID (CogVideoX)",
    repo="yongzhong/Concat-ID (ModelScope)",
    # A CogVideoX-5B text-to-video transformer without identity modules: Concat-ID's release is the only such
    # checkpoint the pack runs (it arrives in SAT format and is converted on load).
    matches=lambda config, keys: config.get("in_channels") == 16 and not _has_face_modules(keys),
    loader=Loader.VIDEO_MODEL,
    identity_input=IdentityInput.REFERENCES,
    eva_style=None,
    trained_identities=1,
    files=catalog.CONCAT_ID_FACE_FILES + catalog.CONCAT_ID_COGVIDEOX_FILES,
    defaults=COGVIDEOX_5B_DEFAULTS,
    max_references=3,  # the release's RoPE table has room for 13 + 5 latent frames and asserts <= 3 references
)

STAND_IN_WAN21 = Family(
    name="Stand-In (Wan2.1-T2V-14B)",
    repo=stand_in.REPO,
    matches=lambda config, keys: "blocks.0.self_attn.q_loras.down.weight" in keys,
    loader=Loader.STAND_IN,
    identity_input=IdentityInput.REFERENCES,
    eva_style=None,
    trained_identities=1,
    files=catalog.CONCAT_ID_FACE_FILES + (stand_in.WAN21, catalog.WAN21_T2V_14B) + catalog.CONCAT_ID_WAN_MODEL_FILES,
    defaults=STAND_IN_DEFAULTS,
)

STAND_IN_WAN22 = Family(
    name="Stand-In (Wan2.2-T2V-A14B)",
    repo=stand_in.REPO,
    matches=STAND_IN_WAN21.matches,  # the same layout: which expert a file is for is in its name only
    loader=Loader.STAND_IN,
    identity_input=IdentityInput.REFERENCES,
    eva_style=None,
    trained_identities=1,
    files=catalog.CONCAT_ID_FACE_FILES
    + (
        stand_in.WAN22_HIGH,
        stand_in.WAN22_LOW,
        catalog.WAN22_T2V_HIGH_NOISE,
        catalog.WAN22_T2V_LOW_NOISE,
    )
    + catalog.CONCAT_ID_WAN_MODEL_FILES,
    defaults=STAND_IN_DEFAULTS,
)

# Every family, in the order `models check` lists them.
FAMILIES: tuple[Family, ...] = (
    CONSISID, INGREDIENTS, CONCAT_ID_WAN_ADALN, CONCAT_ID_WAN, CONCAT_ID_COGVIDEOX, STAND_IN_WAN21, STAND_IN_WAN22
)  # fmt: skip
FAMILY_FILES: dict[str, tuple[ModelFile, ...]] = {family.name: family.files for family in FAMILIES}


def families_loaded_by(loader: Loader) -> tuple[Family, ...]:
    return tuple(family for family in FAMILIES if family.loader is loader)


def detect_family(config: Mapping[str, Any], keys: Collection[str], where: str, loader: Loader) -> Family:
    """The family of `loader` whose checkpoint signature matches."""
    candidates = families_loaded_by(loader)
    for family in candidates:
        if family.matches(config, keys):
            return family
    known = ", ".join(f"{f.name} ({f.repo})" for f in candidates)
    raise MultiIDError(
        f"{where} is not a checkpoint of a model family MultiID runs with {loader.value} (it has none of their "
        f"identity modules, e.g. local_facial_extractor.*). Supported: {known}."
    )
