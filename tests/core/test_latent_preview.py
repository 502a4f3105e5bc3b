"""Preview factors fitted from one decode: exact on a linear VAE, predictive on the tiny CogVideoX VAE."""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from multiid_core.latent_preview import latent_rgb_factors
from multiid_tools.tiny_models.cogvideox import tiny_vae


class LinearVAE(torch.nn.Module):
    """A VAE whose decode colours each latent pixel's 8x8 block z @ weight + bias: the previewer's model, exactly.

    Its scaling_factor is not 1, so a fit of scaled latents would not recover the weights; it records whether
    tiling was on at each decode.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        self.weight, self.bias = torch.nn.Parameter(weight), torch.nn.Parameter(bias)
        channels = len(weight)
        self.config = SimpleNamespace(
            latent_channels=channels, block_out_channels=(4,) * 4, temporal_compression_ratio=4, scaling_factor=0.5
        )
        self.use_tiling = True
        self.tiling_at_decode: list[bool] = []

    def decode(self, z: torch.Tensor) -> SimpleNamespace:
        self.tiling_at_decode.append(self.use_tiling)
        rgb = torch.einsum("bcthw,cr->brthw", z, self.weight) + self.bias[:, None, None, None]
        return SimpleNamespace(sample=rgb.repeat_interleave(8, dim=3).repeat_interleave(8, dim=4))


def test_a_linear_vae_is_recovered_exactly_from_raw_latents_with_tiling_off_then_restored():
    generator = torch.Generator().manual_seed(3)
    weight, bias = torch.randn(16, 3, generator=generator) * 0.2, torch.randn(3, generator=generator) * 0.1
    vae = LinearVAE(weight, bias).double()
    factors, offsets = latent_rgb_factors(vae)
    assert torch.allclose(torch.tensor(factors, dtype=torch.float64), weight.double(), atol=1e-5)
    assert torch.allclose(torch.tensor(offsets, dtype=torch.float64), bias.double(), atol=1e-5)
    assert vae.tiling_at_decode == [False] and vae.use_tiling


def block_colours(vae: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
    """[latent pixels, 3]: the decode of `z`'s first frame, each 8x8 block averaged."""
    with torch.inference_mode():
        frame = vae.decode(z).sample[0, :, 0]
    return F.avg_pool2d(frame.double(), 8).flatten(1).T


def test_the_tiny_cogvideox_vae_fit_predicts_a_held_out_decode_and_keeps_tiling_as_it_was():
    vae = tiny_vae()
    vae.enable_tiling()
    tiles = (vae.tile_latent_min_height, vae.tile_latent_min_width)
    factors, offsets = latent_rgb_factors(vae)
    assert vae.use_tiling and (vae.tile_latent_min_height, vae.tile_latent_min_width) == tiles
    vae.disable_tiling()
    assert latent_rgb_factors(vae) == (factors, offsets) and not vae.use_tiling
    assert len(factors) == 16 and all(len(row) == 3 for row in factors) and len(offsets) == 3
    assert all(math.isfinite(x) for x in [*sum(factors, []), *offsets])

    z = torch.randn(1, 16, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    rgb = block_colours(vae, z)
    predicted = z[0, :, 0].double().flatten(1).T @ torch.tensor(factors, dtype=torch.float64)
    predicted += torch.tensor(offsets, dtype=torch.float64)
    residual, total = (rgb - predicted).pow(2).mean().item(), (rgb - rgb.mean(0)).pow(2).mean().item()
    print(f"held-out decode: residual variance {residual:.4g}, total {total:.4g}")
    assert residual < total
