"""Concat-ID-Wan as a native ComfyUI MODEL, so KSampler, SamplerCustom, DualCFGGuider and friends run it.

The pack's DiT (multiid_core.dit.wan) sits inside a `comfy.model_base.WAN21` (Wan 2.1 latent format,
discrete-flow sampling with the release's shift 5) under a ModelPatcher. Its state dict keys are
`diffusion_model.blocks.N...` as for ComfyUI's own Wan models, so Wan LoRAs and model patches apply.
The references and regions travel in the conditioning (see Concat-ID Wan Reference); the forward
appends the references and crops their slots, so samplers only ever see the video latents.
"""

from __future__ import annotations

import logging

import comfy.conds
import comfy.latent_formats
import comfy.ldm.modules.attention
import comfy.model_base
import comfy.model_management as mm
import comfy.model_patcher
import comfy.patcher_extension
import comfy.supported_models_base
import comfy.utils
import torch

from ..multiid_core.dit.wan import ConcatIDWan, WanConfig
from ..multiid_core.errors import MultiIDError, non_finite_message
from ..multiid_core.pipelines.concat_id_wan import SHIFT
from ..multiid_core.precision import COMPUTE_PRECISIONS, DTYPES
from ..multiid_core.step_cache import COEFFICIENTS, TeaCache

REFERENCES = "concat_id_references"  # conditioning key: raw VAE latents [1, 16, R, h, w]
REGIONS = "concat_id_regions"  # conditioning key: token regions [1, R, F, h/2, w/2]
TEACACHE = "multiid_teacache"  # transformer option: the running sample's TeaCache (see with_teacache)
TEACACHE_THRESHOLD = "multiid_teacache_threshold"  # model option set by the TeaCache node
FAST_FP8 = "fp8_e4m3fn_fast"  # fp8_e4m3fn weights, computed in fp8 where the GPU can (ComfyUI's option)
WEIGHT_DTYPES = ("default", *COMPUTE_PRECISIONS, "fp8_e4m3fn", FAST_FP8, "fp8_e5m2")
log = logging.getLogger(__name__)
_FOREIGN = {
    "time_dim_concat": "WanPhantomSubjectToVideo",
    "clip_fea": "a CLIP vision (image-to-video) node",
    "reference_latent": "a reference-latent node",
}


class ComfyConcatIDWan(ConcatIDWan):
    """The core DiT with ComfyUI's call signature, attention backend and diffusion-model wrappers."""

    def __init__(self, image_model=None, dtype=None, device=None, operations=None, **sizes) -> None:
        super().__init__(WanConfig(**sizes), operations or torch.nn, dtype=dtype, device=device)
        self.dtype = dtype

    def forward(self, x, timestep, context, transformer_options={}, **kwargs):  # noqa: B006 - ComfyUI's signature
        return comfy.patcher_extension.WrapperExecutor.new_class_executor(
            self._comfy_forward,
            self,
            comfy.patcher_extension.get_all_wrappers(
                comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, transformer_options
            ),
        ).execute(x, timestep, context, transformer_options, **kwargs)

    def _comfy_forward(self, x, timestep, context, transformer_options, **kwargs):
        foreign = [name for key, name in _FOREIGN.items() if kwargs.get(key) is not None]
        if foreign:
            raise MultiIDError(
                f"The conditioning was made by {foreign[0]}, which does not fit Concat-ID: give Concat-ID Wan "
                "Reference plain prompt conditionings (CLIP Text Encode) and sample its outputs."
            )

        def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
            return comfy.ldm.modules.attention.optimized_attention(
                q, k, v, heads, transformer_options=transformer_options
            )

        cache = transformer_options.get(TEACACHE)
        if cache is not None:
            cache.step = schedule_step(transformer_options)
        out = ConcatIDWan.forward(
            self, x, timestep, context, kwargs.get(REFERENCES), kwargs.get(REGIONS), attention=attention,
            cache=cache, branches=transformer_options.get("uuids", [0]),
        )  # fmt: skip
        if not torch.isfinite(out).all():
            steps = len(transformer_options["sample_sigmas"]) - 1
            raise MultiIDError(non_finite_message(schedule_step(transformer_options) + 1, steps))
        return out


