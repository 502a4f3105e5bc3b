"""One model call spread over ranks: guidance parallel and Ulysses sequence parallel (torch.distributed).

A world of `guidance x ulysses` ranks, rank = g * ulysses + u. Guidance group g computes the g-th guidance
branch of a call; inside it, the `ulysses` ranks each hold a contiguous slice of the video tokens (uneven
slices allowed) and swap tokens for heads around attention (all-to-all), so every rank attends over the whole
sequence with its share of the heads. Everything else in a DiT block is per token, so the slices run it as the
whole would. Ranks of the same slice in the two guidance groups form a pair: Ingredients' released routing
(the unconditional branch routes both) sends the unconditional rank's identity residuals to its pair.

ComfyUI-free: the engine (nodes/multi_gpu*.py) builds a `SequenceShard` per rank and hands it to the models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist

Kernel = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]  # [B, H, L, D] q, k, v -> out


@dataclass(frozen=True)
class ParallelPlan:
    """How many ranks share a call, and how."""

    guidance: int = 1  # 1, or 2: the conditional and unconditional branches on different ranks
    ulysses: int = 1  # ranks sharing each branch's video tokens

    def __post_init__(self) -> None:
        if self.guidance not in (1, 2) or self.ulysses < 1:
            raise ValueError(f"guidance must be 1 or 2 and ulysses at least 1, got {self.guidance}, {self.ulysses}")

    @property
    def world(self) -> int:
        return self.guidance * self.ulysses

    def coordinates(self, rank: int) -> tuple[int, int]:
        """(guidance group, slice) of a rank."""
        return divmod(rank, self.ulysses)

    def rank(self, group: int, piece: int) -> int:
        return group * self.ulysses + piece


def token_splits(tokens: int, parts: int) -> list[int]:
    """Sizes of `parts` contiguous slices of `tokens`, the first ones one larger where it does not divide."""
    base, extra = divmod(tokens, parts)
    return [base + (i < extra) for i in range(parts)]


@dataclass
class SequenceShard:
    """This rank's slice of a sequence and the process group of the ranks sharing it."""

    rank: int  # position in `group`
    size: int  # ranks in `group`
    group: dist.ProcessGroup | None

    def bounds(self, tokens: int) -> tuple[int, int]:
        sizes = token_splits(tokens, self.size)
        start = sum(sizes[: self.rank])
        return start, start + sizes[self.rank]

    def take(self, x: torch.Tensor, dim: int, tokens: int | None = None) -> torch.Tensor:
        """This rank's slice of x along `dim` (of the first `tokens` entries there, default all)."""
        start, stop = self.bounds(x.shape[dim] if tokens is None else tokens)
        return x.narrow(dim, start, stop - start)

    def sizes(self, tokens: int) -> list[int]:
        return token_splits(tokens, self.size)

    def sizes_within(self, tokens: int, first: int) -> list[int]:
        """Each rank's count of the first `first` of `tokens` (the video tokens before the references)."""
        starts = [0]
        for n in self.sizes(tokens):
            starts.append(starts[-1] + n)
        return [min(max(first - a, 0), b - a) for a, b in zip(starts, starts[1:])]

    def gather(self, x: torch.Tensor, dim: int, sizes: list[int]) -> torch.Tensor:
        """Every rank's slice of x along `dim` (rank r's holds sizes[r] entries), concatenated in rank order."""
        if self.size == 1:
            return x
        x = x.movedim(dim, 0).contiguous()
        longest = max(sizes)
        padded = torch.zeros((longest, *x.shape[1:]), dtype=x.dtype, device=x.device)
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in range(self.size)]
        dist.all_gather(parts, padded, group=self.group)
        return torch.cat([part[:n] for part, n in zip(parts, sizes)]).movedim(0, dim)

    def heads_for_tokens(self, x: torch.Tensor, tokens: int) -> torch.Tensor:
        """[B, H, L_local, D] -> [B, H / size, L, D]: all tokens, this rank's share of the heads."""
        b, h, n, d = x.shape
        sizes = token_splits(tokens, self.size)
        send = x.reshape(b, self.size, h // self.size, n, d).permute(1, 3, 0, 2, 4).contiguous()  # [P, n, B, H/P, D]
        received = torch.empty((tokens, b, h // self.size, d), dtype=x.dtype, device=x.device)
        dist.all_to_all_single(
            received, send.reshape(self.size * n, b, h // self.size, d), sizes, [n] * self.size, group=self.group
        )
        return received.permute(1, 2, 0, 3)

    def tokens_for_heads(self, x: torch.Tensor) -> torch.Tensor:
        """The inverse of `heads_for_tokens`: [B, H / size, L, D] -> [B, H, L_local, D]."""
        b, h, tokens, d = x.shape
        sizes = token_splits(tokens, self.size)
        n = sizes[self.rank]
        received = torch.empty((self.size * n, b, h, d), dtype=x.dtype, device=x.device)
        dist.all_to_all_single(received, x.permute(2, 0, 1, 3).contiguous(), [n] * self.size, sizes, group=self.group)
        return received.reshape(self.size, n, b, h, d).permute(2, 0, 3, 1, 4).reshape(b, self.size * h, n, d)


class UlyssesAttention:
    """An attention kernel over a sequence of [front tokens every rank holds; this rank's slice of the rest].

    The front (CogVideoX's text tokens) needs no exchange: each rank takes its heads of it, attends, and the
    heads of its output are gathered back. The slices swap tokens for heads (all-to-all) and back.
    """

    def __init__(self, shard: SequenceShard, kernel: Kernel, tokens: int, front: int = 0) -> None:
        self.shard, self.kernel, self.tokens, self.front = shard, kernel, tokens, front

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        shard, front = self.shard, self.front
        heads = q.shape[1]
        if heads % shard.size:
            raise ValueError(f"{heads} attention heads cannot be split over {shard.size} ranks")
        tokens = self.tokens
        share = heads // shard.size
        mine = slice(shard.rank * share, (shard.rank + 1) * share)

        def spread(x: torch.Tensor) -> torch.Tensor:
            rest = shard.heads_for_tokens(x[:, :, front:], tokens)
            return torch.cat([x[:, mine, :front], rest], dim=2) if front else rest

        out = self.kernel(spread(q), spread(k), spread(v))
        rest = shard.tokens_for_heads(out[:, :, front:])
        if not front:
            return rest
        front_heads = [torch.empty_like(out[:, :, :front]) for _ in range(shard.size)]
        dist.all_gather(front_heads, out[:, :, :front].contiguous(), group=shard.group)
        return torch.cat([torch.cat(front_heads, dim=1), rest], dim=2)


class PeerResiduals:
    """The kept-residuals mapping of `routing.IdentityInjection` across a guidance pair of ranks.

    On the unconditional rank, storing a residual sends it; on the conditional rank, taking one receives it
    (every injection point has one, shaped like that rank's video tokens). Both ranks meet the injection
    points in the same order, so the broadcasts pair up.
    """

    def __init__(self, group: dist.ProcessGroup | None, source: int, like: torch.Tensor) -> None:
        self.group, self.source, self.like = group, source, like

    def __setitem__(self, k: int, residual: torch.Tensor) -> None:
        dist.broadcast(residual.contiguous(), src=self.source, group=self.group)

    def __contains__(self, k: int) -> bool:
        return True

    def pop(self, k: int) -> torch.Tensor:
        residual = torch.empty_like(self.like)
        dist.broadcast(residual, src=self.source, group=self.group)
        return residual
