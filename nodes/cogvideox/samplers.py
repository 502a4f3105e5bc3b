"""The authors' samplers for the CogVideoX family as ComfyUI samplers, and dynamic CFG as a guider.

`cogvideox_dpm` (diffusers' CogVideoXDPMScheduler, the authors' default: stochastic, second order on the
previous x0) and `cogvideox_ddim` (CogVideoXDDIMScheduler) join KSampler's and KSamplerSelect's lists. They
step on the variance-preserving sample with the model's own alphas (`CogVideoXSampling`), so with the
`multiid_trailing` scheduler (or `simple` at 50 steps) they give diffusers' latents. Their noise comes from a
CPU generator seeded with the sampler's seed, drawn in the authors' [B, T, C, h, w] order; MultiID Sampler
passes the generator that already drew the VAE sample and the initial noise, as the authors' pipeline does.
"""

from __future__ import annotations

from collections.abc import Callable

import comfy.k_diffusion.sampling
import comfy.model_management as mm
import comfy.samplers
import torch
from comfy_api.latest import io

from ...multiid_core.cogvideox.schedule import ddim_step, dpm_step, dynamic_guidance, target_timestep
from ...multiid_core.errors import MultiIDError
from ...multiid_core.families import COGVIDEOX_5B_DEFAULTS as PAPER
from .. import types
from ..input_checks import valid_inputs
from .model import CogVideoXSampling

DPM = "cogvideox_dpm"
DDIM = "cogvideox_ddim"


