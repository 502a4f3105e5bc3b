"""The per-call keys every family reads from ComfyUI's `transformer_options`, and the step a call belongs to.

ComfyUI hands `transformer_options` to every diffusion-model call; the pack's features put their per-run state
there (TeaCache's cache, a multi-GPU rank's shard of the sequence, Ingredients' residuals across ranks), so the
models read them without importing the features.
"""

from __future__ import annotations

TEACACHE = "multiid_teacache"  # the running sample's TeaCache (multiid_core.teacache.TeaCache)
TEACACHE_SETTINGS = "multiid_teacache_settings"  # set by the TeaCache nodes: (threshold, fit name)
SHARD = "multiid_sequence_shard"  # a multi-GPU rank's SequenceShard (multiid_core.parallel)
PEER_RESIDUALS = "multiid_peer_residuals"  # a multi-GPU rank's PeerResiduals: the guidance pair's identity residuals


def step_of(transformer_options: dict) -> tuple[int, int]:
    """(step, steps) of the sampler's schedule this call belongs to (calls between two sigmas: the later)."""
    schedule, sigma = transformer_options.get("sample_sigmas"), transformer_options.get("sigmas")
    if schedule is None or sigma is None:
        return 1, 1
    return int((schedule[:-1] > sigma.max().to(schedule)).sum()) + 1, len(schedule) - 1
