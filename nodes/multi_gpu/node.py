"""MultiID Multi-GPU: one video's sampling on several GPUs, on this machine or a Ray cluster."""

from __future__ import annotations

from comfy_api.latest import io

from .. import types
from ..input_checks import valid_inputs
from .engine import MultiGPUSettings, parallel_model

DEFAULTS = MultiGPUSettings()


class MultiGPU(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MultiID_MultiGPU",
            display_name="MultiID Multi-GPU",
            category=f"{types.CATEGORY}/sampling",
            description="Runs the model on several GPUs (Ray actors joined by torch.distributed): guidance parallel "
            "puts the prompt and negative branches on different GPUs, Ulysses splits the video tokens across GPUs. "
            "The output is sampled as usual (MultiID Sampler, KSampler); the latents are those of one GPU. Needs "
            "the pack's [multigpu] extra (Ray).",
            inputs=[
                io.Model.Input(
                    "model",
                    tooltip="From Load MultiID Video Model (ConsisID, Ingredients, Concat-ID), Load Concat-ID Wan "
                    "Model, MultiID Placed References (Phantom) or Apply Stand-In; LoRA loaders may sit between. Each "
                    "GPU loads its own copy.",
                ),
                io.Int.Input(
                    "world_size",
                    default=DEFAULTS.world_size,
                    min=1,
                    max=64,
                    tooltip="GPUs (ranks) for one video: 2 = guidance parallel; 4 = guidance 2 x Ulysses 2; without "
                    "guidance parallel all of them split the tokens.",
                ),
                io.Boolean.Input(
                    "guidance_parallel",
                    default=DEFAULTS.guidance_parallel,
                    tooltip="Prompt and negative branches on different GPUs (halves the ranks Ulysses gets). Off for "
                    "cfg 1, where there is no negative branch.",
                ),
                io.Int.Input(
                    "ulysses_degree",
                    default=DEFAULTS.ulysses_degree,
                    min=0,
                    max=64,
                    tooltip="Ranks sharing each branch's video tokens (all-to-all around attention); 0 = world size / "
                    "(2 with guidance parallel) / ring degree. Must divide the attention heads (CogVideoX-5B 48, "
                    "Wan 1.3B 12, Wan 14B 40).",
                ),
                io.String.Input(
                    "ray_address",
                    default=DEFAULTS.ray_address,
                    tooltip="Empty: start Ray on this machine. 'auto': the Ray cluster this machine joined (`ray "
                    "start`). host:port (or ray://host:10001): a cluster's head; every machine needs the models at "
                    "the same paths.",
                ),
                io.String.Input(
                    "devices",
                    default=DEFAULTS.devices,
                    tooltip="Empty: any free GPUs Ray finds. '0,1': these GPUs of this machine (local Ray only). "
                    "'cpu': CPU ranks, slow, for checking a setup.",
                ),
                io.Int.Input(
                    "ring_degree",
                    default=DEFAULTS.ring_degree,
                    min=1,
                    max=64,
                    tooltip="Groups of Ulysses ranks that pass keys and values around a ring (xDiT's USP): for more "
                    "ranks than the heads allow, or slow links between machines. The video tokens must split into "
                    "equal parts (49x480x720: 17550 tokens, so 2, 3, 5 or 6). 1 = Ulysses only.",
                ),
            ],
            outputs=[
                io.Model.Output(
                    tooltip="The same model, sampled on the GPUs: connect to MultiID Sampler, or MultiID Identity "
                    "Conditioning + KSampler / SamplerCustomAdvanced."
                )
            ],
        )

    @classmethod
    def validate_inputs(cls, model=None) -> bool | str:
        return valid_inputs(cls, model=model)

    @classmethod
    def execute(
        cls, model, world_size, guidance_parallel, ulysses_degree, ray_address, devices, ring_degree=1
    ) -> io.NodeOutput:
        settings = MultiGPUSettings(world_size, guidance_parallel, ulysses_degree, ray_address, devices, ring_degree)
        return io.NodeOutput(parallel_model(model, settings))
