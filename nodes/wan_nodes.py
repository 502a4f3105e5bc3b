"""Concat-ID on Wan2.1-T2V-1.3B with ComfyUI's native Wan pieces: UMT5 text encoder, Wan 2.1 VAE, samplers.

Load Concat-ID Wan Model -> MODEL; Concat-ID Wan Reference puts the identity's VAE-encoded reference
(and, from ID Router, regions) into the conditioning; KSampler / SamplerCustom(Advanced) sample; VAE
Decode. Load UMT5 Text Encoder reads Wan's text encoder files as ComfyUI's CLIPLoader (type wan) does,
for any width, so the same workflow runs on the released files and on the tiny test files.
"""

from __future__ import annotations

import logging
from pathlib import Path

import comfy.latent_formats
import comfy.model_management as mm
import comfy.sd
import folder_paths
import node_helpers
import torch
from comfy_api.latest import io, ui

from ..multiid_core.errors import MultiIDError
from ..multiid_core.families import CONCAT_ID_WAN, CONCAT_ID_WAN_ADALN
from ..multiid_core.families import WAN_2_1_T2V_DEFAULTS as PAPER
from ..multiid_core.models import CONCAT_ID_WAN_ADALN_FILE, CONCAT_ID_WAN_FIRST_STAGE_FILE, UMT5_XXL, WAN21_VAE
from ..multiid_core.pipelines.concat_id_wan import (
    SOURCE,
    latent_frames,
    reference_images,
    token_regions,
)
from ..multiid_core.routing import identity_set
from . import family_tags, model_folders, types
from .concat_id_wan import REFERENCES, REGIONS
from .input_checks import valid_inputs
from .t5_clips import DEVICES, clip_options
from .t5_files import UMT5_SOURCE, check_umt5_file
from .wan_model import WEIGHT_DTYPES, load_concat_id_wan

log = logging.getLogger(__name__)

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".safetensors")
ONE_REFERENCE = "one (as released)"
ALL_REFERENCES = "all identities (experimental)"


def concat_id_wan_choices() -> dict[str, Path]:
    """Checkpoint files at the top of each models/multiid/<folder>, and models/diffusion_models/*concat*."""
    found: dict[str, Path] = {}
    for folder in model_folders.snapshots():
        for file in sorted(folder.iterdir()):
            if file.is_file() and file.suffix in CHECKPOINT_SUFFIXES:
                found[f"{folder.name}/{file.name}"] = file
    for name in folder_paths.get_filename_list("diffusion_models"):
        if "concat" in name.lower() and name.endswith(CHECKPOINT_SUFFIXES):
            found.setdefault(f"diffusion_models/{name}", Path(folder_paths.get_full_path("diffusion_models", name)))
    return found


def _model_options() -> list[str]:
    canonical = [CONCAT_ID_WAN_ADALN_FILE.path, CONCAT_ID_WAN_FIRST_STAGE_FILE.path]
    return list(dict.fromkeys([*canonical[:1], *concat_id_wan_choices(), *canonical[1:]]))


def resolve_concat_id_wan(label: str) -> Path:
    found = concat_id_wan_choices()
    if label in found:
        return found[label]
    roots = model_folders.searched("multiid")
    raise MultiIDError(
        f"The Concat-ID Wan model '{label}' was not found. Put first_stage.pt / second_stage_adaln.pt in "
        f"ComfyUI/models/multiid/Concat-ID-Wan/ (e.g. `huggingface-cli download yongzhong/Concat-ID-Wan "
        f"second_stage_adaln.pt --local-dir ComfyUI/models/multiid/Concat-ID-Wan`; folders searched: {roots}), "
        f"from {SOURCE}. Then refresh the node (press R in the editor)."
    )


