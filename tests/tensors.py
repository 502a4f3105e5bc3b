"""Tensor helpers shared by the test folders (plain PyTorch, no ComfyUI)."""

from __future__ import annotations

import torch


def rel_err(a, b) -> float:
    """max|a - b| / max|b|: the largest deviation relative to the reference `b`'s largest magnitude.

    Every test compared this way before it was shared; the thresholds were set against it. Tensors, arrays or
    numbers; computed in float32, or float64 when both are float64, so bf16/fp16 outputs are not rounded again
    in the subtraction (the one change: more exact, never looser).
    """
    a, b = (torch.as_tensor(x).detach() for x in (a, b))
    dtype = torch.promote_types(torch.promote_types(a.dtype, b.dtype), torch.float32)
    a, b = a.to(dtype), b.to(dtype)
    return ((a - b).abs().max() / b.abs().max()).item()


def small_masks(n: int) -> list[torch.Tensor]:
    """`n` side-by-side vertical stripes covering a 128x160 frame, one person each."""
    masks = []
    for i in range(n):
        mask = torch.zeros(1, 128, 160)
        mask[:, :, i * 160 // n : (i + 1) * 160 // n] = 1
        masks.append(mask)
    return masks
