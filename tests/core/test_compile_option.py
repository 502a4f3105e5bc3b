"""MultiID Speed & Memory's compile option follows each run: off runs the plain blocks, on compiles once."""

import pytest
import torch

from multiid_core.pipelines.cogvideox_loading import load_snapshot
from multiid_core.pipelines.cogvideox_sampling import SamplerSettings, SpeedOptions, sample
from multiid_core.routing import IdentitySet
from multiid_tools.tiny_models.cogvideox import TINY_TEXT_DIM, write_tiny_consisid_snapshot
from multiid_tools.tiny_models.identities import random_identity

SMALL = dict(width=160, height=128, frames=5, steps=2, seed=5)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "ConsisID-preview"
    write_tiny_consisid_snapshot(folder)
    return load_snapshot(folder, torch.float32)


def test_compile_off_after_on_runs_the_plain_blocks_and_on_again_reuses_the_compiled_ones(model, monkeypatch):
    compiled, compiled_runs = [], []

    def fake_compile(module: torch.nn.Module, **kwargs):
        """Stands for torch.compile: counts compilations and the calls that go through a compiled block."""
        compiled.append(module)

        def run(*args):
            compiled_runs.append(module)
            return module(*args)

        return run

    monkeypatch.setattr(torch, "compile", fake_compile)
    text = torch.randn(1, 226, TINY_TEXT_DIM, generator=torch.Generator().manual_seed(0))
    people = IdentitySet([random_identity(1)], [None])
    settings = SamplerSettings(**SMALL)
    blocks = list(model.transformer.transformer_blocks)

    def run(compile: bool) -> tuple[torch.Tensor, int]:
        before = len(compiled_runs)
        latents = sample(model, text, torch.zeros_like(text), people, settings, speed=SpeedOptions(compile=compile))
        return latents.latents, len(compiled_runs) - before

    plain, plain_compiled_runs = run(compile=False)
    assert plain_compiled_runs == 0 and compiled == []

    on, on_compiled_runs = run(compile=True)
    assert compiled == blocks  # each block compiled once
    assert on_compiled_runs == len(blocks) * SMALL["steps"]  # one batched call per step, every block compiled

    off, off_compiled_runs = run(compile=False)
    assert off_compiled_runs == 0  # turning compile off runs the plain blocks

    again, again_compiled_runs = run(compile=True)
    assert again_compiled_runs == len(blocks) * SMALL["steps"]
    assert compiled == blocks  # the compiled blocks were kept, not compiled again

    assert torch.equal(on, plain) and torch.equal(off, plain) and torch.equal(again, plain)
