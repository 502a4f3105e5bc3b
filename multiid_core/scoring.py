"""How well a generated video keeps each person's identity: per identity, per frame ArcFace cosine.

The published number is FaceSim-Arc (ConsisID, OpenS2V): in each sampled frame take the largest face,
embed it with ArcFace, cosine with the reference embedding clamped at 0, mean over the frames where a
face was found. It has no multi-person form; Ingredients scores two people by the max cosine over all
(reference x two largest faces) pairs, which rewards a video that shows only one of them.

We score every identity on its own: per frame, the detected faces are assigned to the identities one to
one (Hungarian, maximising the summed cosine), an identity with no face assigned scores 0 in that frame,
and cosines are clamped at 0. The Ingredients max-pair number is reported next to it for comparison.

Who landed where: each identity's face centre per frame (as a fraction of the frame), and two swap checks: a face
that matches two people at once (cosine at least MATCH with both: a blend), and, where the people were placed by
masks, a person's face found inside another person's mask and outside their own (a swap).

Embeddings come from the face extractor (antelopev2's glintr100, an ArcFace R100, at detector size 640).
The published FaceSim-Arc uses buffalo_l's w600k_r50 at detector size 320, so our numbers are comparable
in kind, not in value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from scipy.optimize import linear_sum_assignment

from .errors import MultiIDError
from .faces.detection import DetectedFace, FaceDetector
from .faces.extractor import to_uint8_rgb
from .faces.identity import Identity

MATCH = 0.3  # ArcFace (glintr100) cosine from which a face counts as that person (verification's usual threshold)
PAD_FRACTION = 0.25  # FaceSim-Arc's retry: pad 25% grey on every side when no face is found
PAD_GREY = 128
MAX_PAIR_FACES = 2  # Ingredients takes the two largest faces per frame
PROTOCOL = (
    "ArcFace cosine (antelopev2 glintr100), faces assigned to identities one to one per frame, "
    "a missing identity counts 0, clamped at 0"
)


@dataclass(frozen=True)
class FrameScore:
    """One sampled frame: the cosine each identity got (0 when no face was assigned to it)."""

    index: int  # frame number in the video
    scores: np.ndarray  # [identities], clamped cosine of the assigned face, 0 when none
    assigned: np.ndarray  # [identities] bool: a face was assigned to the identity
    faces: int  # faces detected
    max_pair: float | None  # Ingredients: max cosine over (identity x two largest faces); None without a face
    centres: np.ndarray | None = None  # [identities, 2] (x, y) of the assigned face, fractions of the frame; nan: none
    shared: tuple[tuple[int, int], ...] = ()  # identity pairs whose references one face matches at once
    swapped: tuple[tuple[int, int], ...] = ()  # (i, j): identity i's face inside j's mask and outside its own


@dataclass(frozen=True)
class SimilarityReport:
    labels: list[str]
    total_frames: int
    frames: list[FrameScore]

    @property
    def matrix(self) -> np.ndarray:
        """[identities, sampled frames] scores."""
        return np.stack([f.scores for f in self.frames], axis=1)

    @property
    def means(self) -> np.ndarray:
        return self.matrix.mean(axis=1)

    @property
    def minima(self) -> np.ndarray:
        return self.matrix.min(axis=1)

    @property
    def found(self) -> np.ndarray:
        """[identities] number of sampled frames in which a face was assigned to each identity."""
        return np.stack([f.assigned for f in self.frames], axis=1).sum(axis=1)

    @property
    def overall(self) -> float:
        """Mean over identities of each identity's mean."""
        return float(self.means.mean())

    @property
    def worst(self) -> int:
        return int(np.argmin(self.means))

    @property
    def max_pair(self) -> float | None:
        """Ingredients-style score: mean over frames with a face (Ingredients itself fails on a faceless frame)."""
        values = [f.max_pair for f in self.frames if f.max_pair is not None]
        return float(np.mean(values)) if values else None

    def events(self, kind: str) -> dict[tuple[int, int], list[int]]:
        """(i, j) -> the frames where it happened; `kind`: "swapped" or "shared"."""
        found: dict[tuple[int, int], list[int]] = {}
        for frame in self.frames:
            for pair in getattr(frame, kind):
                found.setdefault(pair, []).append(frame.index)
        return found

    def verdict(self) -> str:
        """One line to read at a glance: who was found, and any swap or blend."""
        sampled = len(self.frames)
        problems = [
            f"SWAP: {self.labels[i]} found in {self.labels[j]}'s mask in {len(frames)}/{sampled} frames "
            f"(first at frame {frames[0]})"
            for (i, j), frames in sorted(self.events("swapped").items())
        ]
        problems += [
            f"BLEND: one face matches both {self.labels[i]} and {self.labels[j]} in {len(frames)}/{sampled} frames "
            f"(first at frame {frames[0]})"
            for (i, j), frames in sorted(self.events("shared").items())
        ]
        people = "; ".join(f"{label} {self.means[i]:.2f} ({self.found[i]}/{sampled})" for i, label in
                           enumerate(self.labels))  # fmt: skip
        return (" | ".join(problems) + " | " if problems else "OK: no swap, no blend | ") + people

    def summary(self) -> str:
        sampled = len(self.frames)
        which = "all" if sampled == self.total_frames else "evenly spaced"
        lines = [
            self.verdict(),
            "",
            f"Identity similarity over {sampled} of {self.total_frames} frames ({which}).",
            f"Protocol: {PROTOCOL}.",
            "",
        ]
        width = max(len(label) for label in self.labels)
        for i, label in enumerate(self.labels):
            lines.append(
                f"{label:<{width}}  mean {self.means[i]:.3f}  min {self.minima[i]:.3f}  "
                f"found in {self.found[i]}/{sampled} frames{self._where(i)}"
            )
        lines += [
            "",
            f"Overall mean: {self.overall:.3f}",
            f"Worst identity: {self.labels[self.worst]} ({self.means[self.worst]:.3f})",
        ]
        max_pair = self.max_pair
        with_face = sum(f.max_pair is not None for f in self.frames)
        lines.append(
            "Ingredients-style max-pair (any identity on either of the two largest faces): "
            + (f"{max_pair:.3f} over {with_face} frames with a face" if max_pair is not None else "no face found")
        )
        lines.append(
            "Comparable in kind, not in value, with published FaceSim-Arc numbers (those use buffalo_l w600k_r50)."
        )
        return "\n".join(lines)

    def _where(self, i: int) -> str:
        """Where identity i's face was on average (the frame's left/centre/right, top/middle/bottom)."""
        centres = [f.centres[i] for f in self.frames if f.centres is not None and not np.isnan(f.centres[i]).any()]
        if not centres:
            return ""
        x, y = np.mean(centres, axis=0)
        across = "left" if x < 1 / 3 else "right" if x > 2 / 3 else "centre"
        down = "top" if y < 1 / 3 else "bottom" if y > 2 / 3 else "middle"
        return f", mostly {down} {across} (x {x:.2f}, y {y:.2f})"


