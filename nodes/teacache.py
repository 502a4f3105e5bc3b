"""TeaCache as a MODEL patch, so any ComfyUI sampler uses it: the nodes, and the wrapper that gives every run
its own cache. Which fit a MODEL takes is the family's answer (its diffusion model's `teacache`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import comfy.model_patcher
import comfy.patcher_extension
from comfy_api.latest import io

from ..multiid_core.errors import MultiIDError
from ..multiid_core.teacache import COEFFICIENTS, CONSISID_THRESHOLDS, WAN_14B_THRESHOLDS, WAN_THRESHOLDS, TeaCache
from . import types
from .input_checks import valid_inputs
from .options import TEACACHE, TEACACHE_SETTINGS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TeaCacheFit:
    """The authors' TeaCache fit for a base model, and the node that applies it."""

    coefficients: str  # key of multiid_core.teacache.COEFFICIENTS
    thresholds: tuple[float, ...]  # the published settings
    node: str  # display name of the TeaCache node
    models: str  # the MODELs it takes, for messages and tooltips


WAN_1_3B = TeaCacheFit("wan2.1-t2v-1.3b", WAN_THRESHOLDS, "MultiID TeaCache (Wan)", "Load Concat-ID Wan Model")
WAN_14B = TeaCacheFit("wan2.1-t2v-14b", WAN_14B_THRESHOLDS, "MultiID TeaCache (Wan)", "Apply Stand-In")
COGVIDEOX_5B = TeaCacheFit("consisid", CONSISID_THRESHOLDS, "MultiID TeaCache (CogVideoX)", "Load MultiID Video Model")
WAN_FITS = (WAN_1_3B, WAN_14B)
COGVIDEOX_FITS = (COGVIDEOX_5B,)


def with_teacache(
    model: comfy.model_patcher.ModelPatcher, threshold: float, fits: tuple[TeaCacheFit, ...]
) -> comfy.model_patcher.ModelPatcher:
    """A clone of a MODEL whose family takes one of `fits` (one node's), that runs TeaCache with `threshold`."""
    own: TeaCacheFit | None = getattr(getattr(model.model, "diffusion_model", None), "teacache", None)
    if own not in fits:
        advice = f"this MODEL takes {own.node}" if own else "for other models use ComfyUI's EasyCache"
        models = " or ".join(dict.fromkeys(fit.models for fit in fits))
        raise MultiIDError(f"{fits[0].node} works on the MODEL of {models}; {advice}.")
    model = model.clone()
    model.model_options["transformer_options"][TEACACHE_SETTINGS] = (threshold, own.coefficients)
    model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, TEACACHE, _fresh_teacache)
    return model


def _fresh_teacache(executor, *args, **kwargs):
    """OUTER_SAMPLE wrapper: every sampling run starts with its own cache and logs what it skipped."""
    guider = executor.class_obj
    original = guider.model_options
    guider.model_options = comfy.model_patcher.create_model_options_clone(original)
    options = guider.model_options["transformer_options"]
    threshold, coefficients = options[TEACACHE_SETTINGS]
    cache = TeaCache(threshold, COEFFICIENTS[coefficients], steps=len(args[3]) - 1)
    options[TEACACHE] = cache
    try:
        return executor(*args, **kwargs)
    finally:
        guider.model_options = original
        calls = cache.computed + cache.skipped
        log.info("TeaCache %s: the blocks ran %d of %d branch calls", cache.threshold, cache.computed, calls)


def teacache_schema(node_id: str, fits: tuple[TeaCacheFit, ...], models: str, source: str, settings: str) -> io.Schema:
    """The schema both TeaCache nodes share: a MODEL that takes one of `fits` and one of the authors' thresholds."""
    thresholds = [str(t) for fit in fits for t in fit.thresholds]
    return io.Schema(
        node_id=node_id,
        display_name=fits[0].node,
        category=f"{types.CATEGORY}/sampling",
        description=f"Faster {models} sampling: skips the transformer blocks at steps whose input barely changed "
        f"and reuses their last change ({source}). Changes the result slightly; the first and last steps always run.",
        inputs=[
            io.Model.Input("model", tooltip="The MODEL from " + " or ".join(fit.models for fit in fits) + "."),
            io.Combo.Input(
                "threshold",
                options=list(dict.fromkeys(thresholds)),
                default=thresholds[0],
                tooltip=f"How much change may pile up before the blocks run again. {settings} Higher is faster and "
                "less faithful.",
            ),
        ],
        outputs=[io.Model.Output(display_name="model")],
    )


class WanTeaCache(io.ComfyNode):
    """TeaCache for Concat-ID Wan, as a MODEL patch, so KSampler and the custom samplers use it."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return teacache_schema(
            "MultiID_WanTeaCache", WAN_FITS, "Concat-ID Wan and Stand-In",
            "TeaCache4Wan2.1, the authors' fits for Wan2.1-T2V-1.3B and -14B, chosen by the MODEL",
            "The authors' settings for Wan2.1-T2V-1.3B at 50 steps: 0.05 ~1.5x, 0.07 ~1.6x, 0.08 ~2.0x faster (A800); "
            "for the 14B models (Stand-In): 0.14, 0.15, 0.2.",
        )  # fmt: skip

    @classmethod
    def validate_inputs(cls, model=None, threshold=None) -> bool | str:
        return valid_inputs(cls, model=model, threshold=threshold)

    @classmethod
    def execute(cls, model, threshold) -> io.NodeOutput:
        return io.NodeOutput(with_teacache(model, float(threshold), WAN_FITS))


class CogVideoXTeaCache(io.ComfyNode):
    """TeaCache for ConsisID, Ingredients and Concat-ID CogVideoX, as a MODEL patch."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return teacache_schema(
            "MultiID_CogVideoXTeaCache", COGVIDEOX_FITS, "ConsisID, Ingredients and Concat-ID (CogVideoX)",
            "TeaCache4ConsisID, the authors' fit for CogVideoX-5B",
            "The authors' ConsisID settings at 50 steps: 0.1 ~1.6x, 0.15 ~2.1x, 0.2 ~2.7x faster (H100).",
        )  # fmt: skip

    @classmethod
    def validate_inputs(cls, model=None, threshold=None) -> bool | str:
        return valid_inputs(cls, model=model, threshold=threshold)

    @classmethod
    def execute(cls, model, threshold) -> io.NodeOutput:
        return io.NodeOutput(with_teacache(model, float(threshold), COGVIDEOX_FITS))


NODES = [CogVideoXTeaCache, WanTeaCache]
