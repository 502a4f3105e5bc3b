"""T5 prompt encoding for the CogVideoX family: 226 tokens, no attention mask, as the authors' pipelines do.

The loader builds a native ComfyUI CLIP around ComfyUI's own T5 (comfy.text_encoders), so model
management (ModelPatcher, offloading, dtype casting, fp8 files) works as for any CLIP. The encoder
accepts that CLIP or one from ComfyUI's Load CLIP node.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import comfy.model_management as mm
import comfy.sd
import comfy.sd1_clip
import comfy.text_encoders.sd3_clip
import comfy.text_encoders.t5
import folder_paths
import torch
from comfy_api.latest import io
from transformers import T5Tokenizer, T5TokenizerFast

from ..multiid_core.errors import MultiIDError
from ..multiid_core.precision import DTYPES
from . import model_folders, types
from .family_tags import COGVIDEOX, tag_conditioning
from .input_checks import valid_inputs
from .memory import PRECISIONS
from .t5_clips import DEVICES, clip_options, loaded_clip
from .t5_files import (
    MAX_SEQUENCE_LENGTH,
    T5_SOURCE,
    load_t5_file,
    load_t5_folder,
    load_t5_tokenizer,
    t5_token_ids,
    tokenizer_folder,
)

log = logging.getLogger(__name__)

CANONICAL_SOURCE = "ConsisID-preview/text_encoder"
FILE_PREFIX = "text_encoders/"
BUNDLED_TOKENIZER = Path(comfy.text_encoders.sd3_clip.__file__).parent / "t5_tokenizer"
CLIP_LOADER_TYPES = "sd3 (also pixart, chroma, mochi, ltxv or hidream)"


def text_encoder_sources() -> dict[str, Path]:
    """`<snapshot>/text_encoder` (or t5-v1_1-xxl) folders in models/multiid, then T5 files in text_encoders."""
    found: dict[str, Path] = {}
    for snapshot in model_folders.snapshots():
        for name in ("text_encoder", "t5-v1_1-xxl"):  # diffusers snapshots; Concat-ID's SAT release
            if (snapshot / name / "config.json").is_file():
                found[f"{snapshot.name}/{name}"] = snapshot / name
    for name in folder_paths.get_filename_list("text_encoders"):
        lower = Path(name).name.lower()
        if lower.endswith(".safetensors") and "t5" in lower and "umt5" not in lower:
            found.setdefault(FILE_PREFIX + name, Path(folder_paths.get_full_path("text_encoders", name)))
    return found


def source_choices() -> list[str]:
    found = list(text_encoder_sources())
    return found if CANONICAL_SOURCE in found else [*found, CANONICAL_SOURCE]


def resolve_source(label: str) -> Path:
    """The folder or file behind a combo value, or an error naming the expected path and the download."""
    found = text_encoder_sources()
    if label in found:
        return found[label]
    if label.startswith(FILE_PREFIX):
        searched = ", ".join(folder_paths.get_folder_paths("text_encoders"))
        raise MultiIDError(
            f"The T5 text encoder file '{label[len(FILE_PREFIX) :]}' was not found in ComfyUI/models/text_encoders "
            f"(folders searched: {searched}). Put it there, or download {T5_SOURCE}; then refresh the node (press R)."
        )
    snapshot = label.split("/")[0]
    searched = model_folders.searched("multiid")
    raise MultiIDError(
        f"The T5 text encoder was not found at '{label}'. Expected ComfyUI/models/multiid/{label}/ (config.json, "
        f"model-0000N-of-0000M.safetensors, model.safetensors.index.json) with its tokenizer in "
        f"ComfyUI/models/multiid/{snapshot}/tokenizer/ (model folders searched: {searched}). Download {T5_SOURCE}; "
        "then refresh the node (press R)."
    )


def _tokenizer_factory(path: Path, tokenizer_class, d_model: int):
    """ComfyUI's tokenizer wrapper (SD1Tokenizer under the name t5xxl, as its T5 text encoders have it)."""
    return partial(
        comfy.sd1_clip.SD1Tokenizer,
        name="t5xxl",
        tokenizer=partial(
            comfy.sd1_clip.SDTokenizer,
            tokenizer_path=str(path),
            max_length=MAX_SEQUENCE_LENGTH,
            pad_with_end=False,
            embedding_size=d_model,
            embedding_key="t5xxl",
            tokenizer_class=tokenizer_class,
            has_start_token=False,
        ),
    )


