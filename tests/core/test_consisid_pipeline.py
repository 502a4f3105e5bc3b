"""Our loader + sampler against diffusers' ConsisIDPipeline on the same tiny random snapshot."""

import numpy as np
import pytest
import torch
from PIL import Image
from tensors import rel_err

from multiid_core.errors import MultiIDError
from multiid_core.faces.identity import Identity
from multiid_core.families import CONSISID
from multiid_core.pipelines.cogvideox_loading import load_snapshot
from multiid_core.pipelines.cogvideox_sampling import SamplerSettings, decode, sample
from multiid_core.routing import IdentitySet
from multiid_tools.tiny_models.cogvideox import TINY_TEXT_DIM, write_tiny_consisid_snapshot
from multiid_tools.tiny_models.identities import random_identity

diffusers = pytest.importorskip("diffusers")

# A trained grid small enough to sample quickly: 9 frames of 128x160 (3 x 16 x 20 latents).
GRID = dict(sample_frames=9, sample_height=16, sample_width=20, num_layers=4)
SIZE = dict(frames=9, height=128, width=160)


def alone(identity: Identity) -> IdentitySet:
    return IdentitySet([identity], [None])


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ConsisID-tiny")
    import multiid_tools.tiny_models.cogvideox as tiny

    original = dict(tiny.TINY_TRANSFORMER)
    tiny.TINY_TRANSFORMER.update(GRID)
    try:
        write_tiny_consisid_snapshot(folder)
    finally:
        tiny.TINY_TRANSFORMER.clear()
        tiny.TINY_TRANSFORMER.update(original)
    return folder


@pytest.fixture(scope="module")
def reference_pipeline(snapshot):
    from diffusers import AutoencoderKLCogVideoX, ConsisIDPipeline, ConsisIDTransformer3DModel

    return ConsisIDPipeline(
        tokenizer=None,
        text_encoder=None,
        vae=AutoencoderKLCogVideoX.from_pretrained(snapshot / "vae"),
        transformer=ConsisIDTransformer3DModel.from_pretrained(snapshot / "transformer"),
        scheduler=diffusers.CogVideoXDPMScheduler.from_pretrained(snapshot / "scheduler"),
    )


def text_embeddings(seed: int):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 226, TINY_TEXT_DIM, generator=g), torch.randn(1, 226, TINY_TEXT_DIM, generator=g)


def reference_latents(pipe, identity, positive, negative, steps, cfg, seed, **kwargs):
    image = Image.fromarray((identity.primary.face_on_white.numpy() * 255).astype(np.uint8))
    with torch.no_grad():
        return pipe(
            image=image,
            prompt_embeds=positive,
            negative_prompt_embeds=negative,
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


def test_loads_sharded_snapshot_as_consisid(snapshot):
    assert len(list((snapshot / "transformer").glob("*.safetensors"))) >= 2
    model = load_snapshot(snapshot, torch.float32)
    assert model.family is CONSISID
    assert model.transformer.config.num_layers == 4


@pytest.mark.parametrize(
    "cfg, dynamic, scheduler",
    [(6.0, False, "CogVideoX DPM"), (6.0, True, "CogVideoX DPM"), (1.0, False, "CogVideoX DPM")],
)
def test_latents_equal_diffusers_pipeline(snapshot, reference_pipeline, cfg, dynamic, scheduler):
    model = load_snapshot(snapshot, torch.float32)
    identity = random_identity()
    positive, negative = text_embeddings(1)
    settings = SamplerSettings(**SIZE, steps=4, cfg=cfg, dynamic_cfg=dynamic, scheduler=scheduler, seed=42)
    ours = sample(model, positive, negative, alone(identity), settings).latents
    ref = reference_latents(reference_pipeline, identity, positive, negative, 4, cfg, 42, use_dynamic_cfg=dynamic)
    assert ours.shape == ref.shape == (1, 3, 16, 16, 20)
    assert rel_err(ours, ref) < 1e-5


def test_ddim_equals_diffusers(snapshot, reference_pipeline):
    from diffusers import CogVideoXDDIMScheduler

    model = load_snapshot(snapshot, torch.float32)
    identity = random_identity(3)
    positive, negative = text_embeddings(4)
    ours = sample(
        model, positive, negative, alone(identity), SamplerSettings(**SIZE, steps=3, scheduler="DDIM", seed=7)
    ).latents
    original = reference_pipeline.scheduler
    reference_pipeline.scheduler = CogVideoXDDIMScheduler.from_config(original.config)
    try:
        ref = reference_latents(reference_pipeline, identity, positive, negative, 3, 6.0, 7)
    finally:
        reference_pipeline.scheduler = original
    assert rel_err(ours, ref) < 1e-5


def test_seed_reproduces_and_differs(snapshot):
    model = load_snapshot(snapshot, torch.float32)
    identity = random_identity()
    positive, negative = text_embeddings(1)
    a = sample(model, positive, negative, alone(identity), SamplerSettings(**SIZE, steps=2, seed=1)).latents
    b = sample(model, positive, negative, alone(identity), SamplerSettings(**SIZE, steps=2, seed=1)).latents
    c = sample(model, positive, negative, alone(identity), SamplerSettings(**SIZE, steps=2, seed=2)).latents
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_identity_strength_zero_removes_the_identity_tokens(snapshot):
    model = load_snapshot(snapshot, torch.float32)
    positive, negative = text_embeddings(1)
    settings = SamplerSettings(**SIZE, steps=2, seed=3, identity_strength=0.0)
    a = sample(model, positive, negative, alone(random_identity(1)), settings).latents
    other = random_identity(2)
    other.photos[0].face_on_white = random_identity(1).primary.face_on_white  # same first frame, other features
    b = sample(model, positive, negative, alone(other), settings).latents
    assert torch.equal(a, b)


def test_decode_gives_frames(snapshot):
    model = load_snapshot(snapshot, torch.float32)
    frames = decode(model, torch.randn(1, 3, 16, 16, 20), tiled=False)
    assert frames.shape == (9, 128, 160, 3) and 0 <= frames.min() and frames.max() <= 1


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(frames=10), r"frames must be 4k\+1.*Use 9 or 13"),
        (dict(frames=13), "learned positions for at most 9 frames"),
        (dict(width=150), "width must be a multiple of 16.*Use 144"),
        (dict(height=256), "at most 160x128 pixels"),
        (dict(steps=0), "steps must be at least 1"),
    ],
)
def test_invalid_requests_are_explained(snapshot, change, message):
    model = load_snapshot(snapshot, torch.float32)
    positive, negative = text_embeddings(1)
    with pytest.raises(MultiIDError, match=message):
        sample(model, positive, negative, alone(random_identity()), SamplerSettings(**{**SIZE, **change}))
