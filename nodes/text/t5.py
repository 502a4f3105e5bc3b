"""T5 prompt encoding for the CogVideoX family: 226 tokens, no attention mask, as the authors' pipelines do.

The loader builds the CLIP through ComfyUI's public text-encoder loading (`comfy.sd.load_clip`, what Load
CLIP with type sd3 does), so model management (ModelPatcher, offloading, dtype casting, fp8 and scaled fp8
files) works as for any CLIP. The encoder accepts that CLIP or one from ComfyUI's Load CLIP node.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import comfy.sd
import comfy.sd1_clip
import comfy.text_encoders.t5
import comfy.utils
import folder_paths
import torch
from comfy_api.latest import io
from transformers import T5Tokenizer

from ...multiid_core.errors import MultiIDError
from ...multiid_core.precision import DTYPES
from ...multiid_core.text_encoders import (
    T5_SOURCE,
    check_t5_file,
    load_t5_file,
    load_t5_folder,
    load_t5_tokenizer,
    t5_token_ids,
    tokenizer_folder,
)
from .. import model_folders, types
from ..family_tags import COGVIDEOX, tag_conditioning
from ..input_checks import valid_inputs
from ..schema import device_input, precision_input
from .clip_loading import clip_options

log = logging.getLogger(__name__)

CANONICAL_SOURCE = "ConsisID-preview/text_encoder"
FILE_PREFIX = "text_encoders/"
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


def t5_model_options(config: dict, precision: str, device: str) -> dict:
    """Load CLIP's model_options: ComfyUI's T5 config overridden by the file's sizes (`t5xxl_model_config`, the
    option ComfyUI's T5XXLModel reads), the device, and a storage dtype unless `auto`."""
    model_options = clip_options("t5xxl_model_config", config, device)
    if precision != "auto":
        model_options["dtype"] = DTYPES[precision]
    return model_options


@contextmanager
def weights_that_fit(where: str | Path):
    """Weights whose shapes differ from the encoder their config describes become a MultiIDError."""
    try:
        yield
    except RuntimeError as err:
        if "size mismatch" not in str(err):
            raise
        raise MultiIDError(
            f"The weights in {where} do not fit the T5 encoder its config describes ({str(err)[:300]}). Download "
            f"{T5_SOURCE}."
        ) from None


# Mirrors nodes.CLIPLoader.load_clip (ComfyUI 0.3.75).
def clip_from_file(path: Path, model_options: dict) -> comfy.sd.CLIP:
    """A T5 file in ComfyUI's layout, read by ComfyUI itself: Load CLIP, type sd3."""
    with weights_that_fit(path):
        return comfy.sd.load_clip(
            [str(path)],
            embedding_directory=folder_paths.get_folder_paths("embeddings"),
            clip_type=comfy.sd.CLIPType.SD3,
            model_options=model_options,
        )


# Mirrors comfy.sd.load_clip (ComfyUI 0.38.1).
def clip_from_state_dict(sd: dict, model_options: dict, where: str | Path) -> comfy.sd.CLIP:
    """Weights read here (a snapshot's shards, a file under other names) through ComfyUI's loader for state
    dicts, after the conversion `load_clip` applies first in newer ComfyUI (old scaled-fp8 markers to its
    quantisation format; absent in 0.3.75, where the loader itself reads the markers)."""
    convert_old_quants = getattr(comfy.utils, "convert_old_quants", None)
    if convert_old_quants is not None:
        sd, _ = convert_old_quants(sd, model_prefix="", metadata={})
    with weights_that_fit(where):
        return comfy.sd.load_text_encoder_state_dicts(
            [sd],
            embedding_directory=folder_paths.get_folder_paths("embeddings"),
            clip_type=comfy.sd.CLIPType.SD3,
            model_options=model_options,
        )


def use_snapshot_tokenizer(clip: comfy.sd.CLIP, folder: Path, d_model: int) -> None:
    """Puts the snapshot's own tokenizer/ into the CLIP, where ComfyUI put its bundled T5 tokenizer.

    ComfyUI's loader gives every T5-XXL its bundled tokenizer (comfy/text_encoders/t5_tokenizer) and has
    no option naming another (tokenizer_data carries lengths, and spiece bytes only for other encoders).
    The released CogVideoX tokenizer equals the bundled one, but the snapshot's is the one its authors ran,
    and one cut to a small vocabulary (the tests' tiny snapshots) must stay with its encoder. So the T5 part
    of the CLIP's tokenizer is replaced after loading: ComfyUI's T5XXLTokenizer settings, the snapshot's
    folder, transformers' T5Tokenizer (spiece.model) as the pipelines use it."""
    clip.tokenizer.t5xxl = comfy.sd1_clip.SDTokenizer(
        str(folder),
        embedding_directory=folder_paths.get_folder_paths("embeddings"),
        pad_with_end=False,
        embedding_size=d_model,
        embedding_key="t5xxl",
        tokenizer_class=T5Tokenizer,
        has_start_token=False,
        pad_to_max_length=False,
        max_length=99999999,
        min_length=77,
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
                precision_input(
                    "How the weights are stored in memory, as Load CLIP does it: auto: ComfyUI's "
                    "text-encoder precision; fp32/bf16/fp16: that one instead. Weights stored narrower in the file "
                    "(bf16 in the snapshot, fp8 files) stay as stored. ComfyUI computes T5 in fp32 whatever the "
                    "storage."
                ),
                device_input("about 10 GB for the full model"),
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
            tokenizer_path = tokenizer_folder(path)
            if tokenizer_path is not None:
                load_t5_tokenizer(tokenizer_path)  # a damaged folder becomes a MultiIDError here
            config, sd = load_t5_folder(path)
            clip = clip_from_state_dict(sd, t5_model_options(config, precision, device), path)
            if tokenizer_path is not None:
                use_snapshot_tokenizer(clip, tokenizer_path, config["d_model"])
                return io.NodeOutput(clip)
        else:
            config, comfy_names = check_t5_file(path)
            options = t5_model_options(config, precision, device)
            if comfy_names:
                clip = clip_from_file(path, options)
            else:
                clip = clip_from_state_dict(load_t5_file(path), options, path)
        log.info("MultiID T5: no tokenizer/ next to %s, using ComfyUI's bundled T5 tokenizer", path)
        return io.NodeOutput(clip)


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
