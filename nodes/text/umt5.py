"""Wan's UMT5-XXL text encoder as a ComfyUI CLIP, read as ComfyUI's CLIPLoader (type wan) reads it, for any
width, so the same workflow runs on the released files and on the tiny test files."""

from __future__ import annotations

from pathlib import Path

import comfy.sd
import folder_paths
from comfy_api.latest import io

from ...multiid_core.catalog import UMT5_XXL
from ...multiid_core.errors import MultiIDError
from ...multiid_core.text_encoders import UMT5_SOURCE, check_umt5_file
from .. import types
from ..input_checks import valid_inputs
from ..schema import device_input
from .clip_loading import clip_options


def umt5_choices() -> list[str]:
    found = [n for n in folder_paths.get_filename_list("text_encoders") if "umt5" in Path(n).name.lower()]
    return found if UMT5_XXL.path in found else [*found, UMT5_XXL.path]


# Mirrors nodes.CLIPLoader.load_clip (ComfyUI 0.3.75).
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
                device_input("up to 11 GB"),
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