class ConcatIDWanModel(comfy.model_base.WAN21):
    """WAN21 with our DiT: Wan 2.1 latents, flow sampling, references and regions from the conditioning."""

    def __init__(self, model_config, model_type=comfy.model_base.ModelType.FLOW, device=None) -> None:
        comfy.model_base.BaseModel.__init__(self, model_config, model_type, device=device, unet_model=ComfyConcatIDWan)
        self.image_to_video = False
        self.memory_usage_factor_conds = (REFERENCES,)

    def extra_conds(self, **kwargs):
        out = super().extra_conds(**kwargs)
        references = kwargs.get(REFERENCES)
        if references is not None:
            out[REFERENCES] = comfy.conds.CONDRegular(self.process_latent_in(references))
        regions = kwargs.get(REGIONS)
        if regions is not None:
            out[REGIONS] = comfy.conds.CONDRegular(regions)
        return out

    def extra_conds_shapes(self, **kwargs):
        references = kwargs.get(REFERENCES)
        return {} if references is None else {REFERENCES: list(references.shape)}


class ConcatIDWanConfig(comfy.supported_models_base.BASE):
    """The model config ComfyUI keeps beside the model (latent format, sampling settings, dtypes)."""

    unet_config = {"image_model": "concat_id_wan"}
    unet_extra_config = {}
    sampling_settings = {"shift": SHIFT}
    latent_format = comfy.latent_formats.Wan21
    supported_inference_dtypes = [torch.bfloat16, torch.float16, torch.float32]
    memory_usage_factor = 0.9

    def __init__(self, unet_config) -> None:
        super().__init__(unet_config)
        self.memory_usage_factor = self.unet_config.get("dim", 2000) / 2222  # as ComfyUI's WAN21_T2V

    def get_model(self, state_dict=None, prefix="", device=None) -> ConcatIDWanModel:
        return ConcatIDWanModel(self, device=device)


def concat_id_model_patcher(
    sd: dict[str, torch.Tensor], config: WanConfig, weight_dtype: str = "default"
) -> comfy.model_patcher.ModelPatcher:
    """A checked Concat-ID-Wan state dict -> MODEL, the way ComfyUI's diffusion-model loader builds one."""
    model_config = ConcatIDWanConfig({"image_model": "concat_id_wan", **config.as_dict()})
    load_device = mm.get_torch_device()
    offload_device = mm.unet_offload_device()
    if weight_dtype == "default":
        dtype = mm.unet_dtype(
            model_params=comfy.utils.calculate_parameters(sd),
            supported_dtypes=model_config.supported_inference_dtypes,
            weight_dtype=comfy.utils.weight_dtype(sd),
        )
    else:
        dtype = DTYPES["fp8_e4m3fn" if weight_dtype == FAST_FP8 else weight_dtype]
    if weight_dtype == FAST_FP8:
        model_config.optimizations["fp8"] = True
    manual_cast = mm.unet_manual_cast(dtype, load_device, model_config.supported_inference_dtypes)
    model_config.set_inference_dtype(dtype, manual_cast)
    model = model_config.get_model(device=offload_device)
    model.diffusion_model.load_state_dict(sd, strict=True)
    return comfy.model_patcher.ModelPatcher(model, load_device=load_device, offload_device=offload_device)


def schedule_step(transformer_options: dict) -> int:
    """Which step of the sampler's schedule this call belongs to (calls between two sigmas: the later step)."""
    schedule, sigma = transformer_options["sample_sigmas"], transformer_options["sigmas"]
    return int((schedule[:-1] > sigma.max().to(schedule)).sum())


def with_teacache(model: comfy.model_patcher.ModelPatcher, threshold: float) -> comfy.model_patcher.ModelPatcher:
    """A clone of a Concat-ID-Wan MODEL that runs TeaCache4Wan2.1 (the 1.3B fit) with `threshold`."""
    if not isinstance(getattr(model.model, "diffusion_model", None), ComfyConcatIDWan):
        raise MultiIDError(
            "MultiID TeaCache (Wan) works on the MODEL of Load Concat-ID Wan Model. For ConsisID, Ingredients "
            "and Concat-ID CogVideoX use MultiID Speed & Memory's teacache; for other models, ComfyUI's EasyCache."
        )
    model = model.clone()
    model.model_options["transformer_options"][TEACACHE_THRESHOLD] = threshold
    model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, TEACACHE, _fresh_teacache)
    return model


def _fresh_teacache(executor, *args, **kwargs):
    """OUTER_SAMPLE wrapper: every sampling run starts with its own cache and logs what it skipped."""
    guider = executor.class_obj
    original = guider.model_options
    guider.model_options = comfy.model_patcher.create_model_options_clone(original)
    options = guider.model_options["transformer_options"]
    sigmas = args[3]
    cache = TeaCache(options[TEACACHE_THRESHOLD], COEFFICIENTS["wan2.1-t2v-1.3b"], steps=len(sigmas) - 1)
    options[TEACACHE] = cache
    try:
        return executor(*args, **kwargs)
    finally:
        guider.model_options = original
        calls = cache.computed + cache.skipped
        log.info("TeaCache %s: the blocks ran %d of %d branch calls", cache.threshold, cache.computed, calls)
