"""Identity scoring: one-to-one assignment per frame, missing identities, the max-pair number, the plot."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from multiid_core.errors import MultiIDError
from multiid_core.faces.detection import DetectedFace, FaceDetector
from multiid_core.faces.identity import Identity, PhotoFeatures
from multiid_core.scoring import (
    PALETTE,
    SimilarityReport,
    plot_report,
    sample_indices,
    score_frame,
    score_video,
)
from multiid_tools.tiny_models.faces import TinyFace, write_tiny_antelopev2


def identity(arcface: np.ndarray, label: str = "") -> Identity:
    """An Identity whose only meaningful feature is the ArcFace embedding (all scoring reads)."""
    zeros = torch.zeros(1)
    photo = PhotoFeatures(
        arcface=torch.as_tensor(arcface, dtype=torch.float32),
        arcface_crop=zeros, eva_cls_parsed=zeros, eva_hidden_parsed=[], eva_cls_crop=zeros, eva_hidden_crop=[],
        aligned_crop=zeros, face_on_white=zeros, face_on_black=zeros, face_stand_in=zeros, bbox=np.zeros(4),
        kps=np.zeros((5, 2)),
    )  # fmt: skip
    return Identity(photos=[photo], label=label)


def face(x1: float, size: float) -> DetectedFace:
    return DetectedFace(bbox=np.array([x1, 10, x1 + size, 10 + size]), kps=np.zeros((5, 2)), score=0.9)


class ScriptedDetector:
    """Stands in for FaceDetector with chosen faces and embeddings (detect/embed are all scoring calls)."""

    def __init__(self, faces: list[DetectedFace], embeddings: list[np.ndarray], only_when_padded: bool = False):
        self.faces, self.embeddings, self.only_when_padded = faces, embeddings, only_when_padded
        self.seen_shapes: list[tuple[int, ...]] = []

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        self.seen_shapes.append(image.shape)
        if self.only_when_padded and len(self.seen_shapes) == 1:
            return []
        return list(self.faces)

    def embed(self, image: np.ndarray, detected: DetectedFace) -> np.ndarray:
        return self.embeddings[next(i for i, f in enumerate(self.faces) if f is detected)]


def unit(*values: float) -> np.ndarray:
    v = np.zeros(512, dtype=np.float32)
    v[: len(values)] = values
    return v / np.linalg.norm(v)


FRAME = np.zeros((64, 96, 3), dtype=np.uint8)


def test_assignment_is_one_to_one_and_maximises_the_sum():
    # Each identity taking its best face in turn gives identity 0 face 0 (0.9) and identity 1 face 1 (0.0); the best
    # one-to-one assignment gives identity 1 face 0 and identity 0 face 1.
    faces = [face(0, 20), face(40, 20)]
    e0, e1 = unit(1, 0, 0), unit(0, 1, 0)
    r0 = unit(0.9, np.sqrt(1 - 0.81) * 0.95, 0.1)  # close to both faces
    r1 = unit(1, 0, 0)  # only face 0
    detector = ScriptedDetector(faces, [e0, e1])
    result = score_frame(detector, FRAME, np.stack([r0, r1]))
    assert result.assigned.tolist() == [True, True]
    np.testing.assert_allclose(result.scores, [r0 @ e1, 1.0], rtol=1e-6)
    assert result.faces == 2
    assert result.max_pair == pytest.approx(1.0)


def test_missing_identity_scores_zero_and_negative_cosine_is_clamped():
    detector = ScriptedDetector([face(0, 20)], [unit(1, 0)])
    result = score_frame(detector, FRAME, np.stack([unit(-1, 0.1), unit(0.6, 0.8), unit(0, 1)]))
    np.testing.assert_allclose(result.scores, [0.0, 0.6, 0.0], atol=1e-6)
    assert result.assigned.tolist() == [False, True, False]


def test_frame_without_face_counts_zero_and_is_skipped_by_max_pair():
    result = score_frame(ScriptedDetector([], []), FRAME, np.stack([unit(1)]))
    assert result.scores.tolist() == [0.0] and not result.assigned.any()
    assert result.faces == 0 and result.max_pair is None


def test_no_face_retries_on_the_grey_padded_frame():
    detector = ScriptedDetector([face(0, 20)], [unit(1)], only_when_padded=True)
    result = score_frame(detector, FRAME, np.stack([unit(1)]))
    assert detector.seen_shapes == [(64, 96, 3), (64 + 2 * 16, 96 + 2 * 24, 3)]
    assert result.scores[0] == pytest.approx(1.0)


def test_max_pair_uses_the_two_largest_faces_only():
    faces = [face(0, 50), face(60, 40), face(100, 10)]  # the smallest face is the reference person
    detector = ScriptedDetector(faces, [unit(0, 1), unit(0, 0, 1), unit(1)])
    result = score_frame(detector, FRAME, np.stack([unit(1)]))
    assert result.scores[0] == pytest.approx(1.0)  # the one-to-one score still finds them
    assert result.max_pair == pytest.approx(0.0)


@pytest.mark.parametrize("total, count", [(49, 16), (49, 24), (120, 32), (5, 3)])
def test_sampling_matches_the_eval_scripts(total, count):
    assert sample_indices(total, count) == np.linspace(0, total - 1, count, dtype=int).tolist()


def test_sampling_all_frames():
    assert sample_indices(7, 0) == list(range(7))
    assert sample_indices(7, 50) == list(range(7))
    with pytest.raises(MultiIDError, match="0 \\(all\\)"):
        sample_indices(7, -1)
    with pytest.raises(MultiIDError, match="no frames"):
        sample_indices(0, 0)


def test_report_numbers_and_summary():
    faces = [face(0, 20), face(40, 20)]
    a, b = unit(1, 0), unit(0, 1)
    frames = torch.zeros(4, 64, 96, 3)
    detector = ScriptedDetector(faces, [a, b])
    report = score_video(detector, frames, [identity(a, "Ada"), identity(b, "Bob")])
    assert report.labels == ["Ada", "Bob"]
    np.testing.assert_allclose(report.means, [1.0, 1.0])
    assert report.found.tolist() == [4, 4]

    one_face = ScriptedDetector([faces[0]], [a])
    done = []
    report = score_video(one_face, frames, [identity(a, "Ada"), identity(b)], 2, on_frame=lambda d, t: done.append(d))
    assert done == [1, 2] and [f.index for f in report.frames] == [0, 3]
    np.testing.assert_allclose(report.means, [1.0, 0.0])
    assert report.worst == 1 and report.overall == pytest.approx(0.5)
    text = report.summary()
    assert "2 of 4 frames" in text and "Ada" in text and "identity 2" in text
    assert "found in 0/2 frames" in text and "Worst identity: identity 2 (0.000)" in text
    assert "max-pair" in text and "buffalo_l" in text


def test_identities_without_labels_and_duplicates_are_named_apart():
    detector = ScriptedDetector([], [])
    report = score_video(detector, torch.zeros(1, 8, 8, 3), [identity(unit(1), "Ann"), identity(unit(1), "Ann"),
                                                             identity(unit(1))])  # fmt: skip
    assert report.labels == ["Ann (1)", "Ann (2)", "identity 3"]
    assert "no face found" in report.summary()


def test_bad_inputs_are_explained():
    with pytest.raises(MultiIDError, match="No identity"):
        score_video(ScriptedDetector([], []), torch.zeros(1, 8, 8, 3), [])
    with pytest.raises(MultiIDError, match="frames"):
        score_video(ScriptedDetector([], []), torch.zeros(8, 8), [identity(unit(1))])


def test_plot_draws_one_curve_per_identity():
    frames = [
        score_frame(ScriptedDetector([face(0, 20)], [unit(1)]), FRAME, np.stack([unit(1), unit(0.5, 0.5)]), i)
        for i in range(0, 10, 3)
    ]
    report = SimilarityReport(["Ada", "Bob"], 10, frames)
    image = plot_report(report)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[1] == 960
    for colour in PALETTE[:2]:
        assert (image == np.array(colour, dtype=np.uint8)).all(-1).sum() > 200


@pytest.fixture(scope="module")
def two_face_detector(tmp_path_factory: pytest.TempPathFactory) -> FaceDetector:
    faces = (TinyFace((160.0, 80.0, 320.0, 290.0), 0.92), TinyFace((400.0, 120.0, 470.0, 200.0), 0.81))
    return FaceDetector(write_tiny_antelopev2(tmp_path_factory.mktemp("two") / "antelopev2", faces), "CPU")


def test_real_detector_scores_each_person_on_their_own_face(two_face_detector: FaceDetector):
    """insightface's t1.jpg, the tiny two-face detector: references taken from the frame itself score 1."""
    import insightface

    path = Path(insightface.__file__).parent / "data" / "images" / "t1.jpg"
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    faces = two_face_detector.detect(rgb)
    embeddings = [two_face_detector.embed(rgb, f) for f in faces]
    people = [identity(embeddings[1], "second"), identity(embeddings[0], "first")]
    frames = torch.from_numpy(rgb).float().div(255)[None].repeat(3, 1, 1, 1)
    report = score_video(two_face_detector, frames, people)
    # The frame went through float and back: the embeddings match to rounding.
    np.testing.assert_allclose(report.means, [1.0, 1.0], atol=1e-3)
    assert report.found.tolist() == [3, 3]
    assert report.max_pair == pytest.approx(1.0, abs=1e-3)


