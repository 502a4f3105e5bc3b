"""Bad input through a real ComfyUI server (POST /prompt): a clear node error, then the next prompt works.

Every case is the small ConsisID graph of reliability_graphs (or its KSampler, SamplerCustomAdvanced and
Concat-ID Wan variants) with one thing wrong. The error must be our
MultiIDError or ComfyUI's validation message, say what was wrong and what to do (the patterns), and the
very next valid prompt (a new seed, so the sampler really runs again) must succeed. Inputs that are
unusual but valid (huge, greyscale, RGBA, 16-bit RGB, mixed sizes, odd masks) must simply work.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from build_workflows import EXAMPLE_LORA
from PIL import Image
from reliability_graphs import (
    animated_mask,
    assert_clear,
    fresh_seed,
    lora,
    node_images,
    outcome,
    solid_mask,
    succeed,
    video_prompt,
    with_ksampler,
    with_model_patch,
    with_router,
    with_sampler_custom_advanced,
)

from multiid_core.catalog import CONCAT_ID_WAN_ADALN_FILE

pytestmark = pytest.mark.server

FACES = "face_encoder/models/antelopev2"


def three_faces(index: int) -> dict:
    return video_prompt(antelopev2=f"ThreeFaces/{FACES}", encode={"face": "index", "face_index": index})


def photos_from(prompt: dict, node: dict) -> dict:
    prompt["photo"] = node
    return prompt


def image_batch() -> dict:
    prompt = video_prompt()
    prompt["photo_2"] = {"class_type": "LoadImage", "inputs": {"image": "person_2.png"}}
    prompt["batch"] = {"class_type": "ImageBatch", "inputs": {"image1": ["photo", 0], "image2": ["photo_2", 0]}}
    prompt["identity"]["inputs"]["photos"] = ["batch", 0]
    return prompt


def rgba_tensor() -> dict:
    """A 4-channel IMAGE: Join Image with Alpha on the photo and Load Image's mask."""
    prompt = video_prompt(photo="rgba.png")
    prompt["rgba"] = {"class_type": "JoinImageWithAlpha", "inputs": {"image": ["photo", 0], "alpha": ["photo", 1]}}
    prompt["identity"]["inputs"]["photos"] = ["rgba", 0]
    return prompt


def nan_prior_strength() -> dict:
    prompt = with_router(video_prompt(), 2, [solid_mask(1.0), solid_mask(0.0)], routing="learned + masks")
    prompt["router"]["inputs"]["prior_strength"] = float("nan")
    return prompt


def unknown_option() -> dict:
    prompt = video_prompt()
    prompt["model"]["inputs"]["precision"] = "fp64"
    return prompt


def plain_value(node: str, name: str, value) -> dict:
    """A value typed into the API prompt where a link to another node's output belongs."""
    prompt = video_prompt()
    prompt[node]["inputs"][name] = value
    return prompt


def with_face_file(name: str, path: str) -> dict:
    prompt = video_prompt()
    prompt["face"]["inputs"][name] = path
    return prompt


def with_t5(source: str) -> dict:
    prompt = video_prompt()
    prompt["t5"]["inputs"]["source"] = source
    return prompt


def with_wan_reference(text_from: str = "umt5", **size) -> dict:
    """The small graph plus Concat-ID Wan Reference on the same identity (Wan VAE; UMT5 or the T5 prompts)."""
    prompt = video_prompt()
    prompt["umt5"] = {
        "class_type": "MultiID_LoadUMT5TextEncoder",
        "inputs": {"text_encoder": "umt5_xxl_fp8_e4m3fn_scaled.safetensors", "device": "default"},
    }
    for name, text in (("wan_positive", "a person smiling"), ("wan_negative", "...")):
        prompt[name] = {"class_type": "CLIPTextEncode", "inputs": {"clip": ["umt5", 0], "text": text}}
    prompt["wan_vae"] = {"class_type": "VAELoader", "inputs": {"vae_name": "wan_2.1_vae.safetensors"}}
    positive, negative = ("positive", "negative") if text_from == "t5" else ("wan_positive", "wan_negative")
    prompt["wan_reference"] = {
        "class_type": "MultiID_ConcatIDWanReference",
        "inputs": {
            "positive": [positive, 0], "negative": [negative, 0], "vae": ["wan_vae", 0],
            "identity": ["identity", 0], "width": 64, "height": 48, "length": 5, "batch_size": 1,
            "references": "one (as released)", "regional_attention": True, **size,
        },
    }  # fmt: skip
    prompt["wan_preview"] = {"class_type": "PreviewImage", "inputs": {"images": ["wan_reference", 4]}}
    return prompt