def identity_labels(identities: Sequence[Identity]) -> list[str]:
    """Each identity's label, or 'identity N'; repeated labels get their position appended."""
    labels = [identity.label.strip() or f"identity {i + 1}" for i, identity in enumerate(identities)]
    return [f"{label} ({i + 1})" if labels.count(label) > 1 else label for i, label in enumerate(labels)]


def sample_indices(total: int, count: int) -> list[int]:
    """All frames when count is 0 or at least total, else `np.linspace(0, total - 1, count)` as the eval scripts."""
    if total < 1:
        raise MultiIDError("There are no frames to score: connect the decoded video frames (an IMAGE batch).")
    if count < 0:
        raise MultiIDError(f"The number of frames to sample must be 0 (all) or more, got {count}.")
    if count == 0 or count >= total:
        return list(range(total))
    return [int(i) for i in np.linspace(0, total - 1, count).astype(int)]


def _faces_with_retry(detector: FaceDetector, image: np.ndarray) -> tuple[np.ndarray, list[DetectedFace]]:
    """Detected faces and the image they are in; FaceSim-Arc pads 25% grey and retries when none is found."""
    faces = detector.detect(image)
    if faces:
        return image, faces
    h, w = image.shape[:2]
    py, px = int(h * PAD_FRACTION), int(w * PAD_FRACTION)
    padded = np.pad(image, ((py, py), (px, px), (0, 0)), constant_values=PAD_GREY)
    return padded, detector.detect(padded)


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def score_frame(
    detector: FaceDetector,
    image: np.ndarray,
    references: np.ndarray,
    index: int = 0,
    masks: Sequence[np.ndarray | None] | None = None,
) -> FrameScore:
    """One uint8 RGB frame against unit reference embeddings [identities, 512]; `masks`: where each identity was
    placed in this frame (bool [H, W], None: anywhere), for the swap check."""
    count = references.shape[0]
    height, width = image.shape[:2]
    padded, faces = _faces_with_retry(detector, image)
    scores = np.zeros(count, dtype=np.float32)
    assigned = np.zeros(count, dtype=bool)
    centres = np.full((count, 2), np.nan, dtype=np.float32)
    if not faces:
        return FrameScore(index, scores, assigned, 0, None, centres)
    embeddings = _unit(np.stack([detector.embed(padded, face) for face in faces]))
    cosine = np.clip(references @ embeddings.T, 0.0, None)  # [identities, faces]
    rows, cols = linear_sum_assignment(cosine, maximize=True)
    scores[rows] = cosine[rows, cols]
    assigned[rows] = True
    pad_y, pad_x = (padded.shape[0] - height) // 2, (padded.shape[1] - width) // 2
    for i, k in zip(rows, cols, strict=True):
        x1, y1, x2, y2 = faces[k].bbox
        centres[i] = ((x1 + x2) / 2 - pad_x) / width, ((y1 + y2) / 2 - pad_y) / height
    shared = tuple(
        (i, j)
        for k in range(len(faces))
        for i in range(count)
        for j in range(i + 1, count)
        if cosine[i, k] >= MATCH and cosine[j, k] >= MATCH
    )
    swapped = ()
    if masks is not None:
        swapped = tuple(
            (i, j)
            for i in np.nonzero(assigned)[0].tolist()
            if scores[i] >= MATCH
            for j in range(count)
            if j != i and _inside(masks[j], centres[i]) and not _inside(masks[i], centres[i], default=True)
        )
    largest = sorted(range(len(faces)), key=lambda k: faces[k].area, reverse=True)[:MAX_PAIR_FACES]
    return FrameScore(index, scores, assigned, len(faces), float(cosine[:, largest].max()), centres, shared, swapped)


