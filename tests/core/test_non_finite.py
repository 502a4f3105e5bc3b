"""A run whose prediction turns NaN or infinite stops with the step and what to try, never a black video."""

import pytest
import torch

from multiid_core.errors import MultiIDError
from multiid_core.pipelines.cogvideox_loading import load_snapshot
from multiid_core.pipelines.cogvideox_sampling import SamplerSettings, sample
from multiid_core.routing import IdentitySet
from multiid_tools.tiny_models.cogvideox import TINY_TEXT_DIM, write_tiny_consisid_snapshot
from multiid_tools.tiny_models.identities import random_identity

SMALL = dict(width=160, height=128, frames=5, steps=3, seed=5)


@pytest.fixture
def model(tmp_path):
    write_tiny_consisid_snapshot(tmp_path / "ConsisID-preview")
    return load_snapshot(tmp_path / "ConsisID-preview", torch.float32)


def run(model) -> torch.Tensor:
    text = torch.randn(1, 226, TINY_TEXT_DIM, generator=torch.Generator().manual_seed(0))
    people = IdentitySet([random_identity(1)], [None])
    return sample(model, text, torch.zeros_like(text), people, SamplerSettings(**SMALL)).latents


def test_a_nan_weight_stops_at_the_first_step(model):
    assert torch.isfinite(run(model)).all()
    with torch.no_grad():
        model.transformer.proj_out.weight[0, 0] = float("nan")
    with pytest.raises(MultiIDError) as refused:
        run(model)
    message = str(refused.value)
    assert message.startswith("The transformer's prediction became NaN or infinite at step 1 of 3")
    assert "nothing was saved" in message and "in bf16 (or fp32)" in message and "multiid.py models check" in message


def test_an_overflow_later_in_the_run_names_its_step(model):
    """As fp16 overflows do on real cards: finite at first, infinite from the third transformer call on."""
    forward, calls = model.transformer.forward, []

    def overflowing(*args, **kwargs):
        calls.append(1)
        out = forward(*args, **kwargs)
        return out * float("inf") if len(calls) >= 3 else out

    model.transformer.forward = overflowing
    with pytest.raises(MultiIDError, match=r"became NaN or infinite at step 3 of 3"):
        run(model)
