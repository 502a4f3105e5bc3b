"""Face detection (SCRFD) and ArcFace embeddings from the antelopev2 pack, as ConsisID computes them.

ConsisID calls insightface's `FaceAnalysis(name="antelopev2")`, which globs every model in the folder,
may download a missing pack, and fails with a bare AssertionError on a wrong layout. We run the same
insightface model classes on the two files we need, loaded from explicit paths and never downloaded,
so bboxes, landmarks and embeddings match the reference bit for bit.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import MultiIDError

logger = logging.getLogger(__name__)

DETECTOR_FILE = "scrfd_10g_bnkps.onnx"
RECOGNIZER_FILE = "glintr100.onnx"
ANTELOPEV2_FILES = (DETECTOR_FILE, RECOGNIZER_FILE)
ANTELOPEV2_SOURCE = (
    "the antelopev2 pack: the face_encoder/models/antelopev2/ folder of "
    "https://huggingface.co/BestWishYsh/ConsisID-preview, or insightface's antelopev2.zip unpacked into "
    "ComfyUI/models/insightface/models/antelopev2/ (so that the .onnx files sit directly in that folder)"
)
ONNX_PROVIDERS = ("auto", "CUDA", "ROCm", "CoreML", "CPU")
DET_THRESH = 0.5
EMBEDDING_DIM = 512

_CPU = "CPUExecutionProvider"
# ORT names each accelerator can appear under; ROCm builds moved from the ROCm EP to MIGraphX.
_EXECUTION_PROVIDERS = {
    "CUDA": ("CUDAExecutionProvider",),
    "ROCm": ("ROCMExecutionProvider", "MIGraphXExecutionProvider"),
    "CoreML": ("CoreMLExecutionProvider",),
}
_PROVIDER_PACKAGES = {
    "CUDA": (
        "onnxruntime-gpu built for your CUDA and cuDNN versions (pip uninstall onnxruntime onnxruntime-gpu, "
        "then pip install onnxruntime-gpu: never keep both onnxruntime and onnxruntime-gpu installed)"
    ),
    "ROCm": "AMD's ROCm build of ONNX Runtime (onnxruntime-rocm or onnxruntime-migraphx), not onnxruntime",
    "CoreML": "the standard onnxruntime package on macOS",
}
# Distributions that all install the same `onnxruntime` import package and overwrite each other.
_ORT_DISTRIBUTIONS = (
    "onnxruntime",
    "onnxruntime-gpu",
    "onnxruntime-rocm",
    "onnxruntime-migraphx",
    "onnxruntime-directml",
    "onnxruntime-openvino",
    "onnxruntime-silicon",
)
# skimage 0.26 deprecated SimilarityTransform.estimate, which insightface's norm_crop calls on every face.
_NORM_CROP_DEPRECATION = r"`estimate` is deprecated"


@dataclass(frozen=True, eq=False)
class DetectedFace:
    """One SCRFD detection in image pixels; eq=False because numpy arrays have no single truth value."""

    bbox: np.ndarray
    kps: np.ndarray
    score: float

    @property
    def area(self) -> float:
        """Box area in pixels, the key ConsisID sorts by to keep the largest face (same formula)."""
        x1, y1, x2, y2 = self.bbox
        return float((x2 - x1) * (y2 - y1))


def resolve_antelopev2(folder: str | os.PathLike[str]) -> Path:
    """The folder holding the antelopev2 ONNX files, accepting the common one-level-too-deep unzip."""
    root = Path(folder).expanduser()
    if _has_antelopev2_files(root):
        return root
    nested = root / "antelopev2"
    if _has_antelopev2_files(nested):
        logger.warning(
            "The antelopev2 models are one folder too deep: found them in %s instead of %s (the zip was "
            "unpacked into a folder of the same name). Using them anyway; to fix the layout, move the "
            ".onnx files up into %s and delete the empty inner folder.",
            nested,
            root,
            root,
        )
        return nested
    expected = "\n".join(f"  {root / name}" for name in ANTELOPEV2_FILES)
    if not root.is_dir():
        problem = f"The antelopev2 face model folder {root} does not exist."
    else:
        missing = ", ".join(name for name in ANTELOPEV2_FILES if not (root / name).is_file())
        problem = f"The antelopev2 face model folder {root} lacks {missing}."
    raise MultiIDError(
        f"{problem} Expected these files (other antelopev2 files are optional):\n{expected}\nGet them from "
        f"{ANTELOPEV2_SOURCE}."
    )


def _has_antelopev2_files(folder: Path) -> bool:
    return all((folder / name).is_file() for name in ANTELOPEV2_FILES)


def _import_onnxruntime() -> ModuleType:
    """onnxruntime, imported after torch: torch loads the CUDA/cuDNN libraries ORT's CUDA EP looks for."""
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    try:
        import onnxruntime
    except ImportError as err:
        raise MultiIDError(
            f"ONNX Runtime cannot be imported ({err}). Install it: pip install insightface onnxruntime "
            "(or onnxruntime-gpu instead of onnxruntime for NVIDIA GPUs, never both)."
        ) from None
    return onnxruntime


