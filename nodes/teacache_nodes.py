"""TeaCache nodes: MODEL patches that skip the transformer at steps whose input barely changed."""

from __future__ import annotations

from comfy_api.latest import io

from ..multiid_core.step_cache import CONSISID_THRESHOLDS, WAN_THRESHOLDS
from . import types
from .cogvideox_model import CogVideoXDiT
from .concat_id_wan import ConcatIDWanDiT
from .input_checks import valid_inputs
from .teacache import LOADERS, NODES, with_teacache


def teacache_schema(node_id: str, family: type, models: str, fit: str, thresholds: tuple, settings: str) -> io.Schema:
    """The schema both TeaCache nodes share: a MODEL of `family` and one of the authors' thresholds."""
    return io.Schema(
        node_id=node_id,
        display_name=NODES[family],
        category=f"{types.CATEGORY}/sampling",
        description=f"Faster {models} sampling: skips the transformer blocks at steps whose input barely changed "
        f"and reuses their last change ({fit}). Changes the result slightly; the first and last steps always run.",
        inputs=[
            io.Model.Input("model", tooltip=f"The MODEL from {LOADERS[family]}."),
            io.Combo.Input(
                "threshold",
                options=[str(t) for t in thresholds],
                default=str(thresholds[0]),
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
            "MultiID_WanTeaCache", ConcatIDWanDiT, "Concat-ID Wan",
            "TeaCache4Wan2.1, the authors' fit for Wan2.1-T2V-1.3B", WAN_THRESHOLDS,
            "The authors' settings for Wan2.1-T2V-1.3B at 50 steps: 0.05 ~1.5x, 0.07 ~1.6x, 0.08 ~2.0x faster (A800).",
        )  # fmt: skip

    @classmethod
    def validate_inputs(cls, model=None, threshold=None) -> bool | str:
        return valid_inputs(cls, model=model, threshold=threshold)

    @classmethod
    def execute(cls, model, threshold) -> io.NodeOutput:
        return io.NodeOutput(with_teacache(model, float(threshold), ConcatIDWanDiT))


class CogVideoXTeaCache(io.ComfyNode):
    """TeaCache for ConsisID, Ingredients and Concat-ID CogVideoX, as a MODEL patch."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return teacache_schema(
            "MultiID_CogVideoXTeaCache", CogVideoXDiT, "ConsisID, Ingredients and Concat-ID (CogVideoX)",
            "TeaCache4ConsisID, the authors' fit for CogVideoX-5B", CONSISID_THRESHOLDS,
            "The authors' ConsisID settings at 50 steps: 0.1 ~1.6x, 0.15 ~2.1x, 0.2 ~2.7x faster (H100).",
        )  # fmt: skip

    @classmethod
    def validate_inputs(cls, model=None, threshold=None) -> bool | str:
        return valid_inputs(cls, model=model, threshold=threshold)

    @classmethod
    def execute(cls, model, threshold) -> io.NodeOutput:
        return io.NodeOutput(with_teacache(model, float(threshold), CogVideoXDiT))
