"""Loading the CogVideoX family: a ComfyUI MODEL and the video VAE.

The VAE stays a MultiID output (MULTIID_VIDEO_VAE), not a ComfyUI VAE: ComfyUI 0.3.75 has no CogVideoX VAE
to wrap, and the authors' first-frame encode samples from the caller's generator, which ComfyUI's VAE
cannot. The LATENT holds raw VAE latents in ComfyUI's [B, C, T, h, w] layout, as ComfyUI's own VAEs do.
"""

from __future__ import annotations

from dataclasses import dataclass

import comfy.model_management as mm
import comfy.model_patcher
import comfy.ops
import torch
from comfy_api.latest import io

from ...multiid_core.catalog import CONSISID_SNAPSHOT
from ...multiid_core.cogvideox.checkpoint import (
    CogVideoXModel,
    check_transformer_file,
    load_concat_id_cogvideox,
    load_snapshot,
)
from ...multiid_core.cogvideox.inputs import decode, vae_scale
from ...multiid_core.errors import MultiIDError
from ...multiid_core.latent_preview import latent_rgb_factors
from ...multiid_core.precision import COMPUTE_PRECISIONS, DTYPES
from .. import model_folders, types
from ..input_checks import valid_inputs
from ..memory import patcher
from .model import CogVideoXLatent, MultiIDCogVideoX, model_patcher

WEIGHT_STORAGE = ("same as precision", "fp8_e4m3fn")


@dataclass
class VideoVAE:
    """A CogVideoX VAE (diffusers) and the ModelPatcher through which ComfyUI places it."""

    vae: torch.nn.Module
    patcher: comfy.model_patcher.ModelPatcher

    @property
    def scale(self) -> tuple[int, int]:
        return vae_scale(self.vae)

    def load(self) -> None:
        mm.load_models_gpu([self.patcher])

    def decode(self, latents: torch.Tensor, tiled: bool) -> torch.Tensor:
        self.load()
        return decode(self.vae, latents, tiled=tiled)


def video_model(core: CogVideoXModel) -> tuple[comfy.model_patcher.ModelPatcher, VideoVAE]:
    """A loaded family's transformer as a MODEL (with its schedule, latent scale and previews), and its VAE."""
    factors, bias = latent_rgb_factors(core.vae)
    latent_format = CogVideoXLatent(float(core.vae.config.scaling_factor), factors, bias)
    model = MultiIDCogVideoX(
        core.transformer, core.family, core.scheduler_config, latent_format, core.dtype, core.identities_trained
    )
    return model_patcher(model), VideoVAE(core.vae, patcher(core.vae))


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
            outputs=[
                io.Model.Output(
                    display_name="model",
                    tooltip="For MultiID Sampler, or MultiID Identity Conditioning + KSampler (sampler cogvideox_dpm "
                    "or cogvideox_ddim, scheduler multiid_trailing); LoRA loaders and model patches apply.",
                ),
                types.VideoVAE.Output(
                    display_name="vae", tooltip="For MultiID Identity Conditioning and MultiID Decode."
                ),
            ],
        )

    @classmethod
    def validate_inputs(cls, precision=None, weight_storage=None) -> bool | str:
        return valid_inputs(cls, precision=precision, weight_storage=weight_storage)

    @classmethod
    def execute(cls, model, vae, precision, weight_storage) -> io.NodeOutput:
        return io.NodeOutput(*load_video_model(model, vae, precision, weight_storage))


def load_video_model(
    model: str, vae: str, precision: str, weight_storage: str
) -> tuple[comfy.model_patcher.ModelPatcher, VideoVAE]:
    """The loader's choices -> (MODEL, VAE). The MODEL keeps the call as its reload factory, which newer
    ComfyUI uses (MultiGPU nodes) to build a second copy of the weights."""
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
    model_patcher, video_vae = video_model(core)
    model_patcher.cached_patcher_init = (reload_model, (model, vae, precision, weight_storage))
    return model_patcher, video_vae


def reload_model(model: str, vae: str, precision: str, weight_storage: str, **comfy_options):
    """The MODEL's reload factory; ComfyUI's options (disable_dynamic) do not apply to the pack's loader."""
    return load_video_model(model, vae, precision, weight_storage)[0]
