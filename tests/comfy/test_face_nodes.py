"""LoadFaceExtractor and EncodeIdentity executed inside ComfyUI, with their error messages."""

import shutil

import numpy as np
import pytest
import torch
from comfy_env import pack_error, photo_tensor

from multiid_tools.tiny_models.faces import TinyFace, write_corrupt_onnx, write_tiny_antelopev2


def test_combos_list_the_snapshot_files(node_classes, extractor_inputs):
    info = node_classes["MultiID_LoadFaceExtractor"].GET_NODE_INFO_V1()["input"]["required"]
    for name in ("antelopev2", "eva_clip", "face_parser"):
        assert extractor_inputs[name] in info[name][0] if isinstance(info[name][0], list) else info[name][1]["options"]


def test_encode_identity_outputs(node_classes, extractor):
    photos = torch.cat([photo_tensor(), photo_tensor()])
    out = node_classes["MultiID_EncodeIdentity"].execute(extractor, photos, "largest", 0, "Ada")
    identity, aligned, detections = out.result
    assert identity.label == "Ada" and len(identity.photos) == 2
    assert aligned.shape == (2, 512, 512, 3) and aligned.device.type == "cpu"
    assert detections.shape == (2, 800, 600, 3)
    # the chosen face is boxed in green on the detections preview
    assert (detections[0] == torch.tensor([40, 220, 60]) / 255).all(-1).sum() > 100
    assert out.ui is not None  # a preview shows on the node itself


def test_missing_model_file_names_path_and_download(node_classes, comfy_base, extractor_inputs):
    error = pack_error(node_classes)
    with pytest.raises(error) as raised:
        node_classes["MultiID_LoadFaceExtractor"].execute(
            **{**extractor_inputs, "eva_clip": "NotDownloaded/face_encoder/EVA02_CLIP_L_336_psz14_s6B.pt"}
        )
    message = str(raised.value)
    assert "ComfyUI/models/multiid/ConsisID-preview/face_encoder/EVA02_CLIP_L_336_psz14_s6B.pt" in message
    assert "https://huggingface.co/BestWishYsh/ConsisID-preview/resolve/main/face_encoder/" in message
    assert str(comfy_base / "models" / "multiid") in message


def test_corrupt_onnx_is_reported(node_classes, comfy_base, extractor_inputs):
    folder = comfy_base / "models" / "multiid" / "Broken" / "face_encoder" / "models" / "antelopev2"
    write_tiny_antelopev2(folder)
    write_corrupt_onnx(folder / "glintr100.onnx")
    with pytest.raises(pack_error(node_classes), match="glintr100.onnx.*download it again"):
        node_classes["MultiID_LoadFaceExtractor"].execute(
            **{**extractor_inputs, "antelopev2": "Broken/face_encoder/models/antelopev2"}
        )
    shutil.rmtree(comfy_base / "models" / "multiid" / "Broken")


def test_no_face_and_index_out_of_range(node_classes, comfy_base, extractor, extractor_inputs):
    error = pack_error(node_classes)
    encode = node_classes["MultiID_EncodeIdentity"]
    with pytest.raises(error, match=r"face_index 3 is out of range for the photo: 1 face\(s\) were found"):
        encode.execute(extractor, photo_tensor(), "index", 3)

    folder = comfy_base / "models" / "multiid" / "NoFaces" / "face_encoder" / "models" / "antelopev2"
    write_tiny_antelopev2(folder, faces=())
    blind = node_classes["MultiID_LoadFaceExtractor"].execute(
        **{**extractor_inputs, "antelopev2": "NoFaces/face_encoder/models/antelopev2"}
    )
    with pytest.raises(error, match="No face found in photo 1 of 2"):
        encode.execute(blind.result[0], torch.cat([photo_tensor(), photo_tensor()]), "largest", 0)
    shutil.rmtree(comfy_base / "models" / "multiid" / "NoFaces")


def test_tiny_image_is_refused_with_sizes(node_classes, extractor):
    with pytest.raises(pack_error(node_classes), match="only 32x32 pixels.*at least 64"):
        node_classes["MultiID_EncodeIdentity"].execute(extractor, torch.rand(1, 32, 32, 3), "largest", 0)


def test_index_and_central_choose_other_faces(node_classes, comfy_base, extractor_inputs):
    folder = comfy_base / "models" / "multiid" / "TwoFaces" / "face_encoder" / "models" / "antelopev2"
    write_tiny_antelopev2(folder, faces=(TinyFace((40, 60, 150, 200)), TinyFace((300, 80, 470, 300))))
    two = node_classes["MultiID_LoadFaceExtractor"].execute(
        **{**extractor_inputs, "antelopev2": "TwoFaces/face_encoder/models/antelopev2"}
    )
    encode = node_classes["MultiID_EncodeIdentity"]
    photo = photo_tensor(640, 640)
    left = encode.execute(two.result[0], photo, "index", 0).result[0]
    right = encode.execute(two.result[0], photo, "index", 1).result[0]
    largest = encode.execute(two.result[0], photo, "largest", 0).result[0]
    assert left.primary.bbox[0] < right.primary.bbox[0]
    np.testing.assert_array_equal(largest.primary.bbox, right.primary.bbox)
    assert not torch.equal(left.primary.arcface, right.primary.arcface)
    shutil.rmtree(comfy_base / "models" / "multiid" / "TwoFaces")
