"""CogVideoX-5B LoRAs through ComfyUI's own LoraLoaderModelOnly and LoraLoader on the pack's CogVideoX MODEL.

Reference: each LoRA merged by hand (W + strength * alpha/rank * B @ A) into the tiny ConsisID snapshot's weights;
compared with what ComfyUI's ModelPatcher writes into the model when it patches it.
"""

import sys
from pathlib import Path

import pytest
import torch
from comfy_env import pack_error
from safetensors.torch import save_file

RANK = 2
ALPHA = 1.0  # kohya style carries it: a scale of ALPHA / RANK
STRENGTH = 0.8
# Attention (in and out), both feed-forward layers, the patch embedding (a Conv2d) and a ConsisID-only layer.
LAYERS = (
    "transformer_blocks.0.attn1.to_q",
    "transformer_blocks.1.attn1.to_out.0",
    "transformer_blocks.0.ff.net.0.proj",
    "transformer_blocks.1.ff.net.2",
    "patch_embed.proj",
    "perceiver_cross_attention.0.to_q",
)
STYLES = {  # style -> (down key, up key) of a layer, and the alpha key where the style carries one
    "diffusers": lambda n: (f"transformer.{n}.lora_A.weight", f"transformer.{n}.lora_B.weight", None),
    "peft": lambda n: (f"base_model.model.{n}.lora_A.weight", f"base_model.model.{n}.lora_B.weight", None),
    "kohya": lambda n: (
        f"lora_unet_{n.replace('.', '_')}.lora_down.weight",
        f"lora_unet_{n.replace('.', '_')}.lora_up.weight",
        f"lora_unet_{n.replace('.', '_')}.alpha",
    ),
    "bare": lambda n: (f"{n}.lora_A.weight", f"{n}.lora_B.weight", None),
    "comfy": lambda n: (f"diffusion_model.{n}.lora_down.weight", f"diffusion_model.{n}.lora_up.weight", None),
}
REFUSED = "does not fit the CogVideoX-family model"


@pytest.fixture(scope="module")
def loaded(node_classes):
    return (
        node_classes["MultiID_LoadModel"]
        .execute("ConsisID-preview", "from model folder", "fp32", "same as precision")
        .result
    )


@pytest.fixture(scope="module")
def lora_module(node_classes):
    root = node_classes["MultiID_LoadModel"].__module__.rsplit(".nodes.", 1)[0]
    return sys.modules[f"{root}.nodes.cogvideox.lora"]


@pytest.fixture(scope="module")
def base(loaded):
    """The model's weights before any LoRA (copies)."""
    return {k: v.detach().clone() for k, v in loaded[0].model.state_dict().items()}


def write_lora(name: str, tensors: dict) -> str:
    import folder_paths

    folder = Path(folder_paths.get_folder_paths("loras")[0])
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, folder / name)
    return name


