"""Nodes that measure a generated video: how well it keeps each person's identity."""

from __future__ import annotations

import comfy.model_management as mm
import comfy.utils
import torch
from comfy_api.latest import io, ui

from ...multiid_core.routing import identity_set
from ...multiid_core.scoring import plot_report, score_video
from .. import types
from ..input_checks import valid_inputs


class IdentitySimilarity(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MultiID_IdentitySimilarity",
            display_name="Identity Similarity",
            category=f"{types.CATEGORY}/evaluate",
            description="Scores how well a video keeps each person's identity, for any video (the pack's models or "
            "ComfyUI's own): per frame, the faces found are matched one to one to the identities and compared by "
            "ArcFace cosine; an identity missing from a frame scores 0. It also says who landed where: each "
            "person's place in the frame, a face that matches two people at once (a blend), and, with ID Router's "
            "masks, a person found in another's mask (a swap). Plots one curve per identity (red ticks: frames with "
            "a swap or blend) and writes a summary whose first line reads at a glance.",
            inputs=[
                io.Image.Input(
                    "frames",
                    tooltip="The video frames to score (an IMAGE batch), e.g. from MultiID Decode or from "
                    "Get Video Components after Load Video.",
                ),
                io.MultiType.Input(
                    "identities",
                    types=[types.Identity, types.Identities],
                    tooltip="The people the video should show: one identity (Encode Identity) or several (ID "
                    "Router; with its masks, where each should be, for the swap check). Their labels name the curves.",
                ),
                types.FaceExtractor.Input(
                    "face_extractor",
                    tooltip="From Load Face Extractor: its antelopev2 detector and ArcFace model score the faces "
                    "(the same models that encoded the identities).",
                ),
                io.Int.Input(
                    "sample_frames",
                    default=0,
                    min=0,
                    max=4096,
                    tooltip="0 scores every frame. A number K scores K evenly spaced frames (first and last "
                    "included), as the papers do: 16 in ConsisID, 24 in Ingredients, 32 in OpenS2V.",
                ),
            ],
            outputs=[
                io.Image.Output(
                    display_name="plot",
                    tooltip="Cosine per frame, one curve per identity; the legend gives each identity's mean.",
                ),
                io.String.Output(
                    display_name="summary",
                    tooltip="First line: OK, or each SWAP / BLEND with its frames, and every person's mean. Then per "
                    "identity mean, min, frames found and where in the frame; the overall mean and the worst identity.",
                ),
            ],
            is_output_node=True,
        )

    @classmethod
    def validate_inputs(cls, frames=None, identities=None, face_extractor=None) -> bool | str:
        return valid_inputs(cls, frames=frames, identities=identities, face_extractor=face_extractor)

    @classmethod
    def execute(cls, frames, identities, face_extractor, sample_frames=0) -> io.NodeOutput:
        mm.throw_exception_if_processing_interrupted()
        group = identity_set(identities)
        progress = comfy.utils.ProgressBar(1)

        def on_frame(done: int, total: int) -> None:
            mm.throw_exception_if_processing_interrupted()
            progress.update_absolute(done, total)

        report = score_video(
            face_extractor.core.detector, frames, group.identities, sample_frames, on_frame=on_frame, masks=group.masks
        )
        plot = torch.from_numpy(plot_report(report)).float().div(255.0)[None].to(mm.intermediate_device())
        summary = report.summary()
        shown = {**ui.PreviewImage(plot, cls=cls).as_dict(), **ui.PreviewText(summary).as_dict()}
        return io.NodeOutput(plot, summary, ui=shown)
