"""Identities as conditioning for the CogVideoX family, so KSampler and every guider carry them.

*MultiID Identity Conditioning* writes into both prompts what the authors' pipelines add to the text: the
identity (its face features, routed per video token inside the model), and the face frame (ConsisID,
Ingredients: the first latent frame, ComfyUI's `c_concat`) or the reference frames (Concat-ID, appended on the
time axis). Positive and negative get the same objects, so ComfyUI batches the two branches as one call when
memory allows, and the model routes both from the unconditional branch as released either way.
"""

from __future__ import annotations

import comfy.model_management as mm
import node_helpers
import torch
from comfy_api.latest import io

from ...multiid_core.cogvideox.inputs import (
    VideoSize,
    check_people,
    encode_first_frame,
    first_frame_image,
    latent_grid,
    reference_latents,
    validate,
)
from ...multiid_core.errors import MultiIDError
from ...multiid_core.families import COGVIDEOX_5B_DEFAULTS as PAPER
from ...multiid_core.families import IdentityInput
from ...multiid_core.routing import IdentitySet, TokenGrid, check_placed, identity_set
from .. import types
from ..family_tags import COGVIDEOX, MADE_BY, conditioning_family, tag_latent
from ..input_checks import valid_inputs
from ..schema import size_inputs
from .model import FIRST_FRAME, IDENTITY, REFERENCES, IdentityCondition, MultiIDCogVideoX


def text_embedding(conditioning: list, name: str) -> None:
    """Refuses what is not a CogVideoX T5 prompt (226 tokens), naming the node that makes one."""
    if not conditioning:
        raise MultiIDError(f"The {name} conditioning is empty: connect a MultiID Text Encode node.")
    family = conditioning_family(conditioning)
    if family not in (None, COGVIDEOX):
        raise MultiIDError(
            f"The {name} conditioning comes from {MADE_BY.get(family, family)}. The CogVideoX family needs T5 "
            f"prompts: encode the prompt with MultiID Text Encode."
        )
    embedding = conditioning[0][0]
    if embedding.ndim != 3 or embedding.shape[1] != 226:
        raise MultiIDError(
            f"The {name} conditioning has shape {tuple(embedding.shape)}, but CogVideoX models need T5 embeddings "
            f"of exactly 226 tokens: encode the prompt with the MultiID Text Encode node, not CLIP Text Encode."
        )


def cogvideox_model(model) -> MultiIDCogVideoX:
    """The MultiIDCogVideoX inside a MODEL, or a message naming the loader that makes one."""
    inner = getattr(model, "model", None)
    if not isinstance(inner, MultiIDCogVideoX):
        raise MultiIDError(
            "This MODEL is not a CogVideoX-family identity model: load ConsisID, Ingredients or Concat-ID "
            "(CogVideoX) with Load MultiID Video Model. Concat-ID Wan takes Concat-ID Wan Reference instead."
        )
    return inner


