"""Tiny synthetic antelopev2 ONNX models that insightface's own loaders accept.

The real antelopev2 pack is licensed for research only and cannot be fetched in CI, so tests run the
real insightface code paths (routing, letterboxing, anchor decoding, NMS, norm_crop, get_feat) on these
stand-ins instead: a detector whose outputs are constants describing fixed faces, and a recognizer that
is a seeded linear function of the aligned crop.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DETECTOR_FILE = "scrfd_10g_bnkps.onnx"
RECOGNIZER_FILE = "glintr100.onnx"
DET_SIZE = 640
STRIDES = (8, 16, 32)
NUM_ANCHORS = 2
EMBEDDING_DIM = 512
BACKGROUND_SCORE = 0.02
RECOGNIZER_SEED = 20240611

_OPSET = 17
_IR_VERSION = 8
# Landmarks as fractions of the box (x, y): left eye, right eye, nose tip, left and right mouth corner,
# roughly where SCRFD puts them on a frontal face.
_KPS_LAYOUT = ((0.32, 0.40), (0.68, 0.40), (0.50, 0.58), (0.36, 0.77), (0.64, 0.77))
_REC_CHANNELS = 8
_REC_PATCH = 16
_REC_SIZE = 112


@dataclass(frozen=True)
class TinyFace:
    """One face the tiny detector reports, in 640x640 detector-input pixels (before un-letterboxing)."""

    box: tuple[float, float, float, float]
    score: float = 0.92

    def __post_init__(self) -> None:
        x1, y1, x2, y2 = self.box
        if not (0 <= x1 < x2 <= DET_SIZE and 0 <= y1 < y2 <= DET_SIZE):
            raise ValueError(f"TinyFace box {self.box} must satisfy 0 <= x1 < x2 <= {DET_SIZE}, same for y")
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"TinyFace score {self.score} must lie in [0, 1]")

    def keypoints(self) -> np.ndarray:
        """The 5 landmarks [5, 2] in detector-input pixels, laid out like a frontal face in the box."""
        x1, y1, x2, y2 = self.box
        layout = np.array(_KPS_LAYOUT, dtype=np.float64)
        return np.stack([x1 + layout[:, 0] * (x2 - x1), y1 + layout[:, 1] * (y2 - y1)], axis=1)

    def stride(self) -> int:
        """The feature stride whose anchors match the face size, as SCRFD's assignment would choose."""
        x1, y1, x2, y2 = self.box
        size = float(np.sqrt((x2 - x1) * (y2 - y1)))
        return 8 if size < 48 else 16 if size < 128 else 32


# Fits inside the letterboxed content of any aspect ratio from 9:16 (content 360x640) to 16:9 (640x360).
DEFAULT_FACES: tuple[TinyFace, ...] = (TinyFace((160.0, 80.0, 320.0, 290.0)),)


def _stride_rows(faces: Sequence[TinyFace], stride: int) -> dict[int, np.ndarray]:
    """Row index -> [score, 4 box distances, 10 landmark offsets] in stride units, as SCRFD encodes them."""
    grid = DET_SIZE // stride
    rows: dict[int, np.ndarray] = {}
    for face in faces:
        if face.stride() != stride:
            continue
        x1, y1, x2, y2 = face.box
        gx = min(max(round((x1 + x2) / 2 / stride), 0), grid - 1)
        gy = min(max(round((y1 + y2) / 2 / stride), 0), grid - 1)
        cx, cy = gx * stride, gy * stride
        free = [r for r in ((gy * grid + gx) * NUM_ANCHORS + a for a in range(NUM_ANCHORS)) if r not in rows]
        if not free:
            raise ValueError(f"too many TinyFaces share the stride-{stride} anchor at ({cx}, {cy})")
        offsets = (face.keypoints() - np.array([cx, cy])).reshape(-1)
        distances = np.array([cx - x1, cy - y1, x2 - cx, y2 - cy])
        rows[free[0]] = np.concatenate([[face.score], distances / stride, offsets / stride])
    return rows