def build_t5_clip(config: dict, sd: dict, tokenizer, precision: str, device: str, where: str) -> comfy.sd.CLIP:
    """A comfy.sd.CLIP holding ComfyUI's T5 at `config` (overrides of its t5_config_xxl.json), weights `sd`."""
    model_options = clip_options("t5xxl_model_config", config, device)
    load_device = model_options.get("load_device", mm.text_encoder_device())
    detected = comfy.text_encoders.sd3_clip.t5_xxl_detect(sd)  # what Load CLIP reads: weight dtype, scaled fp8
    if "t5xxl_scaled_fp8" in detected:
        model_options["t5xxl_scaled_fp8"] = detected["t5xxl_scaled_fp8"]
    if precision == "auto":  # as Load CLIP: the file's dtype, capped at ComfyUI's text-encoder dtype
        model_options["dtype"] = mm.pick_weight_dtype(
            detected.get("dtype_t5"), mm.text_encoder_dtype(load_device), load_device
        )
    else:
        model_options["dtype"] = DTYPES[precision]
    target = SimpleNamespace(
        clip=comfy.sd1_clip.SD1ClipModel,
        params={"name": "t5xxl", "clip_model": comfy.text_encoders.sd3_clip.T5XXLModel},
        tokenizer=tokenizer,
    )
    return loaded_clip(
        target,
        sd,
        model_options,
        where,
        name="T5",
        encoder="the T5 encoder its config describes",
        incomplete="the download is incomplete or this is not T5-v1.1",
        advice=f"Download {T5_SOURCE}",
    )


class LoadTextEncoder(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MultiID_LoadTextEncoder",
            display_name="Load T5 Text Encoder",
            category=f"{types.CATEGORY}/text",
            description="Loads the T5-v1.1-XXL text encoder of the CogVideoX family (ConsisID, Ingredients, "
            "Concat-ID) as a ComfyUI CLIP, from a snapshot's text_encoder/ folder or a single T5 file.",
            inputs=[
                io.Combo.Input(
                    "source",
                    options=source_choices(),
                    tooltip="<snapshot>/text_encoder: the text_encoder/ folder of a snapshot in models/multiid "
                    "(ConsisID-preview, Ingredients, ...), read with the snapshot's tokenizer/ folder. "
                    "text_encoders/...: a single T5-XXL file in models/text_encoders (t5xxl_fp16.safetensors, "
                    "t5xxl_fp8_e4m3fn.safetensors, as Flux/SD3 users have), read with ComfyUI's bundled T5 "
                    "tokenizer, which gives the same token ids.",
                ),
                io.Combo.Input(
                    "precision",
                    options=list(PRECISIONS),
                    default="auto",
                    tooltip="How the weights are stored in memory. auto: as in the file (bf16 for the snapshot, "
                    "fp8 for fp8 files), capped at ComfyUI's text-encoder precision as Load CLIP does. ComfyUI "
                    "computes T5 in fp32 whatever the storage.",
                ),
                io.Combo.Input(
                    "device",
                    options=list(DEVICES),
                    default="default",
                    tooltip="default: ComfyUI's text-encoder device (the GPU, offloaded when idle). cpu: keep "
                    "T5 on the CPU (slower, saves about 10 GB of VRAM for the full model).",
                ),
            ],
            outputs=[io.Clip.Output(display_name="clip", tooltip="For MultiID Text Encode (T5, 226 tokens).")],
        )

    @classmethod
    def validate_inputs(cls, precision=None, device=None) -> bool | str:
        return valid_inputs(cls, precision=precision, device=device)

    @classmethod
    def execute(cls, source, precision, device) -> io.NodeOutput:
        path = resolve_source(source)
        if path.is_dir():
            config, sd = load_t5_folder(path)
            tokenizer_path = tokenizer_folder(path)
        else:
            config, sd = load_t5_file(path)
            tokenizer_path = None
        if tokenizer_path is None:
            tokenizer_path, tokenizer_class = BUNDLED_TOKENIZER, T5TokenizerFast
            log.info("MultiID T5: no tokenizer/ next to %s, using ComfyUI's bundled T5 tokenizer", path)
        else:
            load_t5_tokenizer(tokenizer_path)  # a damaged folder becomes a MultiIDError here, not inside CLIP()
            tokenizer_class = T5Tokenizer
        tokenizer = _tokenizer_factory(tokenizer_path, tokenizer_class, config["d_model"])
        return io.NodeOutput(build_t5_clip(config, sd, tokenizer, precision, device, str(path)))