@torch.inference_mode()
def identity_conditioning(
    model,
    vae,
    positive: list,
    negative: list,
    people: IdentitySet,
    size: VideoSize,
    strength: float,
    generator: torch.Generator,
    map_steps: str = "all steps",
) -> tuple[list, list, dict, IdentityCondition | None]:
    """(positive, negative, empty latent, identity) for one video; the VAE samples from `generator`."""
    inner = cogvideox_model(model)
    family, config = inner.family, inner.diffusion_model.config
    text_embedding(positive, "positive")
    text_embedding(negative, "negative")
    validate(family, config, vae.vae, size)
    check_people(family, inner.trained_identities, people)
    grid = latent_grid(vae.vae, size)
    values: dict = {}
    condition = None
    if config.is_train_face:  # masks are checked (and named) before anything is encoded
        condition = IdentityCondition(people, family.eva_style, strength, size.frames, map_steps)
        p = config.patch_size
        coverage = condition.coverage(TokenGrid(grid.frames, grid.height // p, grid.width // p), torch.device("cpu"))
        if coverage is not None and people.mode == "masks":
            check_placed(coverage, people.labels)
        values[IDENTITY] = condition
    vae.load()
    if family.identity_input is IdentityInput.REFERENCES:
        values[REFERENCES] = reference_latents(vae.vae, people, size, generator).to(mm.intermediate_device())
    else:
        image = first_frame_image(family, people, size)
        values[FIRST_FRAME] = encode_first_frame(vae.vae, image, size, generator).to(mm.intermediate_device())
    latent = torch.zeros(1, config.out_channels, grid.frames, grid.height, grid.width, device=mm.intermediate_device())
    return (
        node_helpers.conditioning_set_values(positive, values),
        node_helpers.conditioning_set_values(negative, values),
        tag_latent({"samples": latent}, COGVIDEOX),
        condition,
    )


def video_inputs() -> list:
    """The inputs MultiID Identity Conditioning and MultiID Sampler share, in their order: what to condition
    (model, vae, prompts, identity) and the video size."""
    return [
        io.Model.Input("model", tooltip="The MODEL from Load MultiID Video Model (LoRAs and MODEL patches apply)."),
        types.VideoVAE.Input("vae", tooltip="The vae output of Load MultiID Video Model."),
        io.Conditioning.Input("positive", tooltip="The prompt, from MultiID Text Encode (T5, 226 tokens)."),
        io.Conditioning.Input(
            "negative", tooltip="The negative prompt, from MultiID Text Encode (the authors use an empty one)."
        ),
        io.MultiType.Input(
            "identity",
            types=[types.Identity, types.Identities],
            tooltip="One identity (Encode Identity) or several (ID Router).",
        ),
        *size_inputs(PAPER, "frames", "at most what the model was trained at"),
    ]  # fmt: skip


def identity_strength_input() -> io.Float.Input:
    return io.Float.Input("identity_strength", default=1.0, min=0.0, max=3.0, step=0.05, tooltip=(
        "Scale of the face features injected into the video tokens (ConsisID's local_face_scale). "
        "0 keeps only the face frame."
    ))  # fmt: skip


class MultiIDIdentityConditioning(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MultiID_IdentityConditioning",
            display_name="MultiID Identity Conditioning",
            category=f"{types.CATEGORY}/conditioning",
            description="Adds one or several identities to both prompts of a ConsisID, Ingredients or Concat-ID "
            "(CogVideoX) model, with the face frame the model starts from, and gives the empty video latent to "
            "sample. Feed its outputs to KSampler, SamplerCustomAdvanced or any guider.",
            inputs=[
                *video_inputs(),
                identity_strength_input(),
                io.Int.Input("vae_seed", default=42, min=0, max=2**63 - 1, tooltip=(
                    "Seed of the VAE's random draw when it encodes the face frame (the sampler has its own seed). "
                    "Fixed, so the face frame stays the same from run to run."
                )),
            ],
            outputs=[
                io.Conditioning.Output(display_name="positive"),
                io.Conditioning.Output(display_name="negative"),
                io.Latent.Output(display_name="latent", tooltip="The empty video latent to sample."),
            ],
        )  # fmt: skip

    @classmethod
    def validate_inputs(
        cls, model=None, vae=None, positive=None, negative=None, identity=None, identity_strength=None
    ) -> bool | str:
        return valid_inputs(
            cls, model=model, vae=vae, positive=positive, negative=negative, identity=identity,
            identity_strength=identity_strength,
        )  # fmt: skip

    @classmethod
    def execute(
        cls, model, vae, positive, negative, identity, width, height, frames, identity_strength, vae_seed
    ) -> io.NodeOutput:
        generator = torch.Generator("cpu").manual_seed(vae_seed)
        size = VideoSize(width, height, frames)
        people = identity_set(identity)
        out = identity_conditioning(model, vae, positive, negative, people, size, identity_strength, generator)
        return io.NodeOutput(*out[:3])
