"""What the CogVideoX-family tests in ComfyUI share: tiny models loaded by the pack's loader, random prompts,
MultiID Sampler's code on them, and diffusers' ConsisIDPipeline on the same tiny snapshot as the reference."""

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from multiid_tools.tiny_models.cogvideox import TINY_TEXT_DIM, write_tiny_consisid_snapshot

SMALL = dict(width=160, height=128, frames=5)  # 2 x 8 x 10 latents: any tiny model of the base directory
# A trained grid small enough for diffusers' ConsisID (learned positions) to sample quickly: 9 frames of 128x160.
PARITY_GRID = dict(sample_frames=9, sample_height=16, sample_width=20, num_layers=4)
PARITY_SIZE = dict(width=160, height=128, frames=9)
SCALE = 0.7  # the tiny VAE's scaling factor: diffusers' latents are scaled, LATENT holds raw ones


def load(node_classes, name: str) -> tuple:
    """(MODEL, VAE) of models/multiid/`name` in fp32, loaded anew (a test may change its weights)."""
    return node_classes["MultiID_LoadModel"].execute(name, "from model folder", "fp32", "same as precision").result


def prompts(seed: int = 0) -> tuple[list, list]:
    """Positive and negative conditioning of random T5 embeddings (226 tokens, as MultiID Text Encode gives)."""
    g = torch.Generator().manual_seed(seed)
    positive, negative = (torch.randn(1, 226, TINY_TEXT_DIM, generator=g) for _ in range(2))
    return [[positive, {}]], [[negative, {}]]


def sample(
    pack,
    loaded: tuple,
    identity,
    conditioning: tuple[list, list],
    steps: int = 4,
    size: dict = SMALL,
    cfg: float = 6.0,
    dynamic_cfg: bool = False,
    scheduler: str = "CogVideoX DPM",
    seed: int = 5,
    strength: float = 1.0,
) -> tuple:
    """MultiID Sampler's run (nodes/sampler_nodes.sample_video): (raw latents, routing weights or None, grid)."""
    video = pack.cogvideox_inputs.VideoSize(size["width"], size["height"], size["frames"])
    return pack.cogvideox_sampler.sample_video(
        *loaded, *conditioning, identity, video, steps, cfg, dynamic_cfg, scheduler, seed, strength
    )


def write_parity_snapshot(folder: Path) -> Path:
    """The tiny ConsisID snapshot with the trained grid PARITY_GRID."""
    return write_with(write_tiny_consisid_snapshot, folder, **PARITY_GRID)


def write_with(writer, folder: Path, **overrides) -> Path:
    """A tiny snapshot writer's output with TINY_TRANSFORMER changed by `overrides` (e.g. more heads)."""
    import multiid_tools.tiny_models.cogvideox as tiny

    original = dict(tiny.TINY_TRANSFORMER)
    tiny.TINY_TRANSFORMER.update(overrides)
    try:
        writer(folder)
    finally:
        tiny.TINY_TRANSFORMER.clear()
        tiny.TINY_TRANSFORMER.update(original)
    return folder


def write_concat_id_with(folder: Path, vae: Path, seed: int = 1, **overrides) -> Path:
    """A tiny Concat-ID two-identities SAT checkpoint at `folder`/two-identities with TINY_TRANSFORMER changed by
    `overrides`, beside a copy of the SAT VAE file `vae` (folder/vae/3d-vae.pt, where the loader looks); returns
    the checkpoint folder. (The Concat-ID writer reads its own copy of the sizes, TINY_T2V, made at import.)"""
    import shutil

    import multiid_tools.tiny_models.concat_id as tiny

    original = dict(tiny.TINY_T2V)
    tiny.TINY_T2V.update({k: v for k, v in overrides.items() if k in original})
    try:
        tiny.write_sat_checkpoint(folder / "two-identities", seed)
    finally:
        tiny.TINY_T2V.clear()
        tiny.TINY_T2V.update(original)
    (folder / "vae").mkdir(parents=True, exist_ok=True)
    shutil.copy(vae, folder / "vae" / "3d-vae.pt")
    return folder / "two-identities"


def consisid_pipeline(snapshot: Path):
    """diffusers' ConsisIDPipeline on a snapshot, with its DPM scheduler (prompts come as embeddings)."""
    import diffusers

    return diffusers.ConsisIDPipeline(
        tokenizer=None,
        text_encoder=None,
        vae=diffusers.AutoencoderKLCogVideoX.from_pretrained(snapshot / "vae"),
        transformer=diffusers.ConsisIDTransformer3DModel.from_pretrained(snapshot / "transformer"),
        scheduler=diffusers.CogVideoXDPMScheduler.from_pretrained(snapshot / "scheduler"),
    )


def pipeline_latents(
    pipe, identity, conditioning: tuple[list, list], steps: int, cfg: float, seed: int,
    scheduler: str | None = None, step_seed: int | None = None, **kwargs,
):  # fmt: skip
    """The pipeline's latents for one identity, in ComfyUI's [B, C, T, h, w] layout (scaled, as diffusers').

    `scheduler` (a diffusers class name) replaces its DPM; `step_seed` gives the solver's draws a generator of
    their own, as ComfyUI's samplers draw from the sampler's seed and the VAE encode from the conditioning's."""
    import diffusers

    if scheduler is not None:
        cls = getattr(diffusers, scheduler)
        pipe = diffusers.ConsisIDPipeline(**{**pipe.components, "scheduler": cls.from_config(pipe.scheduler.config)})
    if step_seed is not None:
        pipe = diffusers.ConsisIDPipeline(**pipe.components)
        pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
        solver_generator, step = torch.Generator().manual_seed(step_seed), pipe.scheduler.step
        pipe.scheduler.step = lambda *a, **kw: step(*a, **{**kw, "generator": solver_generator})
    image = Image.fromarray((identity.primary.face_on_white.numpy() * 255).astype(np.uint8))
    with torch.no_grad():
        out = pipe(
            image=image,
            prompt_embeds=conditioning[0][0][0],
            negative_prompt_embeds=conditioning[1][0][0],
            num_inference_steps=steps,
            guidance_scale=cfg,
            generator=torch.Generator().manual_seed(seed),
            output_type="latent",
            id_cond=identity.id_cond("consisid"),
            id_vit_hidden=identity.vit_hidden("consisid"),
            num_frames=PARITY_SIZE["frames"],
            height=PARITY_SIZE["height"],
            width=PARITY_SIZE["width"],
            **kwargs,
        ).frames
    return out.movedim(2, 1)
