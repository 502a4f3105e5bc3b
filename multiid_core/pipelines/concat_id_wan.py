"""Concat-ID-Wan without ComfyUI: checkpoint reading, the reference image, regions, the release's sigmas.

Loading: the released `.pt` files are full Wan2.1-T2V-1.3B state dicts (`first_stage.pt`) plus the AdaLN
reference branch (`second_stage_adaln.pt`), read with `weights_only=True`. Which one a file is comes from
its keys, never from the user; every load is strict and names what is missing or extra. The model itself
is ComfyUI's WanModel (see nodes/concat_id_wan.py); `expected_shapes` is its key table in the original
Wan layout, which is also ComfyUI's.

Reference image (`inference_wan.py` `get_face_image` + `resize_pad_crop`): the identity's 448 norm_crop
face parsed onto black (`Identity.primary.face_on_black`), fitted into the video frame with bicubic
resizing (torchvision's, antialiased), padded black around the centre, quantised to 8 bits. The authors'
inference script converts to 8 bits with `.byte()`, which wraps the bicubic overshoot at the face's
outline around (-0.01 becomes 253/255, a bright speckle); we clamp, as their training data code does.

Sampling (`WanVideoPipeline.__call__` of the release): flow matching, sigmas linspace(1, 0, steps + 1)
without the last, shifted by `shift` (5), Euler steps; the reference is appended to the latents for every
forward and its slot dropped before the step; text CFG with the reference in both branches. ComfyUI's
KSampler (euler) with the pack's `multiid_shifted_linear` scheduler takes the very same steps at any
step count; ComfyUI's `simple` scheduler only when the count divides 1000 (e.g. 50, not 30).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from ..canvas import letterbox
from ..errors import MultiIDError
from ..families import CONCAT_ID_WAN, WAN_FAMILIES, Family
from ..loading import check_keys, load_state_dict
from ..routing import INSIDE, TokenGrid, mask_coverage

log = logging.getLogger(__name__)

SOURCE = "https://huggingface.co/yongzhong/Concat-ID-Wan (first_stage.pt or second_stage_adaln.pt)"
SHIFT = 5.0
VAE_SCALE = (4, 8)  # Wan2.1 VAE: temporal, spatial compression
TOKEN_PIXELS = 16  # one DiT token covers 16x16 pixels (VAE 8 x patch 2)
_DIT_MARKER = "head.modulation"
HEAD_DIM = 128  # every Wan2.1 DiT (1.3B: 1536 / 12, 14B: 5120 / 40); heads are not in the tensors
ADALN_KEY = "time_projection_ref.1.weight"


@dataclass(frozen=True)
class WanConfig:
    """Sizes of a Wan2.1 T2V DiT (defaults: Wan2.1-T2V-1.3B) and whether it has Concat-ID's AdaLN branch."""

    dim: int = 1536
    ffn_dim: int = 8960
    num_heads: int = 12
    num_layers: int = 30
    in_dim: int = 16
    out_dim: int = 16
    text_dim: int = 4096
    freq_dim: int = 256
    patch_size: tuple[int, int, int] = (1, 2, 2)
    adaln_reference: bool = False

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, torch.Tensor]) -> WanConfig:
        """Sizes read off the tensors (heads: dim / 128, as for every Wan2.1 model)."""
        dim, in_dim, *patch = sd["patch_embedding.weight"].shape
        layers = {int(k.split(".")[1]) for k in sd if k.startswith("blocks.") and k.endswith(".self_attn.q.weight")}
        return cls(
            dim=dim,
            ffn_dim=sd["blocks.0.ffn.0.weight"].shape[0],
            num_heads=max(1, dim // HEAD_DIM),
            num_layers=max(layers) + 1,
            in_dim=in_dim,
            out_dim=sd["head.head.weight"].shape[0] // math.prod(patch),
            text_dim=sd["text_embedding.0.weight"].shape[1],
            freq_dim=sd["time_embedding.0.weight"].shape[1],
            patch_size=tuple(patch),
            adaln_reference=ADALN_KEY in sd,
        )

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def expected_shapes(config: WanConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor of a Wan2.1 T2V DiT in the original layout, plus Concat-ID's AdaLN reference branch."""
    dim, ffn = config.dim, config.ffn_dim
    shapes: dict[str, tuple[int, ...]] = {
        "patch_embedding.weight": (dim, config.in_dim, *config.patch_size),
        "patch_embedding.bias": (dim,),
        "head.head.weight": (config.out_dim * math.prod(config.patch_size), dim),
        "head.head.bias": (config.out_dim * math.prod(config.patch_size),),
        "head.modulation": (1, 2, dim),
    }
    linears = {
        "text_embedding.0": (dim, config.text_dim),
        "text_embedding.2": (dim, dim),
        "time_embedding.0": (dim, config.freq_dim),
        "time_embedding.2": (dim, dim),
        "time_projection.1": (6 * dim, dim),
    }
    if config.adaln_reference:
        linears["time_projection_ref.1"] = (6 * dim, dim)
    for i in range(config.num_layers):
        block = f"blocks.{i}"
        shapes[f"{block}.modulation"] = (1, 6, dim)
        if config.adaln_reference:
            shapes[f"{block}.modulation_ref"] = (1, 6, dim)
        for attention in ("self_attn", "cross_attn"):
            linears.update({f"{block}.{attention}.{name}": (dim, dim) for name in "qkvo"})
            shapes.update({f"{block}.{attention}.{norm}.weight": (dim,) for norm in ("norm_q", "norm_k")})
        shapes.update({f"{block}.norm3.weight": (dim,), f"{block}.norm3.bias": (dim,)})
        linears.update({f"{block}.ffn.0": (ffn, dim), f"{block}.ffn.2": (dim, ffn)})
    for name, (out, inp) in linears.items():
        shapes.update({f"{name}.weight": (out, inp), f"{name}.bias": (out,)})
    return shapes


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
