"""Sampling CogVideoX-family identity models (ConsisID, Ingredients), step for step as the authors do.

Order of random draws (one CPU generator seeded once, as diffusers' pipeline with a seeded generator):
the VAE encode of the first frame samples its latent distribution, then the initial noise, then the
CogVideoX DPM solver's own noise at every step. Same seed, same inputs -> same latents as
`ConsisIDPipeline(output_type="latent")`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..canvas import canvas_for_faces, letterbox
from ..dit.cogvideox import cogvideox_rope
from ..errors import MultiIDError, non_finite_message
from ..faces.identity import Identity
from ..families import COGVIDEOX_5B_DEFAULTS as PAPER
from ..routing import (
    IdentityInjection,
    IdentitySet,
    RoutingRecorder,
    TokenGrid,
    check_placed,
    coverage_matrix,
    recording_steps,
)
from ..step_cache import COEFFICIENTS, TeaCache
from .cogvideox_loading import CogVideoXModel

log = logging.getLogger(__name__)

SCHEDULERS = ("CogVideoX DPM", "DDIM")
ATTENTION = ("sdpa", "sage")


@dataclass(frozen=True)
class SpeedOptions:
    """Speed/memory choices that leave the method unchanged (TeaCache approximates, the rest is exact)."""

    teacache: float = 0.0  # TeaCache threshold; 0 runs every step
    attention: str = "sdpa"
    cfg_batching: str = "batched"  # "sequential" halves activation memory: guidance branches in turn
    compile: bool = False


def activation_bytes(model: CogVideoXModel, settings: SamplerSettings, batch: int) -> int:
    """A generous estimate of one transformer call's working memory (the weights not counted)."""
    grid = latent_grid(model, settings)
    config = model.transformer.config
    tokens = grid.frames * (grid.height // config.patch_size) * (grid.width // config.patch_size)
    tokens += config.max_text_seq_length + model.family.max_references * grid.height * grid.width // 4
    element = torch.finfo(model.dtype).bits // 8
    return int(batch * tokens * config.inner_dim * element * 24)


def attention_kernel(name: str) -> Callable:
    """PyTorch's scaled-dot-product attention, or SageAttention when installed (CUDA)."""
    if name == "sdpa":
        return torch.nn.functional.scaled_dot_product_attention
    try:
        from sageattention import sageattn
    except ImportError:
        raise MultiIDError(
            "SageAttention is not installed: `pip install sageattention` (NVIDIA GPUs), or choose sdpa."
        ) from None

    def sage(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if q.device.type != "cuda":
            return torch.nn.functional.scaled_dot_product_attention(q, k, v)
        return sageattn(q, k, v, tensor_layout="HND", is_causal=False)

    return sage


@dataclass(frozen=True)
class SamplerSettings:
    width: int = PAPER.width
    height: int = PAPER.height
    frames: int = PAPER.frames
    steps: int = PAPER.steps
    cfg: float = PAPER.cfg
    dynamic_cfg: bool = False
    scheduler: str = SCHEDULERS[0]
    seed: int = 0
    identity_strength: float = 1.0


@dataclass(frozen=True)
class LatentGrid:
    frames: int
    height: int
    width: int


def latent_grid(model: CogVideoXModel, settings: SamplerSettings) -> LatentGrid:
    spatial, temporal = model.vae_scale
    return LatentGrid((settings.frames - 1) // temporal + 1, settings.height // spatial, settings.width // spatial)


def validate(model: CogVideoXModel, settings: SamplerSettings) -> None:
    """What the model can do, said in the user's units (pixels, frames)."""
    spatial, temporal = model.vae_scale
    multiple = spatial * model.transformer.config.patch_size
    config = model.transformer.config
    if settings.frames < 1 or (settings.frames - 1) % temporal:
        below = max(1, (settings.frames - 1) // temporal * temporal + 1)
        raise MultiIDError(
            f"frames must be {temporal}k+1 (1, 5, 9, ..., 49) because the VAE packs {temporal} frames into one "
            f"latent frame; got {settings.frames}. Use {below} or {below + temporal}."
        )
    for name, value in (("width", settings.width), ("height", settings.height)):
        if value < multiple or value % multiple:
            raise MultiIDError(
                f"{name} must be a multiple of {multiple} (VAE {spatial}x times patch {config.patch_size}); got "
                f"{value}. Use {max(multiple, value // multiple * multiple)}."
            )
    if settings.steps < 1:
        raise MultiIDError(f"steps must be at least 1, got {settings.steps}.")
    if config.use_learned_positional_embeddings:
        max_frames = (config.sample_frames - 1) // temporal * temporal + 1
        max_h, max_w = config.sample_height * spatial, config.sample_width * spatial
        if settings.frames > max_frames:
            raise MultiIDError(
                f"{model.family.name} has learned positions for at most {max_frames} frames; got {settings.frames}. "
                f"Use {max_frames} (the authors' setting) or fewer."
            )
        if settings.width > max_w or settings.height > max_h:
            raise MultiIDError(
                f"{model.family.name} has learned positions for at most {max_w}x{max_h} pixels (width x height); "
                f"got {settings.width}x{settings.height}. Use {max_w}x{max_h} (the authors' setting) or smaller."
            )


def family_face(model: CogVideoXModel, identity: Identity) -> torch.Tensor:
    """The face picture a family puts in the first frame: parsed on white (ConsisID) or the crop (Ingredients)."""
    photo = identity.primary
    return photo.face_on_white if model.family.eva_style == "consisid" else photo.aligned_crop


def first_frame_image(model: CogVideoXModel, people: IdentitySet, settings: SamplerSettings) -> Image.Image:
    """The picture VAE-encoded as the first latent frame.

    One person without a mask: their face alone, stretched to the frame by the pipeline (ConsisID).
    Several people, or masks: all faces on one white canvas (Ingredients' layout, or each in its mask).
    """
    faces = [family_face(model, identity) for identity in people.identities]
    has_masks = any(m is not None for m in people.masks)
    if len(faces) == 1 and not has_masks:
        return Image.fromarray((faces[0].numpy() * 255).astype(np.uint8))
    return canvas_for_faces(faces, settings.width, settings.height, people.masks if has_masks else None)


def encode_first_frame(
    model: CogVideoXModel, image: Image.Image, grid: LatentGrid, settings: SamplerSettings, generator: torch.Generator
) -> torch.Tensor:
    """[1, F, C, h, w]: the scaled latent of `image` stretched to the video size, then zero frames."""
    from diffusers.video_processor import VideoProcessor

    spatial, _ = model.vae_scale
    vae_param = next(model.vae.parameters())
    pixels = VideoProcessor(vae_scale_factor=spatial).preprocess(image, height=settings.height, width=settings.width)
    pixels = pixels.to(vae_param.device, model.dtype).unsqueeze(2)  # [1, 3, 1, H, W]
    latent = model.vae.encode(pixels.to(vae_param.dtype)).latent_dist.sample(generator)
    latent = (model.vae.config.scaling_factor * latent.to(model.dtype)).permute(0, 2, 1, 3, 4)
    padding = latent.new_zeros(1, grid.frames - 1, *latent.shape[2:])
    return torch.cat([latent, padding], dim=1)


def reference_latents(
    model: CogVideoXModel, people: IdentitySet, settings: SamplerSettings, generator: torch.Generator
) -> torch.Tensor:
    """[1, N, C, h, w]: each person's parsed face on black, letterboxed, encoded to one clean latent frame."""
    vae_param = next(model.vae.parameters())
    frames = []
    for identity in people.identities:
        # The SAT release letterboxes the float face and scales it to -1..1 (no 8-bit step).
        pixels = (letterbox(identity.primary.face_on_black, settings.width, settings.height) * 2 - 1).clamp(-1, 1)
        pixels = pixels.to(vae_param.device, vae_param.dtype).unsqueeze(2)  # [1, 3, 1, H, W]
        latent = model.vae.encode(pixels).latent_dist.sample(generator)
        frames.append((model.vae.config.scaling_factor * latent.to(model.dtype)).permute(0, 2, 1, 3, 4))
    return torch.cat(frames, dim=1)


def identity_tokens(model: CogVideoXModel, identities: list[Identity], device: torch.device) -> torch.Tensor:
    """[N, 32, D] perceiver tokens, one row per person: per photo, then averaged over that person's photos."""
    style = model.family.eva_style
    rows = []
    for identity in identities:
        id_cond = identity.id_cond(style).to(device, model.dtype)
        hidden = [h.to(device, model.dtype) for h in identity.vit_hidden(style)]
        rows.append(model.transformer.encode_faces(id_cond, hidden).mean(0, keepdim=True))
    return torch.cat(rows)


def check_people(model: CogVideoXModel, people: IdentitySet) -> None:
    """Identity count against what the model can do; a warning where it differs from its training."""
    count, family = len(people.identities), model.family
    if count == 0:
        raise MultiIDError(f"{family.name} needs an identity: connect an Encode Identity node.")
    if family.conditioning == "references":
        if count > family.max_references:
            raise MultiIDError(
                f"{family.name} appends one reference frame per person and has positions for at most "
                f"{family.max_references}; got {count} people."
            )
        if any(m is not None for m in people.masks):
            raise MultiIDError(
                f"{family.name} does not take masks (its references are not tied to regions). Disconnect the masks, "
                f"or use Concat-ID Wan, whose regional reference attention places people."
            )
        if count != model.identities_trained:
            log.warning(
                "This %s checkpoint was trained with %d reference(s); %d given. The release has a separate "
                "checkpoint for each count (single-identity, two-identities).",
                family.name,
                model.identities_trained,
                count,
            )
        return
    if count > 1 and not family.learned_router and people.mode != "masks":
        raise MultiIDError(
            f"{family.name} has no learned router, so it cannot tell {count} people apart by itself. In ID Router "
            f"choose routing mode 'masks' and paint a mask for each person (or use the Ingredients model)."
        )
    if family.learned_router and count != family.trained_identities and people.mode != "masks":
        log.warning(
            "%s was trained with %d identities; routing %d is beyond the release and may blend faces. Masks help.",
            family.name,
            family.trained_identities,
            count,
        )


def make_scheduler(name: str, config: dict):
    from diffusers import CogVideoXDDIMScheduler, CogVideoXDPMScheduler

    if name not in SCHEDULERS:
        raise MultiIDError(f"Unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}.")
    cls = CogVideoXDPMScheduler if name == "CogVideoX DPM" else CogVideoXDDIMScheduler
    return cls.from_config({k: v for k, v in config.items() if not k.startswith("_")})


def dynamic_guidance(cfg: float, timestep: float, steps: int) -> float:
    """CogVideoX's cosine schedule: guidance grows from 1 to 1 + cfg as the timestep falls."""
    return 1 + cfg * ((1 - math.cos(math.pi * ((steps - timestep) / steps) ** 5.0)) / 2)


StepCallback = Callable[[int, int, torch.Tensor], None]


@dataclass
class SampleResult:
    latents: torch.Tensor  # [1, F, C, h, w] float32
    routing: torch.Tensor | None  # [tokens, N] mean routing weights over the recorded steps and layers
    grid: TokenGrid
    transformer_calls: int = 0  # calls whose blocks ran (TeaCache skips the others)
    skipped_calls: int = 0


@torch.inference_mode()
def sample(
    model: CogVideoXModel,
    positive: torch.Tensor,
    negative: torch.Tensor,
    people: IdentitySet,
    settings: SamplerSettings,
    on_step: StepCallback | None = None,
    map_steps: str = "all steps",
    speed: SpeedOptions = SpeedOptions(),
) -> SampleResult:
    """Latents of one video (on the transformer's device) and, for the routing map, who went where.

    `positive`/`negative` are T5 embeddings [1, 226, D]. `on_step(i, steps, latents)` runs after every
    step (progress, previews, interruption).
    """
    validate(model, settings)
    check_people(model, people)
    transformer = model.transformer
    device = next(transformer.parameters()).device
    dtype = model.dtype
    grid = latent_grid(model, settings)
    p = transformer.config.patch_size
    tokens = TokenGrid(grid.frames, grid.height // p, grid.width // p)
    coverage = coverage_matrix(people.masks, tokens, settings.frames, people.labels)
    if coverage is not None and people.mode == "masks":
        check_placed(coverage, people.labels)
    generator = torch.Generator("cpu").manual_seed(settings.seed)

    appended = model.family.conditioning == "references"
    if appended:
        condition = reference_latents(model, people, settings, generator).to(device, dtype)
        channels = transformer.config.in_channels
    else:
        first_frame = first_frame_image(model, people, settings)
        condition = encode_first_frame(model, first_frame, grid, settings, generator).to(device, dtype)
        channels = transformer.config.in_channels - condition.shape[2]
    scheduler = make_scheduler(settings.scheduler, model.scheduler_config)
    scheduler.set_timesteps(settings.steps, device=device)
    shape = (1, grid.frames, channels, grid.height, grid.width)
    latents = torch.randn(shape, generator=generator, dtype=dtype).to(device) * scheduler.init_noise_sigma

    recorder = RoutingRecorder()
    identity = None
    if transformer.config.is_train_face:
        identity = IdentityInjection(
            identity_tokens(model, people.identities, device),
            scale=settings.identity_strength * transformer.config.local_face_scale,
            mode=people.mode,
            coverage=None if coverage is None else coverage.to(device),
            prior_strength=people.prior_strength,
            per_branch=people.per_branch,
            recorder=recorder,
        )
    rope = None
    if transformer.config.use_rotary_positional_embeddings:
        frames = grid.frames + (condition.shape[1] if appended else 0)  # references take the next time indices
        rope = cogvideox_rope(transformer.config, frames, grid.height, grid.width, device)
    guided = settings.cfg > 1.0
    text = torch.cat([negative, positive]) if guided else positive
    text = text.to(device, dtype)
    recorded = recording_steps(map_steps, settings.steps)
    transformer.set_attention(attention_kernel(speed.attention))
    transformer.set_compile(speed.compile)
    cache = None
    if speed.teacache > 0:  # all CogVideoX-family models here are CogVideoX-5B fine-tunes: ConsisID's fit
        cache = TeaCache(speed.teacache, COEFFICIENTS["consisid"], settings.steps)
    sequential = guided and speed.cfg_batching == "sequential"

    def predict(latents_in: torch.Tensor, t: torch.Tensor, texts: torch.Tensor, branch: int) -> torch.Tensor:
        model_input = scheduler.scale_model_input(latents_in, t)
        model_input = torch.cat(
            [model_input, condition.expand(len(latents_in), -1, -1, -1, -1)], dim=1 if appended else 2
        )
        out = transformer(model_input, texts, t.expand(len(model_input)), rope, identity, cache, branch)
        return out[:, : grid.frames].float()  # the reference slots never reach the scheduler

    old_prediction = None
    timesteps = scheduler.timesteps
    for i, t in enumerate(timesteps):
        recorder.active = i in recorded
        if cache is not None:
            cache.step = i
        if sequential:  # one branch at a time; the identity keeps the release's uncond-branch routing
            branches = []
            for branch, phase in enumerate(("uncond", "cond")):
                if identity is not None:
                    identity.phase = phase
                branches.append(predict(latents, t, text[branch : branch + 1], branch))
            noise_pred = torch.cat(branches)
        else:
            noise_pred = predict(torch.cat([latents] * 2) if guided else latents, t, text, 0)
        if not torch.isfinite(noise_pred).all():
            raise MultiIDError(non_finite_message(i + 1, len(timesteps)))
        if guided:
            scale = settings.cfg
            if settings.dynamic_cfg:
                scale = dynamic_guidance(settings.cfg, timesteps[i].item(), settings.steps)
            uncond, cond = noise_pred.chunk(2)
            noise_pred = uncond + scale * (cond - uncond)
        if settings.scheduler == "CogVideoX DPM":
            previous = timesteps[i - 1] if i > 0 else None
            latents, old_prediction = scheduler.step(
                noise_pred, old_prediction, t, previous, latents, generator=generator, return_dict=False
            )
        else:
            latents = scheduler.step(noise_pred, t, latents, generator=generator, return_dict=False)[0]
        latents = latents.to(dtype)
        if on_step is not None:
            on_step(i + 1, len(timesteps), latents)
    if identity is not None:
        identity.phase = None
    routing = recorder.mean()
    if routing is None:  # nothing injected per token (Concat-ID): a black map
        routing = torch.zeros(tokens.tokens, len(people.identities))
    calls = settings.steps * (2 if sequential else 1)
    skipped = cache.skipped if cache is not None else 0
    return SampleResult(latents.float(), routing, tokens, calls - skipped, skipped)


@torch.inference_mode()
def decode(model: CogVideoXModel, latents: torch.Tensor, tiled: bool = True) -> torch.Tensor:
    """[1, F, C, h, w] latents -> frames [T, H, W, 3] in 0..1, tiled and frame-sliced to fit small cards."""
    vae = model.vae
    if tiled:
        vae.enable_tiling()
    else:
        vae.disable_tiling()
    param = next(vae.parameters())
    z = latents.to(param.device, param.dtype).permute(0, 2, 1, 3, 4) / vae.config.scaling_factor
    video = vae.decode(z).sample  # [1, 3, T, H, W] in -1..1
    temporal = vae.config.temporal_compression_ratio
    if z.shape[2] % 2 == 0 and video.shape[2] == temporal * z.shape[2]:
        # The VAE upsamples an even number of latent frames to `temporal` frames each, the first latent (which
        # encodes the first frame alone) included: keep one of its copies, so the video has the 4k+1 frames
        # that were sampled (2 latent frames give 5 frames, not 8) and matches the routing map.
        video = video[:, :, temporal - 1 :]
    return (video[0].float().permute(1, 2, 3, 0) / 2 + 0.5).clamp(0, 1)
