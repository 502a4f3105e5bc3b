"""Concat-ID-Wan as a native ComfyUI MODEL, loaded the way ComfyUI loads any Wan 2.1 text-to-video model.

`concat_id_model_patcher` hands the released tensors to `comfy.sd.load_diffusion_model_state_dict`, so
detection, weight dtype (fp8 included), ops, offloading and the ModelPatcher are ComfyUI's own. It then
makes the loaded objects Concat-ID's: the `WAN21` model becomes `ConcatIDWanModel` (the references and
regions travel in the conditioning) and its `WanModel` becomes `ConcatIDWanDiT` (concat_id_wan.py), both
subclasses that add behaviour, not state; the AdaLN release's reference branch is then loaded into
the layers `ConcatIDWanDiT.adopt` adds, by assignment where ComfyUI's dynamic VRAM loads that way. The
release samples with flow shift 5 (ComfyUI's Wan default is 8), set as ModelSamplingSD3 sets a shift, so a
later ModelSamplingSD3 node still overrides it.
"""

from __future__ import annotations

import os
from typing import Any

import comfy.conds
import comfy.ldm.wan.model
import comfy.model_base
import comfy.model_patcher
import comfy.model_sampling
import comfy.sd
import torch

from ..multiid_core.errors import MultiIDError
from ..multiid_core.pipelines.concat_id_wan import SHIFT, WanConfig, expected_shapes, read_checkpoint
from ..multiid_core.precision import COMPUTE_PRECISIONS, DTYPES
from .concat_id_wan import REFERENCES, REGIONS, ConcatIDWanDiT

FAST_FP8 = "fp8_e4m3fn_fast"  # fp8_e4m3fn weights, computed in fp8 where the GPU can (ComfyUI's option)
WEIGHT_DTYPES = ("default", *COMPUTE_PRECISIONS, "fp8_e4m3fn", FAST_FP8, "fp8_e5m2")


class ConcatIDWanModel(comfy.model_base.WAN21):
    """WAN21 whose conditioning may carry Concat-ID references and regions; made by `concat_id_model_patcher`."""

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


def weight_options(weight_dtype: str) -> dict:
    """The model_options ComfyUI's Load Diffusion Model passes for the same weight_dtype choice."""
    if weight_dtype == "default":
        return {}
    options = {"dtype": DTYPES["fp8_e4m3fn" if weight_dtype == FAST_FP8 else weight_dtype]}
    if weight_dtype == FAST_FP8:
        options["fp8_optimizations"] = True
    return options


def load_concat_id_wan(
    path: str | os.PathLike, weight_dtype: str = "default", **comfy_options: Any
) -> comfy.model_patcher.ModelPatcher:
    """A released Concat-ID-Wan file -> MODEL. Also the MODEL's reload factory: newer ComfyUI calls it again
    (with `disable_dynamic=True`, which goes to its loader) when a node such as MultiGPU CFG Split needs a copy."""
    sd, config, _ = read_checkpoint(path)
    patcher = concat_id_model_patcher(sd, config, weight_dtype, str(path), **comfy_options)
    patcher.cached_patcher_init = (load_concat_id_wan, (path, weight_dtype))
    return patcher


def concat_id_model_patcher(
    sd: dict[str, torch.Tensor],
    config: WanConfig,
    weight_dtype: str = "default",
    name: str = "the file",
    **comfy_options: Any,
) -> comfy.model_patcher.ModelPatcher:
    """A checked Concat-ID-Wan state dict (original Wan layout) -> MODEL, through ComfyUI's own loader."""
    plain = {k: v for k, v in sd.items() if not _reference_branch(k)}
    reference_branch = {k: v for k, v in sd.items() if _reference_branch(k)}
    patcher = comfy.sd.load_diffusion_model_state_dict(
        plain, model_options=weight_options(weight_dtype), **comfy_options
    )
    model = getattr(patcher, "model", None)
    if type(model) is not comfy.model_base.WAN21 or type(model.diffusion_model) is not comfy.ldm.wan.model.WanModel:
        found = "nothing" if model is None else f"{type(model).__name__}({type(model.diffusion_model).__name__})"
        raise MultiIDError(
            f"ComfyUI did not load {name} as a Wan 2.1 text-to-video model (it built {found}); this ComfyUI may "
            "be too old or too new for the pack: see docs/compatibility.md, and update ComfyUI and the pack."
        )
    model.__class__ = ConcatIDWanModel
    model.memory_usage_factor_conds = (REFERENCES,)
    dit = ConcatIDWanDiT.adopt(model.diffusion_model, config.adaln_reference)
    if reference_branch:  # adopted like the rest: in place where ComfyUI's dynamic VRAM loads that way
        dynamic = getattr(patcher, "is_dynamic", lambda: False)()
        _, unexpected = torch.nn.Module.load_state_dict(dit, reference_branch, strict=False, assign=dynamic)
        if unexpected:
            raise MultiIDError(f"{name}: the reference branch has tensors the model lacks ({unexpected[:3]}).")
    kept = {k: tuple(v.shape) for k, v in dit.state_dict().items()}
    lost = sorted(k for k, shape in expected_shapes(config).items() if kept.get(k) != shape)
    if lost:
        raise MultiIDError(
            f"ComfyUI's Wan model has no place for {len(lost)} tensors of {name} (e.g. {', '.join(lost[:3])}); "
            "this ComfyUI may be too new for the pack: see docs/compatibility.md, and update the pack."
        )
    patcher.add_object_patch("model_sampling", release_model_sampling(model))
    return patcher


def _reference_branch(key: str) -> bool:
    return key.startswith("time_projection_ref.") or key.endswith(".modulation_ref")


def release_model_sampling(model: comfy.model_base.BaseModel) -> comfy.model_sampling.ModelSamplingDiscreteFlow:
    """Flow-matching sampling with the release's shift of 5, built as ComfyUI's ModelSamplingSD3 builds one."""

    class ReleaseFlow(comfy.model_sampling.ModelSamplingDiscreteFlow, comfy.model_sampling.CONST):
        pass

    sampling = ReleaseFlow(model.model_config)
    sampling.set_parameters(shift=SHIFT)
    return sampling
