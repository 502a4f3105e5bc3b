"""Speed and memory options: TeaCache as released, exact sequential guidance, block swapping (CogVideoX family;
Concat-ID-Wan's TeaCache: tests/comfy/test_concat_id_wan_teacache.py)."""

import numpy as np
import pytest
import torch
from tensors import rel_err, small_masks

from multiid_core.block_swap import BlockSwapper
from multiid_core.errors import MultiIDError
from multiid_core.pipelines.cogvideox_loading import load_concat_id_cogvideox, load_snapshot
from multiid_core.pipelines.cogvideox_sampling import (
    SamplerSettings,
    SpeedOptions,
    attention_kernel,
    make_scheduler,
    sample,
)
from multiid_core.routing import IdentitySet
from multiid_core.step_cache import COEFFICIENTS, TeaCache
from multiid_tools.tiny_models.cogvideox import (
    TINY_TEXT_DIM,
    write_tiny_consisid_snapshot,
    write_tiny_ingredients_snapshot,
)
from multiid_tools.tiny_models.concat_id import write_tiny_concat_id_snapshot
from multiid_tools.tiny_models.identities import random_identity
from multiid_tools.tiny_models.teacache import keep_slow_timestep_frequencies

SMALL = dict(width=160, height=128, frames=5, steps=4, seed=5)


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    write_tiny_consisid_snapshot(root / "ConsisID-preview")
    write_tiny_ingredients_snapshot(root / "Ingredients")
    write_tiny_concat_id_snapshot(root / "Concat-ID")
    return root


def released_teacache_decisions(embs, steps, threshold):
    """TeaCache4ConsisID's counter logic, replayed: one decision per transformer call."""
    rescale = np.poly1d(COEFFICIENTS["consisid"])
    cnt, accumulated, previous, decisions = 0, 0.0, None, []
    for emb in embs:
        if cnt == 0 or cnt == steps - 1:
            compute, accumulated = True, 0.0
        else:
            accumulated += rescale(((emb - previous).abs().mean() / previous.abs().mean()).item())
            compute = accumulated >= threshold
            if compute:
                accumulated = 0.0
        previous = emb
        cnt += 1
        if cnt == steps - 1:
            cnt = 0
        decisions.append(compute)
    return decisions


@pytest.mark.parametrize("threshold", [0.1, 0.15, 0.2])
def test_teacache_decides_as_released(snapshots, threshold):
    model = load_snapshot(snapshots / "ConsisID-preview", torch.float32)
    scheduler = make_scheduler("CogVideoX DPM", model.scheduler_config)
    scheduler.set_timesteps(50)
    embs = [model.transformer.embed_time(t.reshape(1).expand(2), torch.float32) for t in scheduler.timesteps]
    cache = TeaCache(threshold, COEFFICIENTS["consisid"], 50)
    ran, ours = [], []
    for step, emb in enumerate(embs):
        cache.step = step
        before = len(ran)
        cache.run(torch.zeros(2, 3), emb, lambda x: ran.append(True) or x + 1)
        ours.append(len(ran) > before)
    assert ours == released_teacache_decisions(embs, 50, threshold)
    assert ours[0] and ours[-1]


def test_teacache_skips_calls_and_stays_close(snapshots):
    """Skipped calls reuse the last computed residual: close to the exact latents, far from any wrong reuse.

    With the slow timestep frequencies (as trained weights) 10 of 20 calls are skipped and the cache refreshes
    in between. Measured rel_err: 0.011 here (0.011-0.014 over other texts); with a wrong reuse 0.031 (the
    residual of the computed call before the last), 0.078 (the first residual for every skip), 0.11 (the
    blocks' output, not output - input), 0.18 (the halves of the batch swapped), 0.24 (nothing added).
    """
    model = load_snapshot(snapshots / "ConsisID-preview", torch.float32)
    with torch.no_grad():
        weight = model.transformer.time_embedding.linear_1.weight
        weight.copy_(keep_slow_timestep_frequencies(weight))
    text = torch.randn(1, 226, TINY_TEXT_DIM, generator=torch.Generator().manual_seed(0))
    people = IdentitySet([random_identity(1)], [None])
    settings = SamplerSettings(**{**SMALL, "steps": 20})
    exact = sample(model, text, torch.zeros_like(text), people, settings)
    cached = sample(model, text, torch.zeros_like(text), people, settings, speed=SpeedOptions(teacache=0.2))
    assert exact.transformer_calls == 20 and exact.skipped_calls == 0
    assert cached.skipped_calls > 0 and cached.transformer_calls + cached.skipped_calls == 20
    assert cached.transformer_calls > 2  # refreshed between the first and last steps: a stale residual shows
    assert rel_err(cached.latents, exact.latents) < 0.02
    assert not torch.equal(cached.latents, exact.latents)


