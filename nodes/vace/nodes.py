"""MultiID VACE References: ComfyUI's WanVaceToVideo with several reference images, and the people placed.

Native WanVaceToVideo keeps the first reference image only. VACE's own pipeline takes several, each fitted whole on a
white canvas of the video's size (`prepare_source`), encoded as one latent frame, and put before the video's frames
in the given order (`vace_encode_frames`). This node does that on top of the native node (the control video and masks
are native's), and, given the people's masks, places them on the model.
"""

from __future__ import annotations

import comfy.latent_formats
import comfy.model_management as mm
import torch
from comfy_api.latest import io, ui
from comfy_extras.nodes_wan import WanVaceToVideo

from ...multiid_core.errors import MultiIDError
from ...multiid_core.routing import identity_set
from ...multiid_core.wan.reference_tokens import check_masks_apart, reference_owners
from .. import types
from ..input_checks import valid_inputs
from ..schema import MAX_FRAMES, MAX_RESOLUTION, check_video_size
from .model import VacePlacement, place_people


def on_white_canvas(image: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """[h, w, 3] in 0..1 -> [1, height, width, 3]: fitted whole (bilinear), centred on white, as VACE's
    `prepare_source` places a reference image."""
    chw = image[..., :3].permute(2, 0, 1)[None].float()
    h, w = chw.shape[-2:]
    scale = min(height / h, width / w)
    size = int(h * scale), int(w * scale)
    resized = torch.nn.functional.interpolate(chw, size=size, mode="bilinear", align_corners=False)
    canvas = torch.ones(1, 3, height, width)
    top, left = (height - size[0]) // 2, (width - size[1]) // 2
    canvas[:, :, top : top + size[0], left : left + size[1]] = resized
    return canvas.permute(0, 2, 3, 1)


def with_references(conditioning: list, references: torch.Tensor) -> list:
    """Native WanVaceToVideo's conditioning with `references` [1, 32, R, h, w] before the frames of its VACE entry,
    and R zero frames before its mask (the references are not to be generated)."""
    out = []
    for embedding, values in conditioning:
        frames, masks = list(values["vace_frames"]), list(values["vace_mask"])
        frames[-1] = torch.cat([references.to(frames[-1]), frames[-1]], dim=2)
        pad = torch.zeros_like(masks[-1][:, :, : references.shape[2]])
        masks[-1] = torch.cat([pad, masks[-1]], dim=2)
        out.append([embedding, {**values, "vace_frames": frames, "vace_mask": masks}])
    return out


class VaceReferences(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        native = {i.id: i for i in WanVaceToVideo.define_schema().inputs}
        return io.Schema(
            node_id="MultiID_VaceReferences",
            display_name="MultiID VACE References",
            category=f"{types.CATEGORY}/conditioning",
            description="WanVaceToVideo with several reference images (native keeps the first only): each fitted "
            "whole on white at the video's size, one latent frame each, before the video's frames in the given order, "
            "as VACE's own pipeline does. With ID Router's people and masks, the model is given back with each "
            "person's references seen only inside that person's mask. Trim the references off the sampled latent "
            "with Trim Video Latent (trim_latent).",
            inputs=[
                io.Model.Input("model", tooltip="A Wan VACE model (wan2.1_vace_14B / 1.3B) from Load Diffusion Model."),
                io.Conditioning.Input("positive", tooltip="The prompt (CLIP Text Encode with the Wan text encoder)."),
                io.Conditioning.Input("negative", tooltip="The negative prompt."),
                io.Vae.Input("vae", tooltip="The Wan 2.1 VAE."),
                io.Int.Input("width", default=832, min=16, max=MAX_RESOLUTION, step=16, tooltip="Video width."),
                io.Int.Input("height", default=480, min=16, max=MAX_RESOLUTION, step=16, tooltip="Video height."),
                io.Int.Input("length", default=81, min=1, max=MAX_FRAMES, step=4, tooltip="Frames, 4k+1."),
                io.Int.Input("batch_size", default=1, min=1, max=64, tooltip="Videos sampled at once."),
                io.Float.Input(
                    "strength",
                    default=1.0,
                    min=0.0,
                    max=1000.0,
                    step=0.01,
                    tooltip="VACE's strength, as in WanVaceToVideo.",
                ),  # fmt: skip
                io.Image.Input(
                    "reference_images",
                    tooltip="Every reference image, in order (person 1's first when people are placed; Image Batch "
                    "joins them). Each becomes one reference frame.",
                ),
                io.Image.Input(
                    "control_video",
                    optional=True,
                    tooltip=native["control_video"].tooltip or "The control video, as in WanVaceToVideo.",
                ),  # fmt: skip
                io.Mask.Input(
                    "control_masks",
                    optional=True,
                    tooltip=native["control_masks"].tooltip or "The control masks, as in WanVaceToVideo.",
                ),  # fmt: skip
                io.MultiType.Input(
                    "people",
                    types=[types.Identities, types.Identity],
                    optional=True,
                    tooltip="The people with one MASK each, from ID Router: each person's reference images are then "
                    "seen only inside that person's mask (outside every mask: none). Unconnected, or without "
                    "masks: every reference everywhere, as VACE does.",
                ),
                io.String.Input(
                    "frames_per_person",
                    default="",
                    tooltip="With people: how many of the reference images show each person, in order, e.g. '1,2'. "
                    "Empty: one image per person.",
                ),
            ],
            outputs=[
                io.Model.Output(display_name="model", tooltip="The model, with the people placed when masks came."),
                io.Conditioning.Output(display_name="positive"),
                io.Conditioning.Output(display_name="negative"),
                io.Latent.Output(display_name="latent", tooltip="The empty latent, reference frames first."),
                io.Int.Output(display_name="trim_latent", tooltip="Reference frames to trim off after sampling."),
            ],
        )

    @classmethod
    def validate_inputs(cls, model=None, positive=None, negative=None, vae=None, reference_images=None,
                        strength=None, control_video=None, control_masks=None, people=None) -> bool | str:  # fmt: skip
        return valid_inputs(cls, model=model, positive=positive, negative=negative, vae=vae,
                            reference_images=reference_images, strength=strength, control_video=control_video,
                            control_masks=control_masks, people=people)  # fmt: skip

    @classmethod
    def execute(
        cls, model, positive, negative, vae, width, height, length, batch_size, strength, reference_images,
        control_video=None, control_masks=None, people=None, frames_per_person="",
    ) -> io.NodeOutput:  # fmt: skip
        check_video_size(width, height, length, "length")
        positive, negative, latent, _ = WanVaceToVideo.execute(
            positive, negative, vae, width, height, length, batch_size, strength, control_video, control_masks, None
        ).result
        encoded = []
        for image in reference_images:
            latent_image = vae.encode(on_white_canvas(image, width, height))
            zeros = comfy.latent_formats.Wan21().process_out(torch.zeros_like(latent_image))
            encoded.append(torch.cat([latent_image, zeros], dim=1))
        references = torch.cat(encoded, dim=2)
        refs = references.shape[2]
        samples = latent["samples"]
        latent = {"samples": torch.zeros([*samples.shape[:2], samples.shape[2] + refs, *samples.shape[3:]],
                                         device=mm.intermediate_device())}  # fmt: skip
        positive, negative = with_references(positive, references), with_references(negative, references)
        summary = f"{refs} reference image(s), trim {refs} latent frame(s) after sampling"
        if people is not None:
            group = identity_set(people)
            masks = [None if m is None else m.float().cpu() for m in group.masks]
            if any(m is not None for m in masks):
                check_masks_apart(masks, group.labels)
                owners = reference_owners(frames_per_person, len(group.labels))
                if len(owners) != refs:
                    raise MultiIDError(
                        f"{refs} reference image(s) came, and frames_per_person gives {len(owners)} for "
                        f"{len(group.labels)} people: give each person's images in order and count them per person."
                    )
                model = place_people(model, VacePlacement(masks, owners, group.labels))
                summary += f"; {len(group.labels)} people placed by their masks"
        return io.NodeOutput(model, positive, negative, latent, refs, ui=ui.PreviewText(summary))
