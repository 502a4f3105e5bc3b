"""Latents and conditioning say which family made them; a node given another family's output names the node to use.

The tag is a key of the LATENT dict and of each conditioning entry's dict; it must change nothing in ComfyUI's
own sampling, which hands conditioning keys to model.extra_conds.
"""

import sys

import pytest
import torch
from comfy_env import pack_error, photo_tensor

WAN_FILE = "Concat-ID-Wan/first_stage.pt"
UMT5 = "umt5_xxl_fp8_e4m3fn_scaled.safetensors"


@pytest.fixture(scope="module")
def tags(node_classes):
    """nodes/family_tags.py as ComfyUI imported the pack."""
    root = node_classes["MultiID_TextEncode"].__module__.rsplit(".nodes.", 1)[0]
    return sys.modules[f"{root}.nodes.family_tags"]


@pytest.fixture(scope="module")
def parts(node_classes, extractor):
    identity = node_classes["MultiID_EncodeIdentity"].execute(extractor, photo_tensor(), "largest", 0).result[0]
    clip = node_classes["MultiID_LoadTextEncoder"].execute("ConsisID-preview/text_encoder", "fp32", "default").result[0]
    positive = node_classes["MultiID_TextEncode"].execute(clip, "a person smiling").result[0]
    negative = node_classes["MultiID_TextEncode"].execute(clip, "").result[0]
    load = node_classes["MultiID_LoadModel"]
    model, vae = load.execute("ConsisID-preview", "from model folder", "fp32", "same as precision").result
    return model, vae, positive, negative, identity


def sample(node_classes, model, vae, positive, negative, identity) -> dict:
    return (
        node_classes["MultiID_Sampler"]
        .execute(
            model, vae, positive, negative, identity, 64, 64, 5, 2, 6.0, False, "CogVideoX DPM", 7, 1.0, "all steps"
        )
        .result[0]
    )


def test_text_encode_conditioning_and_sampler_outputs_carry_the_cogvideox_tag(node_classes, parts, tags):
    model, vae, positive, negative, identity = parts
    assert tags.conditioning_family(positive) == tags.conditioning_family(negative) == tags.COGVIDEOX
    assert positive[0][1] == {tags.FAMILY_KEY: "cogvideox"}
    conditioned = (
        node_classes["MultiID_IdentityConditioning"]
        .execute(model, vae, positive, negative, identity, 64, 64, 5, 1.0, 0)
        .result
    )
    assert tags.conditioning_family(conditioned[0]) == tags.conditioning_family(conditioned[1]) == tags.COGVIDEOX
    assert tags.latent_family(conditioned[2]) == "cogvideox"
    latent = sample(node_classes, *parts)
    assert tags.latent_family(latent) == "cogvideox" and set(latent) == {"samples", tags.FAMILY_KEY}
    frames = node_classes["MultiID_Decode"].execute(vae, latent, False).result[0]
    assert frames.shape == (5, 64, 64, 3)


def test_decode_refuses_wan_latents_naming_vae_decode(node_classes, parts, tags):
    vae = parts[1]
    latent = tags.tag_latent({"samples": torch.zeros(1, 16, 2, 8, 8)}, tags.CONCAT_ID_WAN)
    with pytest.raises(pack_error(node_classes), match=r"come from Concat-ID-Wan .* VAE Decode and the Wan 2\.1 VAE"):
        node_classes["MultiID_Decode"].execute(vae, latent, False)


def test_sampler_refuses_wan_conditioning_naming_multiid_text_encode(node_classes, parts, tags):
    model, vae, positive, negative, identity = parts
    wan = [[positive[0][0], {tags.FAMILY_KEY: tags.CONCAT_ID_WAN}]]
    with pytest.raises(pack_error(node_classes), match=r"positive conditioning comes from Concat-ID Wan Reference .*"
                       r"encode the prompt with MultiID Text Encode"):  # fmt: skip
        sample(node_classes, model, vae, wan, negative, identity)


def test_conditioning_family_reads_the_first_tagged_entry(tags):
    untagged = [[torch.zeros(1, 4, 8), {"pooled_output": None}]]
    assert tags.conditioning_family(untagged) is None and tags.conditioning_family([]) is None
    combined = untagged + tags.tag_conditioning(torch.zeros(1, 4, 8), tags.COGVIDEOX)  # Conditioning (Combine)
    assert tags.conditioning_family(combined) == "cogvideox"
    assert tags.latent_family({"samples": torch.zeros(1)}) is None


def test_a_tagged_conditioning_samples_exactly_as_an_untagged_one(node_classes, tags):
    """KSampler hands the tag to model.extra_conds(**keys): Wan's reads only the keys it knows."""
    import nodes

    model = node_classes["MultiID_LoadConcatIDWan"].execute(WAN_FILE, "default").result[0]
    clip = node_classes["MultiID_LoadUMT5TextEncoder"].execute(UMT5, "default").result[0]
    plain = nodes.CLIPTextEncode().encode(clip, "a woman smiling")[0]
    tagged = [[c, {**d, tags.FAMILY_KEY: tags.CONCAT_ID_WAN}] for c, d in plain]
    latent = {"samples": torch.zeros(1, 16, 3, 6, 8)}  # 64x48, 9 frames
    runs = [nodes.common_ksampler(model, 0, 2, 5.0, "euler", "simple", c, c, latent)[0] for c in (plain, tagged)]
    assert torch.equal(runs[0]["samples"], runs[1]["samples"])


def test_another_familys_conditioning_is_refused_by_the_model_before_the_first_step(node_classes, parts, tags):
    """KSampler with the Concat-ID-Wan MODEL and MultiID Identity Conditioning's outputs (T5 prompts of the same
    width, the identity and face frame in keys WAN21 ignores) sampled a plain Wan video; now the model reads the
    tag when sampling starts. Likewise Concat-ID Wan Reference's conditioning on the ConsisID MODEL."""
    import nodes

    model, vae, positive, negative, identity = parts
    cogvideox = node_classes["MultiID_IdentityConditioning"].execute(model, vae, positive, negative, identity, 64, 64,
                                                                     5, 1.0, 0).result  # fmt: skip
    wan_model = node_classes["MultiID_LoadConcatIDWan"].execute(WAN_FILE, "default").result[0]
    steps = []
    hook = wan_model.model.diffusion_model.head.register_forward_hook(lambda *_: steps.append(1))
    wan_latent = {"samples": torch.zeros(1, 16, 2, 8, 8)}
    made_by = r"made by MultiID Text Encode or MultiID Identity Conditioning .* MODEL of Load Concat-ID Wan Model"
    with pytest.raises(pack_error(node_classes), match=made_by + ", another model family"):
        nodes.common_ksampler(wan_model, 0, 2, 5.0, "euler", "simple", cogvideox[0], cogvideox[1], wan_latent)
    hook.remove()
    wan = [[cogvideox[0][0][0], {**cogvideox[0][0][1], tags.FAMILY_KEY: tags.CONCAT_ID_WAN}]]
    with pytest.raises(pack_error(node_classes), match=r"made by Concat-ID Wan Reference .* MODEL of Load MultiID "
                       r"Video Model"):  # fmt: skip
        nodes.common_ksampler(model, 0, 2, 6.0, "cogvideox_ddim", "multiid_trailing", wan, cogvideox[1], cogvideox[2])
    assert steps == []
