"""Concat-ID on Wan2.1-T2V-1.3B with ComfyUI's native Wan pieces: UMT5 text encoder, Wan 2.1 VAE, samplers.

Load Concat-ID Wan Model -> MODEL; Concat-ID Wan Reference puts the identity's VAE-encoded reference
(and, from ID Router, regions) into the conditioning; KSampler / SamplerCustom(Advanced) sample; VAE
Decode.
"""

from __future__ import annotations

import logging
from pathlib import Path

import comfy.latent_formats
import comfy.model_management as mm
import folder_paths
import node_helpers
import torch
from comfy_api.latest import io, ui

from ...multiid_core.catalog import CONCAT_ID_WAN_ADALN_FILE, CONCAT_ID_WAN_FIRST_STAGE_FILE, WAN21_VAE
from ...multiid_core.concat_id_wan.checkpoint import SOURCE
from ...multiid_core.concat_id_wan.references import reference_images
from ...multiid_core.errors import MultiIDError
from ...multiid_core.families import CONCAT_ID_WAN, CONCAT_ID_WAN_ADALN
from ...multiid_core.families import WAN_2_1_T2V_DEFAULTS as PAPER
from ...multiid_core.routing import identity_set
from ...multiid_core.wan.reference_tokens import latent_frames, token_regions
from .. import family_tags, model_folders, types
from ..input_checks import valid_inputs
from ..schema import check_video_size, size_inputs
from ..wan.reference_model import WEIGHT_DTYPES
from .model import REFERENCES, REGIONS, load_concat_id_wan

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
                *size_inputs(PAPER, "length", "as released"),
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
            family = family_tags.conditioning_family(conditioning)
            if family not in (None, family_tags.CONCAT_ID_WAN):
                raise MultiIDError(
                    f"The {name} conditioning comes from {family_tags.MADE_BY.get(family, family)}. Concat-ID-Wan "
                    "reads UMT5 prompts: encode them with CLIP Text Encode from Load UMT5 Text Encoder (Wan)."
                )
        check_video_size(width, height, length, "length")
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
