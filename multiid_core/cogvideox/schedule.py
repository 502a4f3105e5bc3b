"""CogVideoX's noise schedule and the authors' two solvers, as arithmetic on cumulative alphas.

The CogVideoX family samples with diffusers' `CogVideoXDPMScheduler` (stochastic DPM-Solver++ 2M that keeps
the previous x0) or `CogVideoXDDIMScheduler`. Both are written here as single steps on the variance-preserving
sample, so ComfyUI samplers can run them on a MODEL; the loop lives in ComfyUI. Two release quirks are kept
because the weights were tuned with them: a step lands `train_steps // steps` timesteps lower (one off the next
listed timestep when `steps` does not divide 1000), and the last step targets alpha 1 (`set_alpha_to_one`).
Alphas are 0-dim tensors in diffusers' dtypes (float64 for CogVideoX's scaled-linear betas), multiplied into the
samples as scalars, as in diffusers, so the results match its schedulers to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

from ..errors import MultiIDError


def alphas_cumprod(config: Mapping[str, Any]) -> torch.Tensor:
    """[num_train_timesteps] cumulative alphas of a `scheduler_config.json` (snr shift, zero-terminal SNR), in
    diffusers' dtypes (float64 for scaled_linear, float32 for linear)."""
    steps = int(config.get("num_train_timesteps", 1000))
    start, end = float(config.get("beta_start", 0.00085)), float(config.get("beta_end", 0.012))
    schedule = config.get("beta_schedule", "scaled_linear")
    if schedule == "scaled_linear":  # float64, as diffusers' CogVideoX schedulers compute it
        betas = torch.linspace(start**0.5, end**0.5, steps, dtype=torch.float64) ** 2
    elif schedule == "linear":
        betas = torch.linspace(start, end, steps, dtype=torch.float32)
    else:
        raise MultiIDError(
            f"scheduler_config.json has beta_schedule {schedule!r}; CogVideoX models use 'scaled_linear' (or "
            f"'linear'). Restore the snapshot's scheduler/scheduler_config.json."
        )
    alphas = torch.cumprod(1.0 - betas, dim=0)
    shift = float(config.get("snr_shift_scale", 1.0))
    alphas = alphas / (shift + (1 - shift) * alphas)
    if config.get("rescale_betas_zero_snr", False):
        root = alphas.sqrt()
        first, last = root[0].clone(), root[-1].clone()
        root = (root - last) * (first / (first - last))
        alphas = root**2
    return alphas


def final_alpha(config: Mapping[str, Any], alphas: torch.Tensor) -> torch.Tensor:
    """The alpha the last step lands on: 1 (a clean sample) with `set_alpha_to_one`, else the first alpha."""
    return torch.tensor(1.0, dtype=alphas.dtype) if config.get("set_alpha_to_one", True) else alphas[0]


def trailing_timesteps(steps: int, train_steps: int = 1000) -> list[int]:
    """diffusers' "trailing" spacing: train_steps - 1 first, then evenly down (999, 979, ..., 19 for 50 steps)."""
    ratio = train_steps / steps
    return [int(t) - 1 for t in torch.arange(train_steps, 0, -ratio, dtype=torch.float64).round().tolist()]


def target_timestep(timestep: int, next_timestep: int, steps: int, train_steps: int = 1000) -> int:
    """Where a step from `timestep` lands (negative: past the end, alpha = final_alpha).

    On the release's schedule, `train_steps // steps` lower, as diffusers steps (it can differ by one from the
    next listed timestep). On any other schedule (a partial denoise, other sigmas) on `next_timestep`, the
    timestep the next model call is made at (-1 after the last step)."""
    release = timestep - train_steps // steps
    return release if abs(release - next_timestep) <= 1 else next_timestep


def v_to_x0(sample: torch.Tensor, v: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """The clean-sample estimate of a v-prediction (exact at alpha 0, where the sample is pure noise)."""
    return alpha**0.5 * sample - (1 - alpha) ** 0.5 * v


def ddim_step(sample: torch.Tensor, x0: torch.Tensor, alpha: torch.Tensor, alpha_next: torch.Tensor) -> torch.Tensor:
    """Deterministic DDIM (eta 0) from noise level `alpha` to `alpha_next`."""
    keep = ((1 - alpha_next) / (1 - alpha)) ** 0.5
    return keep * sample + (alpha_next**0.5 - alpha**0.5 * keep) * x0


def dpm_step(
    sample: torch.Tensor,
    x0: torch.Tensor,
    previous_x0: torch.Tensor | None,
    alpha: torch.Tensor,
    alpha_next: torch.Tensor,
    alpha_back: torch.Tensor | None,
    noise: Callable[[], torch.Tensor],
) -> torch.Tensor:
    """One CogVideoX DPM step. First order without `previous_x0` (first step, or `alpha_back` None), else second
    order on x0 and the previous x0. `noise()` is drawn once, and a second time for a second-order step, as the
    release draws them (the first draw then goes unused)."""

    def log_snr(a: torch.Tensor) -> torch.Tensor:
        return ((a / (1 - a)) ** 0.5).log()

    h = log_snr(alpha_next) - log_snr(alpha)
    keep = ((1 - alpha_next) / (1 - alpha)) ** 0.5 * (-h).exp()
    toward = (-2 * h).expm1() * alpha_next**0.5
    spread = (1 - alpha_next) ** 0.5 * (1 - (-2 * h).exp()) ** 0.5
    first = keep * sample - toward * x0 + spread * noise()
    if previous_x0 is None or alpha_back is None:
        return first
    r = (log_snr(alpha) - log_snr(alpha_back)) / h
    blended = (1 + 1 / (2 * r)) * x0 - 1 / (2 * r) * previous_x0
    return keep * sample - toward * blended + spread * noise()


def dynamic_guidance(cfg: float, timestep: float, steps: int) -> float:
    """CogVideoX's cosine schedule: guidance grows from 1 to 1 + cfg as the timestep falls."""
    return 1 + cfg * ((1 - math.cos(math.pi * ((steps - timestep) / steps) ** 5.0)) / 2)
