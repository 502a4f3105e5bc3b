"""TeaCache4Wan2.1 on Concat-ID-Wan: ComfyUI's own WanModel, loaded by ComfyUI, in the release's sampling loop.

References: TeaCache4Wan2.1's counter logic replayed on the time embeddings the release modulates with
(`released_wan_teacache_decisions`), the uncached release loop (concat_id_wan_release.release_sample) on
the same model, and separate calls per guidance branch for ComfyUI's batched ones.
"""

import numpy as np
import pytest
import torch
from concat_id_wan_release import flow_match_sigmas, release_sample
from tensors import rel_err

from multiid_core.concat_id_wan.checkpoint import ConcatIDWanConfig
from multiid_core.teacache import COEFFICIENTS, WAN_THRESHOLDS
from multiid_tools.tiny_models.teacache import keep_slow_timestep_frequencies
from multiid_tools.tiny_models.wan import tiny_concat_id_wan_state_dict

STEPS = 25


def smooth_wan_dit(pack, adaln: bool = True):
    """The tiny Concat-ID-Wan, loaded by ComfyUI, with a timestep embedding that changes as a trained one does."""
    sd = tiny_concat_id_wan_state_dict(adaln)
    sd["time_embedding.0.weight"] = keep_slow_timestep_frequencies(sd["time_embedding.0.weight"])
    patcher = pack.concat_id_wan.concat_id_model_patcher(sd, ConcatIDWanConfig.from_state_dict(sd), "fp32")
    return patcher.model.diffusion_model


def teacache(pack, threshold: float, steps: int = STEPS):
    return pack.teacache.TeaCache(threshold, COEFFICIENTS["wan2.1-t2v-1.3b"], steps)


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
    """Noise [1, 16, 3, 6, 8], prompt and negative prompt [1, 7, 4096], one clean reference latent."""
    g = torch.Generator().manual_seed(3)
    noise, references = torch.randn(1, 16, 3, 6, 8, generator=g), torch.randn(1, 16, 1, 6, 8, generator=g)
    return noise, torch.randn(1, 7, 4096, generator=g), torch.randn(1, 7, 4096, generator=g), references


def wan_sample(pack, dit, threshold: float = 0.0, steps: int = STEPS, on_call=None):
    """The release's loop (cfg 5) on ComfyUI's model, TeaCache4Wan2.1 with `threshold` if > 0; the cache too."""
    cache = teacache(pack, threshold, steps) if threshold else None
    options = {} if cache is None else {pack.options.TEACACHE: cache}

    def forward(x, t, context, references, step_options, branch):
        out = dit.reference_forward(x, t, context, references, None, step_options, [branch])
        if on_call is not None:
            on_call(branch)
        return out

    with torch.no_grad():
        return release_sample(forward, *wan_inputs(), steps, 5.0, options=options), cache


@pytest.mark.parametrize("threshold", WAN_THRESHOLDS)
def test_wan_teacache_decides_as_released(pack, threshold):
    dit = smooth_wan_dit(pack)
    ran, ours = [], []
    run_blocks = dit.run_blocks
    dit.run_blocks = lambda tokens, *args: ran.append(tokens.shape[0]) or run_blocks(tokens, *args)
    seen = [0]

    def on_call(branch):
        ours.append(len(ran) > seen[0])
        seen[0] = len(ran)

    _, cache = wan_sample(pack, dit, threshold, on_call=on_call)
    sigmas = flow_match_sigmas(STEPS)
    with torch.no_grad():
        embs = [
            dit.time_embedding(
                pack.concat_id_wan.release_timestep_embedding(dit.freq_dim, (sigmas[i] * 1000).reshape(1)).float()
            )
            for i in range(STEPS)
        ]
    assert ours == released_wan_teacache_decisions(embs, STEPS, threshold)
    assert ours[:2] == [True, True] and ours[-2:] == [True, True] and not all(ours)
    assert cache.computed == sum(ours) and cache.skipped == len(ours) - sum(ours)


def test_wan_teacache_skips_calls_and_stays_close(pack):
    """Skipped calls reuse their branch's last computed residual: close to the exact latents, farther from any
    wrong reuse.

    16 of 50 calls skipped. Measured rel_err: 0.037; with a wrong reuse 0.055 (the residual of the computed
    call before the last), 0.056 (the blocks' output, not output - input), 0.18 (the first residual for
    every skip), 0.22 (nothing added), 0.47 (the other branch's residual). The tiny model's 2 blocks keep
    the first two close: over other inputs (seeds 0-5) the right reuse gives 0.022-0.033 and those two
    0.031-0.047, so the bound of 0.045 tells them apart for these inputs only.
    """
    dit = smooth_wan_dit(pack)
    exact, _ = wan_sample(pack, dit)
    cached, cache = wan_sample(pack, dit, 0.08)
    assert cache.skipped > 0 and cache.computed + cache.skipped == 2 * STEPS
    assert cache.computed > 4  # refreshed between the first and last steps: a stale residual shows
    assert 0 < rel_err(cached, exact) < 0.045


def test_a_batch_of_branches_decides_and_reuses_as_separate_calls(pack):
    """ComfyUI batches prompt and negative prompt into one call (their cond uuids in `transformer_options`);
    TeaCache keeps one state per chunk, so the batched call decides and reuses as the two separate calls."""
    dit = smooth_wan_dit(pack)
    noise, positive, negative, references = wan_inputs()
    sigmas = flow_match_sigmas(STEPS)
    separate, batched = teacache(pack, 0.08), teacache(pack, 0.08)
    refs = {pack.concat_id_wan.REFERENCES: references}

    def options(cache, uuids, i):
        return {pack.options.TEACACHE: cache, "uuids": uuids, "sample_sigmas": sigmas, "sigmas": sigmas[i : i + 1]}

    with torch.no_grad():
        for i in range(STEPS):
            t = (sigmas[i] * 1000).reshape(1)
            one = torch.cat(
                [
                    dit(noise, t, text, transformer_options=options(separate, [name], i), **refs)
                    for name, text in (("pos", positive), ("neg", negative))
                ]
            )
            both = dit(
                noise.expand(2, -1, -1, -1, -1),
                t.expand(2),
                torch.cat([positive, negative]),
                transformer_options=options(batched, ["pos", "neg"], i),
                **refs,
            )
            assert rel_err(both, one) < 1e-5
    assert batched.skipped == separate.skipped > 0
    assert batched.computed == separate.computed > 4