LEFT, RIGHT = np.zeros((64, 96), dtype=bool), np.zeros((64, 96), dtype=bool)
LEFT[:, :48], RIGHT[:, 48:] = True, True


def test_a_swap_is_found_where_each_person_was_placed():
    """Person A placed left, B right; the video shows A's face on the right and B's on the left."""
    a, b = unit(1, 0), unit(0, 1)
    detector = ScriptedDetector([face(0, 20), face(70, 20)], [b, a])  # B's face left, A's face right
    swapped = score_frame(detector, FRAME, np.stack([a, b]), masks=[LEFT, RIGHT])
    assert sorted(swapped.swapped) == [(0, 1), (1, 0)] and swapped.scores.tolist() == [1.0, 1.0]
    np.testing.assert_allclose(swapped.centres, [[80 / 96, 20 / 64], [10 / 96, 20 / 64]], rtol=1e-6)
    right_way = score_frame(ScriptedDetector([face(0, 20), face(70, 20)], [a, b]), FRAME, np.stack([a, b]),
                            masks=[LEFT, RIGHT])  # fmt: skip
    assert right_way.swapped == () and right_way.shared == ()
    unplaced = score_frame(detector, FRAME, np.stack([a, b]))
    assert unplaced.swapped == ()  # without masks nothing says where anyone belongs


