"""CogVideoX's schedule and the steps of its two solvers against diffusers' schedulers, on random tensors."""

import pytest
import torch
from tensors import rel_err

from multiid_core.cogvideox.checkpoint import RELEASED_SCHEDULER_CONFIG
from multiid_core.cogvideox.schedule import (
    alphas_cumprod,
    ddim_step,
    dpm_step,
    target_timestep,
    trailing_timesteps,
    v_to_x0,
)
from multiid_core.errors import MultiIDError

diffusers = pytest.importorskip("diffusers")
CONFIGS = {  # CogVideoX-5B (the releases here) and CogVideoX-2B (snr shift 3)
    "5b": RELEASED_SCHEDULER_CONFIG,
    "2b": {**RELEASED_SCHEDULER_CONFIG, "snr_shift_scale": 3.0},
}


@pytest.mark.parametrize("name", CONFIGS)
def test_alphas_equal_diffusers_and_end_at_zero(name):
    theirs = diffusers.CogVideoXDPMScheduler.from_config(CONFIGS[name]).alphas_cumprod
    ours = alphas_cumprod(CONFIGS[name])
    assert torch.equal(ours, theirs)
    assert ours[-1] == 0 and ours[0] > 0.99


def test_unknown_beta_schedule_is_refused():
    with pytest.raises(MultiIDError, match="beta_schedule 'squaredcos_cap_v2'"):
        alphas_cumprod({**RELEASED_SCHEDULER_CONFIG, "beta_schedule": "squaredcos_cap_v2"})


@pytest.mark.parametrize("steps", [1, 7, 30, 49, 50, 1000])
def test_trailing_timesteps_and_the_release_landing(steps):
    scheduler = diffusers.CogVideoXDPMScheduler.from_config(RELEASED_SCHEDULER_CONFIG)
    scheduler.set_timesteps(steps)
    listed = scheduler.timesteps.tolist()
    assert trailing_timesteps(steps) == listed
    for t, following in zip(listed, [*listed[1:], -1]):
        assert target_timestep(t, following, steps) == t - 1000 // steps  # diffusers' prev_timestep


def test_a_partial_schedule_lands_on_its_next_timestep():
    """Half a 100-step schedule sampled as 50 steps (KSampler's denoise 0.5): not 20 lower, 10 lower."""
    tail = trailing_timesteps(100)[50:]
    for t, following in zip(tail, [*tail[1:], -1]):
        assert target_timestep(t, following, len(tail)) == following


@pytest.mark.parametrize("name", CONFIGS)
def test_ddim_step_equals_diffusers(name):
    scheduler = diffusers.CogVideoXDDIMScheduler.from_config(CONFIGS[name])
    scheduler.set_timesteps(30)
    alphas = alphas_cumprod(CONFIGS[name])
    g = torch.Generator().manual_seed(0)
    timesteps = scheduler.timesteps.tolist()
    for i, t in enumerate(timesteps):
        sample, v = torch.randn(2, 3, 4, 5, generator=g), torch.randn(2, 3, 4, 5, generator=g)
        theirs = scheduler.step(v, t, sample, return_dict=False)[0]
        target = target_timestep(t, timesteps[i + 1] if i + 1 < len(timesteps) else -1, 30)
        alpha_next = alphas[target] if target >= 0 else torch.tensor(1.0, dtype=alphas.dtype)
        ours = ddim_step(sample, v_to_x0(sample, v, alphas[t]), alphas[t], alpha_next)
        assert rel_err(ours, theirs) < 1e-6, i


@pytest.mark.parametrize("name", CONFIGS)
def test_dpm_step_equals_diffusers_with_its_noise_draws(name):
    scheduler = diffusers.CogVideoXDPMScheduler.from_config(CONFIGS[name])
    steps = 30
    scheduler.set_timesteps(steps)
    alphas = alphas_cumprod(CONFIGS[name])
    timesteps = scheduler.timesteps.tolist()
    g = torch.Generator().manual_seed(0)
    theirs_noise, ours_noise = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    previous, previous_x0 = None, None
    for i, t in enumerate(timesteps):
        sample, v = torch.randn(2, 3, 4, 5, generator=g), torch.randn(2, 3, 4, 5, generator=g)
        back = timesteps[i - 1] if i else None
        theirs, their_x0 = scheduler.step(v, previous, t, back, sample, generator=theirs_noise, return_dict=False)
        target = target_timestep(t, timesteps[i + 1] if i + 1 < steps else -1, steps)
        alpha_next = alphas[target] if target >= 0 else torch.tensor(1.0, dtype=alphas.dtype)
        x0 = v_to_x0(sample, v, alphas[t])
        ours = dpm_step(
            sample, x0, None if target < 0 else previous_x0, alphas[t], alpha_next,
            None if back is None else alphas[back], lambda shape=sample.shape: torch.randn(shape, generator=ours_noise),
        )  # fmt: skip
        assert rel_err(x0, their_x0) < 1e-6 and rel_err(ours, theirs) < 1e-6, i
        previous, previous_x0 = their_x0, x0