def decode_wan_latents() -> dict:
    """MultiID Decode (CogVideoX VAE) given the latents of Concat-ID Wan Reference: both 16 channels."""
    prompt = with_wan_reference()
    prompt["decode"]["inputs"]["latent"] = ["wan_reference", 3]
    return prompt


WAN_MODEL = {
    "class_type": "MultiID_LoadConcatIDWan",
    "inputs": {"model": CONCAT_ID_WAN_ADALN_FILE.path, "weight_dtype": "default"},
}
TEACACHE = {"class_type": "MultiID_CogVideoXTeaCache", "inputs": {"threshold": "0.1"}}
DYNAMIC_CFG = {"class_type": "MultiID_DynamicCFGGuider", "inputs": {"cfg": 6.0}}


def wan_ksampler(sampler_name: str = "euler", patch: dict | None = None) -> dict:
    """Concat-ID Wan (reference, Load Concat-ID Wan Model) through KSampler and VAE Decode into the saved images;
    `patch` goes on the Wan MODEL."""
    prompt = with_wan_reference()
    prompt["wan"] = WAN_MODEL
    model = ["wan", 0]
    if patch is not None:
        prompt["wan_patch"] = {**patch, "inputs": {**patch["inputs"], "model": model}}
        model = ["wan_patch", 0]
    prompt["wan_sampler"] = {
        "class_type": "KSampler",
        "inputs": {
            "model": model, "positive": ["wan_reference", 0], "negative": ["wan_reference", 1],
            "latent_image": ["wan_reference", 3], "seed": fresh_seed(), "steps": 2, "cfg": 5.0,
            "sampler_name": sampler_name, "scheduler": "multiid_linear_time", "denoise": 1.0,
        },
    }  # fmt: skip
    prompt["decode"] = {"class_type": "VAEDecode", "inputs": {"samples": ["wan_sampler", 0], "vae": ["wan_vae", 0]}}
    return prompt


def conditioning_on_wan_model() -> dict:
    prompt = with_ksampler(video_prompt())
    prompt["wan"] = WAN_MODEL
    prompt["conditioning"]["inputs"]["model"] = ["wan", 0]
    return prompt


def ksampler_without_identity_conditioning() -> dict:
    """KSampler on the ConsisID MODEL with the prompts straight from MultiID Text Encode and an empty video latent."""
    prompt = with_ksampler(video_prompt())
    prompt["empty"] = {
        "class_type": "EmptyHunyuanLatentVideo",
        "inputs": {"width": 64, "height": 64, "length": 5, "batch_size": 1},
    }
    prompt["sampler"]["inputs"].update(positive=["positive", 0], negative=["negative", 0], latent_image=["empty", 0])
    return prompt


def with_lora(name: str) -> dict:
    return with_model_patch(with_ksampler(video_prompt()), "lora", lora(name))


