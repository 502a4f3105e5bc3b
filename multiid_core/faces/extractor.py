"""Photos of a person -> Identity, following the authors' preprocessing step by step.

ConsisID (`process_face_embeddings_infer`): long edge <= 1024 (Lanczos), largest face, raw ArcFace,
FFHQ-512 alignment, BiSeNet background labels painted white, grey face -> EVA at 336. Ingredients
(`process_face_embeddings_split`): colour crop -> EVA, ArcFace on the 512 crop. Concat-ID
(`get_face_image`): `norm_crop` 448 from the full-resolution photo, parsed face on black (BiSeNet stands in
for its SegFormer); the landmarks come from the detection on the shrunk copy, scaled back. Stand-In
(`preprocessor/image_input_preprocessor.py` `FaceProcessor.process`): a square 1.5 times the face box around its
centre (clipped to the photo) from the full-resolution photo, padded white to a square, INTER_AREA to 512, parsed
with BiSeNet on 0.5/0.5-normalised pixels, the background label painted white.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..errors import MultiIDError
from .alignment import align_ffhq, norm_crop
from .detection import DetectedFace, FaceDetector
from .eva_clip import EvaClipVision
from .identity import Identity, PhotoFeatures
from .parsing import CONCAT_ID_BACKGROUND_LABELS, CONSISID_BACKGROUND_LABELS, background_mask, parse_face

FaceChoice = Literal["largest", "index", "central"]
FACE_CHOICES: tuple[FaceChoice, ...] = ("largest", "index", "central")
MAX_LONG_EDGE = 1024
MIN_SHORT_EDGE = 64
BLANK_RANGE = 8  # a photo whose pixels all lie within this many levels (of 255) shows nothing
SATURATED = 0.9  # share of pure white (or black) pixels from which a photo is called washed out (or black)
CONCAT_ID_CROP = 448
CONCAT_ID_MIN_FOREGROUND = 0.4  # Concat-ID keeps the parsing mask only if it keeps this much of the crop
STAND_IN_SIZE = 512
STAND_IN_CROP_SCALE = 1.5  # the square's side, in face-box sides
STAND_IN_BORDER = 10  # a face box within this many pixels of all four borders: the whole photo is the face
STAND_IN_BACKGROUND_LABELS = (0,)  # hair, neck, clothes and hat stay


@dataclass
class FaceExtractor:
    """The face models one EncodeIdentity needs: detector + ArcFace (ONNX), BiSeNet, EVA (torch).

    EVA-CLIP feeds the perceiver of ConsisID and Ingredients; Concat-ID needs none, so it may be left out.
    """

    detector: FaceDetector
    parser: torch.nn.Module
    eva: EvaClipVision | None


def to_uint8_rgb(image: torch.Tensor) -> np.ndarray:
    """A ComfyUI IMAGE frame [H,W,C] in 0..1 -> uint8 RGB (grey repeated, alpha dropped)."""
    if image.ndim != 3 or image.shape[-1] not in (1, 2, 3, 4):
        raise MultiIDError(f"Expected an image of shape [height, width, channels], got {tuple(image.shape)}.")
    if image.shape[-1] in (1, 2):
        image = image[..., :1].expand(*image.shape[:2], 3)
    array = image[..., :3].float().cpu().numpy()
    return np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8)


def shrunk_size(height: int, width: int, long_edge: int = MAX_LONG_EDGE) -> tuple[int, int]:
    """(height, width) after `limit_long_edge`: long edge at most `long_edge`, sizes truncated as ConsisID does."""
    if max(height, width) <= long_edge:
        return height, width
    k = long_edge / max(height, width)
    return int(height * k), int(width * k)


def limit_long_edge(image: np.ndarray, long_edge: int = MAX_LONG_EDGE) -> np.ndarray:
    """ConsisID's `resize_numpy_image_long`: shrink (never enlarge) with Lanczos."""
    h, w = shrunk_size(*image.shape[:2], long_edge)
    if (h, w) == image.shape[:2]:
        return image
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_LANCZOS4)


def _scale_back(full: np.ndarray, shrunk: np.ndarray) -> np.ndarray:
    """(x, y) factors from the shrunk copy's pixels back to the full photo's."""
    return np.array([full.shape[1] / shrunk.shape[1], full.shape[0] / shrunk.shape[0]], dtype=np.float32)


def faces_left_to_right(faces: list[DetectedFace]) -> list[DetectedFace]:
    """The numbering users see on the detections preview and choose from with `index`."""
    return sorted(faces, key=lambda f: (f.bbox[0] + f.bbox[2]) / 2)


