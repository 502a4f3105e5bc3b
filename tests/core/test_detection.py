"""FaceDetector against insightface's own FaceAnalysis, on tiny synthetic antelopev2 models and t1.jpg."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import onnxruntime
import pytest

from multiid_core.errors import MultiIDError
from multiid_core.faces import detection
from multiid_core.faces.detection import (
    DETECTOR_FILE,
    RECOGNIZER_FILE,
    DetectedFace,
    FaceDetector,
    resolve_antelopev2,
    select_providers,
)
from multiid_tools.tiny_models.faces import (
    DEFAULT_FACES,
    EMBEDDING_DIM,
    TinyFace,
    write_corrupt_onnx,
    write_tiny_antelopev2,
)

CPU = "CPUExecutionProvider"
HINT = "BestWishYsh/ConsisID-preview"
# Two faces of different sizes (strides 32 and 16), both inside t1.jpg's letterboxed content (640x443).
TWO_FACES = (TinyFace((160.0, 80.0, 320.0, 290.0), 0.92), TinyFace((400.0, 120.0, 470.0, 200.0), 0.81))


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_antelopev2(tmp_path_factory.mktemp("tiny") / "antelopev2")


@pytest.fixture(scope="module")
def two_face_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_antelopev2(tmp_path_factory.mktemp("two") / "antelopev2", TWO_FACES)


@pytest.fixture(scope="module")
def detector(tiny_folder: Path) -> FaceDetector:
    return FaceDetector(tiny_folder, provider="CPU")


@pytest.fixture(scope="module")
def t1_rgb() -> np.ndarray:
    import insightface

    path = Path(insightface.__file__).parent / "data" / "images" / "t1.jpg"
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _noise(height: int, width: int) -> np.ndarray:
    return np.random.default_rng(height * 7 + width).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _det_scale(height: int, width: int, det_size: int = 640) -> float:
    """insightface letterboxes into the top-left corner keeping aspect; this is its resize factor."""
    if height / width > 1:
        return det_size / height
    return int(det_size * height / width) / height


def test_tiny_models_route_like_antelopev2(tiny_folder: Path) -> None:
    from insightface.model_zoo import get_model

    det = get_model(str(tiny_folder / DETECTOR_FILE), providers=[CPU])
    rec = get_model(str(tiny_folder / RECOGNIZER_FILE), providers=[CPU])
    assert (det.taskname, det.use_kps, det.fmc, det._num_anchors) == ("detection", True, 3, 2)
    assert det.static_input_size is None  # dynamic input, like the real scrfd_10g_bnkps
    assert rec.taskname == "recognition" and rec.input_size == (112, 112)
    assert (rec.input_mean, rec.input_std) == (127.5, 127.5)  # the glintr100 normalisation
    assert (tiny_folder / RECOGNIZER_FILE).stat().st_size < 4 * 2**20
    assert (tiny_folder / DETECTOR_FILE).stat().st_size < 64 * 2**10


def test_cpu_provider(detector: FaceDetector) -> None:
    assert detector.providers == [CPU]


def test_auto_provider_works(tiny_folder: Path) -> None:
    auto = FaceDetector(tiny_folder, provider="auto")
    assert CPU in auto.providers
    assert len(auto.detect(_noise(480, 640))) == 1


@pytest.mark.parametrize(("height", "width"), [(1280, 720), (720, 1280), (1000, 1000), (886, 1280)])
def test_detect_returns_configured_face_in_image_pixels(detector: FaceDetector, height: int, width: int) -> None:
    faces = detector.detect(_noise(height, width))
    assert len(faces) == 1
    face, tiny = faces[0], DEFAULT_FACES[0]
    scale = _det_scale(height, width)
    np.testing.assert_allclose(face.bbox, np.array(tiny.box) / scale, rtol=1e-5)
    np.testing.assert_allclose(face.kps, tiny.keypoints() / scale, rtol=1e-5)
    assert face.score == pytest.approx(tiny.score)
    assert face.bbox.dtype == np.float32 and face.kps.shape == (5, 2)
    x1, y1, x2, y2 = face.bbox
    assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    assert np.all((face.kps >= face.bbox[:2]) & (face.kps <= face.bbox[2:]))
    assert face.area == pytest.approx(float((x2 - x1) * (y2 - y1)))


def test_two_faces_sorted_by_score_and_largest_by_area(two_face_folder: Path) -> None:
    faces = FaceDetector(two_face_folder, provider="CPU").detect(_noise(720, 1280))
    assert [round(f.score, 2) for f in faces] == [0.92, 0.81]
    assert max(faces, key=lambda f: f.area) is faces[0]


def test_no_face(tmp_path: Path) -> None:
    folder = write_tiny_antelopev2(tmp_path / "antelopev2", faces=())
    assert FaceDetector(folder, provider="CPU").detect(_noise(480, 640)) == []


def test_detected_face_is_read_only(detector: FaceDetector) -> None:
    face = detector.detect(_noise(480, 640))[0]
    with pytest.raises(ValueError):
        face.bbox[0] = 0
    assert isinstance(face, DetectedFace)


def test_parity_with_face_analysis(two_face_folder: Path, t1_rgb: np.ndarray) -> None:
    from insightface.app import FaceAnalysis

    app = FaceAnalysis(name=str(two_face_folder), allowed_modules=["detection", "recognition"], providers=[CPU])
    app.prepare(ctx_id=-1, det_size=(640, 640))
    bgr = cv2.cvtColor(t1_rgb, cv2.COLOR_RGB2BGR)
    with warnings.catch_warnings():  # skimage >= 0.26 deprecates the estimate() that norm_crop calls
        warnings.simplefilter("ignore", FutureWarning)
        reference = app.get(bgr)

    ours = FaceDetector(two_face_folder, provider="CPU")
    faces = ours.detect(t1_rgb)
    assert len(faces) == len(reference) == 2
    for face, ref in zip(faces, reference):
        assert np.array_equal(face.bbox, ref.bbox) and face.bbox.dtype == ref.bbox.dtype
        assert np.array_equal(face.kps, ref.kps) and face.kps.dtype == ref.kps.dtype
        assert face.score == float(ref.det_score)
        with warnings.catch_warnings():  # embed() silences that deprecation itself
            warnings.simplefilter("error", FutureWarning)
            embedding = ours.embed(t1_rgb, face)
        assert embedding.dtype == np.float32 and embedding.shape == (EMBEDDING_DIM,)
        assert np.array_equal(embedding, ref.embedding)
    assert not np.allclose(reference[0].embedding, reference[1].embedding)


def test_embedding_follows_pixels(detector: FaceDetector) -> None:
    image = _noise(720, 1280)
    face = detector.detect(image)[0]
    first = detector.embed(image, face)
    assert np.array_equal(first, detector.embed(image.copy(), face))
    assert not np.allclose(first, detector.embed(255 - image, face))


def test_nested_layout_is_used_with_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    outer = tmp_path / "antelopev2"
    inner = write_tiny_antelopev2(outer / "antelopev2")
    with caplog.at_level(logging.WARNING, logger=detection.__name__):
        found = FaceDetector(outer, provider="CPU")
    assert found.folder == inner
    assert len(found.detect(_noise(480, 640))) == 1
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("one folder too deep" in m and str(inner) in m for m in messages)


def test_missing_folder(tmp_path: Path) -> None:
    folder = tmp_path / "nowhere" / "antelopev2"
    with pytest.raises(MultiIDError) as err:
        FaceDetector(folder)
    message = str(err.value)
    assert "does not exist" in message and HINT in message
    assert str(folder / DETECTOR_FILE) in message and str(folder / RECOGNIZER_FILE) in message


def test_missing_recognizer(tmp_path: Path) -> None:
    folder = write_tiny_antelopev2(tmp_path / "antelopev2")
    (folder / RECOGNIZER_FILE).unlink()
    with pytest.raises(MultiIDError) as err:
        resolve_antelopev2(folder)
    message = str(err.value)
    assert f"lacks {RECOGNIZER_FILE}" in message and str(folder / RECOGNIZER_FILE) in message
    assert HINT in message and "models/insightface/models/antelopev2" in message


@pytest.mark.parametrize("name", [DETECTOR_FILE, RECOGNIZER_FILE])
def test_corrupt_onnx(tmp_path: Path, name: str) -> None:
    folder = write_tiny_antelopev2(tmp_path / "antelopev2")
    write_corrupt_onnx(folder / name)
    with pytest.raises(MultiIDError) as err:
        FaceDetector(folder, provider="CPU")
    message = str(err.value)
    assert str(folder / name) in message and "damaged" in message and "download it again" in message
    assert HINT in message


def test_swapped_files_are_reported(tmp_path: Path) -> None:
    folder = write_tiny_antelopev2(tmp_path / "antelopev2")
    shutil.copy(folder / RECOGNIZER_FILE, folder / DETECTOR_FILE)
    with pytest.raises(MultiIDError, match="is not an SCRFD face detector"):
        FaceDetector(folder, provider="CPU")


def test_provider_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: [CPU])
    assert select_providers("auto") == [CPU]
    assert select_providers("CPU") == [CPU]
    with pytest.raises(MultiIDError, match="onnxruntime-gpu"):
        select_providers("CUDA")
    with pytest.raises(MultiIDError, match="ROCm"):
        select_providers("ROCm")
    with pytest.raises(MultiIDError, match="choose one of"):
        select_providers("TensorRT")
    listed = ["CoreMLExecutionProvider", "CUDAExecutionProvider", CPU]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: listed)
    assert select_providers("auto") == ["CUDAExecutionProvider", CPU]
    assert select_providers("CoreML") == ["CoreMLExecutionProvider", CPU]


@pytest.mark.filterwarnings("ignore:Specified provider 'CUDAExecutionProvider'")
def test_listed_but_unusable_accelerator_falls_back_to_cpu(
    tiny_folder: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Like onnxruntime-gpu on a machine without a usable GPU: CUDA is listed, the session gets CPU."""
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", CPU])
    with caplog.at_level(logging.WARNING, logger=detection.__name__):
        fallback = FaceDetector(tiny_folder, provider="CUDA")
    assert fallback.providers == [CPU]
    assert any("could not start it" in r.getMessage() and "onnxruntime-gpu" in r.getMessage() for r in caplog.records)
    assert len(fallback.detect(_noise(480, 640))) == 1


