"""LoadTextEncoder and TextEncode inside ComfyUI, against diffusers' ConsisID prompt encoding."""

import logging
import sys
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file, save_file
from tensors import rel_err

from multiid_tools.tiny_models.t5 import TINY_T5, TINY_T5_PROMPT, tiny_t5_state_dict, write_tiny_t5_file

SNAPSHOT = "ConsisID-preview/text_encoder"
PROMPT = (
    "A young woman with curly red hair, wearing a green raincoat, laughs as she walks through a busy market "
    "on a rainy evening; neon signs reflect in the puddles and the camera slowly follows her."
)
LONG_PROMPT = " ".join(f"Scene {i}: a man in a blue suit waves at the crowd from a balcony." for i in range(20))
# "first pieces": a prompt the tiny single files (read with ComfyUI's full tokenizer) can encode too
PROMPTS = {"normal": PROMPT, "empty negative": "", "over 226 tokens": LONG_PROMPT, "first pieces": TINY_T5_PROMPT}
SINGLE_FILE_PROMPTS = {"first pieces": TINY_T5_PROMPT, "empty negative": ""}
WIDTH = TINY_T5["d_model"]


def pack_module(node_classes, name: str):
    """A module of the pack as ComfyUI loaded it (the pack is imported under its folder name)."""
    root = node_classes["MultiID_TextEncode"].__module__.rsplit(".nodes.", 1)[0]
    return sys.modules[f"{root}.{name}"]


def encode(node_classes, clip, text: str) -> torch.Tensor:
    conditioning = node_classes["MultiID_TextEncode"].execute(clip, text).result[0]
    assert len(conditioning) == 1 and conditioning[0][1] == {"multiid_family": "cogvideox"}  # only the family tag
    return conditioning[0][0]


@pytest.fixture(scope="module")
def snapshot_clip(node_classes):
    return node_classes["MultiID_LoadTextEncoder"].execute(SNAPSHOT, "fp32", "default").result[0]


@pytest.fixture(scope="module")
def ours(node_classes, snapshot_clip):
    return {name: encode(node_classes, snapshot_clip, text) for name, text in PROMPTS.items()}


@pytest.fixture(scope="module")
def reference(comfy_base):
    """diffusers' ConsisIDPipeline._get_t5_prompt_embeds on transformers' T5EncoderModel + T5Tokenizer, fp32.

    Eager attention, as the authors ran it (transformers 4.x's T5 had no other); transformers 5's default SDPA
    kernel rounds differently (1.2e-5 from ours on the empty prompt, both within 1e-5 of an fp64 run)."""
    from diffusers.pipelines.consisid.pipeline_consisid import ConsisIDPipeline
    from transformers import T5EncoderModel, T5Tokenizer

    snapshot = comfy_base / "models" / "multiid" / "ConsisID-preview"
    pipe = SimpleNamespace(
        tokenizer=T5Tokenizer.from_pretrained(str(snapshot / "tokenizer")),
        text_encoder=T5EncoderModel.from_pretrained(
            str(snapshot / "text_encoder"), dtype=torch.float32, attn_implementation="eager"
        ).eval(),
        _execution_device=torch.device("cpu"),
    )
    with torch.no_grad():
        return {
            name: ConsisIDPipeline._get_t5_prompt_embeds(pipe, text, device=torch.device("cpu"), dtype=torch.float32)
            for name, text in PROMPTS.items()
        }


@pytest.mark.parametrize("name", list(PROMPTS))
def test_matches_the_authors_pipeline(ours, reference, name):
    assert ours[name].shape == reference[name].shape == (1, 226, WIDTH)
    assert ours[name].dtype == torch.float32 and ours[name].device.type == "cpu"
    assert rel_err(ours[name], reference[name]) < 1e-5


def test_long_prompt_is_cut_with_a_warning(node_classes, snapshot_clip, caplog):
    with caplog.at_level(logging.WARNING):
        encode(node_classes, snapshot_clip, LONG_PROMPT)
    warning = next(r.getMessage() for r in caplog.records if "was cut" in r.getMessage())
    assert "Scene 19: a man in a blue suit waves" in warning
    assert "Scene 0:" not in warning


@pytest.mark.parametrize("dtype, precision, tolerance", [(torch.bfloat16, "fp32", 1e-6), (torch.float16, "auto", 1e-3)])
def test_single_file_equals_the_snapshot(node_classes, comfy_base, ours, dtype, precision, tolerance):
    """Read by ComfyUI's own loader (Load CLIP, type sd3); weights stored narrower than asked stay as stored."""
    name = f"t5xxl_tiny_{str(dtype)[6:]}.safetensors"
    write_tiny_t5_file(comfy_base / "models" / "text_encoders" / name, dtype=dtype)
    clip = node_classes["MultiID_LoadTextEncoder"].execute(f"text_encoders/{name}", precision, "default").result[0]
    encoder = clip.cond_stage_model.t5xxl
    assert encoder.transformer.shared.weight.dtype == dtype
    assert type(clip.tokenizer.t5xxl.tokenizer).__name__.startswith("T5Tokenizer")  # ComfyUI's bundled one
    for key, text in SINGLE_FILE_PROMPTS.items():
        assert rel_err(encode(node_classes, clip, text), ours[key]) < tolerance


