"""Reference tokens appended to a Wan video's token sequence: where they sit, and whom they may attend.

Shared by every Wan reference method (nodes/wan/reference_dit.py). Positions: by default the reference frames
continue the video's time axis (as ComfyUI's own Phantom path places them); a method may place them elsewhere.
Regions are the pack's (beyond the releases): with several people, a video token attends only to the
references whose region holds it (`AttentionGroups`), a region being where the user's mask puts the person.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..routing import INSIDE, TokenGrid, mask_coverage

VAE_SCALE = (4, 8)  # Wan2.1 VAE: temporal, spatial compression
TOKEN_PIXELS = 16  # one DiT token covers 16x16 pixels (VAE 8 x patch 2)

# attention(q, k, v, heads) on [B, L, heads * head_dim] tensors -> [B, Lq, heads * head_dim]
Attention = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int], torch.Tensor]


def frames_after_video(frames: int, height: int, width: int, references: int = 0) -> torch.Tensor:
    """[(frames + references) * height * width, 3] (t, h, w) RoPE indices: reference k at frame F + k."""
    t = torch.arange(frames + references)
    grid = torch.stack(torch.meshgrid(t, torch.arange(height), torch.arange(width), indexing="ij"), dim=-1)
    return grid.reshape(-1, 3)


@dataclass
class AttentionGroups:
    """Self-attention split by which references a token may see: (query indices, key indices) per group.

    A video token sees every video token, and reference k's tokens only inside region k. Reference k's tokens see
    their own reference, and, where references see the video (Concat-ID), the video tokens of region k (the mask is
    symmetric, so no identity leaks through another's tokens); where they do not (Stand-In), only themselves. One
    attention call per group, exact.
    """

    groups: list[tuple[torch.Tensor, torch.Tensor]]

    @classmethod
    def from_regions(cls, regions: torch.Tensor, ref_tokens: int, references_see_video: bool = True) -> AttentionGroups:
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
            seen = [torch.nonzero(regions[k])[:, 0]] if references_see_video else []
            groups.append((ref_index[k], torch.cat([*seen, ref_index[k]])))
        return cls(groups)

    @classmethod
    def for_batch_item(
        cls, regions: torch.Tensor | None, refs: int, n_video: int, ref_tokens: int, references_see_video: bool = True
    ) -> AttentionGroups:
        """Groups of one batch item's regions [R, F, h, w] (token grid, > 0.5 = inside); None: every video token
        sees every reference."""
        if regions is None:
            inside = torch.ones(refs, n_video, dtype=torch.bool)
        else:
            inside = regions.reshape(regions.shape[0], -1) > 0.5
        if inside.shape != (refs, n_video):
            raise ValueError(
                f"regions {tuple(inside.shape)} do not match {refs} reference(s) and {n_video} video tokens"
            )
        return cls.from_regions(inside, ref_tokens, references_see_video)

    def video_queries(self, n_video: int) -> AttentionGroups:
        """The groups of the video tokens' queries only (a call whose reference tokens are kept, not computed)."""
        return AttentionGroups([(q, k) for q, k in self.groups if bool((q < n_video).all())])

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


def latent_frames(frames: int) -> int:
    return (frames - 1) // VAE_SCALE[0] + 1


def token_regions(masks: Sequence[torch.Tensor | None], frames: int, height: int, width: int) -> torch.Tensor | None:
    """Per reference, which video tokens may attend to it: float [R, F_lat, height/16, width/16] of 0/1.

    `masks` are ComfyUI MASKs, one per reference, read as ID Router reads them for every family
    (routing.mask_coverage: stretched to the frame; 1 frame for the whole video, or one per video or
    latent frame): a token is inside when the mask covers at least half of it. None: everywhere.
    All None: no regions.
    """
    if all(m is None for m in masks):
        return None
    grid = TokenGrid(latent_frames(frames), height // TOKEN_PIXELS, width // TOKEN_PIXELS)
    rows = [
        torch.ones(grid.tokens) if m is None else (mask_coverage(m.cpu(), grid, frames, f"identity {k + 1}") >= INSIDE)
        for k, m in enumerate(masks)
    ]
    return torch.stack(rows).float().reshape(len(masks), grid.frames, grid.rows, grid.cols)