class LoadConcatIDWan(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MultiID_LoadConcatIDWan",
            display_name="Load Concat-ID Wan Model",
            category=f"{types.CATEGORY}/loaders",
            description="Loads Concat-ID-Wan (yongzhong/Concat-ID-Wan, on Wan2.1-T2V-1.3B) as a native ComfyUI "
            "MODEL for KSampler and the custom samplers, with the release's flow shift of 5. Whether the file is "
            "the first-stage model or the AdaLN one is read from its tensors; loading is strict.",
            inputs=[
                io.Combo.Input(
                    "model",
                    options=_model_options(),
                    tooltip="second_stage_adaln.pt (Concat-ID-Wan-AdaLN, the newer and better release) or "
                    "first_stage.pt, from models/multiid/Concat-ID-Wan/ (the yongzhong/Concat-ID-Wan repository "
                    "downloaded there), or a file with 'concat' in its name in models/diffusion_models.",
                ),
                io.Combo.Input(
                    "weight_dtype",
                    options=list(WEIGHT_DTYPES),
                    default="default",
                    tooltip="How the DiT's weights are kept in memory. default: as ComfyUI's Load Diffusion Model "
                    "decides (bf16 on recent GPUs; the authors ran bf16). fp8 halves the memory (the 1.3B needs "
                    "about 2.8 GB in bf16) at a small cost in quality; fp8_e4m3fn_fast also computes in fp8 on "
                    "GPUs that can.",
                ),
            ],
            outputs=[io.Model.Output(display_name="model", tooltip="Concat-ID-Wan for the native samplers.")],
        )

    @classmethod
    def validate_inputs(cls, weight_dtype=None) -> bool | str:
        return valid_inputs(cls, weight_dtype=weight_dtype)

    @classmethod
    def execute(cls, model, weight_dtype) -> io.NodeOutput:
        path = resolve_concat_id_wan(model)
        patcher = load_concat_id_wan(path, weight_dtype)
        dit = patcher.model.diffusion_model
        family = CONCAT_ID_WAN_ADALN if dit.adaln_reference else CONCAT_ID_WAN
        summary = (
            f"{family.name} ({path.name}): Wan2.1 DiT width {dit.dim}, {len(dit.blocks)} blocks, "
            f"weights {patcher.model.get_dtype()}"
        )
        log.info("MultiID: loaded %s", summary)
        return io.NodeOutput(patcher, ui=ui.PreviewText(summary))