# id -> (prompt, patterns the message must match)
REFUSED = {
    # photos
    "no face": (
        lambda: video_prompt(antelopev2=f"NoFaces/{FACES}"),
        [r"No face found in the photo", r"clearly visible", r"80 pixels"],
    ),
    "several faces, face_index out of range": (
        lambda: three_faces(5),
        [r"face_index 5 is out of range", r"3 face\(s\) were found, numbered 0 to 2", r"detections preview"],
    ),
    "32x32 photo": (lambda: video_prompt(photo="tiny_32.png"), [r"only 32x32 pixels", r"at least 64 pixels"]),
    "16-bit greyscale PNG (Load Image clips it to white)": (
        lambda: video_prompt(photo="gray_16bit.png"),
        [r"blank", r"RGB \(255, 255, 255\)", r"16-bit PNG", r"8-bit PNG or a JPEG"],
    ),
    "all-black frame": (
        lambda: video_prompt(photo="black.png"),
        [r"the photo is blank", r"RGB \(0, 0, 0\)", r"Connect a photo of the person", r"empty or failed image"],
    ),
    "64x100000 photo (a strip)": (
        lambda: video_prompt(photo="strip_100000x64.png"),
        [r"is 100000x64 pixels", r"it would be 1024x0, too thin to find a face", r"Crop the photo around the face"],
    ),
    "unknown face choice (API)": (
        lambda: video_prompt(encode={"face": "biggest"}),
        [r"face 'biggest' is not an option of Encode Identity", r"choose one of 'largest', 'index', 'central'"],
    ),
    # masks
    "empty mask": (
        lambda: with_router(video_prompt(), 1, [solid_mask(0.0)]),
        [r"mask for identity 1 is empty \(all black\)", r"paint where this person should appear"],
    ),
    "two full masks (person 2 hidden)": (
        lambda: with_router(video_prompt(), 2, [solid_mask(1.0), solid_mask(1.0)]),
        [r"identity 2 would appear nowhere", r"earlier person on a tie", r"own area", r"learned \+ masks"],
    ),
    "more masks than identities": (
        lambda: with_router(video_prompt(), 1, [solid_mask(1.0), solid_mask(1.0)]),
        [r"mask_2 is connected but identity_2 is not", r"connect person 2, or the mask"],
    ),
    "mask with a wrong frame count": (
        lambda: with_router(video_prompt(), 1, [animated_mask("mask_3_frames.png")]),
        [r"has 3 frames", r"give 1 \(the same mask for the whole video\), 5 \(one per video frame\) or 2"],
    ),
    # sampler settings
    "frames not 4k+1": (lambda: video_prompt(frames=6), [r"frames must be 4k\+1", r"got 6\. Use 5 or 9"]),
    "frames beyond the model's grid": (
        lambda: video_prompt(frames=53),
        [r"learned positions for at most 49 frames; got 53", r"Use 49"],
    ),
    "width beyond the model's grid": (
        lambda: video_prompt(width=736),
        [r"at most 720x480 pixels", r"got 736x64", r"Use 720x480"],
    ),
    "width not a multiple of 16": (lambda: video_prompt(width=100), [r"width must be a multiple of 16", r"Use 96"]),
    "height not a multiple of 16": (lambda: video_prompt(height=72), [r"height must be a multiple of 16", r"Use 64"]),
    "zero steps (ComfyUI validation)": (
        lambda: video_prompt(steps=0),
        [r"^validation: ", r"Value 0 smaller than min of 1: steps"],
    ),
    "unknown option (API: precision fp64)": (
        unknown_option,
        [r"precision 'fp64' is not an option of Load MultiID Video Model", r"choose one of 'bf16', 'fp16', 'fp32'"],
    ),
    # NaN and infinities through the API (ComfyUI's own range check lets NaN pass): refused when queued
    "NaN cfg (API)": (
        lambda: video_prompt(cfg=float("nan")),
        [r"^validation: ", r"cfg of MultiID Sampler is nan, not a number ComfyUI can use", r"set it to a finite"],
    ),
    "infinite identity_strength (API)": (
        lambda: video_prompt(identity_strength=float("inf")),
        [r"identity_strength of MultiID Sampler is inf, not a number", r"from 0\.0 to "],
    ),
    "NaN prior_strength (API)": (nan_prior_strength, [r"^validation: ", r"prior_strength of ID Router is nan"]),
    # plain values where a link belongs (API): refused when queued, naming the node whose output fits
    "a number where an identity belongs (API)": (
        lambda: plain_value("sampler", "identity", 5),
        [
            r"^validation: ",
            r"identity of MultiID Sampler takes the output of Encode Identity or ID Router, not the "
            r"value 5",
            r"Connect it to that node's output",
        ],
    ),  # fmt: skip
    "a number where the video VAE belongs (API)": (
        lambda: plain_value("decode", "vae", 3),
        [r"^validation: ", r"vae of MultiID Decode takes the output of Load MultiID Video Model, not the value 3"],
    ),
    "a number where the model belongs (API)": (
        lambda: plain_value("sampler", "model", 3),
        [
            r"^validation: ",
            r"model of MultiID Sampler takes the output of Load MultiID Video Model or Load Concat-ID Wan Model "
            r"\(Stand-In and Phantom: ComfyUI's Load Diffusion Model\), not the value 3",
        ],
    ),
    "text where the face extractor belongs (API)": (
        lambda: plain_value("identity", "face_extractor", "antelopev2"),
        [r"^validation: ", r"face_extractor of Encode Identity takes the output of Load Face Extractor"],
    ),
    # wrong-family wiring: the families' outputs look alike (16-channel latents, 4096-wide prompts)
    "MultiID Decode given Concat-ID-Wan latents": (
        decode_wan_latents,
        [r"latents come from Concat-ID-Wan", r"VAE Decode and the Wan 2\.1 VAE", r"wan_2\.1_vae\.safetensors"],
    ),
    "Concat-ID Wan Reference given MultiID Text Encode prompts": (
        lambda: with_wan_reference(text_from="t5"),
        [r"positive conditioning comes from MultiID Text Encode", r"Load UMT5 Text Encoder \(Wan\)"],
    ),
    "MultiID Identity Conditioning given a Concat-ID Wan MODEL": (
        conditioning_on_wan_model,
        [
            r"This MODEL is not a CogVideoX-family identity model",
            r"with Load MultiID Video Model",
            r"Concat-ID Wan takes Concat-ID Wan Reference instead",
        ],
    ),
    "KSampler with cogvideox_dpm on a Concat-ID Wan MODEL": (
        lambda: wan_ksampler("cogvideox_dpm"),
        [r"cogvideox_dpm and cogvideox_ddim sample CogVideoX-family models", r"choose another sampler"],
    ),
    "MultiID TeaCache (CogVideoX) on a Concat-ID Wan MODEL": (
        lambda: wan_ksampler(patch=TEACACHE),
        [
            r"MultiID TeaCache \(CogVideoX\) works on the MODEL of Load MultiID Video Model",
            r"takes MultiID TeaCache \(Wan\)",
        ],
    ),
    "KSampler on prompts that skipped MultiID Identity Conditioning": (
        ksampler_without_identity_conditioning,
        [r"32-channel model got 16-channel latents", r"through MultiID Identity Conditioning"],
    ),
    # LoRAs on the CogVideoX MODEL (LoraLoaderModelOnly)
    "a LoRA for another model (Wan keys)": (
        lambda: with_lora("wan_style_lora.safetensors"),
        [
            r"This LoRA does not fit the CogVideoX-family model: 2 of its 2 keys name no layer of it",
            r"diffusion_model\.blocks\.0\.self_attn\.q\.lora_A\.weight",
            r"load a LoRA trained for CogVideoX-5B",
        ],
    ),
    "a LoRA for a CogVideoX of another width": (
        lambda: with_lora("wider_cogvideox_lora.safetensors"),
        [
            r"1 of its layers have other shapes than the model's",
            r"transformer_blocks\.0\.attn1\.to_q` \(LoRA \[64, 64\], model \[48, 48\]\)",
            r"load a LoRA trained for CogVideoX-5B",
        ],
    ),
    # the native sampling path's nodes
    "frames not 4k+1 (MultiID Identity Conditioning)": (
        lambda: with_ksampler(video_prompt(frames=6)),
        [r"frames must be 4k\+1", r"got 6\. Use 5 or 9"],
    ),
    "NaN cfg of MultiID Dynamic CFG Guider (API)": (
        lambda: with_sampler_custom_advanced(video_prompt(), {**DYNAMIC_CFG, "inputs": {"cfg": float("nan")}}),
        [r"^validation: ", r"cfg of MultiID Dynamic CFG Guider is nan, not a number ComfyUI can use"],
    ),
    # sizes within the nodes' limits that no memory holds: refused before anything is allocated
    "Concat-ID Wan Reference at 2048x2048, 1025 frames, batch 64": (
        lambda: with_wan_reference(width=2048, height=2048, length=1025, batch_size=64),
        [r"64 video\(s\) of 1025 frames at 2048x2048 need at least 257\.0 GB", r"GB are free", r"Lower batch_size"],
    ),
    # model files
    "truncated transformer shard": (
        lambda: video_prompt(model="Truncated"),
        [r"Could not read the transformer file .*Truncated/transformer/", r"truncated", r"download it again"],
    ),
    "wrong family: CogVideoX without identity modules": (
        lambda: video_prompt(model="CogVideoX-plain"),
        [r"not a checkpoint of a model family MultiID runs", r"local_facial_extractor", r"Supported: .*Ingredients"],
    ),
    "wrong family: a Wan DiT file": (
        lambda: video_prompt(model="diffusion_models/wan2.1_t2v_1.3B.safetensors"),
        [r"is a Wan DiT, not a CogVideoX-family transformer", r"Load Concat-ID Wan Model"],
    ),
    "Ingredients without its router tensors": (
        lambda: video_prompt(model="Ingredients-no-router"),
        [r"looks like the Ingredients release but its transformer has no router", r"Download .*00002-of-00002"],
    ),
    "Ingredients with router keys missing": (
        lambda: video_prompt(model="Ingredients-half-router"),
        [r"does not match the Ingredients transformer: \d+ missing tensors \(e\.g\. router\.0\.", r"Download"],
    ),
    "corrupt ONNX (detector)": (
        lambda: video_prompt(antelopev2=f"CorruptOnnx/{FACES}"),
        [r"scrfd_10g_bnkps\.onnx: the file is damaged or not an ONNX model", r"download it again"],
    ),
    "integer weights (face parser)": (
        lambda: with_face_file("face_parser", "IntWeights/face_encoder/parsing_bisenet.pth"),
        [
            r"IntWeights/face_encoder/parsing_bisenet\.pth holds \d+ tensors of integers or booleans where the face "
            r"parser .* needs floating-point weights \(e\.g\. .*: torch\.int64\)",
            r"Download parsing_bisenet\.pth",
        ],
    ),  # fmt: skip
    "integer weights (transformer)": (
        lambda: video_prompt(model="IntTransformer"),
        [
            r"IntTransformer/transformer holds 2 tensors of integers or booleans where the ConsisID transformer needs "
            r"floating-point weights \(e\.g\. proj_out\.bias: torch\.int64\)",
            r"Download",
        ],
    ),  # fmt: skip
    "integer weights (T5)": (
        lambda: with_t5("T5-int-weights/text_encoder"),
        [
            r"T5-int-weights/text_encoder holds \d+ tensors of integers .* where the T5 text encoder needs "
            r"floating-point weights",
            r"Download the text_encoder/ and tokenizer/ folders",
        ],
    ),  # fmt: skip
    "NaN weights (EVA-CLIP)": (
        lambda: with_face_file("eva_clip", "NaNWeights/face_encoder/EVA02_CLIP_L_336_psz14_s6B.pt"),
        [
            r"EVA02_CLIP_L_336_psz14_s6B\.pt is damaged: \d+ tensors of the EVA02-CLIP-L-14-336 vision tower hold "
            r"NaN or infinite values",
            r"Download it again",
        ],
    ),  # fmt: skip
    "NaN weights (ArcFace)": (
        lambda: video_prompt(antelopev2=f"NaNArcFace/{FACES}"),
        [
            r"NaNArcFace/.*glintr100\.onnx gave a NaN or infinite face embedding: the file is damaged",
            r"Download it again",
        ],
    ),  # fmt: skip
    "NaN weights (face detector)": (
        lambda: video_prompt(antelopev2=f"NaNDetector/{FACES}"),
        [r"NaNDetector/.*scrfd_10g_bnkps\.onnx is damaged", r"would find no face in any photo", r"download it again"],
    ),
    "NaN weights (identity modules)": (
        lambda: video_prompt(model="NaN-identity-modules"),
        [
            r"NaN-identity-modules/transformer is damaged: 1 tensors of the ConsisID identity modules hold NaN",
            r"local_facial_extractor\.latents",
            r"Download it again",
        ],
    ),  # fmt: skip
    "NaN weights (VAE)": (
        lambda: video_prompt(model="NaN-VAE"),
        [r"NaN-VAE/vae is damaged: \d+ tensors of the CogVideoX VAE hold NaN", r"Download it again"],
    ),
    "NaN weights (T5: its output is checked)": (
        lambda: with_t5("T5-NaN-weights/text_encoder"),
        [r"T5 text encoder gave NaN or infinite values for this prompt", r"download the text encoder again"],
    ),
    # configs of the wrong shape
    "transformer config.json that is a list": (
        lambda: video_prompt(model="ListConfig"),
        [r"ListConfig/transformer/config\.json holds a list, not the object of settings", r"Download it again"],
    ),
    "T5 config.json without d_model": (
        lambda: with_t5("T5-no-d-model/text_encoder"),
        [
            r"T5-no-d-model/text_encoder/config\.json lacks d_model, which the T5 text encoder needs",
            r"Download it again",
        ],
    ),  # fmt: skip
    "VAE config.json with a size as a string": (
        lambda: video_prompt(model="VAE-string-config"),
        [
            r"VAE-string-config/vae/config\.json sets latent_channels to \"\d+\"; it must be a whole number",
            r"Download it again",
        ],
    ),  # fmt: skip
}

