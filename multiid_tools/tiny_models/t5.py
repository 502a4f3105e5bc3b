"""A tiny random T5-v1.1 encoder in the released layouts, that ComfyUI's text-encoder loader takes for T5-XXL.

`write_tiny_t5_snapshot` writes `text_encoder/` (transformers' T5EncoderModel: config.json, two bf16
safetensors shards, model.safetensors.index.json) and `tokenizer/` (spiece.model and the T5Tokenizer
configs) as in BestWishYsh/ConsisID-preview; `write_tiny_t5_file` writes the same weights as one file
with the keys of ComfyUI's t5xxl_fp16.safetensors (`scaled=True`: as t5xxl_fp8_e4m3fn_scaled.safetensors).

ComfyUI's detection (`comfy.sd.detect_te_model`) sees T5-XXL only in 24 blocks 4096 wide, so the tiny T5 is
4096 wide with 24 thin blocks (2 heads of 4, feed-forward 8), like the tiny UMT5, and its vocabulary is cut to
T5's first 1000 pieces (plus the 100 sentinels and transformers' padding to 1128 rows) to keep the embedding
small: about 10.3M weights, 21 MB in bf16. The snapshot's tokenizer is cut the same way. A single tiny file
is read with ComfyUI's bundled (full) tokenizer, so only prompts made of those first pieces fit it
(`TINY_T5_PROMPT`).

No internet here, so spiece.model is rebuilt from a T5 tokenizer.json on disk (ComfyUI bundles one in
comfy/text_encoders/t5_tokenizer): its unigram pieces and scores and its precompiled normaliser are the
sentencepiece model's own, so the rebuilt file segments text as the original does.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
from pathlib import Path

import torch
from safetensors.torch import save_file

from multiid_core.errors import MultiIDError

TINY_T5_PIECES = 1000
TINY_T5 = {"d_model": 4096, "num_layers": 24, "num_heads": 2, "d_kv": 4, "d_ff": 8, "vocab_size": TINY_T5_PIECES + 128}
# A prompt whose pieces are all among T5's first TINY_T5_PIECES, for the tiny single files (bundled tokenizer)
TINY_T5_PROMPT = "A man and an old person look at the city at night, then they go back home in the light."
T5_TOKENIZER_JSON = Path("comfy") / "text_encoders" / "t5_tokenizer" / "tokenizer.json"
_SPIECE_PIECES = 32000  # T5's sentencepiece vocabulary; ids 32000-32099 are the <extra_id_N> sentinels
_PACK_ROOT = Path(__file__).resolve().parents[2]


def tiny_t5_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """fp32 weights under transformers' T5EncoderModel names (the tied embedding saved once, as shared.weight)."""
    c = TINY_T5
    inner = c["num_heads"] * c["d_kv"]
    generator = torch.Generator().manual_seed(seed)

    def normal(*shape: int, std: float) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * std

    def norm() -> torch.Tensor:
        return 1.0 + normal(c["d_model"], std=0.1)

    sd = {"shared.weight": normal(c["vocab_size"], c["d_model"], std=1.0)}
    for i in range(c["num_layers"]):
        block = f"encoder.block.{i}.layer"
        for name in "qkv":
            sd[f"{block}.0.SelfAttention.{name}.weight"] = normal(inner, c["d_model"], std=c["d_model"] ** -0.5)
        sd[f"{block}.0.SelfAttention.o.weight"] = normal(c["d_model"], inner, std=inner**-0.5)
        if i == 0:
            sd[f"{block}.0.SelfAttention.relative_attention_bias.weight"] = normal(32, c["num_heads"], std=1.0)
        sd[f"{block}.0.layer_norm.weight"] = norm()
        for name in ("wi_0", "wi_1"):
            sd[f"{block}.1.DenseReluDense.{name}.weight"] = normal(c["d_ff"], c["d_model"], std=c["d_model"] ** -0.5)
        sd[f"{block}.1.DenseReluDense.wo.weight"] = normal(c["d_model"], c["d_ff"], std=c["d_ff"] ** -0.5)
        sd[f"{block}.1.layer_norm.weight"] = norm()
    sd["encoder.final_layer_norm.weight"] = norm()
    return sd


