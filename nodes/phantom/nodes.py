"""MultiID Placed References (Phantom): each person's reference images seen only where that person's mask is.

Load Diffusion Model (Phantom-Wan 1.3B or 14B) -> MultiID Placed References (the people and their masks from ID
Router) -> KSampler / SamplerCustomAdvanced with native WanPhantomSubjectToVideo's conditioning, its images in the
people's order.
"""

from __future__ import annotations

import logging

from comfy_api.latest import io, ui

from ...multiid_core.routing import identity_set
from ...multiid_core.wan.reference_tokens import check_masks_apart, reference_owners
from .. import types
from ..input_checks import valid_inputs
from .model import PhantomPlacement, place_people

log = logging.getLogger(__name__)


class PlacedReferences(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MultiID_PlacedReferencesPhantom",
            display_name="MultiID Placed References (Phantom)",
            category=f"{types.CATEGORY}/conditioning",
            description="Places the people of native Phantom (WanPhantomSubjectToVideo) where their masks are: the "
            "video inside person k's mask sees person k's reference images and no other person's, outside every "
            "mask none. Put it between Load Diffusion Model (a Phantom-Wan model) and the sampler; sample "
            "WanPhantomSubjectToVideo's outputs, its images in the people's order. Without masks the model is "
            "native Phantom, unchanged.",
            inputs=[
                io.Model.Input(
                    "model",
                    tooltip="Phantom-Wan 1.3B or 14B from Load Diffusion Model (bf16 or fp8; LoRAs may sit before).",
                ),
                io.MultiType.Input(
                    "people",
                    types=[types.Identities, types.Identity],
                    tooltip="The people in order with one MASK each, from ID Router (routing 'masks'); the same order "
                    "as their images in WanPhantomSubjectToVideo. A person without a mask is seen everywhere.",
                ),
                io.String.Input(
                    "frames_per_person",
                    default="",
                    tooltip="How many of WanPhantomSubjectToVideo's images show each person, in order, e.g. '1,2' "
                    "(person 1 the first image, person 2 the next two). Empty: one image per person.",
                ),
            ],
            outputs=[io.Model.Output(display_name="model", tooltip="The same Phantom model, its people placed.")],
        )

    @classmethod
    def validate_inputs(cls, model=None, people=None) -> bool | str:
        return valid_inputs(cls, model=model, people=people)

    @classmethod
    def execute(cls, model, people, frames_per_person) -> io.NodeOutput:
        group = identity_set(people)
        labels = group.labels
        masks = [None if m is None else m.float().cpu() for m in group.masks]
        check_masks_apart(masks, labels)
        placement = PhantomPlacement(masks, reference_owners(frames_per_person, len(labels)), labels)
        summary = (
            f"{len(labels)} people placed by their masks ({placement.describe()} reference images)"
            if placement.placed
            else "no masks: native Phantom, unchanged"
        )
        log.info("MultiID: %s", summary)
        return io.NodeOutput(place_people(model, placement), ui=ui.PreviewText(summary))
