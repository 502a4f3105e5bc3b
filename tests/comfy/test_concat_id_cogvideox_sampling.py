"""Concat-ID (CogVideoX) on the native MODEL: one clean reference frame per person appended after the video in
every call, in both guidance branches, cropped from the prediction; the reference count and masks checked."""

import logging

import pytest
import torch
from cogvideox_runs import load, prompts, sample
from comfy_env import pack_error
from tensors import rel_err

from multiid_tools.tiny_models.identities import random_identity

SIZE = dict(width=160, height=128, frames=9)  # 3 latent frames of 16 x 20


def test_sampling_appends_clean_references_in_both_branches_and_crops_them(pack, node_classes, monkeypatch):
    loaded = load(node_classes, "Concat-ID/two-identities")
    seen = []
    forward = pack.cogvideox_transformer.forward

    def spy_forward(self, latents, text, timestep, rope, identity=None, *rest):
        seen.append((latents.clone(), rope[0].shape[0]))
        assert identity is None
        return forward(self, latents, text, timestep, rope, identity, *rest)

    monkeypatch.setattr(pack.cogvideox_transformer, "forward", spy_forward)
    people = pack.routing.IdentitySet([random_identity(1), random_identity(2)], [None, None])
    latents, routing, _ = sample(pack, loaded, people, prompts(), steps=3, size=SIZE, seed=1)
    assert latents.shape == (1, 16, 3, 16, 20) and routing is None  # the references cropped from the result
    first, tokens = seen[0]
    assert len(seen) == 3 and first.shape == (2, 5, 16, 16, 20) and tokens == 5 * 8 * 10  # both branches, 3 + 2
    vae = loaded[1].vae
    video = pack.cogvideox_inputs.VideoSize(**SIZE)
    encoded = pack.cogvideox_inputs.reference_latents(vae, people, video, torch.Generator().manual_seed(1))
    expected = (encoded * vae.config.scaling_factor).movedim(1, 2)[0]  # [N, C, h, w], as the model sees them
    assert rel_err(first[0, 3:], expected) < 1e-6 and rel_err(first[1, 3:], expected) < 1e-6
    assert all(torch.equal(x[:, 3:], first[:, 3:]) for x, _ in seen)  # clean: never noised or stepped
    assert rel_err(expected[0], expected[1]) > 0.1  # one frame per person


def test_reference_counts_and_masks(node_classes, pack, caplog):
    loaded = load(node_classes, "Concat-ID/single-identity")
    node = node_classes["MultiID_IdentityConditioning"]

    def condition(people):
        return node.execute(*loaded, *prompts(), people, SIZE["width"], SIZE["height"], SIZE["frames"], 1.0, 0)

    with caplog.at_level(logging.WARNING):
        condition(pack.routing.IdentitySet([random_identity(1), random_identity(2)], [None, None]))
    assert "trained with 1 reference(s); 2 given" in caplog.text
    four = pack.routing.IdentitySet([random_identity(i) for i in range(4)], [None] * 4)
    with pytest.raises(pack_error(node_classes), match="at most 3; got 4 people"):
        condition(four)
    placed = pack.routing.IdentitySet([random_identity(1)], [torch.ones(1, 8, 8)], mode="masks")
    with pytest.raises(pack_error(node_classes), match="does not take masks"):
        condition(placed)