def test_scaled_fp8_file_is_read_with_its_scales(node_classes, comfy_base):
    """A t5xxl_fp8_e4m3fn_scaled-style file (fp8 weights, per-tensor `scale_weight`, the `scaled_fp8` marker):
    MultiID Text Encode gives what the same weights dequantised give, not what the fp8 values alone give."""
    folder = comfy_base / "models" / "text_encoders"
    sd = load_file(str(write_tiny_t5_file(folder / "t5xxl_tiny_fp8_e4m3fn_scaled.safetensors", scaled=True)))
    scales = {k.removesuffix("scale_weight") + "weight": v for k, v in sd.items() if k.endswith(".scale_weight")}
    assert scales and sd["encoder.block.0.layer.0.SelfAttention.q.weight"].dtype == torch.float8_e4m3fn
    weights = {k: v.float() for k, v in sd.items() if not k.endswith("scale_weight") and k != "scaled_fp8"}
    save_file(
        {k: v * scales.get(k, 1.0) for k, v in weights.items()}, str(folder / "t5xxl_tiny_dequantised.safetensors")
    )
    save_file(weights, str(folder / "t5xxl_tiny_scales_lost.safetensors"))
    load = node_classes["MultiID_LoadTextEncoder"].execute
    clips = {
        name: load(f"text_encoders/t5xxl_tiny_{name}.safetensors", precision, "default").result[0]
        for name, precision in (("fp8_e4m3fn_scaled", "auto"), ("dequantised", "fp32"), ("scales_lost", "fp32"))
    }
    q = clips["fp8_e4m3fn_scaled"].cond_stage_model.t5xxl.transformer.encoder.block[0].layer[0].SelfAttention.q
    assert q.weight.dtype == torch.float8_e4m3fn  # kept in fp8, scaled when used
    for text in SINGLE_FILE_PROMPTS.values():
        scaled, dequantised, scales_lost = (encode(node_classes, clips[name], text) for name in clips)
        # ComfyUI multiplies the scale in at run time, so the products round apart from the precomputed weights:
        # 1.7e-6 through the tiny T5 on a 2-core CPU (CPU kernels differ by machine); a lost scale is 0.1 off.
        assert rel_err(scaled, dequantised) < 1e-5
        assert rel_err(scales_lost, dequantised) > 0.1


def test_file_with_the_encoder_under_other_names(node_classes, comfy_base, ours):
    """A checkpoint that bundles encoders (`text_encoders.t5xxl.transformer.` prefix, `embed_tokens` for the
    embedding) is renamed here, then loaded through ComfyUI's loader for state dicts."""
    prefix = "text_encoders.t5xxl.transformer."
    sd = {prefix + k: v.to(torch.bfloat16) for k, v in tiny_t5_state_dict().items()}
    sd[prefix + "encoder.embed_tokens.weight"] = sd.pop(prefix + "shared.weight")
    save_file(sd, str(comfy_base / "models" / "text_encoders" / "t5xxl_tiny_bundled.safetensors"))
    load = node_classes["MultiID_LoadTextEncoder"].execute
    clip = load("text_encoders/t5xxl_tiny_bundled.safetensors", "auto", "cpu").result[0]
    for key, text in SINGLE_FILE_PROMPTS.items():
        assert rel_err(encode(node_classes, clip, text), ours[key]) < 1e-6


def tiny_config(node_classes) -> dict:
    return pack_module(node_classes, "multiid_core.text_encoders").t5_config_from_state_dict(
        tiny_t5_state_dict(), "tiny"
    )


@pytest.mark.parametrize("factory", ["sd3", "mochi", "pixart"])
def test_native_t5_clip_classes(node_classes, ours, factory):
    """CLIPs built as Load CLIP builds them for a T5-XXL file, at a tiny size; mochi switches T5's mask on."""
    import comfy.sd
    import comfy.text_encoders.genmo as genmo
    import comfy.text_encoders.pixart_t5 as pixart
    import comfy.text_encoders.sd3_clip as sd3

    targets = {
        "sd3": (sd3.sd3_clip(clip_l=False, clip_g=False, t5=True, dtype_t5=torch.float32), sd3.SD3Tokenizer),
        "mochi": (genmo.mochi_te(dtype_t5=torch.float32), genmo.MochiT5Tokenizer),
        "pixart": (pixart.pixart_te(dtype_t5=torch.float32), pixart.PixArtTokenizer),
    }
    model, tokenizer = targets[factory]
    sd = {k: v.to(torch.bfloat16).float() for k, v in tiny_t5_state_dict().items()}
    clip = comfy.sd.CLIP(
        SimpleNamespace(clip=model, tokenizer=tokenizer, params={}),
        parameters=sum(v.numel() for v in sd.values()),
        model_options={"t5xxl_model_config": tiny_config(node_classes), "dtype": torch.float32},
    )
    missing, _ = clip.load_sd(sd)
    assert not missing
    masked = clip.cond_stage_model.t5xxl.enable_attention_masks
    for key, text in SINGLE_FILE_PROMPTS.items():
        embeddings = encode(node_classes, clip, text)
        assert embeddings.shape == (1, 226, WIDTH)
        assert rel_err(embeddings, ours[key]) < 1e-6
    assert clip.cond_stage_model.t5xxl.enable_attention_masks == masked  # the clip is left as it came


