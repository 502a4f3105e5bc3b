"""MultiID Sampler (the one-node path, the authors' defaults) and MultiID Decode.

MultiID Sampler is KSampler's path with the authors' draws: it conditions the prompts (MultiID Identity
Conditioning's code), then samples the MODEL with ComfyUI's guider and the pack's CogVideoX sampler, all random
draws from one generator in the pipeline's order (VAE sample, initial noise, solver noise). So the same seed
gives diffusers' `ConsisIDPipeline` latents, and the routing map shows who went where.
"""

from __future__ import annotations

import comfy.model_management as mm
import comfy.samplers
import comfy.utils
import latent_preview
import torch
from comfy_api.latest import io

from ...multiid_core.cogvideox.inputs import VideoSize
from ...multiid_core.errors import MultiIDError
from ...multiid_core.families import COGVIDEOX_5B_DEFAULTS as PAPER
from ...multiid_core.routing import MAP_STEPS, TokenGrid, identity_set, routing_map
from .. import types
from ..family_tags import COGVIDEOX, CONCAT_ID_WAN, latent_family, tag_latent
from ..input_checks import valid_inputs
from ..schedulers import trailing_sigmas
from .conditioning import identity_conditioning, identity_strength_input, video_inputs
from .samplers import DynamicCFGGuider, authors_noise, sample_cogvideox_ddim, sample_cogvideox_dpm

SCHEDULERS = ("CogVideoX DPM", "DDIM")


def sample_video(
    model,
    vae,
    positive,
    negative,
    identity,
    size: VideoSize,
    steps: int,
    cfg: float,
    dynamic_cfg: bool,
    scheduler: str,
    seed: int,
    identity_strength: float,
    routing_map_steps: str = MAP_STEPS[0],
) -> tuple[torch.Tensor, torch.Tensor | None, TokenGrid]:
    """(raw latents [1, C, T, h, w], routing weights [tokens, N] or None, token grid) of one video."""  # fmt: skip
    generator = torch.Generator("cpu").manual_seed(seed)
    people = identity_set(identity)
    positive, negative, latent, condition = identity_conditioning(
        model, vae, positive, negative, people, size, identity_strength, generator, routing_map_steps
    )
    samples = latent["samples"]
    noise = authors_noise(samples.shape, generator)
    if scheduler == SCHEDULERS[0]:
        sampler = comfy.samplers.KSAMPLER(sample_cogvideox_dpm, {"generator": generator})
    else:
        sampler = comfy.samplers.KSAMPLER(sample_cogvideox_ddim)
    guided = cfg > 1  # the authors' pipelines guide only above 1
    guider = (DynamicCFGGuider if guided and dynamic_cfg else comfy.samplers.CFGGuider)(model)
    guider.set_conds(positive, negative)
    guider.set_cfg(cfg if guided else 1.0)
    sigmas = trailing_sigmas(model.get_model_object("model_sampling"), steps)
    callback = latent_preview.prepare_callback(model, steps)
    out = guider.sample(
        noise, samples, sampler, sigmas, callback=callback, disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed
    )
    p = model.model.diffusion_model.config.patch_size
    grid = TokenGrid(samples.shape[2], samples.shape[3] // p, samples.shape[4] // p)
    routing = None if condition is None else condition.recorder.mean()
    return out, routing, grid


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
                *video_inputs(),
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
                identity_strength_input(),
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
        cls, model=None, vae=None, positive=None, negative=None, identity=None, scheduler=None,
        routing_map_steps=None, cfg=None, identity_strength=None,
    ) -> bool | str:  # fmt: skip
        return valid_inputs(
            cls, model=model, vae=vae, positive=positive, negative=negative, identity=identity, scheduler=scheduler,
            routing_map_steps=routing_map_steps, cfg=cfg, identity_strength=identity_strength,
        )  # fmt: skip

    @classmethod
    def execute(
        cls, model, vae, positive, negative, identity, width, height, frames, steps, cfg, dynamic_cfg, scheduler,
        seed, identity_strength, routing_map_steps,
    ) -> io.NodeOutput:  # fmt: skip
        size = VideoSize(width, height, frames)
        latents, routing, grid = sample_video(
            model, vae, positive, negative, identity, size, steps, cfg, dynamic_cfg, scheduler, seed,
            identity_strength, routing_map_steps,
        )  # fmt: skip
        people = len(identity_set(identity).identities)
        if routing is None:  # nothing injected per token (Concat-ID): a black map
            routing = torch.zeros(grid.tokens, people)
        picture = routing_map(routing.cpu(), grid, width, height, frames)
        latent = tag_latent({"samples": latents}, COGVIDEOX)
        return io.NodeOutput(latent, picture)


class MultiIDDecode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MultiID_Decode",
            display_name="MultiID Decode",
            category=f"{types.CATEGORY}/sampling",
            description="Decodes MultiID video latents into frames with the model's VAE.",
            inputs=[
                types.VideoVAE.Input("vae", tooltip="The vae output of Load MultiID Video Model."),
                io.Latent.Input("latent", tooltip="From MultiID Sampler or KSampler on a MultiID MODEL."),
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
    def validate_inputs(cls, vae=None, latent=None) -> bool | str:
        return valid_inputs(cls, vae=vae, latent=latent)

    @classmethod
    def execute(cls, vae, latent, tiled) -> io.NodeOutput:
        if latent_family(latent) == CONCAT_ID_WAN:
            raise MultiIDError(
                "These latents come from Concat-ID-Wan (a KSampler on Load Concat-ID Wan Model), and MultiID Decode "
                "decodes the CogVideoX family's only. Decode them with ComfyUI's VAE Decode and the Wan 2.1 VAE "
                "(wan_2.1_vae.safetensors in ComfyUI/models/vae, loaded with Load VAE)."
            )
        samples = latent["samples"]
        if samples.ndim != 5 or samples.shape[1] != vae.vae.config.latent_channels:
            raise MultiIDError(
                f"These latents ({tuple(samples.shape)}) were not made by a MultiID model: decode latents from "
                f"MultiID Sampler with the same model."
            )
        frames = torch.cat([vae.decode(video[None], tiled) for video in samples])
        return io.NodeOutput(frames.to(mm.intermediate_device()))
