"""How a video is computed: caching, attention kernel, guidance batching, block swapping, compilation."""

from __future__ import annotations

from dataclasses import dataclass

from comfy_api.latest import io

from ..multiid_core.pipelines.cogvideox_sampling import ATTENTION, SpeedOptions
from ..multiid_core.step_cache import CONSISID_THRESHOLDS, WAN_THRESHOLDS
from . import types
from .input_checks import valid_inputs
from .wan_model import with_teacache

TEACACHE = ("off", *(str(t) for t in CONSISID_THRESHOLDS))
CFG_BATCHING = ("auto", "batched", "sequential")


@dataclass(frozen=True)
class SpeedChoice:
    """The node's choices: the core options plus what ComfyUI-side placement needs."""

    options: SpeedOptions
    cfg_batching: str  # "auto" lets free VRAM decide
    block_swap: int


class SpeedAndMemory(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MultiID_SpeedAndMemory",
            display_name="MultiID Speed & Memory",
            category=f"{types.CATEGORY}/sampling",
            description="Optional settings for MultiID Sampler: faster sampling (TeaCache, SageAttention, "
            "torch.compile) and less VRAM (sequential guidance, block swapping). Only TeaCache changes the result.",
            inputs=[
                io.Combo.Input(
                    "teacache",
                    options=list(TEACACHE),
                    default="off",
                    tooltip="Skip the transformer at steps whose input barely changed, reusing the last change "
                    "(TeaCache, the authors' ConsisID settings: 0.1 ~1.6x, 0.15 ~2.1x, 0.2 ~2.7x faster on an H100). "
                    "Higher is faster and less faithful; the first and last steps always run.",
                ),
                io.Combo.Input(
                    "attention",
                    options=list(ATTENTION),
                    default="sdpa",
                    tooltip="sdpa: PyTorch's fused attention (default). sage: SageAttention (pip install "
                    "sageattention; NVIDIA GPUs), faster, with tiny numerical differences.",
                ),
                io.Combo.Input(
                    "cfg_batching",
                    options=list(CFG_BATCHING),
                    default="auto",
                    tooltip="batched: prompt and negative prompt in one pass (fastest). sequential: one after the "
                    "other, half the activation memory, same result. auto: batched when it fits in free VRAM.",
                ),
                io.Int.Input(
                    "block_swap",
                    default=0,
                    min=0,
                    max=64,
                    tooltip="Transformer blocks kept in system RAM and streamed to the GPU one ahead while sampling "
                    "(CogVideoX-5B has 42 blocks of ~0.28 GB in bf16). About 20 fits the 5B models in 12 GB. "
                    "0 keeps the whole model on the GPU.",
                ),
                io.Boolean.Input(
                    "compile",
                    default=False,
                    tooltip="torch.compile the transformer blocks: faster steps after a one-time compile of a few "
                    "minutes (needs a working Triton/C++ toolchain).",
                ),
            ],
            outputs=[types.SpeedOptions.Output(display_name="speed")],
        )

    @classmethod
    def validate_inputs(cls, teacache=None, attention=None, cfg_batching=None) -> bool | str:
        return valid_inputs(cls, teacache=teacache, attention=attention, cfg_batching=cfg_batching)

    @classmethod
    def execute(cls, teacache, attention, cfg_batching, block_swap, compile) -> io.NodeOutput:
        options = SpeedOptions(
            teacache=0.0 if teacache == "off" else float(teacache),
            attention=attention,
            cfg_batching="sequential" if cfg_batching == "sequential" else "batched",
            compile=compile,
        )
        return io.NodeOutput(SpeedChoice(options, cfg_batching, block_swap))


class WanTeaCache(io.ComfyNode):
    """TeaCache for Concat-ID Wan, as a MODEL patch, so KSampler and the custom samplers use it."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MultiID_WanTeaCache",
            display_name="MultiID TeaCache (Wan)",
            category=f"{types.CATEGORY}/sampling",
            description="Faster Concat-ID Wan sampling: skips the transformer blocks at steps whose input barely "
            "changed and reuses their last change (TeaCache4Wan2.1, the authors' fit for Wan2.1-T2V-1.3B). "
            "Changes the result slightly; the first and last steps always run.",
            inputs=[
                io.Model.Input("model", tooltip="The MODEL from Load Concat-ID Wan Model."),
                io.Combo.Input(
                    "threshold",
                    options=[str(t) for t in WAN_THRESHOLDS],
                    default=str(WAN_THRESHOLDS[0]),
                    tooltip="How much change may pile up before the blocks run again. The authors' settings "
                    "for Wan2.1-T2V-1.3B at 50 steps: 0.05 ~1.5x, 0.07 ~1.6x, 0.08 ~2.0x faster (A800). "
                    "Higher is faster and less faithful.",
                ),
            ],
            outputs=[io.Model.Output(display_name="model")],
        )

    @classmethod
    def validate_inputs(cls, model=None, threshold=None) -> bool | str:
        return valid_inputs(cls, model=model, threshold=threshold)

    @classmethod
    def execute(cls, model, threshold) -> io.NodeOutput:
        return io.NodeOutput(with_teacache(model, float(threshold)))
