"""Speed and memory options: TeaCache as released, exact sequential guidance, block swapping."""

import numpy as np
import pytest
import torch
from tensors import rel_err, small_masks

from multiid_core.block_swap import BlockSwapper
from multiid_core.dit.wan import ConcatIDWan
from multiid_core.errors import MultiIDError
from multiid_core.pipelines.cogvideox_loading import load_concat_id_cogvideox, load_snapshot
from multiid_core.pipelines.cogvideox_sampling import (
    SamplerSettings,
    SpeedOptions,
    attention_kernel,
    make_scheduler,
    sample,
)
from multiid_core.pipelines.concat_id_wan import flow_match_sigmas
from multiid_core.pipelines.concat_id_wan import sample as wan_sample
from multiid_core.routing import IdentitySet
from multiid_core.step_cache import COEFFICIENTS, WAN_THRESHOLDS, TeaCache
from multiid_tools.tiny_models.cogvideox import write_tiny_consisid_snapshot, write_tiny_ingredients_snapshot
from multiid_tools.tiny_models.concat_id import write_tiny_concat_id_snapshot
from multiid_tools.tiny_models.identities import random_identity
from multiid_tools.tiny_models.teacache import keep_slow_timestep_frequencies
from multiid_tools.tiny_models.wan import tiny_concat_id_wan_state_dict

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
    text = torch.randn(1, 226, 32, generator=torch.Generator().manual_seed(0))
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
    positive, negative = torch.randn(1, 226, 32, generator=g), torch.randn(1, 226, 32, generator=g)
    settings = SamplerSettings(**SMALL)
    batched = sample(model, positive, negative, people(), settings)
    sequential = sample(model, positive, negative, people(), settings, speed=SpeedOptions(cfg_batching="sequential"))
    assert rel_err(sequential.latents, batched.latents) < 1e-5
    assert torch.allclose(sequential.routing, batched.routing, atol=1e-5)
    assert sequential.transformer_calls == 2 * SMALL["steps"]


def test_block_swap_keeps_the_output_and_the_offload_copies(snapshots):
    model = load_snapshot(snapshots / "ConsisID-preview", torch.float32)
    text = torch.randn(1, 226, 32)
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


# ------------------------------------------------------------------------------------------- TeaCache for Wan


def smooth_wan_dit(adaln: bool = True) -> ConcatIDWan:
    sd = tiny_concat_id_wan_state_dict(adaln)
    sd["time_embedding.0.weight"] = keep_slow_timestep_frequencies(sd["time_embedding.0.weight"])
    return ConcatIDWan.from_state_dict(sd).eval()


def released_wan_teacache_decisions(embs, steps, threshold):
    """TeaCache4Wan2.1's counter logic (1.3B, no retention steps), replayed: one call per branch per step,
    cond on even and uncond on odd counts, each parity with its own accumulator."""
    rescale = np.poly1d(COEFFICIENTS["wan2.1-t2v-1.3b"])
    accumulated, previous, decisions = [0.0, 0.0], [None, None], []
    for cnt in range(2 * steps):
        parity, emb = cnt % 2, embs[cnt // 2]
        if cnt < 2 or cnt >= 2 * steps - 2:
            compute, accumulated[parity] = True, 0.0
        else:
            change = (emb - previous[parity]).abs().mean() / previous[parity].abs().mean()
            accumulated[parity] += rescale(change.item())
            compute = accumulated[parity] >= threshold
            if compute:
                accumulated[parity] = 0.0
        previous[parity] = emb
        decisions.append(compute)
    return decisions


def wan_inputs():
    g = torch.Generator().manual_seed(3)
    noise, references = torch.randn(1, 16, 3, 6, 8, generator=g), torch.randn(1, 16, 1, 6, 8, generator=g)
    return noise, torch.randn(1, 7, 32, generator=g), torch.randn(1, 7, 32, generator=g), references


@pytest.mark.parametrize("threshold", WAN_THRESHOLDS)
def test_wan_teacache_decides_as_released(threshold):
    dit, steps = smooth_wan_dit(), 25
    ran = []
    run_blocks = dit.run_blocks
    dit.run_blocks = lambda tokens, inputs: ran.append(len(ran)) or run_blocks(tokens, inputs)
    calls = []
    dit.register_forward_pre_hook(lambda m, args: calls.append(len(ran)))
    with torch.no_grad():
        wan_sample(dit, *wan_inputs(), steps=steps, teacache=threshold)
    ours = [after > before for before, after in zip(calls, [*calls[1:], len(ran)])]
    sigmas = flow_match_sigmas(steps)
    embs = [dit.embed_time((sigmas[i] * 1000).reshape(1), torch.float32)[0] for i in range(steps)]
    assert ours == released_wan_teacache_decisions(embs, steps, threshold)
    assert ours[:2] == [True, True] and ours[-2:] == [True, True] and not all(ours)


def test_wan_teacache_skips_calls_and_stays_close():
    """20 of 50 calls skipped. Measured rel_err: 0.035; with a wrong reuse 0.13 (the blocks' output, not
    output - input), 0.16 (the first residual for every skip), 0.32 (nothing added), 0.68 (the other branch's
    residual). The residual of the computed call before the last gives 0.044: too close to tell apart here.
    """
    dit = smooth_wan_dit()
    with torch.no_grad():
        exact = wan_sample(dit, *wan_inputs(), steps=25)
        cached = wan_sample(dit, *wan_inputs(), steps=25, teacache=0.08)
    assert 0 < rel_err(cached, exact) < 0.07


def test_a_batch_of_branches_decides_and_reuses_as_separate_calls():
    """ComfyUI batches prompt and negative prompt into one call; TeaCache keeps one state per chunk."""
    dit = smooth_wan_dit()
    noise, positive, negative, references = wan_inputs()
    sigmas = flow_match_sigmas(25)
    separate, batched = (
        TeaCache(0.08, COEFFICIENTS["wan2.1-t2v-1.3b"], 25),
        TeaCache(0.08, COEFFICIENTS["wan2.1-t2v-1.3b"], 25),
    )
    with torch.no_grad():
        for i in range(25):
            t = (sigmas[i] * 1000).reshape(1)
            separate.step = batched.step = i
            one = torch.cat(
                [
                    dit(noise, t, text, references, cache=separate, branches=[name])
                    for name, text in (("pos", positive), ("neg", negative))
                ]
            )
            both = dit(
                noise.expand(2, -1, -1, -1, -1),
                t,
                torch.cat([positive, negative]),
                references,
                cache=batched,
                branches=["pos", "neg"],
            )
            assert rel_err(both, one) < 1e-5
    assert batched.skipped == separate.skipped > 0