def choose_face(
    faces: list[DetectedFace], image_size: tuple[int, int], choice: FaceChoice, index: int, photo: str
) -> DetectedFace:
    """The face to use from one photo; `image_size` is (height, width)."""
    if choice not in FACE_CHOICES:
        raise MultiIDError(f"Unknown face choice {choice!r}; choose one of {', '.join(FACE_CHOICES)}.")
    if not faces:
        raise MultiIDError(no_face_message(photo))
    if choice == "largest":
        return max(faces, key=lambda f: f.area)
    if choice == "central":
        cy, cx = image_size[0] / 2, image_size[1] / 2
        return min(
            faces, key=lambda f: ((f.bbox[0] + f.bbox[2]) / 2 - cx) ** 2 + ((f.bbox[1] + f.bbox[3]) / 2 - cy) ** 2
        )
    ordered = faces_left_to_right(faces)
    if not 0 <= index < len(ordered):
        raise MultiIDError(
            f"face_index {index} is out of range for {photo}: {len(ordered)} face(s) were found, numbered 0 to "
            f"{len(ordered) - 1} from left to right (see the detections preview). Pick one of those."
        )
    return ordered[index]


def no_face_message(photo: str, image: np.ndarray | None = None) -> str:
    """Why no face was found, with what the pixels say about it when they are washed out or black."""
    message = (
        f"No face found in {photo}. Use a photo where the face is clearly visible, frontal or three-quarter, "
        f"and at least about 80 pixels wide."
    )
    return message if image is None else message + _washed_out(image)


def _washed_out(image: np.ndarray) -> str:
    """A hint when almost every pixel is pure white or pure black (else empty)."""
    pixels = image.reshape(-1, image.shape[-1])
    if (pixels == 255).all(axis=1).mean() >= SATURATED:
        return (
            " Almost all of it is pure white: the photo is overexposed, or it is a 16-bit PNG, which ComfyUI's Load "
            "Image clips to white. Save it as an 8-bit PNG or a JPEG."
        )
    if (pixels == 0).all(axis=1).mean() >= SATURATED:
        return " Almost all of it is black: an empty or failed image from an upstream node, or the wrong input."
    return ""


def to_gray(rgb: torch.Tensor) -> torch.Tensor:
    """ConsisID's luminance, repeated on three channels: [B,3,H,W] -> [B,3,H,W]."""
    gray = 0.299 * rgb[:, 0:1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3]
    return gray.repeat(1, 3, 1, 1)


def _concat_id_face(parser: torch.nn.Module, image: np.ndarray, kps: np.ndarray) -> torch.Tensor:
    """448 `norm_crop`, parsed; background black when the mask keeps enough of the crop."""
    crop = torch.from_numpy(norm_crop(image, kps, CONCAT_ID_CROP)).permute(2, 0, 1)[None].float() / 255.0
    labels = parse_face(parser, F.interpolate(crop, size=(512, 512), mode="bilinear", align_corners=False))
    labels = F.interpolate(labels[:, None].float(), size=crop.shape[-2:], mode="nearest")[:, 0].long()
    background = background_mask(labels, CONCAT_ID_BACKGROUND_LABELS)[:, None]
    if (~background).float().mean() >= CONCAT_ID_MIN_FOREGROUND:
        crop = torch.where(background, torch.zeros_like(crop), crop)
    return crop[0].permute(1, 2, 0)


