"""Latent-to-RGB preview factors for any CogVideoX-family VAE, fitted from one small decode of that VAE.

ComfyUI's latent previewer colours each latent pixel with a linear map (rgb = z @ factors + bias, rgb in -1..1).
Fitting that map to whichever VAE is loaded gives previews for every CogVideoX-family VAE (released, converted or
tiny) without shipping another project's constants.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

FIT_SIZE = 8  # latent pixels per side: 64 samples for the C + 1 unknowns of each colour


def latent_rgb_factors(vae: torch.nn.Module, seed: int = 0) -> tuple[list[list[float]], list[float]]:
    """(factors, bias), factors C rows of 3 and bias 3, with rgb ~ z @ factors + bias for raw VAE latents z.

    Raw means as ComfyUI's LATENT holds them: not multiplied by `scaling_factor`. One decode of a
    [1, C, 1, 8, 8] N(0, 1) latent (seeded) on the VAE's device and dtype, with tiling off (restored after);
    each decoded block of the first frame (2**(len(block_out_channels) - 1) pixels a side) is averaged to one
    colour, and the map is a float64 least-squares fit over the 64 latent pixels.
    """
    config = vae.config
    scale = 2 ** (len(config.block_out_channels) - 1)
    weight = next(vae.parameters())
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(1, config.latent_channels, 1, FIT_SIZE, FIT_SIZE, generator=generator)
    z = z.to(weight.device, weight.dtype)
    tiling = getattr(vae, "use_tiling", None)
    try:
        if tiling is not None:
            vae.use_tiling = False
        with torch.inference_mode():
            frame = vae.decode(z).sample[0, :, 0]
    finally:
        if tiling is not None:
            vae.use_tiling = tiling
    rgb = F.avg_pool2d(frame.to("cpu", torch.float64), scale).flatten(1).T  # [64, 3], latent pixels row-major
    inputs = z[0, :, 0].to("cpu", torch.float64).flatten(1).T  # [64, C]
    inputs = torch.cat([inputs, torch.ones(len(inputs), 1, dtype=torch.float64)], dim=1)
    solution = torch.linalg.lstsq(inputs, rgb).solution  # [C + 1, 3]
    return solution[:-1].tolist(), solution[-1].tolist()
