"""Which identity each video token receives, at every identity injection point.

Ingredients (released): each token's residual is a softmax-weighted mix of the per-identity
cross-attention outputs, the weights coming from a learned router. Beyond the release:

- masks: a token inside identity k's mask receives exactly identity k's residual; a token outside every
  mask receives none. Needs no router, so ConsisID's single-identity weights can place several people.
- learned + masks: the router's logits plus `strength * log(prior)`, the prior being each identity's mask
  coverage of the token (floored, normalised). Strength 0 is the router alone; large strengths approach
  the masks. Tokens outside every mask keep the router's choice.

Overlapping masks: a token belongs to the identity whose mask covers most of it (ties: the earlier
identity), and only if that coverage is at least half the token's area.

CFG: as released, routing and mixed residual are computed from the unconditional branch and added to the
conditional one too, however ComfyUI batches the two (one call, or two in turn: the unconditional first).
`per_branch` computes them per branch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F

from .errors import MultiIDError

RoutingMode = Literal["learned", "masks", "learned + masks"]
ROUTING_MODES: tuple[RoutingMode, ...] = ("learned", "masks", "learned + masks")
INSIDE = 0.5  # coverage from which a token counts as inside a mask
PRIOR_FLOOR = 1e-3  # keeps log(prior) finite where a mask does not reach


@dataclass(frozen=True)
class TokenGrid:
    """The video's token layout: latent frames x patch rows x patch columns (token order t, y, x)."""

    frames: int
    rows: int
    cols: int

    @property
    def tokens(self) -> int:
        return self.frames * self.rows * self.cols


def latent_frame_ranges(video_frames: int, latent_frames: int, temporal: int = 4) -> list[tuple[int, int]]:
    """Video frames each latent frame stands for: the first alone, then groups of `temporal`."""
    ranges = [(0, 1)] + [(1 + temporal * (f - 1), min(video_frames, 1 + temporal * f)) for f in range(1, latent_frames)]
    return ranges[:latent_frames]


def mask_coverage(mask: torch.Tensor, grid: TokenGrid, video_frames: int, name: str) -> torch.Tensor:
    """A ComfyUI MASK ([H, W] or [T, H, W], 0..1) -> [tokens] fraction of each token it covers.

    The mask is stretched to the video's frame; a batch of one is used for every frame, a batch of
    `video_frames` (one per frame) or of the latent frame count follows the video over time.
    """
    if mask.ndim == 2:
        mask = mask[None]
    if mask.ndim != 3:
        raise MultiIDError(f"The mask for {name} must be [frames, height, width]; got shape {tuple(mask.shape)}.")
    if mask.shape[0] not in (1, video_frames, grid.frames):
        raise MultiIDError(
            f"The mask for {name} has {mask.shape[0]} frames; give 1 (the same mask for the whole video), "
            f"{video_frames} (one per video frame) or {grid.frames} (one per latent frame)."
        )
    mask = mask.float().clamp(0, 1)
    if mask.max() <= 0:
        raise MultiIDError(f"The mask for {name} is empty (all black): paint where this person should appear.")
    per_cell = F.adaptive_avg_pool2d(mask[:, None], (grid.rows, grid.cols))[:, 0]  # [T, rows, cols]
    if per_cell.shape[0] == 1:
        per_frame = per_cell.expand(grid.frames, -1, -1)
    elif per_cell.shape[0] == grid.frames:
        per_frame = per_cell
    else:
        ranges = latent_frame_ranges(video_frames, grid.frames)
        per_frame = torch.stack([per_cell[a:b].mean(0) for a, b in ranges])
    return per_frame.reshape(-1)


def coverage_matrix(
    masks: list[torch.Tensor | None], grid: TokenGrid, video_frames: int, labels: list[str]
) -> torch.Tensor | None:
    """[tokens, N] coverage per identity, or None when no identity has a mask."""
    if all(m is None for m in masks):
        return None
    missing = [labels[i] for i, m in enumerate(masks) if m is None]
    if missing:
        raise MultiIDError(
            f"Masks are connected for some identities but not for {', '.join(missing)}: give every identity a "
            f"mask, or none (learned routing)."
        )
    return torch.stack([mask_coverage(m, grid, video_frames, label) for m, label in zip(masks, labels)], dim=1)


