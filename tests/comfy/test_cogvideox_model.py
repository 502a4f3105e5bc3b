"""The CogVideoX family as a native MODEL: KSampler, SamplerCustomAdvanced and MultiID Sampler against diffusers'
ConsisIDPipeline on the same tiny random snapshot (fp32, CPU)."""

import numpy as np
import pytest
import torch
from comfy_env import photo_tensor
from PIL import Image
from tensors import rel_err

from multiid_tools.tiny_models.cogvideox import TINY_TEXT_DIM, write_tiny_consisid_snapshot

# A trained grid small enough to sample quickly: 9 frames of 128x160 (3 x 16 x 20 latents).
GRID = dict(sample_frames=9, sample_height=16, sample_width=20, num_layers=4)
SIZE = dict(width=160, height=128, frames=9)
SCALE = 0.7  # the tiny VAE's scaling factor: diffusers' latents are scaled, LATENT holds raw ones


@pytest.fixture(scope="module")
def snapshot(node_classes):
    import folder_paths

    import multiid_tools.tiny_models.cogvideox as tiny

    folder = __import__("pathlib").Path(folder_paths.get_folder_paths("multiid")[0]) / "ConsisID-parity"
    original = dict(tiny.TINY_TRANSFORMER)
    tiny.TINY_TRANSFORMER.update(GRID)
    try:
        write_tiny_consisid_snapshot(folder)
    finally:
        tiny.TINY_TRANSFORMER.clear()
        tiny.TINY_TRANSFORMER.update(original)
    return folder


@pytest.fixture(scope="module")
def loaded(node_classes, snapshot):
    return node_classes["MultiID_LoadModel"].execute("ConsisID-parity", "from model folder", "fp32", "same as precision").result


@pytest.fixture(scope="module")
def pipeline(snapshot):
    import diffusers

    return diffusers.ConsisIDPipeline(
        tokenizer=None,
        text_encoder=None,
        vae=diffusers.AutoencoderKLCogVideoX.from_pretrained(snapshot / "vae"),
        transformer=diffusers.ConsisIDTransformer3DModel.from_pretrained(snapshot / "transformer"),
        scheduler=diffusers.CogVideoXDPMScheduler.from_pretrained(snapshot / "scheduler"),
    )


@pytest.fixture(scope="module")
def identity(node_classes, extractor):
    return node_classes["MultiID_EncodeIdentity"].execute(extractor, photo_tensor(), "largest", 0).result[0]


@pytest.fixture(scope="module")
def prompts():
    g = torch.Generator().manual_seed(3)
    positive, negative = torch.randn(1, 226, TINY_TEXT_DIM, generator=g), torch.randn(1, 226, TINY_TEXT_DIM, generator=g)
    return [[positive, {}]], [[negative, {}]]


def reference(pipe, identity, prompts, steps, cfg, seed, **kwargs):
    image = Image.fromarray((identity.primary.face_on_white.numpy() * 255).astype(np.uint8))
    with torch.no_grad():
        out = pipe(
            image=image,
            prompt_embeds=prompts[0][0][0],
            negative_prompt_embeds=prompts[1][0][0],
            num_inference_steps=steps,
            guidance_scale=cfg,
            generator=torch.Generator().manual_seed(seed),
            output_type="latent",
            id_cond=identity.id_cond("consisid"),
            id_vit_hidden=identity.vit_hidden("consisid"),
            num_frames=SIZE["frames"],
            height=SIZE["height"],
            width=SIZE["width"],
            **kwargs,
        ).frames
    return out.movedim(2, 1)  # [B, C, T, h, w]


@pytest.mark.parametrize("steps", [4])
def test_multiid_sampler_gives_the_pipeline_latents(node_classes, loaded, pipeline, identity, prompts, steps):
    model, vae = loaded
    latent, _ = node_classes["MultiID_Sampler"].execute(
        model, vae, prompts[0], prompts[1], identity, SIZE["width"], SIZE["height"], SIZE["frames"], steps, 6.0,
        False, "CogVideoX DPM", 7, 1.0, "all steps",
    ).result  # fmt: skip
    expected = reference(pipeline, identity, prompts, steps, 6.0, 7)
    print(rel_err(latent["samples"] * SCALE, expected))
    assert rel_err(latent["samples"] * SCALE, expected) < 1e-5