# id -> (prompt, sizes of Encode Identity's detections preview: one picture per photo it encoded, or None
# where the node may come from ComfyUI's cache). One 5-frame video each: one identity, not one per photo.
ACCEPTED = {
    "several faces: the largest is taken": (lambda: video_prompt(antelopev2=f"ThreeFaces/{FACES}"), [(112, 112)]),
    "8000x8000 photo": (lambda: video_prompt(photo="huge_8000.jpg"), [(1024, 1024)]),  # as detected: long edge 1024
    "greyscale PNG": (lambda: video_prompt(photo="gray.png"), None),
    "RGBA PNG": (lambda: video_prompt(photo="rgba.png"), None),
    "RGBA IMAGE (4 channels)": (rgba_tensor, None),
    "16-bit RGB PNG": (lambda: video_prompt(photo="rgb_16bit.png"), None),
    "mixed sizes from a folder (a list)": (
        lambda: photos_from(
            video_prompt(), {"class_type": "LoadImageDataSetFromFolder", "inputs": {"folder": "mixed_sizes"}}
        ),
        [(900, 800)] * 3,  # 600x800, 512x512 and 900x700, padded to one batch for the preview
    ),
    "mixed sizes through Batch Images (it resizes)": (image_batch, [(112, 112), (112, 112)]),
    "full mask": (lambda: with_router(video_prompt(), 1, [solid_mask(1.0)]), None),
    "mask of another size (stretched)": (lambda: with_router(video_prompt(), 1, [solid_mask(1.0, 200, 30)]), None),
    "KSampler with cogvideox_ddim and multiid_trailing": (
        lambda: with_ksampler(video_prompt(), "cogvideox_ddim"),
        None,
    ),
    "KSampler with the example LoRA (diffusers keys) and TeaCache (CogVideoX)": (
        lambda: with_model_patch(
            with_model_patch(with_ksampler(video_prompt()), "lora", lora(EXAMPLE_LORA)), "teacache", TEACACHE
        ),
        None,
    ),
    "SamplerCustomAdvanced with MultiID Dynamic CFG Guider": (
        lambda: with_sampler_custom_advanced(video_prompt(), DYNAMIC_CFG),
        None,
    ),
    "mask empty in the first frame (person enters later)": (
        lambda: with_router(video_prompt(), 1, [animated_mask("mask_enters_late.png")]),
        None,
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_bad_input_is_refused_clearly_and_the_next_prompt_works(server, case):
    build, patterns = REFUSED[case]
    error, _ = outcome(server, build())
    assert_clear(error, *patterns)
    assert "Traceback" not in error and "weights_only=False" not in error
    succeed(server, video_prompt())


def saved_size(server, image: dict) -> tuple[int, int]:
    with Image.open(Path(server.base) / image["type"] / image["subfolder"] / image["filename"]) as picture:
        return picture.size


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_unusual_but_valid_input_works(server, case):
    build, previews = ACCEPTED[case]
    entry = succeed(server, build())
    frames = node_images(entry, "save")
    assert len(frames) == 5 and {saved_size(server, f) for f in frames} == {(64, 64)}  # one 5-frame video
    if previews is not None:
        assert sorted(saved_size(server, d) for d in node_images(entry, "identity")) == sorted(previews)
