"""The release schedules for KSampler, at any step count.

`multiid_trailing` (the CogVideoX family): diffusers' "trailing" timesteps 999, 999 - 1000/n, ... read from
the model's discrete sigma table; ComfyUI's `simple` picks the same ones only when n divides 1000.

Concat-ID-Wan (DiffSynth's FlowMatchScheduler) steps through t = 1, 1 - 1/n, ..., 1/n, then 0, each
shifted. ComfyUI's `simple` picks the same values from its 1000-entry table only when n divides 1000
(50 does, 30 does not); this scheduler computes them for every n, through the model's own
`percent_to_sigma`, so it fits any model (for flow models: time_snr_shift(shift, 1 - i/n)).
"""

from __future__ import annotations

import comfy.samplers
import torch

from ..multiid_core.cogvideox.schedule import trailing_timesteps

LINEAR_TIME = "multiid_linear_time"
TRAILING = "multiid_trailing"


def linear_time_sigmas(model_sampling, steps: int) -> torch.Tensor:
    """steps + 1 sigmas: the model's sigma at the fractions 0, 1/n, ... (n-1)/n of its schedule, then 0."""
    sigmas = [float(model_sampling.percent_to_sigma(i / steps)) for i in range(steps)]
    return torch.tensor([*sigmas, 0.0], dtype=torch.float32)


def trailing_sigmas(model_sampling, steps: int) -> torch.Tensor:
    """steps + 1 sigmas: the discrete table's sigmas at diffusers' trailing timesteps, then 0."""
    table = model_sampling.sigmas
    timesteps = trailing_timesteps(steps, len(table))
    return torch.cat([table[timesteps].float().cpu(), torch.zeros(1)])


def register_schedulers() -> None:
    """Offer the schedulers in KSampler, BasicScheduler and every node that lists ComfyUI's schedulers."""
    for name, function in ((LINEAR_TIME, linear_time_sigmas), (TRAILING, trailing_sigmas)):
        if name not in comfy.samplers.SCHEDULER_HANDLERS:
            comfy.samplers.SCHEDULER_HANDLERS[name] = comfy.samplers.SchedulerHandler(function)
        if name not in comfy.samplers.SCHEDULER_NAMES:
            comfy.samplers.SCHEDULER_NAMES.append(name)
