"""MultiID Sampler inside ComfyUI on real prompts and a real identity: its outputs, and the inputs it explains.

Its latents against diffusers: test_cogvideox_model.py, test_consisid_sampling.py; TeaCache on its MODEL:
test_cogvideox_teacache.py.
"""

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
    model, vae = (
        node_classes["MultiID_LoadModel"]
        .execute("ConsisID-preview", "from model folder", "fp32", "same as precision")
        .result
    )
    return model, vae, positive, negative, identity


def run(node_classes, model, vae, positive, negative, identity, steps: int = SIZE["steps"]):
    return node_classes["MultiID_Sampler"].execute(
        model, vae, positive, negative, identity, SIZE["width"], SIZE["height"], SIZE["frames"], steps, 6.0, False,
        "CogVideoX DPM", 7, 1.0, "all steps",
    ).result  # fmt: skip


def test_outputs_raw_latents_and_the_routing_map(node_classes, parts):
    latent, routing_map = run(node_classes, *parts)
    samples = latent["samples"]
    assert samples.shape == (1, 16, 2, 16, 20) and torch.isfinite(samples).all()
    orange = torch.tensor([1.0, 0.55, 0.1])
    assert torch.allclose(routing_map, orange.expand(5, 128, 160, 3))  # one person: every token theirs


def test_conditioning_from_clip_text_encode_is_explained(node_classes, parts):
    model, vae, _, negative, identity = parts
    wrong = [[torch.zeros(1, 77, 32), {}]]
    with pytest.raises(pack_error(node_classes), match="exactly 226 tokens: encode the prompt with the MultiID"):
        run(node_classes, model, vae, wrong, negative, identity, steps=2)


def test_a_model_of_another_family_is_explained(node_classes, parts):
    _, vae, positive, negative, identity = parts
    wan = node_classes["MultiID_LoadConcatIDWan"].execute("Concat-ID-Wan/first_stage.pt", "default").result[0]
    with pytest.raises(pack_error(node_classes), match="not a CogVideoX-family.*takes Concat-ID Wan Reference"):
        run(node_classes, wan, vae, positive, negative, identity, steps=2)
