"""ConsisID's snapshot loaded and its latents decoded, against diffusers on the same tiny random snapshot.

Sampling runs in ComfyUI on the native MODEL: tests/comfy/test_cogvideox_model.py, test_consisid_sampling.py.
"""

import pytest
import torch
from tensors import rel_err

from multiid_core.cogvideox.checkpoint import load_snapshot
from multiid_core.cogvideox.inputs import decode
from multiid_core.families import CONSISID
from multiid_tools.tiny_models.cogvideox import write_tiny_consisid_snapshot

diffusers = pytest.importorskip("diffusers")


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ConsisID-tiny")
    write_tiny_consisid_snapshot(folder)
    return folder


def test_loads_sharded_snapshot_as_consisid(snapshot):
    assert len(list((snapshot / "transformer").glob("*.safetensors"))) >= 2
    model = load_snapshot(snapshot, torch.float32)
    assert model.family is CONSISID
    assert model.transformer.config.num_layers == 2


@pytest.mark.parametrize("latent_frames, frames", [(3, 9), (2, 5)])
def test_decode_gives_the_pipelines_frames(snapshot, latent_frames, frames):
    """The pipeline's decode_latents (scaled latents in) as frames in 0..1; an even latent count keeps 4k+1 frames."""
    model = load_snapshot(snapshot, torch.float32)
    raw = torch.randn(1, 16, latent_frames, 16, 20, generator=torch.Generator().manual_seed(0))
    ours = decode(model.vae, raw, tiled=False)
    pipe = diffusers.ConsisIDPipeline(
        tokenizer=None, text_encoder=None, vae=model.vae, transformer=None, scheduler=None
    )  # fmt: skip
    scaled = (raw * model.vae.config.scaling_factor).movedim(1, 2)  # the pipeline's [B, T, C, h, w]
    with torch.no_grad():
        video = pipe.decode_latents(scaled)[0]  # [3, T, H, W] in -1..1
    expected = (video.permute(1, 2, 3, 0) / 2 + 0.5).clamp(0, 1)[-frames:]
    assert ours.shape == (frames, 128, 160, 3)
    assert rel_err(ours, expected) < 1e-5