def assign_tokens(coverage: torch.Tensor) -> torch.Tensor:
    """[tokens, N] one-hot of the identity owning each token (all zero where no mask covers half a token)."""
    best, owner = coverage.max(dim=1)
    onehot = F.one_hot(owner, coverage.shape[1]).to(coverage.dtype)
    return onehot * (best >= INSIDE).to(coverage.dtype)[:, None]


def check_placed(coverage: torch.Tensor, labels: list[str]) -> None:
    """With routing 'masks' a person who owns no video token would silently vanish: say so instead."""
    owned = assign_tokens(coverage).sum(dim=0).tolist()
    lost = [label for label, count in zip(labels, owned) if count == 0]
    if lost:
        raise MultiIDError(
            f"With routing 'masks', {' and '.join(lost)} would appear nowhere in the video: a video token (16x16 "
            f"pixels) goes to the person whose mask covers most of it, the earlier person on a tie, and only when "
            f"that covers at least half of it. Paint each person their own area of at least 16x16 pixels, or use "
            f"'learned + masks' to let masks overlap."
        )


def prior_log(coverage: torch.Tensor) -> torch.Tensor:
    """log of the normalised, floored coverage (uniform, so neutral, for a token no mask touches)."""
    prior = coverage.clamp_min(PRIOR_FLOOR)
    return (prior / prior.sum(dim=1, keepdim=True)).log()


@dataclass
class RoutingRecorder:
    """Sums the routing weights [tokens, N] over injection points, at the steps it is switched on."""

    active: bool = False
    total: torch.Tensor | None = None
    count: int = 0

    def add(self, weights: torch.Tensor) -> None:
        if not self.active:
            return
        weights = weights.detach().float()
        self.total = weights if self.total is None else self.total + weights
        self.count += 1

    def merge(self, total: torch.Tensor, count: int) -> None:
        """Adds what another recorder summed (a multi-GPU rank's, for the whole video)."""
        self.total = total if self.total is None else self.total + total.to(self.total)
        self.count += count

    def mean(self) -> torch.Tensor | None:
        return None if self.total is None else self.total / self.count


@dataclass
class IdentityInjection:
    """How the identities' face tokens enter the video tokens at each injection point, for one model call.

    `face_tokens` [N, Q, D] come from the perceiver, one row per identity. With N = 1 and no masks this
    is ConsisID's plain cross-attention residual. `sources[i]` is the batch row whose video tokens make row
    i's residual: as released, a conditional row takes its unconditional row's (see the module docstring).
    `kept` carries residuals between the two calls of a guidance step run as two: the unconditional call
    stores them (`keep`), the conditional call reuses them (`reuse`).
    """

    face_tokens: torch.Tensor
    scale: float
    mode: RoutingMode = "learned"
    coverage: torch.Tensor | None = None  # [tokens, N]
    prior_strength: float = 1.0
    sources: list[int] | None = None  # None: every row its own
    recorded_rows: list[int] | None = None  # rows whose routing reaches a conditional branch (None: all)
    recorder: RoutingRecorder = field(default_factory=RoutingRecorder)
    kept: dict[int, torch.Tensor] | None = None
    keep: bool = False
    reuse: bool = False

    def __post_init__(self) -> None:
        n = self.face_tokens.shape[0]
        if self.mode != "learned" and self.coverage is None:
            raise MultiIDError(f"Routing mode '{self.mode}' needs a mask for every identity.")
        self._assignment = assign_tokens(self.coverage) if self.mode == "masks" else None
        self._prior = prior_log(self.coverage) if self.mode == "learned + masks" else None
        self.plain = n == 1 and self.mode == "learned"

    def weights(self, transformer, k: int, video: torch.Tensor) -> torch.Tensor:
        """[B, L, N] mixing weights for the given video tokens at injection point k."""
        if self.mode == "masks":
            return self._assignment.to(video)[None].expand(video.shape[0], -1, -1)
        if not getattr(transformer, "router", None):
            raise MultiIDError(
                "This model has no learned router (only Ingredients has one): with several identities use routing "
                "mode 'masks' and give each identity a mask."
            )
        logits = transformer.router[k](self.face_tokens, video).float()
        if self._prior is not None:
            logits = logits + self.prior_strength * self._prior.to(logits.device)[None]
        return torch.softmax(logits, dim=-1).to(video.dtype)

    @torch.compiler.disable  # row bookkeeping and kept residuals; the blocks around it compile
    def residual(self, transformer, k: int, video: torch.Tensor) -> torch.Tensor:
        """What injection point k adds to the video tokens [B, L, C] (scaled)."""
        if self.plain:
            if self.recorded_rows != []:
                self.recorder.add(torch.ones(video.shape[1], 1, device=video.device))
            return self.scale * transformer.perceiver_cross_attention[k](self.face_tokens, video)
        if self.reuse and self.kept is not None and k in self.kept:  # absent only if a step cache skipped a call
            return self.kept.pop(k)
        sources = list(range(video.shape[0])) if self.sources is None else self.sources
        rows = sorted(set(sources))
        residual = self._mixed(transformer, k, video[rows], [r for r in rows if self._recorded(r)])
        residual = residual[[rows.index(s) for s in sources]]
        if self.keep and self.kept is not None:
            self.kept[k] = residual
        return residual

    def _recorded(self, row: int) -> bool:
        return self.recorded_rows is None or row in self.recorded_rows

    def _mixed(self, transformer, k: int, video: torch.Tensor, recorded: list[int]) -> torch.Tensor:
        weights = self.weights(transformer, k, video)  # [B', L, N]
        if recorded:
            self.recorder.add(weights[-1])  # the routing that reached the conditional branch
        per_identity = transformer.perceiver_cross_attention[k].per_identity(self.face_tokens, video)
        return self.scale * (weights.transpose(1, 2)[..., None] * per_identity).sum(dim=1)


