"""IdentitySimilarity executed inside ComfyUI on the tiny face models."""

import shutil
from types import SimpleNamespace

import pytest
import torch
from comfy_env import photo_tensor

from multiid_tools.tiny_models.faces import TinyFace, write_tiny_antelopev2


def photo(size: int = 640) -> torch.Tensor:
    return photo_tensor(size, size)


@pytest.fixture(scope="module")
def two_faces(node_classes, comfy_base, extractor_inputs):
    """A face extractor whose detector finds two people, and an identity for each (encoded from one photo)."""
    folder = comfy_base / "models" / "multiid" / "Pair" / "face_encoder" / "models" / "antelopev2"
    write_tiny_antelopev2(folder, faces=(TinyFace((40, 60, 150, 200)), TinyFace((300, 80, 470, 300))))
    extractor = (
        node_classes["MultiID_LoadFaceExtractor"]
        .execute(**{**extractor_inputs, "antelopev2": "Pair/face_encoder/models/antelopev2"})
        .result[0]
    )
    encode = node_classes["MultiID_EncodeIdentity"]
    left = encode.execute(extractor, photo(), "index", 0, "Left").result[0]
    right = encode.execute(extractor, photo(), "index", 1, "Right").result[0]
    yield extractor, left, right
    shutil.rmtree(comfy_base / "models" / "multiid" / "Pair")


def test_schema(node_classes):
    info = node_classes["MultiID_IdentitySimilarity"].GET_NODE_INFO_V1()
    assert info["category"] == "MultiID/evaluate"
    assert info["output_node"] is True
    required = info["input"]["required"]
    assert list(required) == ["frames", "identities", "face_extractor", "sample_frames"]
    assert set(required["identities"][0].split(",")) == {"MULTIID_IDENTITY", "MULTIID_IDENTITIES"}
    assert required["sample_frames"][1]["default"] == 0


def test_each_person_is_found_on_their_own_face(node_classes, two_faces):
    extractor, left, right = two_faces
    frames = photo().repeat(5, 1, 1, 1)
    out = node_classes["MultiID_IdentitySimilarity"].execute(
        frames, SimpleNamespace(identities=[right, left]), extractor, 0
    )
    plot, summary = out.result
    assert plot.ndim == 4 and plot.shape[0] == 1 and plot.shape[-1] == 3 and plot.device.type == "cpu"
    lines = summary.splitlines()
    assert lines[0] == "OK: no swap, no blend | Right 1.00 (5/5); Left 1.00 (5/5)"
    assert lines[2] == "Identity similarity over 5 of 5 frames (all)."
    assert any(line.startswith("Right  mean 1.000  min 1.000  found in 5/5 frames") for line in lines), summary
    assert any(line.startswith("Left   mean 1.000  min 1.000  found in 5/5 frames") for line in lines), summary
    assert out.ui["text"] == (summary,)
    assert len(out.ui["images"]) == 1 and out.ui["images"][0]["type"] == "temp"


def test_one_identity_and_sampled_frames(node_classes, two_faces):
    extractor, left, _ = two_faces
    frames = torch.cat([photo(), torch.zeros(1, 640, 640, 3)]).repeat(5, 1, 1, 1)  # 10 frames
    out = node_classes["MultiID_IdentitySimilarity"].execute(frames, left, extractor, 4)
    summary = out.result[1]
    assert "over 4 of 10 frames (evenly spaced)" in summary
    # The tiny detector reports its faces on any frame; on black frames they are black and score lower.
    row = next(line for line in summary.splitlines() if line.startswith("Left "))
    mean, low = float(row.split("mean ")[1].split()[0]), float(row.split("min ")[1].split()[0])
    assert low < mean < 1.0 and "found in 4/4 frames" in row


def test_interrupt_is_honoured(node_classes, two_faces):
    import comfy.model_management as mm

    extractor, left, _ = two_faces
    mm.interrupt_current_processing(True)
    try:
        with pytest.raises(mm.InterruptProcessingException):
            node_classes["MultiID_IdentitySimilarity"].execute(photo().repeat(3, 1, 1, 1), left, extractor, 0)
    finally:
        mm.interrupt_current_processing(False)
