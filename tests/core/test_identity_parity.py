"""EncodeIdentity's core against the authors' preprocessing, run for real on the same tiny weights.

The reference is diffusers' `process_face_embeddings_infer` (ConsisID's code, moved to diffusers) with
insightface, facexlib's alignment and BiSeNet, and the authors' EVA-CLIP. One part is substituted:
facexlib's RetinaFace landmarks become the SCRFD landmarks, which is our documented deviation (one
detector for detection and alignment) and the only way to run it without downloading RetinaFace.
"""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from tensors import rel_err

from multiid_core.faces.alignment import FFHQ_TEMPLATE_512, align_ffhq, norm_crop
from multiid_core.faces.detection import FaceDetector
from multiid_core.faces.eva_clip import CLIP_MEAN, CLIP_STD, load_eva_clip
from multiid_core.faces.extractor import FaceExtractor, encode_identity, encode_photo
from multiid_core.faces.parsing import load_face_parser
from multiid_tools.tiny_models import write_tiny_eva_clip
from multiid_tools.tiny_models.faces import write_tiny_antelopev2
from multiid_tools.tiny_models.parsing import write_random_face_parser

facexlib_helper = pytest.importorskip("facexlib.utils.face_restoration_helper")
consisid_utils = pytest.importorskip("diffusers.pipelines.consisid.consisid_utils")
eva_factory = pytest.importorskip("consisid_eva_clip.factory")
insightface = pytest.importorskip("insightface")

TINY_EVA_CONFIG = {
    "embed_dim": 768,
    "vision_cfg": {
        "image_size": 336,
        "layers": 24,
        "width": 64,
        "drop_path_rate": 0,
        "head_width": 64,
        "mlp_ratio": 2.6667,
        "patch_size": 14,
        "eva_model_name": "eva-clip-l-14-336",
        "xattn": True,
        "fusedLN": True,
        "rope": True,
        "pt_hw_seq_len": 16,
        "intp_freq": True,
        "naiveswiglu": True,
        "subln": True,
    },
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 1},
}


class ScrfdLandmarkHelper(facexlib_helper.FaceRestoreHelper):
    """facexlib's FaceRestoreHelper (512, crop ratio 1) with RetinaFace replaced by SCRFD landmarks."""

    def __init__(self, app, face_parse):
        # The base __init__ would download RetinaFace; set exactly what read/align/clean use.
        self.app, self.face_parse = app, face_parse
        self.upscale_factor, self.face_size, self.crop_ratio = 1, (512, 512), (1, 1)
        self.face_template, self.pad_blur, self.save_ext = FFHQ_TEMPLATE_512.copy(), False, "png"
        self.clean_all()

    def get_face_landmarks_5(self, only_center_face=False, **_):
        faces = self.app.get(self.input_img)
        largest = max(faces, key=lambda f: (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]))
        self.all_landmarks_5 = [largest.kps]
        return 1


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    antelope = write_tiny_antelopev2(root / "models" / "antelopev2")
    write_tiny_eva_clip(root / "eva.pt")
    write_random_face_parser(root / "parsing_bisenet.pth")
    ours = FaceExtractor(
        detector=FaceDetector(antelope, provider="CPU"),
        parser=load_face_parser(root / "parsing_bisenet.pth"),
        eva=load_eva_clip(root / "eva.pt"),
    )

    eva_factory._MODEL_CONFIGS["EVA02-CLIP-tiny-336"] = TINY_EVA_CONFIG
    clip, _, _ = eva_factory.create_model_and_transforms("EVA02-CLIP-tiny-336", pretrained=None, force_custom_clip=True)
    visual = clip.visual.eval()
    stored = torch.load(root / "eva.pt", weights_only=True)
    missing, unexpected = visual.load_state_dict(
        {k.removeprefix("visual."): v.float() for k, v in stored.items()}, strict=False
    )
    assert not unexpected and all("rope" in k for k in missing)

    from facexlib.parsing.bisenet import BiSeNet

    parse = BiSeNet(num_class=19)
    parse.load_state_dict(torch.load(root / "parsing_bisenet.pth", weights_only=True))
    app = insightface.app.FaceAnalysis(
        name=str(antelope), allowed_modules=["detection", "recognition"], providers=["CPUExecutionProvider"]
    )
    app.prepare(ctx_id=0, det_size=(640, 640))
    reference = dict(
        face_helper_1=ScrfdLandmarkHelper(app, parse.eval()),
        clip_vision_model=visual,
        face_helper_2=None,
        eva_transform_mean=CLIP_MEAN,
        eva_transform_std=CLIP_STD,
        app=app,
        device="cpu",
        weight_dtype=torch.float32,
    )
    return ours, reference


