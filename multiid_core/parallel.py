"""One model call spread over ranks: guidance parallel, Ulysses and ring sequence parallel (torch.distributed).

A world of `guidance x ring x ulysses` ranks. Guidance group g computes the g-th guidance branch of a call;
inside it, each rank holds a contiguous slice of the video tokens (uneven slices allowed for Ulysses) and the
Ulysses ranks swap tokens for heads around attention (all-to-all), so each attends over its chunk of the
sequence with its share of the heads; with a ring, the chunks' keys and values travel around the ring
(xDiT's Unified Sequence Parallel layout). Everything else in a DiT block is per token, so the slices run it as the
whole would. Ranks of the same slice in the two guidance groups form a pair: Ingredients' released routing
(the unconditional branch routes both) sends the unconditional rank's identity residuals to its pair.

ComfyUI-free: the engine (nodes/multi_gpu*.py) builds a `SequenceShard` per rank and hands it to the models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .errors import MultiIDError

Kernel = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]  # [B, H, L, D] q, k, v -> out


@dataclass(frozen=True)
class ParallelPlan:
    """How many ranks share a call, and how."""

    guidance: int = 1  # 1, or 2: the conditional and unconditional branches on different ranks
    ulysses: int = 1  # ranks swapping tokens for heads around attention
    ring: int = 1  # groups of Ulysses ranks passing keys and values around a ring

    def __post_init__(self) -> None:
        if self.guidance not in (1, 2) or self.ulysses < 1 or self.ring < 1:
            raise ValueError(f"guidance must be 1 or 2, ulysses and ring at least 1: got {self}")

    @property
    def sequence(self) -> int:
        """Ranks sharing one branch's tokens."""
        return self.ulysses * self.ring

    @property
    def world(self) -> int:
        return self.guidance * self.sequence

    def coordinates(self, rank: int) -> tuple[int, int]:
        """(guidance group, position among the ranks sharing its tokens) of a rank."""
        return divmod(rank, self.sequence)

    def rank(self, group: int, piece: int) -> int:
        return group * self.sequence + piece


def token_splits(tokens: int, parts: int) -> list[int]:
    """Sizes of `parts` contiguous slices of `tokens`, the first ones one larger where it does not divide."""
    base, extra = divmod(tokens, parts)
    return [base + (i < extra) for i in range(parts)]


