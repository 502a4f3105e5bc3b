"""Where Concat-ID's appended reference tokens sit (RoPE positions) and whom they may attend (regions).

Positions, as released (ML-GSAI/Concat-ID `freqs_ref`): video token (t, i, j) as in Wan; reference k at
temporal index F + k with width indices shifted by one frame width, (F + k, i, j + W), as if it stood to
the right of the last frame. Regions are ours (beyond the release): with several references, a video
token attends only to the references whose region holds it (`AttentionGroups`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

# attention(q, k, v, heads) on [B, L, heads * head_dim] tensors -> [B, Lq, heads * head_dim]
Attention = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int], torch.Tensor]


def token_positions(frames: int, height: int, width: int, references: int = 0) -> torch.Tensor:
    """[(frames + references) * height * width, 3] (t, h, w) RoPE indices of the joint token grid."""
    t = torch.arange(frames + references)
    grid = torch.stack(torch.meshgrid(t, torch.arange(height), torch.arange(width), indexing="ij"), dim=-1)
    grid[frames:, :, :, 2] += width
    return grid.reshape(-1, 3)


@dataclass
class AttentionGroups:
    """Self-attention split by which references a token may see: (query indices, key indices) per group.

    Every token sees every video token. A video token sees reference k's tokens only inside region k;
    reference k's tokens see their own reference and the video tokens of region k (the mask is
    symmetric, so no identity leaks through another's tokens). One attention call per group, exact.
    """

    groups: list[tuple[torch.Tensor, torch.Tensor]]

    @classmethod
    def from_regions(cls, regions: torch.Tensor, ref_tokens: int) -> AttentionGroups:
        """`regions`: bool [R, N_video] (token k may see reference k); references follow the video tokens."""
        refs, n_video = regions.shape
        device = regions.device
        video = torch.arange(n_video, device=device)
        ref_index = [n_video + k * ref_tokens + torch.arange(ref_tokens, device=device) for k in range(refs)]
        codes = (regions.long() << torch.arange(refs, device=device)[:, None]).sum(0)
        groups = []
        for code in torch.unique(codes).tolist():
            keys = [video] + [ref_index[k] for k in range(refs) if code >> k & 1]
            groups.append((torch.nonzero(codes == code)[:, 0], torch.cat(keys)))
        for k in range(refs):
            groups.append((ref_index[k], torch.cat([torch.nonzero(regions[k])[:, 0], ref_index[k]])))
        return cls(groups)

    @classmethod
    def for_batch_item(cls, regions: torch.Tensor, refs: int, n_video: int, ref_tokens: int) -> AttentionGroups:
        """Groups of one batch item's regions [R, F, h, w] (token grid, > 0.5 = inside)."""
        inside = regions.reshape(regions.shape[0], -1) > 0.5
        if inside.shape != (refs, n_video):
            raise ValueError(
                f"regions {tuple(inside.shape)} do not match {refs} reference(s) and {n_video} video tokens"
            )
        return cls.from_regions(inside, ref_tokens)

    def allowed(self, n: int) -> torch.Tensor:
        """The dense [N, N] bool mask these groups implement (for checks)."""
        mask = torch.zeros(n, n, dtype=torch.bool)
        for queries, keys in self.groups:
            mask[queries.cpu()[:, None], keys.cpu()[None]] = True
        return mask

    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, attention: Attention
    ) -> torch.Tensor:
        out = torch.empty_like(q)
        for queries, keys in self.groups:
            out[:, queries] = attention(q[:, queries], k[:, keys], v[:, keys], heads)
        return out