def portrait(height=1400, width=1000) -> np.ndarray:
    """A real face photo from the insightface wheel, padded to a size the 1024 long-edge limit shrinks."""
    photo = cv2.imread(str(Path(insightface.__file__).parent / "data" / "images" / "Tom_Hanks_54745.png"))
    photo = cv2.cvtColor(photo, cv2.COLOR_BGR2RGB)
    return cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA)


def test_consisid_identity_matches_reference_pipeline(models):
    ours, reference = models
    image = portrait()
    with torch.no_grad():
        ref_cond, ref_hidden, ref_face, ref_kps = consisid_utils.process_face_embeddings_infer(
            img_file_path=image, is_align_face=True, **reference
        )
    features, seen, _ = encode_photo(ours, image)
    assert seen.shape[:2] == (1024, 731)  # long edge limited to 1024, as the reference does

    cond = torch.cat([features.arcface, features.eva_cls_parsed])[None]
    assert rel_err(cond[:, :512], ref_cond[:, :512]) == 0.0  # ArcFace: same ONNX session maths, bit equal
    assert rel_err(cond, ref_cond) < 1e-5
    for h, ref_h in zip(features.eva_hidden_parsed, ref_hidden):
        assert h.shape == ref_h[0].shape
        assert rel_err(h, ref_h[0]) < 1e-5
    np.testing.assert_array_equal(features.kps, ref_kps)
    # The first-frame face: colour on white, quantised to uint8 as the reference returns a PIL image.
    face_uint8 = (features.face_on_white.numpy() * 255).astype(np.uint8)
    np.testing.assert_array_equal(face_uint8, np.asarray(ref_face))


def test_alignment_matches_facexlib(models):
    _, reference = models
    helper = reference["face_helper_1"]
    image = portrait(700, 500)
    kps = np.array([[200.3, 260.1], [300.7, 255.2], [251.0, 320.4], [210.9, 380.0], [295.5, 377.7]])
    helper.clean_all()
    helper.read_image(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    helper.all_landmarks_5 = [kps]
    helper.align_warp_face()
    np.testing.assert_array_equal(align_ffhq(image, kps), cv2.cvtColor(helper.cropped_faces[0], cv2.COLOR_BGR2RGB))


def test_norm_crop_matches_insightface():
    from insightface.utils import face_align

    image = portrait(600, 500)
    kps = np.array([[190.0, 250.0], [300.0, 240.0], [250.0, 310.0], [205.0, 370.0], [290.0, 365.0]], np.float32)
    with pytest.warns(FutureWarning):  # skimage's deprecated estimate, which ours replaces
        theirs = face_align.norm_crop(image, kps, 448)
    ours = norm_crop(image, kps, 448)
    assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1


def test_several_photos_keep_each_photo(models):
    ours, _ = models
    photos = torch.from_numpy(np.stack([portrait(800, 600), portrait(800, 600)[:, ::-1].copy()])).float() / 255
    identity, seen = encode_identity(ours, photos)
    assert len(identity.photos) == 2 and len(seen) == 2
    assert identity.id_cond("consisid").shape == (2, 1280)
    assert identity.id_cond("ingredients").shape == (2, 1280)
    hidden = identity.vit_hidden("consisid")
    assert len(hidden) == 5 and hidden[0].shape == (2, 577, 64)
    assert identity.primary.face_on_black.shape == (448, 448, 3)
    assert torch.allclose(identity.arcface_unit().norm(), torch.tensor(1.0))


def test_the_concat_id_face_is_cut_from_the_full_resolution_photo(models):
    """Detection runs on the 1024-pixel copy (ConsisID's pipeline); Concat-ID's 448 crop, like the release's
    get_face_image, comes from the photo itself, at the landmarks scaled back."""
    ours, _ = models
    image = portrait(2000, 1500)
    features, seen, _ = encode_photo(ours, image)
    assert seen.shape[:2] == (1024, 768)
    scale = np.array([1500 / 768, 2000 / 1024], dtype=np.float32)
    full = torch.from_numpy(norm_crop(image, features.kps * scale, 448)).float() / 255
    shrunk = torch.from_numpy(norm_crop(seen, features.kps, 448)).float() / 255
    kept = features.face_on_black.sum(-1) > 0
    assert kept.float().mean() > 0.2
    assert torch.allclose(features.face_on_black[kept], full[kept], atol=1e-6)
    assert (features.face_on_black[kept] - shrunk[kept]).abs().mean() > 1e-3