def tiny_t5_config() -> dict:
    """config.json as transformers writes it for google/t5-v1_1-xxl's encoder, at the tiny size."""
    return {
        "architectures": ["T5EncoderModel"],
        **TINY_T5,
        "decoder_start_token_id": 0,
        "dense_act_fn": "gelu_new",
        "dropout_rate": 0.1,
        "eos_token_id": 1,
        "feed_forward_proj": "gated-gelu",
        "initializer_factor": 1.0,
        "is_encoder_decoder": True,
        "is_gated_act": True,
        "layer_norm_epsilon": 1e-06,
        "model_type": "t5",
        "num_decoder_layers": TINY_T5["num_layers"],
        "output_past": True,
        "pad_token_id": 0,
        "relative_attention_max_distance": 128,
        "relative_attention_num_buckets": 32,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "use_cache": True,
    }


def write_tiny_t5_snapshot(
    snapshot_dir: str | os.PathLike, tokenizer_json: str | os.PathLike | None = None, seed: int = 0
) -> list[Path]:
    """`<snapshot>/text_encoder/` (two bf16 shards + index + config) and `<snapshot>/tokenizer/`."""
    folder = Path(snapshot_dir) / "text_encoder"
    folder.mkdir(parents=True, exist_ok=True)
    sd = {k: v.to(torch.bfloat16) for k, v in tiny_t5_state_dict(seed).items()}
    keys = list(sd)
    split = keys.index("encoder.block.1.layer.0.SelfAttention.q.weight")
    shards = {"model-00001-of-00002.safetensors": keys[:split], "model-00002-of-00002.safetensors": keys[split:]}
    written = []
    for name, names in shards.items():
        save_file({k: sd[k].contiguous() for k in names}, str(folder / name), metadata={"format": "pt"})
        written.append(folder / name)
    index = {
        "metadata": {"total_size": sum(v.numel() * v.element_size() for v in sd.values())},
        "weight_map": {k: name for name, names in shards.items() for k in names},
    }
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    (folder / "config.json").write_text(json.dumps(tiny_t5_config(), indent=2))
    written += [folder / "model.safetensors.index.json", folder / "config.json"]
    return written + write_t5_tokenizer(Path(snapshot_dir) / "tokenizer", tokenizer_json, pieces=TINY_T5_PIECES)


