"""What a CogVideoX-family video is conditioned on, prepared as the authors prepare it.

The first frame (ConsisID, Ingredients: the face picture VAE-encoded, then zero frames) or the reference
frames (Concat-ID: each parsed face on black, letterboxed, encoded), the checks of size and identity count in
the user's units, and the decode. Random draws come from the caller's generator in the authors' order: the
VAE encodes sample their latent distributions before the initial noise is drawn. Sampling itself runs in
ComfyUI on the MODEL (nodes/cogvideox_model.py, nodes/cogvideox_samplers.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..canvas import canvas_for_faces, letterbox
from ..errors import MultiIDError
from ..faces.identity import Identity
from ..families import COGVIDEOX_5B_DEFAULTS as PAPER
from ..families import Family, IdentityInput
from ..routing import IdentitySet
from .transformer import CogVideoXConfig, CogVideoXTransformer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoSize:
    width: int = PAPER.width
    height: int = PAPER.height
    frames: int = PAPER.frames


@dataclass(frozen=True)
class LatentGrid:
    frames: int
    height: int
    width: int


def vae_scale(vae: Any) -> tuple[int, int]:
    """(spatial, temporal) compression of a diffusers CogVideoX VAE."""
    return 2 ** (len(vae.config.block_out_channels) - 1), int(vae.config.temporal_compression_ratio)


def latent_grid(vae: Any, size: VideoSize) -> LatentGrid:
    spatial, temporal = vae_scale(vae)
    return LatentGrid((size.frames - 1) // temporal + 1, size.height // spatial, size.width // spatial)


def validate(family: Family, config: CogVideoXConfig, vae: Any, size: VideoSize) -> None:
    """What the model can do, said in the user's units (pixels, frames)."""
    spatial, temporal = vae_scale(vae)
    multiple = spatial * config.patch_size
    if size.frames < 1 or (size.frames - 1) % temporal:
        below = max(1, (size.frames - 1) // temporal * temporal + 1)
        raise MultiIDError(
            f"frames must be {temporal}k+1 (1, 5, 9, ..., 49) because the VAE packs {temporal} frames into one "
            f"latent frame; got {size.frames}. Use {below} or {below + temporal}."
        )
    for name, value in (("width", size.width), ("height", size.height)):
        if value < multiple or value % multiple:
            raise MultiIDError(
                f"{name} must be a multiple of {multiple} (VAE {spatial}x times patch {config.patch_size}); got "
                f"{value}. Use {max(multiple, value // multiple * multiple)}."
            )
    if config.use_learned_positional_embeddings:
        max_frames = (config.sample_frames - 1) // temporal * temporal + 1
        max_h, max_w = config.sample_height * spatial, config.sample_width * spatial
        if size.frames > max_frames:
            raise MultiIDError(
                f"{family.name} has learned positions for at most {max_frames} frames; got {size.frames}. "
                f"Use {max_frames} (the authors' setting) or fewer."
            )
        if size.width > max_w or size.height > max_h:
            raise MultiIDError(
                f"{family.name} has learned positions for at most {max_w}x{max_h} pixels (width x height); "
                f"got {size.width}x{size.height}. Use {max_w}x{max_h} (the authors' setting) or smaller."
            )


def family_face(family: Family, identity: Identity) -> torch.Tensor:
    """The face picture a family puts in the first frame: parsed on white (ConsisID) or the crop (Ingredients)."""
    photo = identity.primary
    return photo.face_on_white if family.eva_style == "consisid" else photo.aligned_crop


def first_frame_image(family: Family, people: IdentitySet, size: VideoSize) -> Image.Image:
    """The picture VAE-encoded as the first latent frame.

    One person without a mask: their face alone, stretched to the frame by the pipeline (ConsisID).
    Several people, or masks: all faces on one white canvas (Ingredients' layout, or each in its mask).
    """
    faces = [family_face(family, identity) for identity in people.identities]
    has_masks = any(m is not None for m in people.masks)
    if len(faces) == 1 and not has_masks:
        return Image.fromarray((faces[0].numpy() * 255).astype(np.uint8))
    return canvas_for_faces(faces, size.width, size.height, people.masks if has_masks else None)


def _encode(vae: Any, pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """[1, 3, 1, H, W] in -1..1 -> one raw latent frame [1, C, 1, h, w] (float32), sampled as diffusers does."""
    param = next(vae.parameters())
    return vae.encode(pixels.to(param.device, param.dtype)).latent_dist.sample(generator).float()


def encode_first_frame(vae: Any, image: Image.Image, size: VideoSize, generator: torch.Generator) -> torch.Tensor:
    """[1, C, F, h, w] raw latents: `image` stretched to the video size and encoded, then zero frames."""
    from diffusers.video_processor import VideoProcessor

    spatial, _ = vae_scale(vae)
    pixels = VideoProcessor(vae_scale_factor=spatial).preprocess(image, height=size.height, width=size.width)
    latent = _encode(vae, pixels.unsqueeze(2), generator)
    padding = latent.new_zeros(1, latent.shape[1], latent_grid(vae, size).frames - 1, *latent.shape[3:])
    return torch.cat([latent, padding], dim=2)


def reference_latents(vae: Any, people: IdentitySet, size: VideoSize, generator: torch.Generator) -> torch.Tensor:
    """[1, C, N, h, w] raw latents: each person's parsed face on black, letterboxed, one clean frame each."""
    frames = []
    for identity in people.identities:
        # The SAT release letterboxes the float face and scales it to -1..1 (no 8-bit step).
        pixels = (letterbox(identity.primary.face_on_black, size.width, size.height) * 2 - 1).clamp(-1, 1)
        frames.append(_encode(vae, pixels.unsqueeze(2), generator))
    return torch.cat(frames, dim=2)


def identity_tokens(
    transformer: CogVideoXTransformer, style: str, identities: list[Identity], device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """[N, 32, D] perceiver tokens, one row per person: per photo, then averaged over that person's photos."""
    rows = []
    for identity in identities:
        id_cond = identity.id_cond(style).to(device, dtype)
        hidden = [h.to(device, dtype) for h in identity.vit_hidden(style)]
        rows.append(transformer.encode_faces(id_cond, hidden).mean(0, keepdim=True))
    return torch.cat(rows)


def check_people(family: Family, trained_identities: int, people: IdentitySet) -> None:
    """Identity count against what the model can do; a warning where it differs from its training."""
    count = len(people.identities)
    if count == 0:
        raise MultiIDError(f"{family.name} needs an identity: connect an Encode Identity node.")
    if family.identity_input is IdentityInput.REFERENCES:
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
        if count != trained_identities:
            log.warning(
                "This %s checkpoint was trained with %d reference(s); %d given. The release has a separate "
                "checkpoint for each count (single-identity, two-identities).",
                family.name,
                trained_identities,
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


@torch.inference_mode()
def decode(vae: Any, latents: torch.Tensor, tiled: bool = True) -> torch.Tensor:
    """[1, C, T, h, w] raw latents -> frames [T, H, W, 3] in 0..1, tiled and frame-sliced to fit small cards."""
    if tiled:
        vae.enable_tiling()
    else:
        vae.disable_tiling()
    param = next(vae.parameters())
    z = latents.to(param.device, param.dtype)
    video = vae.decode(z).sample  # [1, 3, T, H, W] in -1..1
    temporal = vae.config.temporal_compression_ratio
    if z.shape[2] % 2 == 0 and video.shape[2] == temporal * z.shape[2]:
        # The VAE upsamples an even number of latent frames to `temporal` frames each, the first latent (which
        # encodes the first frame alone) included: keep one of its copies, so the video has the 4k+1 frames
        # that were sampled (2 latent frames give 5 frames, not 8) and matches the routing map.
        video = video[:, :, temporal - 1 :]
    return (video[0].float().permute(1, 2, 3, 0) / 2 + 0.5).clamp(0, 1)