def factors(weight: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(down [RANK, in, ...], up [out, RANK, 1, ...]) for a Linear or Conv weight."""
    g = torch.Generator().manual_seed(seed)
    down = torch.randn(RANK, *weight.shape[1:], generator=g) * 0.1
    up = torch.randn(weight.shape[0], RANK, *[1] * (weight.dim() - 2), generator=g) * 0.1
    return down, up


def cogvideox_lora(style: str, base: dict) -> tuple[dict, dict]:
    """A rank-2 LoRA in `style`, and the weights merged by hand: {model key: W + strength * scale * B @ A}."""
    tensors, merged = {}, {}
    for seed, layer in enumerate(LAYERS):
        key = f"diffusion_model.{layer}.weight"
        down, up = factors(base[key], seed)
        down_key, up_key, alpha_key = STYLES[style](layer)
        tensors[down_key], tensors[up_key] = down, up
        scale = 1.0
        if alpha_key is not None:
            tensors[alpha_key] = torch.tensor(ALPHA)
            scale = ALPHA / RANK
        merged[key] = base[key] + STRENGTH * scale * (up.flatten(1) @ down.flatten(1)).reshape(base[key].shape)
    return tensors, merged


def patched_weights(patcher) -> dict:
    """The weights ComfyUI writes into the model for sampling, read back; the model is restored after."""
    patcher.patch_model()
    try:
        return {k: v.detach().clone() for k, v in patcher.model.state_dict().items()}
    finally:
        patcher.unpatch_model()


@pytest.mark.parametrize("style", sorted(STYLES))
def test_loraloadermodelonly_merges_each_style_as_by_hand(node_classes, loaded, base, style):
    model = loaded[0]
    tensors, merged = cogvideox_lora(style, base)
    name = write_lora(f"cogvideox_{style}.safetensors", tensors)
    (patched,) = node_classes["LoraLoaderModelOnly"]().load_lora_model_only(model, name, STRENGTH)
    assert patched is not model and len(patched.patches) == len(LAYERS)
    weights = patched_weights(patched)
    for key, expected in merged.items():
        assert not torch.equal(expected, base[key])
        torch.testing.assert_close(weights[key], expected, rtol=1e-6, atol=1e-6)
    for key in base.keys() - merged.keys():
        assert torch.equal(weights[key], base[key]), key
    for key, value in model.model.state_dict().items():  # unpatched again, and the input MODEL never patched
        assert torch.equal(value, base[key]), key


def test_loraloader_applies_text_encoder_keys_to_the_clip(node_classes, loaded, base):
    """Load LoRA with a CLIP: the T5's keys go to the CLIP, the transformer's to the MODEL, none is refused."""
    clip = node_classes["MultiID_LoadTextEncoder"].execute("ConsisID-preview/text_encoder", "fp32", "default").result[0]
    t5_key = next(k for k in clip.cond_stage_model.state_dict() if k.endswith("SelfAttention.q.weight"))
    t5_weight = clip.cond_stage_model.state_dict()[t5_key]
    tensors, _ = cogvideox_lora("diffusers", base)
    down, up = factors(t5_weight, 99)
    t5_name = "text_encoders." + t5_key[: -len(".weight")]
    tensors |= {f"{t5_name}.lora_A.weight": down, f"{t5_name}.lora_B.weight": up}
    name = write_lora("cogvideox_with_t5.safetensors", tensors)
    model, clip_lora = node_classes["LoraLoader"]().load_lora(loaded[0], clip, name, STRENGTH, 1.0)
    assert len(model.patches) == len(LAYERS) and set(clip_lora.patcher.patches) == {t5_key}
    with pytest.raises(pack_error(node_classes), match=rf"{REFUSED}: 2 of its 14 keys .*`{t5_name}.lora_A.weight`"):
        node_classes["LoraLoaderModelOnly"]().load_lora_model_only(loaded[0], name, STRENGTH)


FOREIGN = {
    "sdxl": (
        "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q",
        "lora_unet_mid_block_attentions_0_proj_in",
        "lora_te1_text_model_encoder_layers_0_self_attn_q_proj",
    ),
    "wan": ("diffusion_model.blocks.0.self_attn.q", "diffusion_model.blocks.0.ffn.0", "diffusion_model.head.head"),
}


def foreign_lora(kind: str) -> dict:
    g = torch.Generator().manual_seed(5)
    tensors = {}
    for layer in FOREIGN[kind]:
        down, up = (".lora_down.weight", ".lora_up.weight") if kind == "sdxl" else (".lora_A.weight", ".lora_B.weight")
        tensors |= {layer + down: torch.randn(RANK, 64, generator=g), layer + up: torch.randn(64, RANK, generator=g)}
        if kind == "sdxl":
            tensors[layer + ".alpha"] = torch.tensor(ALPHA)
    return tensors


@pytest.mark.parametrize("kind", sorted(FOREIGN))
def test_a_lora_for_another_model_is_refused_with_what_fits(node_classes, loaded, kind):
    tensors = foreign_lora(kind)
    name = write_lora(f"{kind}.safetensors", tensors)
    with pytest.raises(pack_error(node_classes)) as refused:
        node_classes["LoraLoaderModelOnly"]().load_lora_model_only(loaded[0], name, 1.0)
    message = str(refused.value)
    assert f"{REFUSED}: {len(tensors)} of its {len(tensors)} keys name no layer of it" in message
    assert f"`{sorted(tensors)[0]}`" in message and f"and {len(tensors) - 5} more" in message
    assert "`transformer.transformer_blocks.0.attn1.to_q.lora_A.weight` (diffusers)" in message


def test_one_foreign_key_refuses_the_whole_lora(node_classes, loaded, base):
    tensors, _ = cogvideox_lora("diffusers", base)
    tensors["transformer.transformer_blocks.7.attn1.to_q.lora_A.weight"] = torch.zeros(RANK, 48)  # a 2-layer model
    name = write_lora("cogvideox_one_too_deep.safetensors", tensors)
    with pytest.raises(pack_error(node_classes), match=rf"{REFUSED}: 1 of its 13 keys .*blocks\.7\.attn1\.to_q"):
        node_classes["LoraLoaderModelOnly"]().load_lora_model_only(loaded[0], name, 1.0)


def test_a_lora_of_another_width_is_refused_with_the_shapes(node_classes, loaded, base):
    """A CogVideoX-2B LoRA names 5B layers too; ComfyUI would log a shape error per layer while sampling."""
    tensors, _ = cogvideox_lora("diffusers", base)
    layer = "transformer.transformer_blocks.0.attn1.to_q"
    tensors[f"{layer}.lora_A.weight"], tensors[f"{layer}.lora_B.weight"] = torch.zeros(RANK, 30), torch.zeros(30, RANK)
    name = write_lora("cogvideox_other_width.safetensors", tensors)
    shapes = r"`transformer_blocks\.0\.attn1\.to_q` \(LoRA \[30, 30\], model \[48, 48\]\)"
    with pytest.raises(pack_error(node_classes), match=rf"{REFUSED}: 1 of its layers have other shapes .*{shapes}"):
        node_classes["LoraLoaderModelOnly"]().load_lora_model_only(loaded[0], name, 1.0)


@pytest.fixture(scope="module")
def wan(node_classes):
    """A ComfyUI model of ComfyUI's own class (WAN21, from the tiny Concat-ID-Wan file)."""
    return node_classes["MultiID_LoadConcatIDWan"].execute("Concat-ID-Wan/first_stage.pt", "fp32").result[0]


def test_other_models_get_comfyuis_own_key_map_and_loading(node_classes, wan, lora_module):
    import comfy.lora
    import comfy.sd

    wrapped = comfy.lora.model_lora_keys_unet
    assert getattr(wrapped, lora_module.WRAPPED) and getattr(comfy.sd.load_lora_for_models, lora_module.WRAPPED)
    key_map = {"kept": "entry"}
    assert wrapped(wan.model, key_map) is key_map
    assert key_map == wrapped.__wrapped__(wan.model, {"kept": "entry"})
    assert not any(k.startswith(("transformer.", "base_model.model.")) for k in key_map)
    # A Wan LoRA applies; an SDXL one is left to ComfyUI (it logs the keys and patches nothing), not refused.
    tensors = {
        "diffusion_model.blocks.0.self_attn.q.lora_A.weight": torch.ones(RANK, wan.model.diffusion_model.dim),
        "diffusion_model.blocks.0.self_attn.q.lora_B.weight": torch.ones(wan.model.diffusion_model.dim, RANK),
    }
    (patched,) = node_classes["LoraLoaderModelOnly"]().load_lora_model_only(
        wan, write_lora("wan.safetensors", tensors), 1.0
    )
    assert set(patched.patches) == {"diffusion_model.blocks.0.self_attn.q.weight"}
    sdxl = write_lora("sdxl_on_wan.safetensors", foreign_lora("sdxl"))
    assert not node_classes["LoraLoaderModelOnly"]().load_lora_model_only(wan, sdxl, 1.0)[0].patches


def test_registering_again_wraps_nothing_twice(lora_module):
    import comfy.lora
    import comfy.sd

    before = comfy.lora.model_lora_keys_unet, comfy.sd.load_lora_for_models
    lora_module.register_lora_support()
    assert (comfy.lora.model_lora_keys_unet, comfy.sd.load_lora_for_models) == before
    assert not getattr(before[0].__wrapped__, lora_module.WRAPPED, False)
    assert not getattr(before[1].__wrapped__, lora_module.WRAPPED, False)


def test_newer_comfyuis_bypass_loader_is_checked_too(node_classes, loaded, lora_module, monkeypatch):
    """ComfyUI 0.3.75 has no `load_bypass_lora_for_models`; newer ones call it with Load LoRA's arguments."""
    import comfy.sd

    calls = []
    monkeypatch.setattr(comfy.sd, lora_module.BYPASS, lambda *args: calls.append(args) or args[:2], raising=False)
    lora_module.register_lora_support()
    bypass = getattr(comfy.sd, lora_module.BYPASS)
    assert getattr(bypass, lora_module.WRAPPED)
    with pytest.raises(pack_error(node_classes), match=REFUSED):
        bypass(loaded[0], None, foreign_lora("wan"), 1.0, 0.0)
    assert not calls
    fitting = {"transformer.transformer_blocks.0.attn1.to_q.lora_A.weight": torch.zeros(RANK, 48)}
    assert bypass(loaded[0], None, fitting, 1.0, 0.0) == (loaded[0], None) and len(calls) == 1
