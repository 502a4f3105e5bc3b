"""The ComfyUI side of a Wan reference method: its BaseModel (references and regions travel in the conditioning)
and loading a Wan 2.1 DiT the way ComfyUI loads any, so detection, weight dtype (fp8 included), ops, offloading
and the ModelPatcher are ComfyUI's own."""

from __future__ import annotations

from typing import Any

import comfy.conds
import comfy.ldm.wan.model
import comfy.model_base
import comfy.model_patcher
import comfy.model_sampling
import comfy.sd
import torch

from ...multiid_core.errors import MultiIDError
from ...multiid_core.precision import COMPUTE_PRECISIONS, DTYPES
from .. import family_tags
from .reference_dit import WanReferenceDiT

FAST_FP8 = "fp8_e4m3fn_fast"  # fp8_e4m3fn weights, computed in fp8 where the GPU can (ComfyUI's option)
WEIGHT_DTYPES = ("default", *COMPUTE_PRECISIONS, "fp8_e4m3fn", FAST_FP8, "fp8_e5m2")


class WanReferenceModel(comfy.model_base.WAN21):
    """WAN21 whose conditioning may carry a reference method's references and regions (the keys its diffusion
    model names); made by `adopt_wan_model`."""

    diffusion_model: WanReferenceDiT

    def extra_conds(self, **kwargs):
        dit = self.diffusion_model
        family_tags.refuse_other_family(kwargs, dit.family_tag, dit.loader.value)
        out = super().extra_conds(**kwargs)
        references = kwargs.get(dit.references_key)
        if references is not None:
            out[dit.references_key] = comfy.conds.CONDRegular(self.process_latent_in(references))
        regions = kwargs.get(dit.regions_key)
        if regions is not None:
            out[dit.regions_key] = comfy.conds.CONDRegular(regions)
        return out

    def extra_conds_shapes(self, **kwargs):
        references = kwargs.get(self.diffusion_model.references_key)
        return {} if references is None else {self.diffusion_model.references_key: list(references.shape)}


# Mirrors nodes.UNETLoader.load_unet (ComfyUI 0.3.75).
def weight_options(weight_dtype: str) -> dict:
    """The model_options ComfyUI's Load Diffusion Model passes for the same weight_dtype choice."""
    if weight_dtype == "default":
        return {}
    options = {"dtype": DTYPES["fp8_e4m3fn" if weight_dtype == FAST_FP8 else weight_dtype]}
    if weight_dtype == FAST_FP8:
        options["fp8_optimizations"] = True
    return options


def load_wan_model(
    sd: dict[str, torch.Tensor], weight_dtype: str, name: str, **comfy_options: Any
) -> comfy.model_patcher.ModelPatcher:
    """A Wan 2.1 text-to-video state dict (original layout) -> ComfyUI's own MODEL, checked to be one."""
    patcher = comfy.sd.load_diffusion_model_state_dict(sd, model_options=weight_options(weight_dtype), **comfy_options)
    model = getattr(patcher, "model", None)
    if type(model) is not comfy.model_base.WAN21 or type(model.diffusion_model) is not comfy.ldm.wan.model.WanModel:
        found = "nothing" if model is None else f"{type(model).__name__}({type(model.diffusion_model).__name__})"
        raise MultiIDError(
            f"ComfyUI did not load {name} as a Wan 2.1 text-to-video model (it built {found}); this ComfyUI may "
            "be too old or too new for the pack: see docs/compatibility.md, and update ComfyUI and the pack."
        )
    return patcher


def adopt_wan_model(
    patcher: comfy.model_patcher.ModelPatcher, model_class: type[WanReferenceModel], dit: WanReferenceDiT
) -> None:
    """Make the MODEL's WAN21 a `model_class` around the adopted `dit` (classes change, state does not)."""
    model = patcher.model
    model.__class__ = model_class
    model.memory_usage_factor_conds = (dit.references_key,)


# Mirrors comfy_extras.nodes_model_advanced.ModelSamplingSD3.patch (ComfyUI 0.3.75).
def flow_shift_sampling(
    model: comfy.model_base.BaseModel, shift: float
) -> comfy.model_sampling.ModelSamplingDiscreteFlow:
    """Flow-matching sampling with `shift`, built as ComfyUI's ModelSamplingSD3 builds one, so a later
    ModelSamplingSD3 node still overrides it."""

    class ShiftedFlow(comfy.model_sampling.ModelSamplingDiscreteFlow, comfy.model_sampling.CONST):
        pass

    sampling = ShiftedFlow(model.model_config)
    sampling.set_parameters(shift=shift)
    return sampling