class ConcatIDWanReference(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MultiID_ConcatIDWanReference",
            display_name="Concat-ID Wan Reference",
            category=f"{types.CATEGORY}/conditioning",
            description="Concat-ID's identity input: the person's aligned, parsed face on black, fitted into the "
            "video frame and VAE-encoded, is appended to the video latents inside the model (clean, last latent "
            "frame). Connect positive and negative to KSampler (the release: text guidance with the reference in "
            "both branches), or cond1 / cond2 / negative_no_reference to DualCFGGuider for image guidance.",
            inputs=[
                io.Conditioning.Input(
                    "positive", tooltip="The prompt: CLIP Text Encode with the UMT5 text encoder (Wan)."
                ),
                io.Conditioning.Input(
                    "negative",
                    tooltip="The negative prompt: CLIP Text Encode with the UMT5 encoder (the release uses '...').",
                ),
                io.Vae.Input("vae", tooltip="The Wan 2.1 VAE (Load VAE with wan_2.1_vae.safetensors)."),
                io.MultiType.Input(
                    "identity",
                    types=[types.Identity, types.Identities],
                    tooltip="One identity (Encode Identity; its first photo is used) or several (ID Router; with "
                    "references = all identities, and masks for regional attention).",
                ),
                io.Int.Input(
                    "width",
                    default=PAPER.width,
                    min=16,
                    max=4096,
                    step=16,
                    tooltip=f"Video width in pixels, a multiple of 16 (the release: {PAPER.width}).",
                ),
                io.Int.Input(
                    "height",
                    default=PAPER.height,
                    min=16,
                    max=4096,
                    step=16,
                    tooltip=f"Video height in pixels, a multiple of 16 (the release: {PAPER.height}).",
                ),
                io.Int.Input(
                    "length",
                    default=PAPER.frames,
                    min=1,
                    max=1025,
                    step=4,
                    tooltip=f"Frames, 4k+1 (the release: {PAPER.frames} = {PAPER.frames // PAPER.fps:.0f} s at "
                    f"{PAPER.fps:g} fps, what the model was trained on).",
                ),
                io.Int.Input("batch_size", default=1, min=1, max=64, tooltip="Videos sampled at once."),
                io.Combo.Input(
                    "references",
                    options=[ONE_REFERENCE, ALL_REFERENCES],
                    default=ONE_REFERENCE,
                    tooltip="one: a single reference frame, as the weights were trained (several identities are "
                    "refused). all identities: one reference frame per identity, at the next temporal indices; "
                    "the released Wan weights never saw more than one, so results vary.",
                ),
                io.Boolean.Input(
                    "regional_attention",
                    default=True,
                    tooltip="With masks from ID Router: video tokens inside identity k's mask attend to reference k "
                    "and to no other reference, tokens outside every mask to none (an identity without a mask "
                    "is seen everywhere). No effect without masks.",
                ),
            ],
            outputs=[
                io.Conditioning.Output(display_name="positive", tooltip="Prompt + reference."),
                io.Conditioning.Output(display_name="negative", tooltip="Negative prompt + reference (the release)."),
                io.Conditioning.Output(
                    display_name="negative_no_reference",
                    tooltip="Negative prompt + zeroed reference, the third branch of image guidance: DualCFGGuider "
                    "with cond1 = positive, cond2 = negative, negative = this; cfg_conds = text scale (5), "
                    "cfg_cond2_negative = image scale (1 = the release).",
                ),
                io.Latent.Output(display_name="latent", tooltip="Empty video latents of the chosen size."),
                io.Image.Output(display_name="reference", tooltip="The reference frame(s) the VAE encoded."),
            ],
        )

    @classmethod
    def validate_inputs(cls, positive=None, negative=None, vae=None, identity=None, references=None) -> bool | str:
        return valid_inputs(
            cls, positive=positive, negative=negative, vae=vae, identity=identity, references=references
        )

    @classmethod
    def execute(
        cls, positive, negative, vae, identity, width, height, length, batch_size, references, regional_attention
    ) -> io.NodeOutput:
        for name, conditioning in (("positive", positive), ("negative", negative)):
            if family_tags.conditioning_family(conditioning) == family_tags.COGVIDEOX:
                raise MultiIDError(
                    f"The {name} conditioning comes from MultiID Text Encode (the T5 encoder of ConsisID, Ingredients "
                    "and Concat-ID CogVideoX). Concat-ID-Wan reads UMT5 prompts: encode them with CLIP Text Encode "
                    "from Load UMT5 Text Encoder (Wan)."
                )
        check_video_memory(batch_size, length, height, width)
        people = identity_set(identity)
        identities, masks = people.identities, people.masks
        if references == ONE_REFERENCE and len(identities) > 1:
            raise MultiIDError(
                f"{len(identities)} identities were connected, but the released Concat-ID-Wan weights take one "
                "reference. Connect one identity, or set references to 'all identities (experimental)'."
            )
        if width % 16 or height % 16:
            raise MultiIDError(f"Width and height must be multiples of 16; got {width}x{height}.")
        images = reference_images(identities, height, width)
        latents = torch.cat([vae.encode(images[i : i + 1]) for i in range(images.shape[0])], dim=2)
        if latents.ndim != 5 or latents.shape[1] != 16:
            raise MultiIDError(
                f"This VAE gives latents of shape {tuple(latents.shape)} for an image; Concat-ID-Wan needs the Wan "
                f"2.1 VAE (16 channels): load {WAN21_VAE.path} with Load VAE."
            )
        values = {REFERENCES: latents, family_tags.FAMILY_KEY: family_tags.CONCAT_ID_WAN}
        regions = token_regions(masks, length, height, width) if regional_attention else None
        if regions is not None:
            values[REGIONS] = regions[None]
        no_reference = {**values, REFERENCES: comfy.latent_formats.Wan21().process_out(torch.zeros_like(latents))}
        latent = torch.zeros(
            [batch_size, 16, latent_frames(length), height // 8, width // 8], device=mm.intermediate_device()
        )
        return io.NodeOutput(
            node_helpers.conditioning_set_values(positive, values),
            node_helpers.conditioning_set_values(negative, values),
            node_helpers.conditioning_set_values(negative, no_reference),
            family_tags.tag_latent({"samples": latent}, family_tags.CONCAT_ID_WAN),
            images.to(mm.intermediate_device()),
        )


def check_video_memory(batch_size: int, length: int, height: int, width: int) -> None:
    """Refuse, before allocating, latents whose sampling the memory cannot hold (what to lower, by how much).

    KSampler keeps about four fp32 copies of the latents (noise, latents, the prediction for each of the
    two guidance branches); the DiT's activations per block grow with the same token count, so this is
    the floor, not the whole need.
    """
    latent_bytes = batch_size * 16 * latent_frames(length) * (height // 8) * (width // 8) * 4
    needed = 4 * latent_bytes
    free = mm.get_free_memory(mm.intermediate_device())
    if needed > free:
        raise MultiIDError(
            f"{batch_size} video(s) of {length} frames at {width}x{height} need at least {needed / 2**30:.1f} GB "
            f"for their latents alone while sampling, and {free / 2**30:.1f} GB are free. Lower batch_size, "
            f"length or the size (the release: {PAPER.frames} frames at {PAPER.width}x{PAPER.height}, batch 1)."
        )


def umt5_choices() -> list[str]:
    found = [n for n in folder_paths.get_filename_list("text_encoders") if "umt5" in Path(n).name.lower()]
    return found if UMT5_XXL.path in found else [*found, UMT5_XXL.path]


def build_umt5_clip(path: Path, device: str) -> comfy.sd.CLIP:
    """ComfyUI's Wan text encoder through ComfyUI's own loader (Load CLIP, type wan), sized from the file.

    `umt5xxl_model_config` is ComfyUI's model option for an encoder's config; the file's sizes equal
    ComfyUI's for the released files and let the tiny test files load through the same path."""
    config = check_umt5_file(path)
    return comfy.sd.load_clip(
        [str(path)],
        embedding_directory=folder_paths.get_folder_paths("embeddings"),
        clip_type=comfy.sd.CLIPType.WAN,
        model_options=clip_options("umt5xxl_model_config", config, device),
    )


class LoadUMT5TextEncoder(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MultiID_LoadUMT5TextEncoder",
            display_name="Load UMT5 Text Encoder (Wan)",
            category=f"{types.CATEGORY}/text",
            description="Loads Wan's UMT5-XXL text encoder from models/text_encoders as a ComfyUI CLIP, exactly "
            "what Load CLIP with type wan gives, with the sizes read from the file. Encode prompts with CLIP Text "
            "Encode (512 tokens, padding masked and zeroed, as the Wan and Concat-ID pipelines do).",
            inputs=[
                io.Combo.Input(
                    "text_encoder",
                    options=umt5_choices(),
                    tooltip="A UMT5 file in models/text_encoders: umt5_xxl_fp8_e4m3fn_scaled.safetensors (what "
                    "ComfyUI's Wan templates use) or umt5_xxl_fp16.safetensors (closest to the release's bf16), "
                    "from Comfy-Org/Wan_2.1_ComfyUI_repackaged. Both carry their tokenizer.",
                ),
                io.Combo.Input(
                    "device",
                    options=list(DEVICES),
                    default="default",
                    tooltip="default: ComfyUI's text-encoder device (the GPU, offloaded when idle). cpu: keep "
                    "the encoder on the CPU (slower; saves up to 11 GB of VRAM).",
                ),
            ],
            outputs=[io.Clip.Output(display_name="clip", tooltip="For CLIP Text Encode.")],
        )

    @classmethod
    def validate_inputs(cls, device=None) -> bool | str:
        return valid_inputs(cls, device=device)

    @classmethod
    def execute(cls, text_encoder, device) -> io.NodeOutput:
        full = folder_paths.get_full_path("text_encoders", text_encoder)
        if full is None:
            searched = ", ".join(folder_paths.get_folder_paths("text_encoders"))
            raise MultiIDError(
                f"The UMT5 text encoder '{text_encoder}' is not in ComfyUI/models/text_encoders (folders searched: "
                f"{searched}). Download {UMT5_SOURCE}; then refresh the node (press R)."
            )
        return io.NodeOutput(build_umt5_clip(Path(full), device))
