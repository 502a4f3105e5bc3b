"""Five-point face alignment, matching the warps each method's reference pipeline uses.

ConsisID and Ingredients align with facexlib's FFHQ template (512 px, LMEDS similarity, grey border);
Concat-ID with insightface's ArcFace template (`norm_crop`, 448 px, black border). Landmarks come from
one detector (SCRFD) for every method: a documented deviation from ConsisID, whose two detectors could
pick different people in a group photo.
"""

from __future__ import annotations

import cv2
import numpy as np

FFHQ_TEMPLATE_512 = np.array(
    [
        [192.98138, 239.94708],
        [318.90277, 240.1936],
        [256.63416, 314.01935],
        [201.26117, 371.41043],
        [313.08905, 371.15118],
    ],
    dtype=np.float64,
)

ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)

# facexlib pads with this grey, given in BGR because it warps BGR images; we warp RGB.
_FACEXLIB_BORDER_RGB = (132, 133, 135)


def align_ffhq(image_rgb: np.ndarray, kps: np.ndarray, size: int = 512) -> np.ndarray:
    """The 512x512 crop facexlib's FaceRestoreHelper.align_warp_face produces (ConsisID, Ingredients)."""
    template = FFHQ_TEMPLATE_512 * (size / 512.0)
    matrix = cv2.estimateAffinePartial2D(np.asarray(kps, dtype=np.float64), template, method=cv2.LMEDS)[0]
    return cv2.warpAffine(
        image_rgb, matrix, (size, size), borderMode=cv2.BORDER_CONSTANT, borderValue=_FACEXLIB_BORDER_RGB
    )


def umeyama_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform src -> dst (Umeyama 1991), as a 2x3 matrix.

    Same estimate as skimage's SimilarityTransform.estimate, which insightface's norm_crop uses and
    scikit-image has deprecated.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(cov) < 0:
        d[1] = -1
    rotation = u @ np.diag(d) @ vt
    scale = (s * d).sum() / src_c.var(0).sum()
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def norm_crop(image_rgb: np.ndarray, kps: np.ndarray, size: int = 112) -> np.ndarray:
    """insightface's `face_align.norm_crop` (ArcFace template scaled to `size`, black border)."""
    if size % 112:
        raise ValueError(f"norm_crop size must be a multiple of 112, got {size}")
    matrix = umeyama_similarity(kps, ARCFACE_TEMPLATE_112 * (size / 112.0))
    return cv2.warpAffine(image_rgb, matrix, (size, size), borderValue=0.0)
