"""Block swapping: run a transformer bigger than the card by streaming its last blocks in, one ahead.

Swapped blocks keep their weights on the offload device (pinned, for asynchronous copies). Before block
i runs its weights are copied to the compute device, block i+1's copy starts on a side stream, and after
block i the device copies are dropped: nothing is copied back, the offload copy stays authoritative.
The node reserves room for two blocks in flight with ComfyUI before sampling, and ComfyUI places the
rest of the model.
"""

from __future__ import annotations

import torch
from torch import nn


class BlockSwapper:
    def __init__(self, blocks: nn.ModuleList, count: int, device: torch.device) -> None:
        self.blocks = blocks
        self.device = torch.device(device)
        self.swapped = set(range(max(0, len(blocks) - count), len(blocks)))
        self._host = {i: [(p, p.data) for p in blocks[i].parameters()] for i in self.swapped}
        self._pending: dict[int, list[torch.Tensor]] = {}
        self._stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        if self._stream is not None:
            for params in self._host.values():
                for param, data in params:
                    param.data = data.pin_memory()
            self._host = {i: [(p, p.data) for p in blocks[i].parameters()] for i in self.swapped}

    @property
    def bytes_per_block(self) -> int:
        return max((sum(d.numel() * d.element_size() for _, d in p) for p in self._host.values()), default=0)

    def _copy(self, i: int) -> list[torch.Tensor]:
        return [data.to(self.device, non_blocking=True) for _, data in self._host[i]]

    def _prefetch(self, i: int) -> None:
        if i not in self.swapped or i in self._pending:
            return
        if self._stream is None:
            self._pending[i] = self._copy(i)
            return
        with torch.cuda.stream(self._stream):
            self._pending[i] = self._copy(i)

    def acquire(self, i: int) -> None:
        """Block i's weights on the device; the next swapped block starts copying."""
        if i in self.swapped:
            self._prefetch(i)
            if self._stream is not None:
                torch.cuda.current_stream(self.device).wait_stream(self._stream)
            for (param, _), data in zip(self._host[i], self._pending.pop(i)):
                param.data = data
        self._prefetch(i + 1)

    def release(self, i: int) -> None:
        """Back to the offload copy; the device copy is freed once the compute stream is done with it."""
        if i in self.swapped:
            for param, host in self._host[i]:
                if self._stream is not None:
                    param.data.record_stream(torch.cuda.current_stream(self.device))
                param.data = host

    def resident_modules(self, model: nn.Module) -> list[nn.Module]:
        """The model's direct children plus the unswapped blocks: what ComfyUI should place on the device."""
        kept = [block for i, block in enumerate(self.blocks) if i not in self.swapped]
        return [m for m in model.children() if m is not self.blocks] + kept
