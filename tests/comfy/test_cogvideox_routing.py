"""Several people on the native MODEL: Ingredients' learned routing for any count, ConsisID placing people by
masks, and guidance run as two calls (ComfyUI splits the branches when memory is short) giving the latents and
routing of one batched call, for each way identities enter (the released Ingredients routing across two calls:
test_cogvideox_model.py)."""

import logging

import pytest
import torch
from cogvideox_runs import load, prompts, sample
from comfy_env import pack_error
from tensors import rel_err, small_masks

from multiid_tools.tiny_models.identities import random_identity

STEPS = 4


@pytest.fixture(scope="module")
def models(node_classes):
    names = ("ConsisID-preview", "Ingredients", "Concat-ID/two-identities")
    return {name: load(node_classes, name) for name in names}


def people(pack, count: int, masks: bool = False, per_branch: bool = False):
    identities = [random_identity(i + 1) for i in range(count)]
    if masks:
        return pack.routing.IdentitySet(identities, small_masks(count), mode="masks")
    return pack.routing.IdentitySet(identities, [None] * count, per_branch=per_branch)


@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_ingredients_samples_any_number_of_people(pack, models, count, caplog):
    with caplog.at_level(logging.WARNING):
        latents, routing, grid = sample(pack, models["Ingredients"], people(pack, count), prompts(), steps=2)
    assert torch.isfinite(latents).all() and latents.shape == (1, 16, 2, 16, 20)
    assert routing.shape == (grid.tokens, count) == (2 * 8 * 10, count)
    assert torch.allclose(routing.sum(1), torch.ones(grid.tokens), atol=1e-5)  # a softmax over the people
    assert ("trained with 2 identities" in caplog.text) == (count != 2)


def test_consisid_places_two_people_with_masks(pack, models):
    _, routing, _ = sample(pack, models["ConsisID-preview"], people(pack, 2, masks=True), prompts(), steps=2)
    expected = torch.zeros(2, 8, 10, 2)
    expected[:, :, :5, 0] = 1  # left stripe: person 1, right stripe: person 2
    expected[:, :, 5:, 1] = 1
    assert torch.equal(routing.reshape(2, 8, 10, 2), expected)


def test_consisid_refuses_several_people_without_masks(node_classes, pack, models):
    with pytest.raises(pack_error(node_classes), match="no learned router.*routing mode 'masks'"):
        sample(pack, models["ConsisID-preview"], people(pack, 2), prompts(), steps=2)


CASES = {
    "consisid": ("ConsisID-preview", dict(count=1)),
    "ingredients per branch": ("Ingredients", dict(count=2, per_branch=True)),
    "consisid masks": ("ConsisID-preview", dict(count=2, masks=True)),
    "concat-id": ("Concat-ID/two-identities", dict(count=2)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_guidance_split_in_two_calls_gives_the_batched_latents(pack, models, case, monkeypatch):
    name, who = CASES[case]
    loaded, conditioning = models[name], prompts()
    batched = sample(pack, loaded, people(pack, **who), conditioning, steps=STEPS)
    calls = []
    forward = pack.cogvideox_transformer.forward
    monkeypatch.setattr(pack.cogvideox_transformer, "forward", lambda *a, **kw: calls.append(1) or forward(*a, **kw))
    monkeypatch.setattr(type(loaded[0].model), "memory_required", lambda *a, **kw: 10**15)  # too big to batch
    split = sample(pack, loaded, people(pack, **who), conditioning, steps=STEPS)
    assert len(calls) == 2 * STEPS
    assert rel_err(split[0], batched[0]) < 1e-5
    if batched[1] is None:  # Concat-ID: no identity routed per token
        assert split[1] is None
    else:
        assert rel_err(split[1], batched[1]) < 1e-5