def routing_colours(n: int) -> torch.Tensor:
    """[N, 3] distinct colours in 0..1 (identity 1 orange, 2 blue, 3 green, 4 magenta, ...)."""
    base = [(1.0, 0.55, 0.1), (0.15, 0.45, 1.0), (0.2, 0.8, 0.3), (0.85, 0.2, 0.8), (0.95, 0.9, 0.2), (0.1, 0.85, 0.9)]
    return torch.tensor([base[i % len(base)] for i in range(n)])


def routing_map(weights: torch.Tensor, grid: TokenGrid, width: int, height: int, video_frames: int) -> torch.Tensor:
    """[tokens, N] weights -> IMAGE [video_frames, height, width, 3]: each token's colour mix, black = none."""
    colours = routing_colours(weights.shape[1]).to(weights)
    image = (weights @ colours).reshape(grid.frames, grid.rows, grid.cols, 3).permute(0, 3, 1, 2)
    image = F.interpolate(image, size=(height, width), mode="nearest").permute(0, 2, 3, 1)
    ranges = latent_frame_ranges(video_frames, grid.frames)
    return torch.cat([image[f : f + 1].expand(b - a, -1, -1, -1) for f, (a, b) in enumerate(ranges)])


@dataclass
class IdentitySet:
    """What IDRouter hands the sampler: people in order, optional masks, and how tokens pick between them."""

    identities: list  # list[Identity]
    masks: list[torch.Tensor | None]
    mode: RoutingMode = "learned"
    prior_strength: float = 1.0
    per_branch: bool = False

    @property
    def labels(self) -> list[str]:
        return [identity.label or f"identity {i + 1}" for i, identity in enumerate(self.identities)]


def identity_set(value: Any) -> IdentitySet:
    """What an identity input received, as an IdentitySet: one person (Encode Identity) or several (ID Router).

    Read by attribute, not by class, beyond IdentitySet itself: whatever carries `identities` (and optionally
    one mask per identity in `masks`) is several people, whatever has a `primary` photo is one.
    """
    if isinstance(value, IdentitySet):
        return value
    if hasattr(value, "identities"):
        identities = list(value.identities)
        masks = list(getattr(value, "masks", None) or [None] * len(identities))
        if len(masks) != len(identities):
            raise MultiIDError(
                f"{len(identities)} identities came with {len(masks)} masks; connect one mask per person."
            )
        return IdentitySet(identities, masks)
    if hasattr(value, "primary"):
        return IdentitySet([value], [None])
    raise MultiIDError(f"Expected an identity (Encode Identity) or identities (ID Router), got {type(value).__name__}.")


MAP_STEPS = ("all steps", "first third", "last third", "last step")


def recording_steps(choice: str, steps: int) -> range:
    """The (0-based) denoising steps whose routing the map averages."""
    third = max(1, steps // 3)
    return {
        "all steps": range(steps),
        "first third": range(third),
        "last third": range(steps - third, steps),
        "last step": range(steps - 1, steps),
    }[choice]
