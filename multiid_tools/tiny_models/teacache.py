"""Random weights on which TeaCache behaves as on trained ones."""

from __future__ import annotations

import torch


def keep_slow_timestep_frequencies(weight: torch.Tensor) -> torch.Tensor:
    """A copy of the first timestep-embedding layer's weight with the faster half of the frequencies zeroed.

    `weight` is [out, 2 * half]: cos then sin of `half` sinusoid frequencies, fastest first (CogVideoX and
    Wan both). TeaCache decides from how much the timestep embedding changes between steps. With random
    weights on every frequency it changes by 0.4-1.0 per step, far outside the range the published
    polynomials were fitted on (a trained model changes by a few hundredths), so every step would be
    computed (Wan's fit) or skipped (ConsisID's). Kept to the slower half, the change is about 0.03-0.3,
    where the thresholds mean what they mean on real weights.
    """
    out = weight.clone()
    half = weight.shape[1] // 2
    for start in (0, half):
        out[:, start : start + half // 2] = 0
    return out