def _inside(mask: np.ndarray | None, centre: np.ndarray, default: bool = False) -> bool:
    """Whether the point (fractions of the frame) lies in the mask (None: no mask, `default`)."""
    if mask is None or np.isnan(centre).any():
        return default
    h, w = mask.shape
    y, x = min(int(centre[1] * h), h - 1), min(int(centre[0] * w), w - 1)
    return bool(mask[max(y, 0), max(x, 0)])


def score_video(
    detector: FaceDetector,
    frames: torch.Tensor,
    identities: Sequence[Identity],
    sample: int = 0,
    on_frame: Callable[[int, int], None] | None = None,
    masks: Sequence[torch.Tensor | None] | None = None,
) -> SimilarityReport:
    """Score an IMAGE batch [frames, H, W, C] against identities; `on_frame(done, total)` after each frame.
    `masks`: where each identity was placed (ComfyUI MASKs, one frame or one per frame; None: anywhere)."""
    if not identities:
        raise MultiIDError("No identity to score against: connect Encode Identity (or several through ID Router).")
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4:
        raise MultiIDError(f"Expected video frames [frames, height, width, channels], got {tuple(frames.shape)}.")
    indices = sample_indices(frames.shape[0], sample)
    references = _unit(np.stack([identity.arcface_unit().float().cpu().numpy() for identity in identities]))
    placed = masks is not None and any(m is not None for m in masks)
    scored = []
    for done, index in enumerate(indices, 1):
        frame_masks = [_mask_at(m, index, frames.shape[0]) for m in masks] if placed else None
        scored.append(score_frame(detector, to_uint8_rgb(frames[index]), references, index, frame_masks))
        if on_frame is not None:
            on_frame(done, len(indices))
    return SimilarityReport(identity_labels(identities), frames.shape[0], scored)


def _mask_at(mask: torch.Tensor | None, frame: int, frames: int) -> np.ndarray | None:
    """A MASK's bool [H, W] for one video frame (one mask for every frame, or one per frame)."""
    if mask is None:
        return None
    mask = mask[None] if mask.ndim == 2 else mask
    return (mask[min(frame, mask.shape[0] - 1) if mask.shape[0] == frames else 0] > 0.5).cpu().numpy()


# Plot: one curve per identity over the frame index, the legend with each identity's mean.
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))  # fmt: skip
MAX_PAIR_COLOUR = (150, 150, 150)
ALARM = (200, 0, 0)  # swap or blend


def _font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's bundled scalable font (Pillow >= 10.1), so the plot needs no font files."""
    return ImageFont.load_default(size=size)