def _import_insightface() -> ModuleType:
    """insightface, imported lazily so the pack loads (and reports this clearly) without it."""
    _import_onnxruntime()
    try:
        import insightface
    except ImportError as err:
        raise MultiIDError(
            f"insightface cannot be imported ({err}). Install it: pip install insightface onnxruntime "
            "(with onnxruntime-gpu already installed, use pip install --no-deps insightface instead, so "
            "the CPU onnxruntime does not overwrite it)."
        ) from None
    return insightface


def installed_onnxruntime_distributions() -> list[str]:
    """ONNX Runtime distributions pip has installed; more than one means they overwrote each other."""
    found = []
    for name in _ORT_DISTRIBUTIONS:
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        found.append(name)
    return found


def _warn_on_conflicting_onnxruntime() -> None:
    found = installed_onnxruntime_distributions()
    if len(found) > 1:
        logger.warning(
            "Several ONNX Runtime packages are installed (%s). They share one `onnxruntime` folder, so the "
            "last one installed wins and GPU providers can silently disappear. Keep exactly one, e.g. for "
            "NVIDIA: pip uninstall -y %s && pip install onnxruntime-gpu",
            ", ".join(found),
            " ".join(found),
        )


def select_providers(provider: str = "auto") -> list[str]:
    """ORT provider list for a choice from ONNX_PROVIDERS: the accelerator first, CPU as fallback."""
    if provider not in ONNX_PROVIDERS:
        raise MultiIDError(f"Unknown ONNX provider {provider!r}; choose one of {', '.join(ONNX_PROVIDERS)}.")
    if provider == "CPU":
        return [_CPU]
    ort = _import_onnxruntime()
    available = list(ort.get_available_providers())
    choices = ("CUDA", "ROCm", "CoreML") if provider == "auto" else (provider,)
    for choice in choices:
        for name in _EXECUTION_PROVIDERS[choice]:
            if name in available:
                return [name, _CPU]
    if provider == "auto":
        return [_CPU]
    raise MultiIDError(
        f"ONNX provider {provider} is not available: the installed onnxruntime "
        f"{getattr(ort, '__version__', '?')} offers only {', '.join(available)}. {provider} needs "
        f"{_PROVIDER_PACKAGES[provider]}. Or choose 'auto' or 'CPU'."
    )


def _accelerator_hint(provider_name: str) -> str:
    for choice, names in _EXECUTION_PROVIDERS.items():
        if provider_name in names:
            return _PROVIDER_PACKAGES[choice]
    return "an ONNX Runtime build with that provider"


def _load_onnx(path: Path, providers: list[str], task: str) -> Any:
    """One insightface model from an explicit file; `task` is what its graph shape must route to."""
    insightface = _import_insightface()
    ort = _import_onnxruntime()
    from google.protobuf.message import DecodeError

    state = ort.capi.onnxruntime_pybind11_state
    damaged = (
        state.InvalidProtobuf,
        state.InvalidArgument,
        state.InvalidGraph,
        state.NoSuchFile,
        DecodeError,
    )
    try:
        model = insightface.model_zoo.get_model(str(path), providers=providers)
    except damaged as err:
        raise MultiIDError(
            f"Could not load {path}: the file is damaged or not an ONNX model ({str(err).strip()[:200]}). "
            f"It is probably an interrupted download: delete it and download it again from "
            f"{ANTELOPEV2_SOURCE}."
        ) from None
    except (state.Fail, state.RuntimeException) as err:
        raise MultiIDError(
            f"ONNX Runtime could not start {path} with {', '.join(providers)} ({str(err).strip()[:300]}). "
            "Try the provider 'CPU'; if that fails too, download the file again from "
            f"{ANTELOPEV2_SOURCE}."
        ) from None
    # insightface routes by graph shape, so a renamed or swapped file would load as the wrong model.
    wrong = getattr(model, "taskname", None) != task or (task == "detection" and not model.use_kps)
    if task == "detection" and not wrong:
        _check_finite_weights(path)
    if wrong:
        expected = "an SCRFD face detector with landmarks" if task == "detection" else "an ArcFace model"
        raise MultiIDError(
            f"{path} is not {expected}. The antelopev2 files may be renamed or from another pack: download "
            f"them again from {ANTELOPEV2_SOURCE}."
        )
    return model


