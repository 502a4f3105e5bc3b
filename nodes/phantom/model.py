"""People placed where the user paints them, on ComfyUI's own Phantom (WanPhantomSubjectToVideo on a Wan MODEL).

Native Phantom appends the subjects' reference latents after the video's frames (`time_dim_concat`, the frames
F, F + 1, ... in RoPE) and lets full self-attention do the rest: every video token sees every reference, so nothing
says which person goes where. `PhantomPlacedDiT` (a `WanReferenceDiT`: Phantom's reference tokens share the
timestep and take the text, the base's defaults plus `reference_sees_text`) keeps those very frames and adds one
rule: the video tokens inside person k's mask see person k's reference frames and no other person's, the tokens
outside every mask see none, and each person's frames see that person's frames and the video inside the mask.
Without masks the call is native Phantom's own (WanModel._forward).

The placement travels in the MODEL's `transformer_options` (MultiID Placed References gives a clone), so native
Phantom's conditioning, its three-branch guidance (`negative_img_text`) and every ComfyUI sampler stay as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import comfy.ldm.wan.model
import comfy.model_base
import comfy.model_patcher
import comfy.patcher_extension
import torch

from ...multiid_core.errors import MultiIDError
from ...multiid_core.families import Loader
from ...multiid_core.wan.reference_tokens import VAE_SCALE, AttentionGroups, token_regions
from .. import family_tags
from ..options import SHARD
from ..wan.reference_dit import WanReferenceDiT

PLACEMENT = "multiid_phantom_placement"  # transformer option: the MODEL's PhantomPlacement; its wrapper's key


@dataclass(eq=False)
class PhantomPlacement:
    """Where each person may be, and which of WanPhantomSubjectToVideo's images show whom."""

    masks: Sequence[torch.Tensor | None]  # one per person (ID Router's); None: that person everywhere
    owners: Sequence[int]  # per reference image, in WanPhantomSubjectToVideo's order: its person
    labels: Sequence[str]
    _regions: dict = field(default_factory=dict)

    def __deepcopy__(self, memo: dict) -> PhantomPlacement:
        """ComfyUI deep-copies a MODEL's options on every clone: the placement is shared, never copied."""
        return self

    @property
    def placed(self) -> bool:
        return any(mask is not None for mask in self.masks)

    def regions(self, x: torch.Tensor, references: int) -> torch.Tensor:
        """[1, references, F, h/2, w/2] token regions of each reference image (its person's mask), for latents x."""
        if references != len(self.owners):
            raise MultiIDError(
                f"WanPhantomSubjectToVideo encoded {references} reference image(s), but MultiID Placed References "
                f"assigns {len(self.owners)} ({self.describe()}): give WanPhantomSubjectToVideo each person's images "
                "in the people's order, and set frames_per_person to how many each one has."
            )
        frames, height, width = x.shape[2:]
        key = (frames, height, width)
        if key not in self._regions:
            pixels = (frames - 1) * VAE_SCALE[0] + 1, height * VAE_SCALE[1], width * VAE_SCALE[1]
            per_image = [self.masks[owner] for owner in self.owners]
            self._regions[key] = token_regions(per_image, *pixels)[None]
        return self._regions[key].to(x.device)

    def describe(self) -> str:
        counts = [sum(1 for owner in self.owners if owner == person) for person in range(len(self.labels))]
        return ", ".join(f"{label}: {n}" for label, n in zip(self.labels, counts, strict=True))


class PhantomPlacedDiT(WanReferenceDiT):
    """ComfyUI's WanModel running Phantom with placed people; without a placement, WanModel itself."""

    method = "Phantom"
    reference_node = "WanPhantomSubjectToVideo"
    references_key = PLACEMENT
    regions_key = PLACEMENT
    reference_sees_text = True
    family_tag = family_tags.PHANTOM
    loader = Loader.PHANTOM
    rank_options = (PLACEMENT,)

    def call_references(self, x: torch.Tensor, kwargs: dict, options: dict):
        placement: PhantomPlacement | None = options.get(PLACEMENT)
        if placement is None or not placement.placed:
            if options.get(SHARD) is None or kwargs.get("time_dim_concat") is None:
                return None, None
            references, kwargs["time_dim_concat"] = kwargs["time_dim_concat"], None
            return references, None  # a multi-GPU rank: native Phantom through the base's sharded path
        references = kwargs.get("time_dim_concat")
        if references is None:
            raise MultiIDError(
                "MultiID Placed References places Phantom's reference images, and this conditioning has none: sample "
                "the positive and negative of WanPhantomSubjectToVideo with its images connected, on a Phantom model."
            )
        kwargs["time_dim_concat"] = None  # taken as the references: the base appends them as native Phantom does
        return references, placement.regions(x, references.shape[2])

    def attention_groups(
        self, regions: torch.Tensor | None, refs: int, n_video: int, ref_tokens: int, options: dict
    ) -> AttentionGroups | None:
        if regions is None or not refs:
            return None
        owners = options[PLACEMENT].owners
        return AttentionGroups.for_batch_item(regions, refs, n_video, ref_tokens, owners=owners)


def place_people(
    model: comfy.model_patcher.ModelPatcher, placement: PhantomPlacement
) -> comfy.model_patcher.ModelPatcher:
    """A clone of a Wan MODEL (ComfyUI's Load Diffusion Model) that runs Phantom with `placement`."""
    base = getattr(model, "model", None)
    dit = getattr(base, "diffusion_model", None)
    if not isinstance(base, comfy.model_base.WAN21) or type(dit) not in (
        comfy.ldm.wan.model.WanModel,
        PhantomPlacedDiT,
    ):
        raise MultiIDError(
            "MultiID Placed References takes the MODEL of a Phantom model from Load Diffusion Model (Phantom-Wan 1.3B "
            f"or 14B); this MODEL is {type(base).__name__} with {type(dit).__name__}. The pack's own MODELs place "
            "people with their own reference nodes (Concat-ID Wan Reference, Apply Stand-In); MultiID Multi-GPU "
            "goes after MultiID Placed References."
        )
    if model.model_options.get("transformer_options", {}).get(PLACEMENT) is not None:
        raise MultiIDError("This MODEL already has people placed: connect MultiID Placed References once per model.")
    PhantomPlacedDiT.adopt(dit)
    clone = model.clone()
    clone.model_options["transformer_options"][PLACEMENT] = placement
    clone.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, PLACEMENT, _adopted)
    return clone


def _adopted(executor, *args, **kwargs):
    """OUTER_SAMPLE wrapper: the loaded WanModel is a PhantomPlacedDiT even when ComfyUI built it again since (on
    MultiID Multi-GPU the ranks adopt theirs)."""
    dit = executor.class_obj.model_patcher.model.diffusion_model
    if isinstance(dit, comfy.ldm.wan.model.WanModel):
        PhantomPlacedDiT.adopt(dit)
    return executor(*args, **kwargs)