def test_one_face_matching_two_people_is_a_blend():
    a, b = unit(1, 0), unit(0, 1)
    blend = score_frame(ScriptedDetector([face(30, 20)], [unit(1, 1)]), FRAME, np.stack([a, b]))
    assert blend.shared == ((0, 1),) and blend.scores.max() == pytest.approx(2**-0.5)
    apart = score_frame(ScriptedDetector([face(30, 20)], [unit(1, 0.2)]), FRAME, np.stack([a, b]))
    assert apart.shared == ()


def test_the_report_says_who_landed_where_in_one_line(monkeypatch):
    """A video of three frames: the people placed right in the first, swapped in the last two."""
    import multiid_core.scoring as scoring

    a, b = unit(1, 0), unit(0, 1)
    people = [identity(a, "Ann"), identity(b, "Bob")]
    plans = iter([[a, b], [b, a], [b, a]])
    faces = [face(0, 20), face(70, 20)]

    def detect(image):
        detector.embeddings = next(plans)
        return list(faces)

    detector = ScriptedDetector(faces, [a, b])
    monkeypatch.setattr(detector, "detect", detect)
    left, right = (torch.from_numpy(m).float()[None] for m in (LEFT, RIGHT))
    report = scoring.score_video(detector, torch.zeros(3, 64, 96, 3), people, masks=[left, right])
    verdict = report.verdict()
    assert verdict.startswith("SWAP: Ann found in Bob's mask in 2/3 frames (first at frame 1)")
    assert "Bob found in Ann's mask in 2/3 frames" in verdict and "Ann 1.00 (3/3)" in verdict
    assert report.summary().splitlines()[0] == verdict
    clean = scoring.score_video(ScriptedDetector(faces, [a, b]), torch.zeros(2, 64, 96, 3), people, masks=[left, right])
    assert clean.verdict().startswith("OK: no swap, no blend") and "mostly top left" in clean.summary()
    plot = scoring.plot_report(report)
    assert (plot[66:74] == (200, 0, 0)).all(axis=-1).any()  # the red swap ticks above the chart
    assert not (scoring.plot_report(clean)[66:74] == (200, 0, 0)).all(axis=-1).any()
