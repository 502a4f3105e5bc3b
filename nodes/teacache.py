"""TeaCache as a MODEL patch, for Concat-ID-Wan and the CogVideoX family, so any ComfyUI sampler uses it."""

from __future__ import annotations

import logging

import comfy.model_patcher
import comfy.patcher_extension

from ..multiid_core.errors import MultiIDError
from ..multiid_core.step_cache import COEFFICIENTS, TeaCache
from .cogvideox_model import CogVideoXDiT
from .concat_id_wan import TEACACHE, ConcatIDWanDiT

SETTINGS = "multiid_teacache_settings"  # transformer option set by the TeaCache nodes: (threshold, fit)
log = logging.getLogger(__name__)

# The authors' fits: TeaCache4Wan2.1 (Wan2.1-T2V-1.3B) and TeaCache4ConsisID (all CogVideoX-5B fine-tunes here).
FITS = {ConcatIDWanDiT: "wan2.1-t2v-1.3b", CogVideoXDiT: "consisid"}
NODES = {ConcatIDWanDiT: "MultiID TeaCache (Wan)", CogVideoXDiT: "MultiID TeaCache (CogVideoX)"}
LOADERS = {ConcatIDWanDiT: "Load Concat-ID Wan Model", CogVideoXDiT: "Load MultiID Video Model"}


def with_teacache(
    model: comfy.model_patcher.ModelPatcher, threshold: float, family: type
) -> comfy.model_patcher.ModelPatcher:
    """A clone of a MODEL of `family` (ConcatIDWanDiT or CogVideoXDiT) that runs TeaCache with `threshold`."""
    dit = getattr(model.model, "diffusion_model", None)
    if not isinstance(dit, family):
        other = next((k for k in FITS if k is not family and isinstance(dit, k)), None)
        advice = f"this MODEL takes {NODES[other]}" if other else "for other models use ComfyUI's EasyCache"
        raise MultiIDError(f"{NODES[family]} works on the MODEL of {LOADERS[family]}; {advice}.")
    model = model.clone()
    model.model_options["transformer_options"][SETTINGS] = (threshold, FITS[family])
    model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, TEACACHE, _fresh_teacache)
    return model


def _fresh_teacache(executor, *args, **kwargs):
    """OUTER_SAMPLE wrapper: every sampling run starts with its own cache and logs what it skipped."""
    guider = executor.class_obj
    original = guider.model_options
    guider.model_options = comfy.model_patcher.create_model_options_clone(original)
    options = guider.model_options["transformer_options"]
    threshold, fit = options[SETTINGS]
    cache = TeaCache(threshold, COEFFICIENTS[fit], steps=len(args[3]) - 1)
    options[TEACACHE] = cache
    try:
        return executor(*args, **kwargs)
    finally:
        guider.model_options = original
        calls = cache.computed + cache.skipped
        log.info("TeaCache %s: the blocks ran %d of %d branch calls", cache.threshold, cache.computed, calls)