def _stand_in_face(parser: torch.nn.Module, image: np.ndarray, bbox: np.ndarray) -> torch.Tensor:
    """[512, 512, 3] in 0..1: the face as Stand-In's FaceProcessor prepares it (`bbox` in `image`'s pixels)."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (int(v) for v in bbox)
    b = STAND_IN_BORDER
    if x1 <= b and y1 <= b and x2 >= w - b and y2 >= h - b:
        crop = image
    else:
        cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
        half = int(max(x2 - x1, y2 - y1) * STAND_IN_CROP_SCALE) // 2
        crop = image[max(cy - half, 0) : min(cy + half, h), max(cx - half, 0) : min(cx + half, w)]
    ch, cw = crop.shape[:2]
    side = max(ch, cw)
    top, left = (side - ch) // 2, (side - cw) // 2
    square = cv2.copyMakeBorder(
        crop, top, side - ch - top, left, side - cw - left, cv2.BORDER_CONSTANT, value=(255, 255, 255)
    )
    face = cv2.resize(square, (STAND_IN_SIZE, STAND_IN_SIZE), interpolation=cv2.INTER_AREA)
    pixels = torch.from_numpy(face).permute(2, 0, 1)[None].float() / 255.0
    labels = parse_face(parser, pixels, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)).cpu()
    background = background_mask(labels, STAND_IN_BACKGROUND_LABELS)[:, None]
    return torch.where(background, torch.ones_like(pixels), pixels)[0].permute(1, 2, 0)


def encode_photo(
    extractor: FaceExtractor,
    image: np.ndarray,
    choice: FaceChoice = "largest",
    index: int = 0,
    photo: str = "the photo",
) -> tuple[PhotoFeatures, np.ndarray, list[DetectedFace]]:
    """One uint8 RGB photo -> its features, the (resized) photo the detector saw, and all faces found."""
    h, w = image.shape[:2]
    if min(h, w) < MIN_SHORT_EDGE:
        raise MultiIDError(
            f"{photo} is only {w}x{h} pixels, too small to find and align a face. Use a photo at least "
            f"{MIN_SHORT_EDGE} pixels on its short side (256 or more gives a far better identity)."
        )
    shrunk_h, shrunk_w = shrunk_size(h, w)
    if min(shrunk_h, shrunk_w) < MIN_SHORT_EDGE:  # a strip: shrunk to a 1024 long edge, too thin for a face
        raise MultiIDError(
            f"{photo} is {w}x{h} pixels, a strip too long for its width: shrunk to {MAX_LONG_EDGE} pixels on its "
            f"long side before detection, as the authors' pipeline does, it would be {shrunk_w}x{shrunk_h}, too "
            f"thin to find a face. Crop the photo around the face (at most {MAX_LONG_EDGE // MIN_SHORT_EDGE} times "
            f"longer than wide)."
        )
    if int(image.max()) - int(image.min()) < BLANK_RANGE:
        colour = tuple(int(c) for c in image.reshape(-1, image.shape[-1]).mean(axis=0).round())
        raise MultiIDError(
            f"{photo} is blank: every pixel has about the same colour (RGB {colour}), so it shows no face. Connect a "
            f"photo of the person.{_washed_out(image)}"
        )
    full = image
    image = limit_long_edge(image)
    faces = extractor.detector.detect(image)
    if not faces:
        raise MultiIDError(no_face_message(photo, image))
    face = choose_face(faces, image.shape[:2], choice, index, photo)
    arcface = torch.from_numpy(extractor.detector.embed(image, face))

    aligned = align_ffhq(image, face.kps)
    arcface_crop = torch.from_numpy(extractor.detector.embed_aligned(aligned))
    crop = torch.from_numpy(aligned).permute(2, 0, 1)[None].float() / 255.0
    background = background_mask(parse_face(extractor.parser, crop), CONSISID_BACKGROUND_LABELS)[:, None].cpu()
    white = torch.ones_like(crop)
    face_on_white = torch.where(background, white, crop)
    gray_on_white = torch.where(background, white, to_gray(crop))

    def cpu(t: torch.Tensor) -> torch.Tensor:
        return t[0].float().cpu()

    eva = {}
    if extractor.eva is not None:
        with torch.inference_mode():
            cls_parsed, hidden_parsed = extractor.eva(gray_on_white)
            cls_crop, hidden_crop = extractor.eva(crop)
        eva = dict(
            eva_cls_parsed=cpu(cls_parsed),
            eva_hidden_parsed=[cpu(h) for h in hidden_parsed],
            eva_cls_crop=cpu(cls_crop),
            eva_hidden_crop=[cpu(h) for h in hidden_crop],
        )

    features = PhotoFeatures(
        arcface=arcface,
        arcface_crop=arcface_crop,
        **eva,
        aligned_crop=crop[0].permute(1, 2, 0),
        face_on_white=face_on_white[0].permute(1, 2, 0),
        face_on_black=_concat_id_face(extractor.parser, full, face.kps * _scale_back(full, image)),
        face_stand_in=_stand_in_face(extractor.parser, full, face.bbox * np.tile(_scale_back(full, image), 2)),
        bbox=face.bbox,
        kps=face.kps,
    )
    return features, image, faces


def photo_frames(photos: torch.Tensor | Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """[H,W,C] photos of an IMAGE batch [P,H,W,C], or of a list of batches whose sizes differ.

    ComfyUI batches hold one size; photos of several sizes arrive as a list (e.g. from Load Image Dataset
    from Folder), and each keeps its own size here.
    """
    frames = []
    for batch in photos if isinstance(photos, (list, tuple)) else [photos]:
        batch = batch[None] if batch.ndim == 3 else batch
        if batch.ndim != 4:
            raise MultiIDError(f"Expected photos [count, height, width, channels], got shape {tuple(batch.shape)}.")
        frames.extend(batch)
    if not frames:
        raise MultiIDError("No photos were given: connect at least one photo of the person.")
    return frames


def encode_identity(
    extractor: FaceExtractor,
    photos: torch.Tensor | Sequence[torch.Tensor],
    choice: FaceChoice = "largest",
    index: int = 0,
    label: str = "",
    on_photo: Callable[[int], None] | None = None,
) -> tuple[Identity, list[tuple[np.ndarray, list[DetectedFace], DetectedFace]]]:
    """Photos of one person (see `photo_frames`) -> Identity, plus per photo what was detected."""
    frames = photo_frames(photos)
    features, seen = [], []
    for i, frame in enumerate(frames):
        name = f"photo {i + 1} of {len(frames)}" if len(frames) > 1 else "the photo"
        feats, image, faces = encode_photo(extractor, to_uint8_rgb(frame), choice, index, name)
        chosen = next(f for f in faces if np.array_equal(f.bbox, feats.bbox))
        features.append(feats)
        seen.append((image, faces, chosen))
        if on_photo is not None:
            on_photo(i + 1)
    return Identity(photos=features, label=label), seen