def authors_noise(shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    """Normal noise for [B, C, T, h, w] latents, drawn as the authors draw it for [B, T, C, h, w]."""
    b, c, t, h, w = shape
    return torch.randn((b, t, c, h, w), generator=generator, dtype=torch.float32).movedim(2, 1)


def _schedule(model) -> CogVideoXSampling:
    sampling = model.inner_model.model_patcher.get_model_object("model_sampling")
    if not isinstance(sampling, CogVideoXSampling):
        raise MultiIDError(
            "cogvideox_dpm and cogvideox_ddim sample CogVideoX-family models (Load MultiID Video Model); for "
            "this model choose another sampler, e.g. dpmpp_2m or euler."
        )
    return sampling


def _run(model, x, sigmas, extra_args, callback, step: Callable) -> torch.Tensor:
    """The loop both samplers share: model calls in ComfyUI's sigma space, steps on the VP sample."""
    sampling = _schedule(model)
    extra_args = extra_args or {}
    steps = len(sigmas) - 1
    s_in = x.new_ones([x.shape[0]])
    sample = x / (sigmas[0] ** 2 + 1) ** 0.5
    state: dict = {}
    for i in range(steps):
        mm.throw_exception_if_processing_interrupted()
        sigma = sigmas[i]
        noisy = sample * (sigma**2 + 1) ** 0.5
        x0 = model(noisy, sigma * s_in, **extra_args)
        if callback is not None:
            callback({"x": noisy, "i": i, "sigma": sigma, "sigma_hat": sigma, "denoised": x0})
        timestep, next_timestep = (
            -1 if s == 0 else int(sampling.timestep(s.reshape(1)).item()) for s in (sigma, sigmas[i + 1])
        )
        target = target_timestep(timestep, next_timestep, steps, sampling.num_timesteps)
        alpha = sampling.alphas[timestep]  # CPU scalars, in diffusers' dtype
        alpha_next = sampling.alphas[target] if target >= 0 else sampling.final_alpha
        sample = step(sample, x0, alpha, alpha_next, timestep, target < 0, state, sampling)
    return sample * (sigmas[-1] ** 2 + 1) ** 0.5


@torch.no_grad()
def sample_cogvideox_dpm(model, x, sigmas, extra_args=None, callback=None, disable=None, generator=None):
    """CogVideoX DPM: the first and last steps first order, the others second order, noise at every step."""
    if generator is None:
        generator = torch.Generator("cpu").manual_seed((extra_args or {}).get("seed") or 0)

    def step(sample, x0, alpha, alpha_next, timestep, last, state, sampling):
        back = state.get("timestep")
        previous = None if last else state.get("x0")  # the last step is first order, as released
        alpha_back = None if back is None else sampling.alphas[back]
        state.update(x0=x0, timestep=timestep)
        return dpm_step(
            sample, x0, previous, alpha, alpha_next, alpha_back,
            lambda: authors_noise(sample.shape, generator).to(sample),
        )  # fmt: skip

    return _run(model, x, sigmas, extra_args, callback, step)


@torch.no_grad()
def sample_cogvideox_ddim(model, x, sigmas, extra_args=None, callback=None, disable=None):
    """CogVideoX DDIM: deterministic given the initial noise."""

    def step(sample, x0, alpha, alpha_next, timestep, last, state, sampling):
        return ddim_step(sample, x0, alpha, alpha_next)

    return _run(model, x, sigmas, extra_args, callback, step)


def register_samplers() -> None:
    """Offer both in KSampler, KSamplerSelect and every node that lists ComfyUI's samplers."""
    for name, function in ((DPM, sample_cogvideox_dpm), (DDIM, sample_cogvideox_ddim)):
        setattr(comfy.k_diffusion.sampling, f"sample_{name}", function)
        for names in (comfy.samplers.KSAMPLER_NAMES, comfy.samplers.SAMPLER_NAMES):
            if name not in names:
                names.append(name)


class DynamicCFGGuider(comfy.samplers.CFGGuider):
    """CFG whose scale follows CogVideoX's cosine schedule in the timestep (1 at the start, 1 + cfg at the end).

    Both branches run at every step, as in the authors' pipeline, even where the scale passes through 1.
    """

    def set_cfg(self, cfg: float) -> None:
        self.cfg = cfg
        self.base_cfg = cfg

    def predict_noise(self, x, timestep, model_options=None, seed=None):
        model_options = model_options or {}
        sampling = self.model_patcher.get_model_object("model_sampling")
        schedule = model_options.get("transformer_options", {}).get("sample_sigmas")
        steps = len(schedule) - 1 if schedule is not None else 1
        t = float(sampling.timestep(timestep[:1]).item())
        scale = dynamic_guidance(self.base_cfg, t, steps)
        options = {**model_options, "disable_cfg1_optimization": True}
        negative, positive = self.conds.get("negative"), self.conds.get("positive")
        return comfy.samplers.sampling_function(
            self.inner_model, x, timestep, negative, positive, scale, model_options=options, seed=seed
        )


class DynamicCFG(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MultiID_DynamicCFGGuider",
            display_name="MultiID Dynamic CFG Guider",
            category=f"{types.CATEGORY}/sampling",
            description="CogVideoX's dynamic guidance for SamplerCustomAdvanced: the scale rises from 1 to 1 + cfg "
            "along a cosine in the timestep, both branches at every step, as the authors' use_dynamic_cfg.",
            inputs=[
                io.Model.Input("model", tooltip="A CogVideoX-family MODEL (Load MultiID Video Model)."),
                io.Conditioning.Input("positive", tooltip="From MultiID Identity Conditioning."),
                io.Conditioning.Input("negative", tooltip="From MultiID Identity Conditioning."),
                io.Float.Input(
                    "cfg", default=PAPER.cfg, min=0.0, max=30.0, step=0.1, round=0.01,
                    tooltip="The scale the schedule rises towards (plus 1); 1 or less turns guidance off.",
                ),
            ],
            outputs=[io.Guider.Output(display_name="guider")],
        )  # fmt: skip

    @classmethod
    def validate_inputs(cls, model=None, positive=None, negative=None, cfg=None) -> bool | str:
        return valid_inputs(cls, model=model, positive=positive, negative=negative, cfg=cfg)

    @classmethod
    def execute(cls, model, positive, negative, cfg) -> io.NodeOutput:
        guider = (DynamicCFGGuider if cfg > 1 else comfy.samplers.CFGGuider)(model)
        guider.set_conds(positive, negative)
        guider.set_cfg(cfg if cfg > 1 else 1.0)
        return io.NodeOutput(guider)
