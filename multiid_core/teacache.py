"""TeaCache: skip the transformer blocks at steps where their output barely changes.

Released behaviour (ali-vilab/TeaCache, TeaCache4ConsisID and TeaCache4Wan2.1): before the blocks, the
relative L1 change of the timestep embedding since the previous call is rescaled by a fitted polynomial
and accumulated; while the sum stays under the threshold the blocks are skipped and the previous call's
residual (blocks' output minus input) is added instead; when it crosses, the blocks run and the sum
resets. The first and last steps always run. Each guidance branch keeps its own state, as the Wan release
does for its separate cond and uncond calls; a batched CogVideoX call is one branch, as in the ConsisID
release. Every branch of a call sees the same timestep, so they always decide alike.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

# Polynomials the authors fitted per model (highest power first, as numpy.poly1d takes them).
COEFFICIENTS = {
    "consisid": (-1.53880483e03, 8.43202495e02, -1.34363087e02, 7.97131516e00, -5.23162339e-02),
    "wan2.1-t2v-1.3b": (2.39676752e03, -1.31110545e03, 2.01331979e02, -8.29855975e00, 1.37887774e-01),
    "wan2.1-t2v-14b": (-5784.54975374, 5449.50911966, -1811.16591783, 256.27178429, -13.02252404),
}
CONSISID_THRESHOLDS = (0.1, 0.15, 0.2)  # the published ConsisID settings: about 1.6x, 2.1x and 2.7x on an H100
WAN_THRESHOLDS = (0.05, 0.07, 0.08)  # the published Wan2.1-T2V-1.3B settings: about 1.5x, 1.6x, 2.0x (A800)
WAN_14B_THRESHOLDS = (0.14, 0.15, 0.2)  # the published Wan2.1-T2V-14B settings (TeaCache4Wan2.1)


@dataclass
class _Branch:
    previous: torch.Tensor | None = None
    accumulated: float = 0.0
    residual: torch.Tensor | None = None


@dataclass
class TeaCache:
    threshold: float
    coefficients: tuple[float, ...]
    steps: int
    step: int = 0  # set by the sampler before each call
    computed: int = 0
    skipped: int = 0
    _branches: dict[Hashable, _Branch] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rescale = np.poly1d(self.coefficients)

    def should_compute(self, indicator: torch.Tensor, branch: Hashable = 0) -> bool:
        """Decide for this call; `indicator` is the timestep embedding the blocks are modulated with."""
        state = self._branches.setdefault(branch, _Branch())
        if self.step == 0 or self.step >= self.steps - 1 or state.previous is None or state.residual is None:
            compute = True
            state.accumulated = 0.0
        else:
            change = (indicator - state.previous).abs().mean() / state.previous.abs().mean()
            state.accumulated += float(self._rescale(change.float().item()))
            compute = state.accumulated >= self.threshold
            if compute:
                state.accumulated = 0.0
        state.previous = indicator.detach().clone()
        if compute:
            self.computed += 1
        else:
            self.skipped += 1
        return compute

    def run(
        self,
        x: torch.Tensor,
        indicator: torch.Tensor,
        blocks: Callable[[torch.Tensor], torch.Tensor],
        branches: Sequence[Hashable] = (0,),
    ) -> torch.Tensor:
        """`blocks(x)`, or x plus the residuals kept from the last computed call.

        x and indicator hold one equal batch chunk per guidance branch, in the order of `branches`.
        """
        chunks = len(branches)
        decisions = [self.should_compute(e, key) for e, key in zip(indicator.chunk(chunks), branches)]
        if not any(decisions):
            return x + torch.cat([self._branches[key].residual for key in branches])
        start = x.clone()  # blocks may work in place
        out = blocks(x)
        for key, residual in zip(branches, (out - start).chunk(chunks)):
            self._branches[key].residual = residual
        return out