def _dashed(draw: ImageDraw.ImageDraw, points: list[tuple[float, float]], colour, width: int, dash: float = 8) -> None:
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        length = max(np.hypot(x1 - x0, y1 - y0), 1e-6)
        steps = int(length // dash)
        for k in range(0, steps + 1, 2):
            a, b = k * dash / length, min((k + 1) * dash / length, 1.0)
            draw.line([(x0 + (x1 - x0) * a, y0 + (y1 - y0) * a), (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b)],
                      fill=colour, width=width)  # fmt: skip


def plot_report(report: SimilarityReport, width: int = 960, height: int = 540) -> np.ndarray:
    """The per-frame scores as a line chart, uint8 RGB [height, width, 3]; drawn with PIL, no matplotlib.

    One curve per identity (a dot where a face was assigned, a cross on the axis where none was), the
    Ingredients max-pair number as a grey dashed line, and a legend under the chart with every mean.
    """
    entries = [(f"{label}: mean {report.means[i]:.3f}", PALETTE[i % len(PALETTE)]) for i, label in
               enumerate(report.labels)]  # fmt: skip
    if report.max_pair is not None:
        entries.append((f"max-pair (Ingredients): {report.max_pair:.3f}", MAX_PAIR_COLOUR))
    troubled = [f.index for f in report.frames if f.swapped or f.shared]
    if troubled:
        entries.append(("swap or blend in this frame", ALARM))
    columns, line_height = 2, 24
    legend_height = line_height * ((len(entries) + columns - 1) // columns) + 8
    height += legend_height
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    title, small, tiny = _font(22), _font(16), _font(14)
    left, right, top, bottom = 70, width - 20, 76, height - 55 - legend_height
    draw.text(((left + right) / 2, 12), "Identity similarity (ArcFace cosine per frame)", fill=(20, 20, 20),
              font=title, anchor="mt")  # fmt: skip
    verdict = report.verdict().split(" | ")[0]
    draw.text(((left + right) / 2, 42), verdict if len(verdict) < 110 else verdict[:107] + "...",
              fill=ALARM if troubled else (44, 140, 60), font=small, anchor="mt")  # fmt: skip

    last = max(report.total_frames - 1, 1)

    def x_of(frame: int) -> float:
        return left + (right - left) * frame / last

    def y_of(value: float) -> float:
        return bottom - (bottom - top) * float(np.clip(value, 0.0, 1.0))

    half = (right - left) / last / 2
    for index in troubled:  # a pale red band behind the curves
        draw.rectangle(
            [max(x_of(index) - half, left), top, min(x_of(index) + half, right), bottom], fill=(252, 222, 222)
        )
    for tick in np.linspace(0.0, 1.0, 6):
        y = y_of(tick)
        draw.line([(left, y), (right, y)], fill=(225, 225, 225), width=1)
        draw.text((left - 8, y), f"{tick:.1f}", fill=(60, 60, 60), font=tiny, anchor="rm")
    for tick in sorted({int(round(t)) for t in np.linspace(0, report.total_frames - 1, 7)}):
        x = x_of(tick)
        draw.line([(x, bottom), (x, bottom + 5)], fill=(60, 60, 60), width=1)
        draw.text((x, bottom + 8), str(tick), fill=(60, 60, 60), font=tiny, anchor="mt")
    draw.rectangle([left, top, right, bottom], outline=(60, 60, 60), width=1)
    draw.text(((left + right) / 2, bottom + 28), "frame", fill=(20, 20, 20), font=small, anchor="mt")
    draw.text((12, top - 18), "cosine", fill=(20, 20, 20), font=small, anchor="lm")

    pairs = [(x_of(f.index), y_of(f.max_pair)) for f in report.frames if f.max_pair is not None]
    if len(pairs) > 1:
        _dashed(draw, pairs, MAX_PAIR_COLOUR, 2)
    matrix = report.matrix
    for i in range(len(report.labels)):
        colour = PALETTE[i % len(PALETTE)]
        points = [(x_of(f.index), y_of(matrix[i, k])) for k, f in enumerate(report.frames)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=3, joint="curve")
        for k, (x, y) in enumerate(points):
            if report.frames[k].assigned[i]:
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
            else:  # no face for this identity in this frame: a cross on the axis
                draw.line([(x - 4, y - 4), (x + 4, y + 4)], fill=colour, width=2)
                draw.line([(x - 4, y + 4), (x + 4, y - 4)], fill=colour, width=2)

    for index in troubled:  # and a red tick above the chart
        draw.line([(x_of(index), top - 10), (x_of(index), top - 2)], fill=ALARM, width=3)
    column_width = (right - left) / columns
    for k, (text, colour) in enumerate(entries):
        x = left + column_width * (k % columns)
        y = height - legend_height + line_height * (k // columns) + line_height / 2 - 4
        draw.line([(x, y), (x + 26, y)], fill=colour, width=3)
        draw.text((x + 34, y), text, fill=(20, 20, 20), font=small, anchor="lm")
    return np.array(image)
