"""MultiID Sampler inside ComfyUI: speed options, placement under ComfyUI's memory management, outputs."""

import pytest
import torch
from comfy_env import pack_error, photo_tensor

SIZE = dict(width=160, height=128, frames=5, steps=3)


@pytest.fixture(scope="module")
def parts(node_classes, extractor):
    identity = node_classes["MultiID_EncodeIdentity"].execute(extractor, photo_tensor(), "largest", 0).result[0]
    clip = node_classes["MultiID_LoadTextEncoder"].execute("ConsisID-preview/text_encoder", "fp32", "default").result[0]
    encode = node_classes["MultiID_TextEncode"]
    positive = encode.execute(clip, "a person smiling").result[0]
    negative = encode.execute(clip, "").result[0]
    model = node_classes["MultiID_LoadModel"].execute(
        "ConsisID-preview", "from model folder", "fp32", "same as precision"
    )
    return model.result[0], positive, negative, identity


def run(node_classes, parts, speed=None, **overrides):
    model, positive, negative, identity = parts
    settings = {**SIZE, **overrides}
    return node_classes["MultiID_Sampler"].execute(
        model, positive, negative, identity, settings["width"], settings["height"], settings["frames"],
        settings["steps"], 6.0, False, "CogVideoX DPM", 7, 1.0, "all steps", speed,
    ).result  # fmt: skip


def speed(node_classes, **choices):
    defaults = dict(teacache="off", attention="sdpa", cfg_batching="auto", block_swap=0, compile=False)
    return node_classes["MultiID_SpeedAndMemory"].execute(**{**defaults, **choices}).result[0]


def test_outputs_and_exact_memory_options(node_classes, parts):
    latent, routing_map = run(node_classes, parts)
    assert latent["samples"].shape == (1, 16, 2, 16, 20)
    assert routing_map.shape == (5, 128, 160, 3)
    assert torch.allclose(routing_map[0, 0, 0], torch.tensor([1.0, 0.55, 0.1]))  # one person: all orange
    swapped, _ = run(node_classes, parts, speed(node_classes, block_swap=1, cfg_batching="sequential"))
    assert torch.allclose(swapped["samples"], latent["samples"], atol=1e-5)
    assert parts[0].core.transformer.swapper is None  # swapping ends with the video


def test_teacache_changes_the_result_a_little(node_classes, parts):
    exact, _ = run(node_classes, parts, steps=12)
    cached, _ = run(node_classes, parts, speed(node_classes, teacache="0.2"), steps=12)
    assert not torch.equal(cached["samples"], exact["samples"])
    assert (cached["samples"] - exact["samples"]).abs().max() < exact["samples"].abs().max()


def test_conditioning_from_clip_text_encode_is_explained(node_classes, parts):
    model, _, negative, identity = parts
    wrong = [[torch.zeros(1, 77, 32), {}]]
    with pytest.raises(pack_error(node_classes), match="exactly 226 tokens: encode the prompt with the MultiID"):
        node_classes["MultiID_Sampler"].execute(
            model, wrong, negative, identity, 160, 128, 5, 2, 6.0, False, "CogVideoX DPM", 1, 1.0, "all steps"
        )