@dataclass
class SequenceShard:
    """This rank's slice of a sequence and the process groups of the ranks sharing it.

    With a ring, the tokens are cut into `ring` equal chunks, one per group of Ulysses ranks (rank = chunk *
    ulysses + piece), and each chunk into `ulysses` slices. Without one, `ulysses_group` is `group`.
    """

    rank: int  # position in `group`
    size: int  # ranks in `group`
    group: dist.ProcessGroup | None
    ring: int = 1
    ulysses_group: dist.ProcessGroup | None = None
    ring_group: dist.ProcessGroup | None = None

    def __post_init__(self) -> None:
        if self.ring == 1:
            self.ulysses_group = self.group

    @property
    def ulysses(self) -> int:
        return self.size // self.ring

    @property
    def piece(self) -> int:
        """Position among the Ulysses ranks of this rank's chunk."""
        return self.rank % self.ulysses

    def chunk(self, tokens: int) -> int:
        """Tokens in each ring chunk."""
        if tokens % self.ring:
            raise MultiIDError(
                f"Ring degree {self.ring} needs the {tokens} video tokens to split into {self.ring} equal parts: "
                f"choose a ring degree that divides {tokens}, or put those ranks into the Ulysses degree."
            )
        return tokens // self.ring

    def sizes(self, tokens: int) -> list[int]:
        """Each rank's count of `tokens`, in rank order (which is token order)."""
        return token_splits(self.chunk(tokens), self.ulysses) * self.ring

    def bounds(self, tokens: int) -> tuple[int, int]:
        sizes = self.sizes(tokens)
        start = sum(sizes[: self.rank])
        return start, start + sizes[self.rank]

    def take(self, x: torch.Tensor, dim: int, tokens: int | None = None) -> torch.Tensor:
        """This rank's slice of x along `dim` (of the first `tokens` entries there, default all)."""
        start, stop = self.bounds(x.shape[dim] if tokens is None else tokens)
        return x.narrow(dim, start, stop - start)

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
        """[B, H, L_local, D] -> [B, H / ulysses, L_chunk, D]: the chunk's tokens, this rank's share of the heads
        (`tokens`: the whole sequence's)."""
        b, h, n, d = x.shape
        p = self.ulysses
        sizes = token_splits(self.chunk(tokens), p)
        send = x.reshape(b, p, h // p, n, d).permute(1, 3, 0, 2, 4).contiguous()  # [P, n, B, H/P, D]
        received = torch.empty((sum(sizes), b, h // p, d), dtype=x.dtype, device=x.device)
        dist.all_to_all_single(received, send.reshape(p * n, b, h // p, d), sizes, [n] * p, group=self.ulysses_group)
        return received.permute(1, 2, 0, 3)

    def tokens_for_heads(self, x: torch.Tensor) -> torch.Tensor:
        """The inverse of `heads_for_tokens`: [B, H / ulysses, L_chunk, D] -> [B, H, L_local, D]."""
        b, h, tokens, d = x.shape
        p = self.ulysses
        sizes = token_splits(tokens, p)
        n = sizes[self.piece]
        received = torch.empty((p * n, b, h, d), dtype=x.dtype, device=x.device)
        dist.all_to_all_single(received, x.permute(2, 0, 1, 3).contiguous(), [n] * p, sizes, group=self.ulysses_group)
        return received.reshape(p, n, b, h, d).permute(2, 0, 3, 1, 4).reshape(b, p * h, n, d)

    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, tokens: int, kernel: Kernel, front: int = 0
    ) -> torch.Tensor:
        """Attention of [B, H, front + L_local, D] q, k, v over every rank's tokens: [front tokens every rank
        holds; this rank's slice of the `tokens` others].

        The front (CogVideoX's text) needs no exchange: each rank takes its heads of it, and the heads of its
        output are gathered back. The slices swap tokens for heads (all-to-all); with a ring, each chunk's keys
        and values then travel around the ring (`ring_attention`, which replaces `kernel`).
        """
        heads, p = q.shape[1], self.ulysses
        if heads % p:
            raise MultiIDError(
                f"This model's {heads} attention heads cannot be split over Ulysses degree {p}: choose a degree that "
                f"divides {heads}."
            )
        share = heads // p
        mine = slice(self.piece * share, (self.piece + 1) * share)

        def spread(x: torch.Tensor) -> torch.Tensor:
            rest = self.heads_for_tokens(x[:, :, front:], tokens) if p > 1 else x[:, :, front:]
            return torch.cat([x[:, mine, :front], rest], dim=2) if front else rest

        q, k, v = spread(q), spread(k), spread(v)
        out = kernel(q, k, v) if self.ring == 1 else ring_attention(q, k, v, front, self.ring_group)
        if p == 1:
            return out
        rest = self.tokens_for_heads(out[:, :, front:])
        if not front:
            return rest
        front_heads = [torch.empty_like(out[:, :, :front]) for _ in range(p)]
        dist.all_gather(front_heads, out[:, :, :front].contiguous(), group=self.ulysses_group)
        return torch.cat([torch.cat(front_heads, dim=1), rest], dim=2)


class UlyssesAttention:
    """An attention kernel for a DiT that sees this rank's slice: [front tokens; slice of `tokens`] (see
    `SequenceShard.attend`)."""

    def __init__(self, shard: SequenceShard, kernel: Kernel, tokens: int, front: int = 0) -> None:
        self.shard, self.kernel, self.tokens, self.front = shard, kernel, tokens, front

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.shard.attend(q, k, v, self.tokens, self.kernel, self.front)


def attention_with_lse(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """PyTorch's fused attention ([B, H, L, D]) and the log-sum-exp of each query's scores [B, H, L]."""
    if q.device.type == "cpu":
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v)[:2]
    elif q.dtype in (torch.float16, torch.bfloat16):
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention(q, k, v)[:2]
    else:
        out, lse = torch.ops.aten._scaled_dot_product_efficient_attention(q, k, v, None, True)[:2]
    return out, lse[..., : q.shape[2]]


def ring_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, front: int, group: dist.ProcessGroup | None
) -> torch.Tensor:
    """Exact attention of q over the front keys and every ring rank's chunk of keys: each chunk's keys and values
    pass to the next rank while this one attends to the chunk it holds; partial results merge by log-sum-exp."""
    size, me = dist.get_world_size(group), dist.get_rank(group)
    ahead, behind = (dist.get_global_rank(group, (me + step) % size) for step in (1, -1))
    out = lse = None

    def merge(block: torch.Tensor, block_lse: torch.Tensor) -> None:
        nonlocal out, lse
        block, block_lse = block.float(), block_lse.float()
        if out is None:
            out, lse = block, block_lse
            return
        total = torch.logaddexp(lse, block_lse)
        out = out * (lse - total).exp()[..., None] + block * (block_lse - total).exp()[..., None]
        lse = total

    if front:
        merge(*attention_with_lse(q, k[:, :, :front], v[:, :, :front]))
    held = torch.stack([k[:, :, front:], v[:, :, front:]]).contiguous()
    for step in range(size):
        if step < size - 1:
            arriving = torch.empty_like(held)
            requests = dist.batch_isend_irecv(
                [dist.P2POp(dist.isend, held, ahead, group), dist.P2POp(dist.irecv, arriving, behind, group)]
            )
        merge(*attention_with_lse(q, held[0], held[1]))
        if step < size - 1:
            for request in requests:
                request.wait()
            held = arriving
    return out.to(q.dtype)


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
