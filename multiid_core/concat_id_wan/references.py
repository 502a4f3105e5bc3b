"""Concat-ID-Wan's reference: the image the VAE encodes, and where its tokens sit in RoPE.

Reference image (`inference_wan.py` `get_face_image` + `resize_pad_crop`): the identity's 448 norm_crop
face parsed onto black (`Identity.primary.face_on_black`), fitted into the video frame with bicubic
resizing (torchvision's, antialiased), padded black around the centre, quantised to 8 bits. The authors'
inference script converts to 8 bits with `.byte()`, which wraps the bicubic overshoot at the face's
outline around (-0.01 becomes 253/255, a bright speckle); we clamp, as their training data code does.

Positions, as released (ML-GSAI/Concat-ID `freqs_ref`): video token (t, i, j) as in Wan; reference k at
temporal index F + k with width indices shifted by one frame width, (F + k, i, j + W), as if it stood to
the right of the last frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..canvas import letterbox
from ..wan.reference_tokens import frames_after_video


def token_positions(frames: int, height: int, width: int, references: int = 0) -> torch.Tensor:
    """[(frames + references) * height * width, 3] (t, h, w) RoPE indices of the joint token grid."""
    grid = frames_after_video(frames, height, width, references).reshape(frames + references, height, width, 3)
    grid[frames:, :, :, 2] += width
    return grid.reshape(-1, 3)


def reference_image(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[h, w, 3] in 0..1 -> [height, width, 3]: letterboxed, at the 8-bit levels the release encodes."""
    return torch.floor(letterbox(image, width, height).clamp(0, 1) * 255).div(255)[0].permute(1, 2, 0)


def reference_images(identities: Sequence[Any], height: int, width: int) -> torch.Tensor:
    """[R, height, width, 3]: each identity's first photo, parsed face on black, letterboxed."""
    return torch.stack([reference_image(identity.primary.face_on_black, height, width) for identity in identities])