def _detector_model(faces: Sequence[TinyFace]) -> onnx.ModelProto:
    """SCRFD-shaped graph: 9 outputs ordered scores, boxes, landmarks, each for strides 8, 16, 32."""
    nodes = [
        helper.make_node("ReduceMean", ["input.1"], ["input_mean"], name="ReduceMean_0", keepdims=0),
        helper.make_node("Mul", ["input_mean", "zero"], ["input_zero"], name="Mul_1"),
    ]
    initializers = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    outputs = []
    per_stride = {stride: _stride_rows(faces, stride) for stride in STRIDES}
    for kind, width, column, fill in (
        ("score", 1, 0, BACKGROUND_SCORE),
        ("bbox", 4, 1, 0.0),
        ("kps", 10, 5, 0.0),
    ):
        for stride in STRIDES:
            rows = (DET_SIZE // stride) ** 2 * NUM_ANCHORS
            name = f"{kind}_{stride}"
            initializers.append(numpy_helper.from_array(np.array([rows, width], np.int64), f"{name}_shape"))
            nodes.append(
                helper.make_node(
                    "ConstantOfShape",
                    [f"{name}_shape"],
                    [f"{name}_base"],
                    name=f"ConstantOfShape_{name}",
                    value=numpy_helper.from_array(np.array([fill], np.float32)),
                )
            )
            base = f"{name}_base"
            faces_here = per_stride[stride]
            if faces_here:
                indices = np.array(sorted(faces_here), np.int64).reshape(-1, 1)
                updates = np.stack([faces_here[i][column : column + width] for i in sorted(faces_here)])
                initializers.append(numpy_helper.from_array(indices, f"{name}_rows"))
                initializers.append(numpy_helper.from_array(updates.astype(np.float32), f"{name}_values"))
                nodes.append(
                    helper.make_node(
                        "ScatterND",
                        [base, f"{name}_rows", f"{name}_values"],
                        [f"{name}_set"],
                        name=f"ScatterND_{name}",
                    )
                )
                base = f"{name}_set"
            nodes.append(helper.make_node("Add", [base, "input_zero"], [name], name=f"Add_{name}"))
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [rows, width]))
    graph = helper.make_graph(
        nodes,
        "tiny_scrfd",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "?", "?"])],
        outputs,
        initializers,
    )
    return _finish(graph)


def _recognizer_model() -> onnx.ModelProto:
    """[N,3,112,112] -> [N,512] by a seeded strided Conv and MatMul, so embeddings follow the pixels.

    Node names avoid the Sub/Mul prefixes that make insightface treat a model as an mxnet export with
    built-in normalisation, so it feeds (x - 127.5) / 127.5 as it does for the real glintr100.
    """
    rng = np.random.default_rng(RECOGNIZER_SEED)
    grid = _REC_SIZE // _REC_PATCH
    features = _REC_CHANNELS * grid * grid
    conv = rng.standard_normal((_REC_CHANNELS, 3, _REC_PATCH, _REC_PATCH)) / np.sqrt(3 * _REC_PATCH**2)
    proj = rng.standard_normal((features, EMBEDDING_DIM)) / np.sqrt(features)
    graph = helper.make_graph(
        [
            helper.make_node(
                "Conv", ["input.1", "conv_w"], ["patches"], name="Conv_0", strides=[_REC_PATCH, _REC_PATCH]
            ),
            helper.make_node("Flatten", ["patches"], ["flat"], name="Flatten_1", axis=1),
            helper.make_node("MatMul", ["flat", "proj_w"], ["embedding"], name="MatMul_2"),
        ],
        "tiny_arcface",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["None", 3, _REC_SIZE, _REC_SIZE])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["None", EMBEDDING_DIM])],
        [
            numpy_helper.from_array(conv.astype(np.float32), "conv_w"),
            numpy_helper.from_array(proj.astype(np.float32), "proj_w"),
        ],
    )
    return _finish(graph)


def _finish(graph: onnx.GraphProto) -> onnx.ModelProto:
    """Pin opset and IR version so any onnxruntime from the last few years loads the model."""
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)], producer_name="multiid")
    model.ir_version = _IR_VERSION
    onnx.checker.check_model(model)
    return model


def write_tiny_antelopev2(folder: str | os.PathLike[str], faces: Sequence[TinyFace] = DEFAULT_FACES) -> Path:
    """Write scrfd_10g_bnkps.onnx and glintr100.onnx stand-ins into `folder` (created) and return it.

    The detector reports exactly `faces` (none if empty) at detector size 640; other det sizes are not
    supported because its outputs are constants.
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    onnx.save_model(_detector_model(faces), root / DETECTOR_FILE)
    onnx.save_model(_recognizer_model(), root / RECOGNIZER_FILE)
    return root


def write_corrupt_onnx(path: str | os.PathLike[str]) -> Path:
    """Write a truncated ONNX protobuf, like an interrupted download, to `path` and return it."""
    data = _recognizer_model().SerializeToString()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data[: len(data) // 2])
    return target
