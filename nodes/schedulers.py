"""The release schedule for KSampler: sigmas linear in the model's time, at any step count.

Concat-ID-Wan (DiffSynth's FlowMatchScheduler) steps through t = 1, 1 - 1/n, ..., 1/n, then 0, each
shifted. ComfyUI's `simple` picks the same values from its 1000-entry table only when n divides 1000
(50 does, 30 does not); this scheduler computes them for every n, through the model's own
`percent_to_sigma`, so it fits any model (for flow models: time_snr_shift(shift, 1 - i/n)).
"""

from __future__ import annotations

import comfy.samplers
import torch

LINEAR_TIME = "multiid_linear_time"


def linear_time_sigmas(model_sampling, steps: int) -> torch.Tensor:
    """steps + 1 sigmas: the model's sigma at the fractions 0, 1/n, ... (n-1)/n of its schedule, then 0."""
    sigmas = [float(model_sampling.percent_to_sigma(i / steps)) for i in range(steps)]
    return torch.tensor([*sigmas, 0.0], dtype=torch.float32)


def register_schedulers() -> None:
    """Offer the scheduler in KSampler, BasicScheduler and every node that lists ComfyUI's schedulers."""
    if LINEAR_TIME not in comfy.samplers.SCHEDULER_HANDLERS:
        comfy.samplers.SCHEDULER_HANDLERS[LINEAR_TIME] = comfy.samplers.SchedulerHandler(linear_time_sigmas)
    if LINEAR_TIME not in comfy.samplers.SCHEDULER_NAMES:
        comfy.samplers.SCHEDULER_NAMES.append(LINEAR_TIME)