def scaled_fp8(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """ComfyUI's scaled fp8 format: each linear weight as float8_e4m3fn / scale, `scale_weight`, a marker."""
    out = {}
    for name, tensor in sd.items():
        if name.endswith(".weight") and tensor.ndim == 2 and ".layer." in name and "relative_attention" not in name:
            scale = tensor.abs().max() / 448.0
            out[name] = (tensor / scale).to(torch.float8_e4m3fn)
            out[name[: -len("weight")] + "scale_weight"] = scale.reshape(()).float()
        else:
            out[name] = tensor.to(torch.float16)
    out["scaled_fp8"] = torch.empty(0, dtype=torch.float8_e4m3fn)
    return out


def write_tiny_t5_file(
    path: str | os.PathLike, dtype: torch.dtype = torch.float16, seed: int = 0, scaled: bool = False
) -> Path:
    """The same weights as one file with the key names of ComfyUI's t5xxl_fp16.safetensors; `scaled`: in
    ComfyUI's scaled fp8 format (t5xxl_fp8_e4m3fn_scaled.safetensors), from the bf16 values."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # through bf16 first: the very values the snapshot holds, so both sources can be compared
    sd = {k: v.to(torch.bfloat16).to(torch.float32 if scaled else dtype) for k, v in tiny_t5_state_dict(seed).items()}
    save_file({k: v.contiguous() for k, v in (scaled_fp8(sd) if scaled else sd).items()}, str(path))
    return path


def find_t5_tokenizer_json() -> Path:
    """ComfyUI's bundled T5 tokenizer.json: $COMFYUI_PATH, an importable `comfy`, or the ComfyUI around this pack."""
    roots = [Path(os.environ["COMFYUI_PATH"])] if os.environ.get("COMFYUI_PATH") else []
    spec = importlib.util.find_spec("comfy")
    if spec is not None and spec.submodule_search_locations:
        roots.append(Path(next(iter(spec.submodule_search_locations))).parent)
    roots += [_PACK_ROOT.parents[1], _PACK_ROOT / ".comfyui" / "ComfyUI"]  # custom_nodes/<pack>; the dev tree
    for root in roots:
        if (root / T5_TOKENIZER_JSON).is_file():
            return root / T5_TOKENIZER_JSON
    raise MultiIDError(
        f"No ComfyUI T5 tokenizer ({T5_TOKENIZER_JSON}) found under {', '.join(map(str, roots))}. Set COMFYUI_PATH "
        "to a ComfyUI checkout or pass tokenizer_json."
    )


def write_t5_tokenizer(
    folder: str | os.PathLike, tokenizer_json: str | os.PathLike | None = None, pieces: int = _SPIECE_PIECES
) -> list[Path]:
    """A T5 `tokenizer/` folder as transformers' T5Tokenizer saves it: spiece.model plus three json files.

    `pieces` < 32000 keeps only T5's first (most likely) pieces, for a tiny encoder with a tiny embedding."""
    from sentencepiece import sentencepiece_model_pb2 as spm

    source = json.loads(Path(tokenizer_json or find_t5_tokenizer_json()).read_text())
    charsmap = next(n for n in source["normalizer"]["normalizers"] if n["type"] == "Precompiled")
    model = spm.ModelProto()
    kinds = {0: spm.ModelProto.SentencePiece.CONTROL, 1: spm.ModelProto.SentencePiece.CONTROL}
    kinds[source["model"]["unk_id"]] = spm.ModelProto.SentencePiece.UNKNOWN
    for i, (piece, score) in enumerate(source["model"]["vocab"][:pieces]):
        model.pieces.add(piece=piece, score=score, type=kinds.get(i, spm.ModelProto.SentencePiece.NORMAL))
    model.trainer_spec.model_type = spm.TrainerSpec.UNIGRAM
    model.trainer_spec.vocab_size = pieces
    model.trainer_spec.pad_id, model.trainer_spec.eos_id, model.trainer_spec.unk_id = 0, 1, 2
    model.trainer_spec.bos_id = -1
    model.normalizer_spec.name = "nmt_nfkc"
    model.normalizer_spec.precompiled_charsmap = base64.b64decode(charsmap["precompiled_charsmap"])
    model.normalizer_spec.add_dummy_prefix = True
    model.normalizer_spec.remove_extra_whitespaces = True
    model.normalizer_spec.escape_whitespaces = True

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spiece.model").write_bytes(model.SerializeToString())
    extra = [f"<extra_id_{i}>" for i in range(100)]
    specials = {"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
    files = {
        "special_tokens_map.json": {**specials, "additional_special_tokens": extra},
        "added_tokens.json": {token: pieces + 99 - i for i, token in enumerate(extra)},  # after the pieces
        "tokenizer_config.json": {
            **specials,
            "additional_special_tokens": extra,
            "clean_up_tokenization_spaces": True,
            "extra_ids": 100,
            "legacy": True,
            "model_max_length": 226,
            "sp_model_kwargs": {},
            "tokenizer_class": "T5Tokenizer",
        },
    }
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content, indent=2))
    return [folder / "spiece.model", *(folder / name for name in files)]
