"""ID Router inside ComfyUI: who is who, masks, and the mistakes users make wiring it."""

import pytest
import torch
from comfy_env import pack_error, photo_tensor


@pytest.fixture(scope="module")
def people(node_classes, extractor):
    encode = node_classes["MultiID_EncodeIdentity"]
    return [encode.execute(extractor, photo_tensor(), "largest", 0, f"p{i}").result[0] for i in range(3)]


def route(node_classes, routing="learned", strength=1.0, cfg="as released (unconditional branch)", **inputs):
    return node_classes["MultiID_IDRouter"].execute(routing, strength, cfg, **inputs).result[0]


def test_router_keeps_order_masks_and_options(node_classes, people):
    mask = torch.ones(1, 48, 64)
    routed = route(
        node_classes, "learned + masks", 3.0, "per branch",
        identity_1=people[0], identity_2=people[1], mask_1=mask, mask_2=mask,
    )  # fmt: skip
    assert [i.label for i in routed.identities] == ["p0", "p1"]
    assert routed.mode == "learned + masks" and routed.prior_strength == 3.0 and routed.per_branch
    assert routed.masks[0] is mask


@pytest.mark.parametrize(
    "wiring, message",
    [
        (dict(identity_1=0, mask_2="m"), "mask_2 is connected but identity_2 is not"),
        (dict(identity_1=0, identity_3=1), "identity_3 is connected but identity_2 is not: connect people in order"),
    ],
)
def test_wiring_mistakes_are_explained(node_classes, people, wiring, message):
    inputs = {k: torch.ones(1, 8, 8) if v == "m" else people[v] for k, v in wiring.items()}
    with pytest.raises(pack_error(node_classes), match=message):
        route(node_classes, **inputs)


def test_mask_modes_need_every_mask(node_classes, people):
    with pytest.raises(pack_error(node_classes), match="needs a mask for every person; connect mask_2"):
        route(node_classes, "masks", identity_1=people[0], identity_2=people[1], mask_1=torch.ones(1, 8, 8))
