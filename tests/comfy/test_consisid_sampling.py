"""ConsisID through MultiID Sampler on the native MODEL: diffusers' ConsisIDPipeline for every guidance and
scheduler choice (the plain DPM run: test_cogvideox_model.py), seeds, identity strength, requests the model
cannot do, and a prediction turning NaN or infinite, which stops the run with its step instead of a black video."""

import pytest
import torch
from cogvideox_runs import (
    PARITY_SIZE,
    SCALE,
    load,
    pipeline_latents,
    prompts,
    sample,
)
from comfy_env import pack_error
from tensors import rel_err

from multiid_tools.tiny_models.identities import random_identity


@pytest.fixture(scope="module")
def consisid(node_classes):
    return load(node_classes, "ConsisID-preview")


@pytest.mark.parametrize(
    "cfg, dynamic, scheduler",
    [(6.0, True, "CogVideoX DPM"), (1.0, False, "CogVideoX DPM"), (6.0, False, "DDIM")],
)
def test_latents_equal_diffusers_pipeline(pack, parity_model, parity_pipeline, cfg, dynamic, scheduler):
    identity, conditioning = random_identity(3), prompts(4)
    ours, _, _ = sample(
        pack, parity_model, identity, conditioning, steps=4, size=PARITY_SIZE, cfg=cfg, dynamic_cfg=dynamic,
        scheduler=scheduler, seed=42,
    )  # fmt: skip
    reference = pipeline_latents(
        parity_pipeline, identity, conditioning, 4, cfg, 42, use_dynamic_cfg=dynamic,
        scheduler="CogVideoXDDIMScheduler" if scheduler == "DDIM" else None,
    )  # fmt: skip
    assert rel_err(ours * SCALE, reference) < 1e-5


def test_seed_reproduces_and_differs(pack, consisid):
    identity, conditioning = random_identity(), prompts(1)
    a, b, c = (sample(pack, consisid, identity, conditioning, steps=2, seed=seed)[0] for seed in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_identity_strength_zero_removes_the_identity_tokens(pack, consisid):
    conditioning = prompts(1)
    one, other = random_identity(1), random_identity(2)
    other.photos[0].face_on_white = one.primary.face_on_white  # same first frame, other features
    a, b = (sample(pack, consisid, i, conditioning, steps=2, seed=3, strength=0.0)[0] for i in (one, other))
    assert torch.equal(a, b)
    full = sample(pack, consisid, other, conditioning, steps=2, seed=3)[0]
    assert not torch.equal(full, b)  # at strength 1 the features do reach the video


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(frames=10), r"frames must be 4k\+1.*Use 9 or 13"),
        (dict(frames=13), "learned positions for at most 9 frames"),
        (dict(width=150), "width must be a multiple of 16.*Use 144"),
        (dict(height=256), "at most 160x128 pixels"),
    ],
)
def test_invalid_requests_are_explained(node_classes, parity_model, change, message):
    size = {**PARITY_SIZE, **change}
    with pytest.raises(pack_error(node_classes), match=message):
        node_classes["MultiID_Sampler"].execute(
            *parity_model, *prompts(), random_identity(), size["width"], size["height"], size["frames"], 2, 6.0, False,
            "CogVideoX DPM", 1, 1.0, "all steps",
        )  # fmt: skip


def test_a_nan_weight_stops_at_the_first_step(node_classes, pack):
    loaded = load(node_classes, "ConsisID-preview")
    identity, conditioning = random_identity(1), prompts()
    assert torch.isfinite(sample(pack, loaded, identity, conditioning, steps=3)[0]).all()
    with torch.no_grad():
        loaded[0].model.diffusion_model.proj_out.weight[0, 0] = float("nan")
    with pytest.raises(pack_error(node_classes)) as refused:
        sample(pack, loaded, identity, conditioning, steps=3)
    message = str(refused.value)
    assert message.startswith("The transformer's prediction became NaN or infinite at step 1 of 3")
    assert "nothing was saved" in message and "in bf16 (or fp32)" in message and "multiid.py models check" in message


def test_an_overflow_later_in_the_run_names_its_step(node_classes, pack, consisid, monkeypatch):
    """As fp16 overflows do on real cards: finite at first, infinite from the third transformer call on (one call
    per step: ComfyUI batches both guidance branches)."""
    forward, calls = pack.cogvideox_transformer.forward, []

    def overflowing(*args, **kwargs):
        calls.append(1)
        out = forward(*args, **kwargs)
        return out * float("inf") if len(calls) >= 3 else out

    monkeypatch.setattr(pack.cogvideox_transformer, "forward", overflowing)
    with pytest.raises(pack_error(node_classes), match=r"became NaN or infinite at step 3 of 3"):
        sample(pack, consisid, random_identity(1), prompts(), steps=3)
    assert len(calls) == 3
