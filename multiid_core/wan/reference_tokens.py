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

from ..errors import MultiIDError
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
    def from_regions(
        cls,
        regions: torch.Tensor,
        ref_tokens: int,
        references_see_video: bool = True,
        owners: Sequence[int] | None = None,
    ) -> AttentionGroups:
        """`regions`: bool [R, N_video] (token k may see reference k); references follow the video tokens.
        `owners`: the person each reference shows (a person's references see each other); None: one each."""
        refs, n_video = regions.shape
        owners = list(range(refs)) if owners is None else list(owners)
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
            same = [ref_index[j] for j in range(refs) if owners[j] == owners[k]]
            groups.append((ref_index[k], torch.cat([*seen, *same])))
        return cls(groups)

    @classmethod
    def for_batch_item(
        cls,
        regions: torch.Tensor | None,
        refs: int,
        n_video: int,
        ref_tokens: int,
        references_see_video: bool = True,
        owners: Sequence[int] | None = None,
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
        return cls.from_regions(inside, ref_tokens, references_see_video, owners)

    def moved(self, position: torch.Tensor) -> AttentionGroups:
        """The same groups over a sequence laid out otherwise: `position[i]` is where token i of the [video;
        references] layout sits (e.g. VACE puts its reference frames before the video's)."""
        return AttentionGroups([(position[q], position[k]) for q, k in self.groups])

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
    for k, m in enumerate(masks):
        if m is not None:
            check_mask_fits(m, height, width, f"identity {k + 1}")
    grid = TokenGrid(latent_frames(frames), height // TOKEN_PIXELS, width // TOKEN_PIXELS)
    rows = [
        torch.ones(grid.tokens) if m is None else (mask_coverage(m.cpu(), grid, frames, f"identity {k + 1}") >= INSIDE)
        for k, m in enumerate(masks)
    ]
    return torch.stack(rows).float().reshape(len(masks), grid.frames, grid.rows, grid.cols)


# ------------------------------------------------------------------------------------- placed people, checked

ASPECT_TOLERATED = 0.05  # a mask painted at a rounded size of the video still fits


def check_mask_fits(mask: torch.Tensor, height: int, width: int, name: str) -> None:
    """Refuse a mask of another shape than the video: stretched onto the frame, its person would land elsewhere."""
    mask_height, mask_width = mask.shape[-2:]
    if abs((mask_width / mask_height) / (width / height) - 1) > ASPECT_TOLERATED:
        raise MultiIDError(
            f"The mask for {name} is {mask_width}x{mask_height} and the video {width}x{height}: stretched onto the "
            "video, the person would land somewhere else than painted. Paint the mask at the video's size (or the "
            "same proportions), e.g. on a Load Image of a frame of that size or with Solid Mask at width x height."
        )


OVERLAP_TOLERATED = 1  # pixels of overlap let through (anti-aliased mask edges)


def reference_owners(frames_per_person: str, people: int) -> list[int]:
    """ "1,2" -> [0, 1, 1]: the person of each reference image; "" -> one image per person."""
    text = frames_per_person.strip()
    if not text:
        return list(range(people))
    try:
        counts = [int(part) for part in text.replace(" ", "").split(",")]
    except ValueError:
        raise MultiIDError(
            f"frames_per_person {frames_per_person!r} is not a list of whole numbers: write how many reference images "
            "each person has in the batch of reference images, in the people's order, e.g. 1,2."
        ) from None
    if len(counts) != people or any(count < 1 for count in counts):
        raise MultiIDError(
            f"frames_per_person {frames_per_person!r} gives {len(counts)} count(s) for {people} people: give one "
            "count per person, each at least 1 (a person with no reference image cannot be placed)."
        )
    return [person for person, count in enumerate(counts) for _ in range(count)]


def check_masks_apart(masks: list[torch.Tensor | None], labels: list[str]) -> None:
    """Refuse masks that overlap: tokens there would see both people's references and blend their faces."""
    painted = [(i, (m > 0.5)) for i, m in enumerate(masks) if m is not None]
    for a, (i, first) in enumerate(painted):
        for j, second in painted[a + 1 :]:
            if first.shape[-2:] != second.shape[-2:]:
                raise MultiIDError(
                    f"The masks of {labels[i]} ({tuple(first.shape[-2:])}) and {labels[j]} "
                    f"({tuple(second.shape[-2:])}) differ in size: paint every mask at the video's size."
                )
            both = first.expand_as(second) & second if first.ndim <= second.ndim else first & second.expand_as(first)
            if int(both.sum()) > OVERLAP_TOLERATED:
                ys, xs = torch.nonzero(both.reshape(-1, *both.shape[-2:]).any(0), as_tuple=True)
                raise MultiIDError(
                    f"The masks of {labels[i]} and {labels[j]} overlap in {int(both.sum())} pixels (x {int(xs.min())}-"
                    f"{int(xs.max())}, y {int(ys.min())}-{int(ys.max())}): video tokens there would see both people's "
                    "reference images, and their faces blend. Paint the masks so they do not overlap."
                )