def is_t5_v11(encoder) -> bool:
    """ComfyUI's T5 with gated-GELU feed-forward and one shared position bias (not T5 v1.0, not UMT5)."""
    transformer = getattr(encoder, "transformer", None)
    if not isinstance(transformer, comfy.text_encoders.t5.T5):
        return False
    blocks = transformer.encoder.block
    return isinstance(blocks[0].layer[-1].DenseReluDense, comfy.text_encoders.t5.T5DenseGatedActDense) and all(
        b.layer[0].SelfAttention.relative_attention_bias is None for b in blocks[1:]
    )


def t5_parts(clip) -> tuple[comfy.sd1_clip.SDClipModel, object]:
    """The T5 encoder and its Hugging Face tokenizer inside a CLIP.

    Every ComfyUI T5 clip keeps the encoder under `t5xxl`; the tokenizer is `t5xxl` (sd3, flux, hidream,
    this pack) or `clip_t5xxl` (the single-T5 types: mochi, ltxv, pixart, chroma).
    """
    encoder = getattr(clip.cond_stage_model, "t5xxl", None)
    wrapper = getattr(clip.tokenizer, "t5xxl", None) or getattr(clip.tokenizer, "clip_t5xxl", None)
    tokenizer = getattr(wrapper, "tokenizer", None)
    if encoder is None or tokenizer is None or not is_t5_v11(encoder):
        raise MultiIDError(
            "This CLIP holds no T5-v1.1-XXL text encoder. Use Load T5 Text Encoder, or ComfyUI's Load CLIP with "
            f"t5xxl_fp16.safetensors (or an fp8 T5-XXL) and type {CLIP_LOADER_TYPES}. UMT5 (Wan) and CLIP-L/G "
            "do not fit the CogVideoX family."
        )
    return encoder, tokenizer


@contextmanager
def unmasked(encoder):
    """The authors' encoding: pads attend and are attended (some Load CLIP types turn T5's mask on)."""
    saved = encoder.enable_attention_masks, encoder.zero_out_masked
    encoder.enable_attention_masks = encoder.zero_out_masked = False
    try:
        yield encoder
    finally:
        encoder.enable_attention_masks, encoder.zero_out_masked = saved


class TextEncode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MultiID_TextEncode",
            display_name="MultiID Text Encode (T5, 226 tokens)",
            category=f"{types.CATEGORY}/text",
            description="Encodes a prompt exactly as the CogVideoX-family pipelines do: 226 T5 tokens (text, end "
            "token, pads), no attention mask, the encoder's final layer-normed hidden states.",
            inputs=[
                io.Clip.Input(
                    "clip",
                    tooltip="A T5-v1.1-XXL text encoder: from Load T5 Text Encoder, or from ComfyUI's Load CLIP "
                    f"with t5xxl_fp16.safetensors (or an fp8 T5-XXL) and type {CLIP_LOADER_TYPES}; a Flux dual "
                    "CLIP works too (only its T5 is used). Not umt5 (Wan).",
                ),
                io.String.Input(
                    "text",
                    multiline=True,
                    default="",
                    tooltip="The prompt, encoded as written: no (word:1.2) weights or embedding: syntax. Longer "
                    "than 226 tokens (about 170 words) is cut, with a warning in the log naming the cut text, as "
                    "the authors' pipeline does. Leave empty for the negative prompt (the authors' default).",
                ),
            ],
            outputs=[
                io.Conditioning.Output(
                    display_name="conditioning", tooltip="[1, 226, 4096] T5 embeddings for the MultiID sampler."
                )
            ],
        )

    @classmethod
    def validate_inputs(cls, clip=None) -> bool | str:
        return valid_inputs(cls, clip=clip)

    @classmethod
    def execute(cls, clip, text) -> io.NodeOutput:
        encoder, tokenizer = t5_parts(clip)
        ids = t5_token_ids(tokenizer, text)
        clip.load_model()
        encoder.reset_clip_options()
        with unmasked(encoder):
            embeddings = encoder.encode_token_weights([[(i, 1.0) for i in ids]])[0]
        if not torch.isfinite(embeddings).all():  # T5 runs in fp32 here: NaN means damaged weights, not overflow
            raise MultiIDError(
                "The T5 text encoder gave NaN or infinite values for this prompt, so the video would be black: its "
                "weights are damaged. `python multiid.py models check` names files that are cut short or not what "
                f"they claim; download the text encoder again ({T5_SOURCE})."
            )
        return io.NodeOutput(tag_conditioning(embeddings, COGVIDEOX))
