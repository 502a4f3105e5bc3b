"""Concat-ID-Wan without ComfyUI: checkpoint reading, the reference image, regions and the released sampler.

Loading: the released `.pt` files are full Wan2.1-T2V-1.3B state dicts (`first_stage.pt`) plus the AdaLN
reference branch (`second_stage_adaln.pt`), read with `weights_only=True`. Which one a file is comes from
its keys, never from the user; every load is strict and names what is missing or extra.

Reference image (`inference_wan.py` `get_face_image` + `resize_pad_crop`): the identity's 448 norm_crop
face parsed onto black (`Identity.primary.face_on_black`), fitted into the video frame with bicubic
resizing (torchvision's, antialiased), padded black around the centre, quantised to 8 bits. The authors'
inference script converts to 8 bits with `.byte()`, which wraps the bicubic overshoot at the face's
outline around (-0.01 becomes 253/255, a bright speckle); we clamp, as their training data code does.

Sampling (`WanVideoPipeline.__call__` of the release): flow matching, sigmas linspace(1, 0, steps + 1)
without the last, shifted by `shift` (5), Euler steps; the reference is appended to the latents for every
forward and its slot dropped before the step; text CFG with the reference in both branches. ComfyUI's
KSampler (euler, simple) on the MODEL of our loader takes the very same steps.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from ..canvas import letterbox
from ..dit.wan import ConcatIDWan, WanConfig
from ..errors import MultiIDError
from ..families import CONCAT_ID_WAN, WAN_FAMILIES, Family
from ..families import WAN_2_1_T2V_DEFAULTS as PAPER
from ..loading import check_keys, load_state_dict
from ..routing import INSIDE, TokenGrid, mask_coverage
from ..step_cache import COEFFICIENTS, TeaCache

log = logging.getLogger(__name__)

SOURCE = "https://huggingface.co/yongzhong/Concat-ID-Wan (first_stage.pt or second_stage_adaln.pt)"
SHIFT = 5.0
VAE_SCALE = (4, 8)  # Wan2.1 VAE: temporal, spatial compression
TOKEN_PIXELS = 16  # one DiT token covers 16x16 pixels (VAE 8 x patch 2)
_DIT_MARKER = "head.modulation"


# ------------------------------------------------------------------------------------------------------ loading


def _dit_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The DiT's tensors without a wrapper prefix (`model.diffusion_model.`, `module.`, `dit.` ...)."""
    prefix = next((k[: -len(_DIT_MARKER)] for k in sd if k.endswith(_DIT_MARKER) and "blocks." not in k), None)
    if not prefix:
        return sd
    return {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}


def _not_concat_id(keys: set[str], path: str) -> str | None:
    """Why a state dict is not a Wan2.1 T2V DiT in the original layout, or None when it is one."""
    if any(k.startswith("transformer_blocks.") for k in keys):
        return (
            f"{path} is a CogVideoX-family transformer (ConsisID, Ingredients, Concat-ID-CogVideoX), not a Wan DiT: "
            "load it with Load MultiID Video Model."
        )
    if "condition_embedder.time_proj.weight" in keys or any(".attn1.to_q." in k for k in keys):
        return (
            f"{path} is a Wan DiT in diffusers' layout (condition_embedder.*, attn1.*). Concat-ID-Wan is released "
            f"in the original Wan layout: download {SOURCE}."
        )
    if _DIT_MARKER not in keys or "blocks.0.self_attn.q.weight" not in keys:
        return f"{path} is not a Wan2.1 DiT (no head.modulation / blocks.N.self_attn.* tensors). Download {SOURCE}."
    if any(k.startswith(("img_emb.", "vace_", "control_adapter.", "ref_conv.")) for k in keys):
        kind = "image-to-video (img_emb.*)" if any(k.startswith("img_emb.") for k in keys) else "control/VACE"
        return f"{path} is a Wan {kind} DiT; Concat-ID-Wan is built on Wan2.1 text-to-video. Download {SOURCE}."
    return None


def detect_wan_family(keys: set[str], path: str) -> Family:
    """Concat-ID-Wan-AdaLN when the reference branch is there, else the first-stage model."""
    problem = _not_concat_id(keys, path)
    if problem:
        raise MultiIDError(problem)
    for family in WAN_FAMILIES:
        if family.matches({}, keys):
            return family
    return CONCAT_ID_WAN


def expected_shapes(config: WanConfig) -> dict[str, torch.Size]:
    return {k: v.shape for k, v in ConcatIDWan(config, device="meta").state_dict().items()}


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], WanConfig, Family]:
    """A Concat-ID-Wan checkpoint, checked key by key: (state dict, sizes, first stage or AdaLN)."""
    path = Path(path)
    sd = _dit_keys(load_state_dict(path, "Concat-ID-Wan DiT", SOURCE))
    family = detect_wan_family(set(sd), str(path))
    config = WanConfig.from_state_dict(sd)
    if config.patch_size != (1, 2, 2) or config.in_dim != 16 or config.out_dim != 16:
        raise MultiIDError(
            f"{path} is a Wan DiT with {config.in_dim} input channels and patch {config.patch_size}; Concat-ID-Wan "
            f"is Wan2.1 text-to-video (16 channels, patch 1x2x2, the Wan 2.1 VAE). Download {SOURCE}."
        )
    check_keys(expected_shapes(config), sd, f"{family.name} DiT", path, SOURCE)
    if config.dim != WanConfig().dim:
        log.warning(
            "MultiID: %s is a Wan2.1 DiT of width %d; Concat-ID-Wan was released for the 1.3B (width 1536) only.",
            path,
            config.dim,
        )
    return sd, config, family


