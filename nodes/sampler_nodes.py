"""Sampling and decoding videos."""

from __future__ import annotations

from dataclasses import replace

import comfy.model_management as mm
import comfy.utils
import torch
from comfy_api.latest import io

from ..multiid_core.errors import MultiIDError
from ..multiid_core.families import COGVIDEOX_5B_DEFAULTS as PAPER
from ..multiid_core.pipelines.cogvideox_sampling import (
    SCHEDULERS,
    SamplerSettings,
    SpeedOptions,
    activation_bytes,
    decode,
    sample,
)
from ..multiid_core.routing import MAP_STEPS, identity_set, routing_map
from . import types
from .family_tags import COGVIDEOX, CONCAT_ID_WAN, conditioning_family, latent_family, tag_latent
from .input_checks import valid_inputs
from .speed_nodes import SpeedChoice


def text_embedding(conditioning: list, name: str) -> torch.Tensor:
    """The T5 embedding [1, 226, D] inside a CONDITIONING from MultiID Text Encode."""
    if not conditioning:
        raise MultiIDError(f"The {name} conditioning is empty: connect a MultiID Text Encode node.")
    if conditioning_family(conditioning) == CONCAT_ID_WAN:
        raise MultiIDError(
            f"The {name} conditioning comes from Concat-ID Wan Reference (the Wan path: UMT5 prompts). MultiID "
            f"Sampler needs the CogVideoX family's T5 encoding: encode the prompt with MultiID Text Encode."
        )
    embedding = conditioning[0][0]
    if embedding.ndim != 3 or embedding.shape[1] != 226:
        raise MultiIDError(
            f"The {name} conditioning has shape {tuple(embedding.shape)}, but CogVideoX models need T5 embeddings "
            f"of exactly 226 tokens: encode the prompt with the MultiID Text Encode node, not CLIP Text Encode."
        )
    return embedding


class MultiIDSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MultiID_Sampler",
            display_name="MultiID Sampler",
            category=f"{types.CATEGORY}/sampling",
            description="Generates the video latents of one or several identities with a MultiID model. "
            f"Defaults are the authors' settings ({PAPER.frames} frames at {PAPER.width}x{PAPER.height}, "
            f"{PAPER.steps} steps, cfg {PAPER.cfg:g}).",
            inputs=[
                types.MultiIDModel.Input("model", tooltip="From Load MultiID Video Model."),
                io.Conditioning.Input("positive", tooltip="The prompt, from MultiID Text Encode (T5, 226 tokens)."),
                io.Conditioning.Input(
                    "negative", tooltip="The negative prompt, from MultiID Text Encode (the authors use an empty one)."
                ),
                io.MultiType.Input(
                    "identity",
                    types=[types.Identity, types.Identities],
                    tooltip="One identity (Encode Identity) or several (ID Router).",
                ),
                io.Int.Input(
                    "width",
                    default=PAPER.width,
                    min=16,
                    max=2048,
                    step=16,
                    tooltip=f"Video width in pixels; a multiple of 16, at most what the model was trained at "
                    f"({PAPER.width}).",
                ),
                io.Int.Input(
                    "height",
                    default=PAPER.height,
                    min=16,
                    max=2048,
                    step=16,
                    tooltip=f"Video height in pixels; a multiple of 16, at most what the model was trained at "
                    f"({PAPER.height}).",
                ),
                io.Int.Input(
                    "frames",
                    default=PAPER.frames,
                    min=1,
                    max=1025,
                    step=4,
                    tooltip=f"Number of frames, 4k+1 ({PAPER.frames} = {PAPER.frames // PAPER.fps:.0f} s at "
                    f"{PAPER.fps:g} fps, the trained length and the maximum for these models).",
                ),
                io.Int.Input(
                    "steps",
                    default=PAPER.steps,
                    min=1,
                    max=1000,
                    tooltip=f"Denoising steps (the authors use {PAPER.steps}).",
                ),
                io.Float.Input(
                    "cfg",
                    default=PAPER.cfg,
                    min=0.0,
                    max=30.0,
                    step=0.1,
                    round=0.01,
                    tooltip=(
                        "Classifier-free guidance on the prompt (the identity is in both branches, as "
                        "released). 1 or less turns guidance off."
                    ),
                ),
                io.Boolean.Input(
                    "dynamic_cfg",
                    default=False,
                    tooltip=(
                        "CogVideoX's cosine schedule that raises guidance from 1 to cfg over the run. The "
                        "authors found it off to be better for identity."
                    ),
                ),
                io.Combo.Input(
                    "scheduler",
                    options=list(SCHEDULERS),
                    default=SCHEDULERS[0],
                    tooltip="CogVideoX DPM (the authors', stochastic) or DDIM (deterministic given the noise).",
                ),
                io.Int.Input(
                    "seed",
                    default=42,
                    min=0,
                    max=2**63 - 1,
                    control_after_generate=True,
                    tooltip=(
                        "Seed of all random draws; the same seed and inputs reproduce the authors' pipeline output."
                    ),
                ),
                io.Float.Input(
                    "identity_strength",
                    default=1.0,
                    min=0.0,
                    max=3.0,
                    step=0.05,
                    tooltip=(
                        "Scale of the face features injected into the video tokens (ConsisID's "
                        "local_face_scale). 0 keeps only the first-frame face."
                    ),
                ),
                types.SpeedOptions.Input(
                    "speed",
                    optional=True,
                    tooltip="From MultiID Speed & Memory: TeaCache, SageAttention, sequential guidance, block "
                    "swapping, torch.compile. Unconnected: exact, batched guidance, whole model on the GPU.",
                ),
                io.Combo.Input(
                    "routing_map_steps",
                    options=list(MAP_STEPS),
                    default=MAP_STEPS[0],
                    tooltip="Which denoising steps the routing map averages (over all identity layers): early steps "
                    "show the layout being decided, late steps the final assignment.",
                ),
            ],
            outputs=[
                io.Latent.Output(display_name="latent"),
                io.Image.Output(
                    display_name="routing_map",
                    tooltip="Who went where: each video token in its person's colour (orange, blue, green, magenta "
                    "for people 1-4; black where no identity was added), one image per frame at video size.",
                ),
            ],
        )

    @classmethod
    def validate_inputs(
        cls, model=None, positive=None, negative=None, identity=None, speed=None,
        scheduler=None, routing_map_steps=None, cfg=None, identity_strength=None,
    ) -> bool | str:  # fmt: skip
        return valid_inputs(
            cls, model=model, positive=positive, negative=negative, identity=identity, speed=speed,
            scheduler=scheduler, routing_map_steps=routing_map_steps, cfg=cfg, identity_strength=identity_strength,
        )  # fmt: skip

    @classmethod
    def execute(
        cls, model, positive, negative, identity, width, height, frames, steps, cfg, dynamic_cfg, scheduler, seed,
        identity_strength,
        routing_map_steps,
        speed: SpeedChoice | None = None,
    ) -> io.NodeOutput:  # fmt: skip
        settings = SamplerSettings(
            width=width, height=height, frames=frames, steps=steps, cfg=cfg, dynamic_cfg=dynamic_cfg,
            scheduler=scheduler, seed=seed, identity_strength=identity_strength,
        )  # fmt: skip
        speed = speed or SpeedChoice(SpeedOptions(), "auto", 0)
        options = speed.options
        batched = activation_bytes(model.core, settings, batch=2 if cfg > 1 else 1)
        if speed.cfg_batching == "auto" and cfg > 1 and batched > mm.get_free_memory(mm.get_torch_device()):
            options = replace(options, cfg_batching="sequential")  # two half-size passes fit where one did not
        needed = activation_bytes(model.core, settings, batch=1 if options.cfg_batching == "sequential" else 2)
        progress = comfy.utils.ProgressBar(steps)

        def on_step(done: int, total: int, latents: torch.Tensor) -> None:
            mm.throw_exception_if_processing_interrupted()
            progress.update_absolute(done, total)

        with model.placed(needed, speed.block_swap):
            result = sample(
                model.core,
                text_embedding(positive, "positive"),
                text_embedding(negative, "negative"),
                identity_set(identity),
                settings,
                on_step=on_step,
                map_steps=routing_map_steps,
                speed=options,
            )
        samples = result.latents.permute(0, 2, 1, 3, 4).to(mm.intermediate_device())  # video latents: B,C,T,H,W
        picture = routing_map(result.routing.cpu(), result.grid, width, height, frames)
        latent = tag_latent({"samples": samples}, COGVIDEOX)
        return io.NodeOutput(latent, picture.to(mm.intermediate_device()))