CASES = {
    "consisid": ("ConsisID-preview", lambda: IdentitySet([random_identity(1)], [None])),
    "ingredients as released": (
        "Ingredients",
        lambda: IdentitySet([random_identity(1), random_identity(2)], [None] * 2),
    ),
    "ingredients per branch": (
        "Ingredients",
        lambda: IdentitySet([random_identity(1), random_identity(2)], [None] * 2, per_branch=True),
    ),
    "consisid masks": (
        "ConsisID-preview",
        lambda: IdentitySet([random_identity(1), random_identity(2)], small_masks(2), mode="masks"),
    ),
    "concat-id": (
        "Concat-ID/two-identities",
        lambda: IdentitySet([random_identity(1), random_identity(2)], [None] * 2),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_sequential_guidance_gives_the_batched_latents(snapshots, case):
    folder, people = CASES[case]
    path = snapshots / folder
    model = (
        load_concat_id_cogvideox(path, torch.float32)
        if (path / "latest").exists()
        else load_snapshot(path, torch.float32)
    )
    g = torch.Generator().manual_seed(0)
    positive, negative = (torch.randn(1, 226, TINY_TEXT_DIM, generator=g) for _ in range(2))
    settings = SamplerSettings(**SMALL)
    batched = sample(model, positive, negative, people(), settings)
    sequential = sample(model, positive, negative, people(), settings, speed=SpeedOptions(cfg_batching="sequential"))
    assert rel_err(sequential.latents, batched.latents) < 1e-5
    assert torch.allclose(sequential.routing, batched.routing, atol=1e-5)
    assert sequential.transformer_calls == 2 * SMALL["steps"]


def test_block_swap_keeps_the_output_and_the_offload_copies(snapshots):
    model = load_snapshot(snapshots / "ConsisID-preview", torch.float32)
    text = torch.randn(1, 226, TINY_TEXT_DIM)
    people = IdentitySet([random_identity(1)], [None])
    settings = SamplerSettings(**SMALL)
    expected = sample(model, text, torch.zeros_like(text), people, settings).latents
    blocks = model.transformer.transformer_blocks
    before = [p.data_ptr() for p in blocks[1].parameters()]
    swapper = BlockSwapper(blocks, count=1, device=torch.device("cpu"))
    calls = []
    acquire = swapper.acquire
    swapper.acquire = lambda i: (calls.append(i), acquire(i))[1]
    model.transformer.swapper = swapper
    try:
        swapped = sample(model, text, torch.zeros_like(text), people, settings).latents
    finally:
        model.transformer.swapper = None
    assert torch.equal(swapped, expected)
    assert calls == [0, 1] * SMALL["steps"]  # one batched call per step, both blocks each time
    assert before == [p.data_ptr() for p in blocks[1].parameters()]  # back on the offload copies
    assert swapper.swapped == {1} and swapper.bytes_per_block > 0
    assert blocks[0] in swapper.resident_modules(model.transformer) and blocks[1] not in swapper.resident_modules(
        model.transformer
    )


def test_sage_attention_missing_is_explained():
    try:
        import sageattention  # noqa: F401
    except ImportError:
        with pytest.raises(MultiIDError, match="pip install sageattention"):
            attention_kernel("sage")
    else:
        kernel = attention_kernel("sage")
        q = torch.randn(1, 2, 8, 16)
        assert torch.allclose(kernel(q, q, q), torch.nn.functional.scaled_dot_product_attention(q, q, q))