def test_conflicting_onnxruntime_distributions_warn(
    tiny_folder: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert "onnxruntime" in detection.installed_onnxruntime_distributions()
    monkeypatch.setattr(detection, "installed_onnxruntime_distributions", lambda: ["onnxruntime", "onnxruntime-gpu"])
    with caplog.at_level(logging.WARNING, logger=detection.__name__):
        FaceDetector(tiny_folder, provider="CPU")
    assert any("Several ONNX Runtime packages" in r.getMessage() for r in caplog.records)


def test_bad_inputs(detector: FaceDetector, tiny_folder: Path) -> None:
    with pytest.raises(MultiIDError, match="RGB uint8"):
        detector.detect(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(MultiIDError, match="HxWx3"):
        detector.detect(np.zeros((64, 64, 4), np.uint8))
    with pytest.raises(MultiIDError, match="multiple of 32"):
        FaceDetector(tiny_folder, det_size=600)


def test_missing_insightface_is_explained(tiny_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "insightface", None)
    with pytest.raises(MultiIDError, match="pip install insightface onnxruntime"):
        FaceDetector(tiny_folder, provider="CPU")


def test_import_does_not_need_insightface() -> None:
    code = "import sys, multiid_core.faces.detection; assert 'insightface' not in sys.modules"
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)