class MultiIDDecode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MultiID_Decode",
            display_name="MultiID Decode",
            category=f"{types.CATEGORY}/sampling",
            description="Decodes MultiID video latents into frames with the model's VAE.",
            inputs=[
                types.MultiIDModel.Input("model", tooltip="The model that sampled the latents."),
                io.Latent.Input("latent", tooltip="From MultiID Sampler."),
                io.Boolean.Input(
                    "tiled",
                    default=True,
                    tooltip="Decode in overlapping tiles so a 49x480x720 video fits in a few GB of VRAM; off is "
                    "slightly faster on large cards.",
                ),
            ],
            outputs=[io.Image.Output(display_name="frames")],
        )

    @classmethod
    def validate_inputs(cls, model=None, latent=None) -> bool | str:
        return valid_inputs(cls, model=model, latent=latent)

    @classmethod
    def execute(cls, model, latent, tiled) -> io.NodeOutput:
        if latent_family(latent) == CONCAT_ID_WAN:
            raise MultiIDError(
                "These latents come from Concat-ID-Wan (a KSampler on Load Concat-ID Wan Model), and MultiID Decode "
                "decodes the CogVideoX family's only. Decode them with ComfyUI's VAE Decode and the Wan 2.1 VAE "
                "(wan_2.1_vae.safetensors in ComfyUI/models/vae, loaded with Load VAE)."
            )
        samples = latent["samples"]
        if samples.ndim != 5 or samples.shape[1] != model.core.vae.config.latent_channels:
            raise MultiIDError(
                f"These latents ({tuple(samples.shape)}) were not made by a MultiID model: decode latents from "
                f"MultiID Sampler with the same model."
            )
        model.load_vae()
        frames = decode(model.core, samples.permute(0, 2, 1, 3, 4), tiled=tiled)
        return io.NodeOutput(frames.to(mm.intermediate_device()))
