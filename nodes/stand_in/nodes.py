"""Apply Stand-In: the authors' identity adapter on the Wan 14B MODEL a user already runs.

Load Diffusion Model (Wan2.1-T2V-14B, or each Wan2.2-T2V-A14B expert) -> LoRA loaders, if any -> Apply Stand-In
(adapter, Wan 2.1 VAE, the person from Encode Identity, or several placed by ID Router) -> KSampler /
SamplerCustomAdvanced (two KSamplerAdvanced for the Wan2.2 experts), with CLIP Text Encode prompts from Load UMT5
Text Encoder or ComfyUI's Load CLIP.
"""

from __future__ import annotations

import logging
from pathlib import Path

import comfy.model_management as mm
import comfy.model_patcher
import folder_paths
import torch
from comfy_api.latest import io, ui

from ...multiid_core.catalog import WAN21_VAE
from ...multiid_core.errors import MultiIDError
from ...multiid_core.families import STAND_IN_DEFAULTS as PAPER
from ...multiid_core.routing import identity_set
from ...multiid_core.stand_in.adapter import StandInAdapter
from ...multiid_core.stand_in.checkpoint import SOURCE, read_adapter
from ...multiid_core.stand_in.files import WAN21 as ADAPTER_WAN21
from .. import model_folders, types
from ..input_checks import valid_inputs
from .model import StandInFaces, apply_stand_in

log = logging.getLogger(__name__)

ADAPTER_SUFFIXES = (".ckpt", ".safetensors", ".pt", ".pth")
ADAPTER_FOLDER = "Stand-In"


def adapter_choices() -> dict[str, Path]:
    """Adapter files in models/multiid/Stand-In/ (the authors' repository downloaded there), and files with
    'stand' and 'in' in their name in models/loras (repackaged ones)."""
    found: dict[str, Path] = {}
    for folder in model_folders.snapshots():
        if folder.name.lower() == ADAPTER_FOLDER.lower():
            for file in sorted(folder.iterdir()):
                if file.is_file() and file.suffix in ADAPTER_SUFFIXES:
                    found[f"{folder.name}/{file.name}"] = file
    for name in folder_paths.get_filename_list("loras"):
        lowered = Path(name).name.lower().replace("-", "").replace("_", "")
        if "standin" in lowered and name.endswith(ADAPTER_SUFFIXES):
            found.setdefault(f"loras/{name}", Path(folder_paths.get_full_path("loras", name)))
    return found


def resolve_adapter(label: str) -> Path:
    found = adapter_choices()
    if label in found:
        return found[label]
    raise MultiIDError(
        f"The Stand-In adapter '{label}' was not found. Put the authors' files in ComfyUI/models/multiid/Stand-In/ "
        f"(`huggingface-cli download BowenXue/Stand-In --local-dir ComfyUI/models/multiid/Stand-In`; folders "
        f"searched: {model_folders.searched('multiid')}), from {SOURCE}. Then refresh the node (press R)."
    )


def face_latents(vae, faces: torch.Tensor) -> torch.Tensor:
    """Raw Wan VAE latents [1, 16, faces, 64, 64] of the 512x512 faces [faces, 512, 512, 3], one frame each."""
    latents = torch.cat([vae.encode(faces[i : i + 1]) for i in range(faces.shape[0])], dim=2)
    if latents.ndim != 5 or latents.shape[1] != 16:
        raise MultiIDError(
            f"This VAE gives latents of shape {tuple(latents.shape)} for an image; Stand-In needs the Wan 2.1 VAE (16 "
            f"channels, also the Wan2.2-T2V-A14B experts'): load {WAN21_VAE.path} with Load VAE."
        )
    return latents


class ApplyStandIn(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MultiID_ApplyStandIn",
            display_name="Apply Stand-In",
            category=f"{types.CATEGORY}/loaders",
            description="Stand-In (WeChatCV/Stand-In) on a Wan 14B MODEL from Load Diffusion Model: each person's "
            "face, prepared as the authors do (512x512, background white) and VAE-encoded, joins the video's "
            "self-attention through the adapter, in both guidance branches as the authors run it. LoRA loaders may "
            f"sit before or after. Sample with KSampler (the authors: {PAPER.steps} steps, cfg {PAPER.cfg:g}, euler, "
            f"simple, {PAPER.frames} frames at {PAPER.width}x{PAPER.height}; flow shift 5 is set here); for "
            "Wan2.2-T2V-A14B apply the _high adapter to the high-noise expert and the _low one to "
            "the low-noise expert, and sample them with two KSamplerAdvanced.",
            inputs=[
                io.Model.Input(
                    "model",
                    tooltip="Wan2.1-T2V-14B (or a Wan2.2-T2V-A14B expert) from Load Diffusion Model, bf16 or fp8, "
                    "LoRAs included.",
                ),
                io.Combo.Input(
                    "adapter",
                    options=list(dict.fromkeys([*adapter_choices(), ADAPTER_WAN21.path])),
                    tooltip="The Stand-In adapter for this model, from models/multiid/Stand-In/ (the BowenXue/Stand-In "
                    "repository downloaded there): Stand-In_wan2.1_T2V_14B_ver1.0.ckpt for Wan2.1-T2V-14B; for "
                    "Wan2.2-T2V-A14B the _high file on the high-noise expert and the _low file on the low-noise one.",
                ),
                io.Vae.Input("vae", tooltip="The Wan 2.1 VAE (Load VAE with wan_2.1_vae.safetensors)."),
                io.MultiType.Input(
                    "identity",
                    types=[types.Identity, types.Identities],
                    tooltip="One person (Encode Identity; the first photo is used) or several (ID Router: each face is "
                    "its own reference; with masks, each placed where its mask is).",
                ),
                io.Boolean.Input(
                    "regional_attention",
                    default=True,
                    tooltip="With masks from ID Router: video tokens inside person k's mask see person k's face and no "
                    "other, tokens outside every mask see none (a person without a mask is seen everywhere). "
                    "Off, or without masks: every video token sees every face, as the authors' multi-face branch.",
                ),
            ],
            outputs=[
                io.Model.Output(display_name="model", tooltip="The same model with Stand-In, for the samplers."),
                io.Image.Output(display_name="faces", tooltip="The 512x512 faces the VAE encoded, one per person."),
            ],
        )

    @classmethod
    def validate_inputs(cls, model=None, vae=None, identity=None) -> bool | str:
        return valid_inputs(cls, model=model, vae=vae, identity=identity)

    @classmethod
    def execute(cls, model, adapter, vae, identity, regional_attention) -> io.NodeOutput:
        path = resolve_adapter(adapter)
        sd, sizes = read_adapter(path)
        module = StandInAdapter(sd, sizes)
        patcher = comfy.model_patcher.ModelPatcher(
            module, load_device=mm.get_torch_device(), offload_device=mm.unet_offload_device()
        )
        people = identity_set(identity)
        images = torch.stack([person.primary.face_stand_in for person in people.identities])
        latents = model.model.process_latent_in(face_latents(vae, images))
        masks = people.masks if regional_attention and any(m is not None for m in people.masks) else None
        faces = StandInFaces(module, latents.to(mm.intermediate_device()), masks)
        applied = apply_stand_in(model, patcher, faces, path.name)
        summary = f"Stand-In ({path.name}) for {len(people.identities)} person(s)" + (", placed" if masks else "")
        log.info("MultiID: %s", summary)
        return io.NodeOutput(applied, images.to(mm.intermediate_device()), ui=ui.PreviewText(summary))
