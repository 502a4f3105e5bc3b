"""A random-weight `parsing_bisenet.pth` in facexlib's key format, for comparing against facexlib."""

from __future__ import annotations

import math
import os

import torch

from multiid_core.faces.parsing import BiSeNet


def write_random_face_parser(path: str | os.PathLike, seed: int = 0) -> None:
    """Saves a full-size BiSeNet state dict drawn from `seed` (He-initialised convs, plausible BN stats).

    Full size because BiSeNet's widths are fixed; the RNG is a private generator so the file does not
    depend on, or disturb, the global torch seed.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        shapes = {k: (v.shape, v.dtype) for k, v in BiSeNet().state_dict().items()}

    def uniform(shape: torch.Size, low: float, high: float) -> torch.Tensor:
        return torch.rand(shape, generator=gen) * (high - low) + low

    sd = {}
    for key, (shape, dtype) in shapes.items():
        if key.endswith("num_batches_tracked"):
            sd[key] = torch.zeros(shape, dtype=dtype)
        elif key.endswith("running_mean"):
            sd[key] = torch.randn(shape, generator=gen) * 0.1
        elif key.endswith("running_var"):
            sd[key] = uniform(shape, 0.5, 2.0)
        elif len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            sd[key] = torch.randn(shape, generator=gen) * math.sqrt(2.0 / fan_in)
        elif key.endswith("weight"):
            sd[key] = uniform(shape, 0.5, 1.5)
        else:
            sd[key] = torch.randn(shape, generator=gen) * 0.1
    torch.save(sd, path)
