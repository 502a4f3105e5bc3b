"""The first frame several identities share: their faces on one white picture.

Ingredients' release builds it for two people: a white 720x480 picture with each aligned 512 crop
resized (bicubic) to 360x360 and pasted at x = 0 and 360, y = 60. `canvas_for_faces` generalises that to
N faces in a row at any video size (identical to the release for two faces at 720x480), or places each
face in its own box when the user painted where people go.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from .errors import MultiIDError


def row_boxes(count: int, width: int, height: int) -> list[tuple[int, int, int]]:
    """(x, y, side) of `count` square faces in one row; for 2 faces at 720x480 the release's boxes."""
    cell = width / count
    side = int(min(cell, 0.75 * height))
    return [(int(i * cell + (cell - side) / 2), int((height - side) / 2), side) for i in range(count)]


def box_in_mask(mask: torch.Tensor, width: int, height: int) -> tuple[int, int, int]:
    """The largest square centred in the bounding box of a mask's first painted frame, in video pixels.

    A person whose mask is empty in the first frame (they walk in later) is placed where they first appear.
    """
    frames = mask.reshape(-1, *mask.shape[-2:]).float()
    painted = [f for f in frames if f.max() > 0]
    if not painted:
        raise MultiIDError("A mask is empty (all black): paint where this person should appear.")
    frame = torch.nn.functional.interpolate(painted[0][None, None], size=(height, width), mode="bilinear")[0, 0]
    ys, xs = torch.nonzero(frame >= 0.5, as_tuple=True)
    if len(ys) == 0:
        ys, xs = torch.nonzero(frame > 0, as_tuple=True)
    if len(ys) == 0:  # painted less than a video pixel: the painted mask pixels, scaled to video pixels
        ys, xs = torch.nonzero(painted[0] > 0, as_tuple=True)
        ys = (ys * height // painted[0].shape[0]).clamp(max=height - 1)
        xs = (xs * width // painted[0].shape[1]).clamp(max=width - 1)
    top, bottom, left, right = ys.min().item(), ys.max().item() + 1, xs.min().item(), xs.max().item() + 1
    side = min(bottom - top, right - left)
    return left + (right - left - side) // 2, top + (bottom - top - side) // 2, side


def canvas_for_faces(
    faces: list[torch.Tensor], width: int, height: int, masks: list[torch.Tensor] | None = None
) -> Image.Image:
    """faces: [512, 512, 3] crops in 0..1 -> the white first-frame picture (uint8, as the release feeds it)."""
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    boxes = [box_in_mask(m, width, height) for m in masks] if masks else row_boxes(len(faces), width, height)
    for face, (x, y, side) in zip(faces, boxes):
        crop = Image.fromarray((face.numpy() * 255).astype(np.uint8))
        canvas.paste(crop.resize((side, side), Image.BICUBIC), (x, y))
    # The release passes the canvas through float32 [0, 1] and back with truncation; so do we.
    as_float = torch.from_numpy(np.array(canvas)).float() / 255.0
    return Image.fromarray((as_float.numpy() * 255).astype(np.uint8))


def letterbox(image: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """[h, w, 3] in 0..1 -> [1, 3, height, width]: fitted whole, black around, centred (values unclamped).

    Concat-ID's `resize_pad_crop` (both releases): bicubic resize (antialiased, as torchvision resizes
    tensors) so the image fits the frame, zero padding split evenly (the extra pixel at the bottom/right),
    then a centre crop.
    """
    if image.ndim != 3 or image.shape[-1] < 3:
        raise MultiIDError(f"Expected an image [height, width, 3], got {tuple(image.shape)}.")
    chw = image[..., :3].permute(2, 0, 1)[None].float()
    h, w = chw.shape[-2:]
    size = (height, int(w * height / h)) if h / w >= height / width else (int(h * width / w), width)
    chw = torch.nn.functional.interpolate(chw, size=size, mode="bicubic", align_corners=False, antialias=True)
    dh, dw = max(height - size[0], 0), max(width - size[1], 0)
    chw = torch.nn.functional.pad(chw, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2), value=0.0)
    top, left = (chw.shape[-2] - height) // 2, (chw.shape[-1] - width) // 2
    return chw[..., top : top + height, left : left + width]