def _check_finite_weights(path: Path) -> None:
    """A detector with NaN weights finds no face in any photo, which would read as a photo problem; its
    weights (16 MB) are checked at load and the file is named. ArcFace is checked on its output instead."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    bad = [t.name for t in graph.initializer if not np.isfinite(numpy_helper.to_array(t)).all()]
    if bad:
        raise MultiIDError(
            f"{path} is damaged: {len(bad)} of its weight tensors hold NaN or infinite values (e.g. {bad[0]}), so "
            f"it would find no face in any photo. Delete it and download it again from {ANTELOPEV2_SOURCE}."
        )


def _load_on(path: Path, providers: list[str], task: str) -> tuple[Any, list[str]]:
    """Load, then check the provider ORT really used: it silently drops an accelerator it cannot start."""
    model = _load_onnx(path, providers, task)
    used = list(model.session.get_providers())
    if providers[0] == _CPU or used[:1] == providers[:1]:
        return model, used
    logger.warning(
        "ONNX Runtime listed %s but could not start it for %s (it is using %s; ORT's log above says why, "
        "usually missing or mismatched CUDA/cuDNN libraries). Face analysis runs on the CPU instead, which "
        "is correct but slower. To use the GPU, install %s.",
        providers[0],
        path.name,
        ", ".join(used),
        _accelerator_hint(providers[0]),
    )
    model = _load_onnx(path, [_CPU], task)
    return model, list(model.session.get_providers())


class FaceDetector:
    """antelopev2 SCRFD detection and glintr100 ArcFace embedding, numerically identical to FaceAnalysis."""

    def __init__(self, folder: str | os.PathLike[str], provider: str = "auto", det_size: int = 640) -> None:
        if isinstance(det_size, bool) or not isinstance(det_size, int) or det_size < 32 or det_size % 32:
            raise MultiIDError(f"det_size must be a positive multiple of 32 (ConsisID uses 640), got {det_size}.")
        self.folder = resolve_antelopev2(folder)
        self.det_size = det_size
        _warn_on_conflicting_onnxruntime()
        requested = select_providers(provider)
        self._det, used = _load_on(self.folder / DETECTOR_FILE, requested, "detection")
        self._rec, rec_used = _load_on(self.folder / RECOGNIZER_FILE, used, "recognition")
        if rec_used[:1] != used[:1]:
            self._det, used = _load_on(self.folder / DETECTOR_FILE, rec_used, "detection")
        self.providers: list[str] = used
        # FaceAnalysis.prepare(ctx_id, det_size=(s, s)) does exactly this; ctx_id >= 0 keeps our providers.
        self._det.prepare(0, input_size=(det_size, det_size), det_thresh=DET_THRESH)
        self._rec.prepare(0)

    def detect(self, image_rgb: np.ndarray) -> list[DetectedFace]:
        """Faces in an RGB uint8 HxWx3 image, in SCRFD's order (by score after NMS), as FaceAnalysis.get."""
        bboxes, kpss = self._det.detect(_to_bgr(image_rgb), max_num=0, metric="default")
        faces = []
        for row, kps in zip(bboxes, kpss):
            bbox, kps = row[:4].copy(), kps.copy()
            bbox.setflags(write=False)
            kps.setflags(write=False)
            faces.append(DetectedFace(bbox=bbox, kps=kps, score=float(row[4])))
        return faces

    def embed(self, image_rgb: np.ndarray, face: DetectedFace) -> np.ndarray:
        """The raw (unnormalised) 512-d `face.embedding` FaceAnalysis gives: norm_crop to 112, get_feat."""
        insightface = _import_insightface()
        target = insightface.app.common.Face(bbox=face.bbox, kps=face.kps, det_score=np.float32(face.score))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_NORM_CROP_DEPRECATION, category=FutureWarning)
            embedding = self._rec.get(_to_bgr(image_rgb), target)
        return self._finite(np.asarray(embedding, dtype=np.float32))

    def embed_aligned(self, aligned_rgb: np.ndarray) -> np.ndarray:
        """glintr100 on an already aligned crop, resized to 112 inside get_feat (Ingredients' embedding)."""
        return self._finite(np.asarray(self._rec.get_feat(_to_bgr(aligned_rgb)), dtype=np.float32).reshape(-1))

    def _finite(self, embedding: np.ndarray) -> np.ndarray:
        """A NaN embedding comes from damaged ArcFace weights (checked here, on its output: the ONNX weights are
        not read by us) and would turn the video black."""
        if not np.isfinite(embedding).all():
            raise MultiIDError(
                f"{self.folder / RECOGNIZER_FILE} gave a NaN or infinite face embedding: the file is damaged. "
                f"Download it again from {ANTELOPEV2_SOURCE}."
            )
        return embedding


def _to_bgr(image_rgb: np.ndarray) -> np.ndarray:
    """insightface works in OpenCV's BGR order, and cv2 needs contiguous arrays."""
    if not isinstance(image_rgb, np.ndarray) or image_rgb.dtype != np.uint8 or image_rgb.ndim != 3:
        raise MultiIDError(
            f"Face detection needs an RGB uint8 image of shape HxWx3, got "
            f"{getattr(image_rgb, 'dtype', type(image_rgb).__name__)} {getattr(image_rgb, 'shape', '')}."
        )
    if image_rgb.shape[2] != 3 or min(image_rgb.shape[:2]) < 1:
        raise MultiIDError(f"Face detection needs an RGB image of shape HxWx3, got shape {image_rgb.shape}.")
    return np.ascontiguousarray(image_rgb[:, :, ::-1])
