"""Loading the video models under ComfyUI's memory management."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import comfy.model_management as mm
import comfy.model_patcher
import comfy.ops
import torch
from comfy_api.latest import io

from ..multiid_core.block_swap import BlockSwapper
from ..multiid_core.errors import MultiIDError
from ..multiid_core.models import CONSISID_SNAPSHOT
from ..multiid_core.pipelines.cogvideox_loading import (
    CogVideoXModel,
    check_transformer_file,
    load_concat_id_cogvideox,
    load_snapshot,
)
from ..multiid_core.precision import COMPUTE_PRECISIONS, DTYPES
from . import model_folders, types
from .input_checks import valid_inputs
from .memory import patcher

WEIGHT_STORAGE = ("same as precision", "fp8_e4m3fn")


@dataclass
class LoadedVideoModel:
    """A family's model (core) and the ModelPatchers through which ComfyUI places its parts."""

    core: CogVideoXModel
    transformer: comfy.model_patcher.ModelPatcher
    vae: comfy.model_patcher.ModelPatcher
    _swapper: BlockSwapper | None = None
    _resident: comfy.model_patcher.ModelPatcher | None = None

    def load(self, memory_required: int = 0) -> None:
        mm.load_models_gpu([self.transformer, self.vae], memory_required=memory_required)

    def load_vae(self) -> None:
        mm.load_models_gpu([self.vae])

    @contextmanager
    def placed(self, memory_required: int, block_swap: int):
        """The model on the GPU for one video. With block swapping ComfyUI places all but the last
        `block_swap` blocks (through a ModelPatcher of its own) and reserves room for two streamed blocks."""
        transformer = self.core.transformer
        if block_swap <= 0:
            self.load(memory_required)
            yield
            return
        if self._swapper is None or len(self._swapper.swapped) != block_swap:
            self._swapper = BlockSwapper(transformer.transformer_blocks, block_swap, mm.get_torch_device())
            resident = torch.nn.ModuleList(self._swapper.resident_modules(transformer))
            self._resident = patcher(resident)
        need = memory_required + 2 * self._swapper.bytes_per_block
        mm.load_models_gpu([self._resident, self.vae], memory_required=need)
        transformer.swapper = self._swapper
        try:
            yield
        finally:
            transformer.swapper = None


def store_linear_weights_fp8(model: torch.nn.Module) -> None:
    """Halves transformer memory: Linear weights in fp8, cast to the compute dtype per call (manual_cast)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and module.weight.ndim == 2:
            module.weight.data = module.weight.data.to(torch.float8_e4m3fn)


class LoadMultiIDModel(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MultiID_LoadModel",
            display_name="Load MultiID Video Model",
            category=f"{types.CATEGORY}/loaders",
            description="Loads a released identity-video model from models/multiid: a Hugging Face snapshot "
            "folder (ConsisID-preview, Ingredients), a Concat-ID SAT checkpoint folder (Concat-ID/single-identity, "
            "Concat-ID/two-identities), or a single transformer file from models/diffusion_models. The family is "
            "detected from the checkpoint.",
            inputs=[
                io.Combo.Input(
                    "model",
                    options=list(dict.fromkeys([*model_folders.video_model_choices(), CONSISID_SNAPSHOT.path])),
                    tooltip="A snapshot folder under models/multiid (e.g. ConsisID-preview: the whole "
                    "BestWishYsh/ConsisID-preview repository; Ingredients), a Concat-ID checkpoint folder (the "
                    "ModelScope yongzhong/Concat-ID download in models/multiid/Concat-ID), or a diffusers-format "
                    "transformer .safetensors in models/diffusion_models.",
                ),
                io.Combo.Input(
                    "vae",
                    options=model_folders.vae_choices(),
                    default=model_folders.FROM_MODEL_FOLDER,
                    tooltip="The CogVideoX VAE: the snapshot's vae/ folder, or a diffusers-format CogVideoX VAE file "
                    "from models/vae (needed with a single-file transformer).",
                ),
                io.Combo.Input(
                    "precision",
                    options=list(COMPUTE_PRECISIONS),
                    default="bf16",
                    tooltip="Compute precision. bf16 is the authors' setting; fp16 is not recommended for "
                    "CogVideoX; fp32 only for checks on the CPU.",
                ),
                io.Combo.Input(
                    "weight_storage",
                    options=list(WEIGHT_STORAGE),
                    default=WEIGHT_STORAGE[0],
                    tooltip="fp8_e4m3fn stores the transformer's linear weights in 8 bits (about half the VRAM) "
                    "and computes in the chosen precision; quality drops slightly.",
                ),
            ],
            outputs=[types.MultiIDModel.Output(display_name="model")],
        )

    @classmethod
    def validate_inputs(cls, precision=None, weight_storage=None) -> bool | str:
        return valid_inputs(cls, precision=precision, weight_storage=weight_storage)

    @classmethod
    def execute(cls, model, vae, precision, weight_storage) -> io.NodeOutput:
        path = model_folders.resolve_video_model(model, CONSISID_SNAPSHOT)
        dtype = DTYPES[precision]
        vae_file = None
        if vae != model_folders.FROM_MODEL_FOLDER:
            vae_file = model_folders.folder_path("vae", vae)
        elif not path.is_dir():  # a snapshot brings vae/; a SAT checkpoint folder finds ../vae/3d-vae.pt
            check_transformer_file(path)
            raise MultiIDError(
                f"{path.name} is a single transformer file, so the VAE cannot come from its folder: choose a "
                f"CogVideoX VAE file from models/vae in the vae input."
            )
        fp8 = weight_storage == "fp8_e4m3fn"
        operations = comfy.ops.manual_cast if fp8 else comfy.ops.disable_weight_init
        offload = mm.unet_offload_device()
        if (path / "latest").is_file():
            core = load_concat_id_cogvideox(path, dtype, operations, vae_file=vae_file, device=offload)
        else:
            core = load_snapshot(
                path if path.is_dir() else path.parent,
                dtype,
                operations,
                transformer_file=None if path.is_dir() else path,
                vae_file=vae_file,
                device=offload,
            )
        if fp8:
            store_linear_weights_fp8(core.transformer)
        return io.NodeOutput(LoadedVideoModel(core, patcher(core.transformer), patcher(core.vae)))
