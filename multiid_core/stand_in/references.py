"""Where Stand-In's reference tokens sit in RoPE (`pipelines/wan_video.py` `model_fn_wan_video`).

The authors' RoPE tables start at position -1, and the face block goes to temporal position -1, its rows and
columns just past the video's token grid: face token (i, j) at (-1, H + i, W + j), H x W the video's token grid,
as if the face stood diagonally beyond the frame's bottom-right corner, one step before the first frame. With
several faces (the `dev/multi` branch) face k is shifted by k face heights along both axes:
(-1, H + k h + i, W + k h + j).
"""

from __future__ import annotations

import torch


def token_positions(video: tuple[int, int, int], references: tuple[int, int, int]) -> torch.Tensor:
    """[F H W + R h w, 3] (t, h, w) RoPE positions of the video tokens, then of each face's tokens; `video` is the
    token grid (frames, height, width), `references` (faces, height, width)."""
    frames, height, width = video
    faces, face_h, face_w = references
    t, i, j = torch.meshgrid(torch.arange(frames), torch.arange(height), torch.arange(width), indexing="ij")
    grid = [torch.stack([t, i, j], -1).reshape(-1, 3)]
    rows, cols = torch.meshgrid(torch.arange(face_h), torch.arange(face_w), indexing="ij")
    for k in range(faces):
        offset = k * face_h
        face = torch.stack([torch.full_like(rows, -1), height + offset + rows, width + offset + cols], -1)
        grid.append(face.reshape(-1, 3))
    return torch.cat(grid)