@pytest.fixture(scope="module")
def narrow_t5_xxl():
    """A state dict Load CLIP detects as T5-XXL (24 blocks, 4096 wide) while tiny elsewhere."""
    config = {"d_ff": 8, "num_heads": 1, "d_kv": 8, "vocab_size": 8}
    sd = {"shared.weight": torch.randn(8, 4096).half(), "encoder.final_layer_norm.weight": torch.ones(4096).half()}
    for i in range(24):
        block = f"encoder.block.{i}.layer"
        sd.update({f"{block}.0.SelfAttention.{x}.weight": torch.randn(8, 4096).half() for x in "qkv"})
        sd[f"{block}.0.SelfAttention.o.weight"] = torch.randn(4096, 8).half()
        sd.update({f"{block}.1.DenseReluDense.{x}.weight": torch.randn(8, 4096).half() for x in ("wi_0", "wi_1")})
        sd[f"{block}.1.DenseReluDense.wo.weight"] = torch.randn(4096, 8).half()
        sd.update({f"{block}.{j}.layer_norm.weight": torch.ones(4096).half() for j in (0, 1)})
    sd["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"] = torch.randn(32, 1).half()
    return sd, config


@pytest.mark.parametrize("clip_type", ["sd3", "mochi", "ltxv", "pixart", "chroma", "hidream", "cosmos"])
def test_load_clip_types_hold_a_usable_t5(node_classes, narrow_t5_xxl, clip_type):
    """ComfyUI's own loader (what Load CLIP calls) on a T5-XXL file: the pack finds the T5 and its tokenizer."""
    import comfy.sd

    sd, config = narrow_t5_xxl
    clip = comfy.sd.load_text_encoder_state_dicts(
        [dict(sd)],
        clip_type=getattr(comfy.sd.CLIPType, clip_type.upper()),
        model_options={"t5xxl_model_config": config},
    )
    encoder, tokenizer = pack_module(node_classes, "nodes.text.t5").t5_parts(clip)
    assert encoder.transformer.shared.weight.shape == (8, 4096)
    assert tokenizer("a cat")["input_ids"] == [3, 9, 1712, 1]


def test_a_clip_without_t5_is_refused(node_classes):
    not_t5 = SimpleNamespace(cond_stage_model=torch.nn.Module(), tokenizer=object())
    error = pack_module(node_classes, "multiid_core.errors").MultiIDError
    with pytest.raises(error, match="no T5-v1.1-XXL.*type sd3"):
        node_classes["MultiID_TextEncode"].execute(not_t5, PROMPT)


def test_umt5_file_is_refused(node_classes, comfy_base):
    sd = {k: v.half() for k, v in tiny_t5_state_dict().items()}
    sd["encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight"] = torch.zeros(32, 2).half()
    save_file(sd, str(comfy_base / "models" / "text_encoders" / "t5xxl_tiny_mislabelled.safetensors"))
    error = pack_module(node_classes, "multiid_core.errors").MultiIDError
    with pytest.raises(error, match="UMT5"):
        node_classes["MultiID_LoadTextEncoder"].execute(
            "text_encoders/t5xxl_tiny_mislabelled.safetensors", "auto", "cpu"
        )


def test_missing_source_names_path_and_download(node_classes, comfy_base):
    error = pack_module(node_classes, "multiid_core.errors").MultiIDError
    with pytest.raises(error) as raised:
        node_classes["MultiID_LoadTextEncoder"].execute("NotDownloaded/text_encoder", "auto", "default")
    message = str(raised.value)
    assert "ComfyUI/models/multiid/NotDownloaded/text_encoder/" in message
    assert "ComfyUI/models/multiid/NotDownloaded/tokenizer/" in message
    assert "https://huggingface.co/BestWishYsh/ConsisID-preview" in message
    assert "text_encoder/ and tokenizer/" in message
    assert str(comfy_base / "models" / "multiid") in message
    with pytest.raises(error, match="t5xxl_fp16.safetensors.*ComfyUI/models/text_encoders"):
        node_classes["MultiID_LoadTextEncoder"].execute("text_encoders/t5xxl_fp16.safetensors", "auto", "default")


@pytest.mark.parametrize("node_id", ["MultiID_LoadTextEncoder", "MultiID_TextEncode"])
def test_every_input_has_a_tooltip(node_classes, node_id):
    info = node_classes[node_id].GET_NODE_INFO_V1()
    assert info["category"] == "MultiID/text" and info["description"]
    inputs = {**info["input"]["required"], **info["input"].get("optional", {})}
    assert inputs and all(spec[1].get("tooltip") for spec in inputs.values())
    if node_id == "MultiID_LoadTextEncoder":
        assert SNAPSHOT in inputs["source"][1]["options"]