# ---------------------------------------------------------------------------------------------- reference image


def reference_image(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[h, w, 3] in 0..1 -> [height, width, 3]: letterboxed, at the 8-bit levels the release encodes."""
    return torch.floor(letterbox(image, width, height).clamp(0, 1) * 255).div(255)[0].permute(1, 2, 0)


def reference_images(identities: Sequence[Any], height: int, width: int) -> torch.Tensor:
    """[R, height, width, 3]: each identity's first photo, parsed face on black, letterboxed."""
    return torch.stack([reference_image(identity.primary.face_on_black, height, width) for identity in identities])


# ------------------------------------------------------------------------------------------------------ regions


def latent_frames(frames: int) -> int:
    return (frames - 1) // VAE_SCALE[0] + 1


def token_regions(masks: Sequence[torch.Tensor | None], frames: int, height: int, width: int) -> torch.Tensor | None:
    """Per reference, which video tokens may attend to it: float [R, F_lat, height/16, width/16] of 0/1.

    `masks` are ComfyUI MASKs, one per reference, read as ID Router reads them for every family
    (routing.mask_coverage: stretched to the frame; 1 frame for the whole video, or one per video or
    latent frame): a token is inside when the mask covers at least half of it. None: everywhere.
    All None: no regions.
    """
    if all(m is None for m in masks):
        return None
    grid = TokenGrid(latent_frames(frames), height // TOKEN_PIXELS, width // TOKEN_PIXELS)
    rows = [
        torch.ones(grid.tokens) if m is None else (mask_coverage(m.cpu(), grid, frames, f"identity {k + 1}") >= INSIDE)
        for k, m in enumerate(masks)
    ]
    return torch.stack(rows).float().reshape(len(masks), grid.frames, grid.rows, grid.cols)


# ----------------------------------------------------------------------------------------------------- sampling


def flow_match_sigmas(steps: int, shift: float = SHIFT) -> torch.Tensor:
    """steps + 1 sigmas, the last 0: DiffSynth's FlowMatchScheduler(extra_one_step=True, sigma_min=0)."""
    sigmas = torch.linspace(1.0, 0.0, steps + 1)[:-1]
    sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def flow_match_step(latents: torch.Tensor, flow: torch.Tensor, sigma: float, sigma_next: float) -> torch.Tensor:
    """One Euler step; `flow` must hold the video frames only (the reference slot is never stepped)."""
    if flow.shape != latents.shape:
        raise ValueError(f"prediction {tuple(flow.shape)} does not match the latents {tuple(latents.shape)}")
    return latents + flow * (sigma_next - sigma)


def sample(
    dit: ConcatIDWan,
    noise: torch.Tensor,
    context: torch.Tensor,
    negative_context: torch.Tensor,
    references: torch.Tensor,
    steps: int = PAPER.steps,
    cfg: float = PAPER.cfg,
    shift: float = SHIFT,
    image_cfg: float = 1.0,
    regions: torch.Tensor | None = None,
    on_step: Callable[[int, int], None] | None = None,
    step: Callable[[torch.Tensor, torch.Tensor, float, float], torch.Tensor] = flow_match_step,
    teacache: float = 0.0,
) -> torch.Tensor:
    """The released sampling loop: video latents [B, 16, F, h, w] from `noise` of that shape.

    `references` [1, 16, R, h, w] are clean model-space latents present in every branch; with
    `image_cfg` != 1 a third branch sees zeroed references (negative text), Phantom's
    neg_img + image_cfg * (neg - neg_img) + cfg * (pos - neg). `teacache` > 0 runs TeaCache4Wan2.1
    with that threshold (the branches as its separate cond and uncond calls).
    """
    sigmas = flow_match_sigmas(steps, shift)
    cache = TeaCache(teacache, COEFFICIENTS["wan2.1-t2v-1.3b"], steps) if teacache > 0 else None
    latents = noise
    zeros = torch.zeros_like(references)
    for i in range(steps):
        t = (sigmas[i] * 1000).reshape(1).to(noise.device)
        if cache is not None:
            cache.step = i
        flow = dit(latents, t, context, references, regions, cache=cache, branches=["positive"])
        if cfg != 1.0 or image_cfg != 1.0:
            negative = dit(latents, t, negative_context, references, regions, cache=cache, branches=["negative"])
            if image_cfg != 1.0:
                no_reference = dit(latents, t, negative_context, zeros, regions, cache=cache, branches=["no reference"])
                flow = no_reference + image_cfg * (negative - no_reference) + cfg * (flow - negative)
            else:
                flow = negative + cfg * (flow - negative)
        latents = step(latents, flow, float(sigmas[i]), float(sigmas[i + 1]))
        if on_step is not None:
            on_step(i + 1, steps)
    return latents
