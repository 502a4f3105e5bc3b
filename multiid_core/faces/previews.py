"""Pictures a user looks at to see which face was taken."""

from __future__ import annotations

import cv2
import numpy as np

from .detection import DetectedFace
from .extractor import faces_left_to_right

CHOSEN = (40, 220, 60)
OTHER = (230, 60, 50)
LANDMARK_COLOURS = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255))


def draw_detections(image: np.ndarray, faces: list[DetectedFace], chosen: DetectedFace | None) -> np.ndarray:
    """Boxes numbered left to right (the `index` choice), landmarks as dots, the chosen face in green."""
    canvas = image.copy()
    scale = max(canvas.shape[:2]) / 512
    thickness = max(1, round(2 * scale))
    for number, face in enumerate(faces_left_to_right(faces)):
        colour = CHOSEN if chosen is not None and np.array_equal(face.bbox, chosen.bbox) else OTHER
        x1, y1, x2, y2 = (int(round(v)) for v in face.bbox)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness)
        label = f"{number} ({face.score:.2f})"
        font = 0.6 * scale
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font, thickness)
        top = max(0, y1 - th - 2 * thickness)
        cv2.rectangle(canvas, (x1, top), (x1 + tw + 2 * thickness, top + th + 2 * thickness), colour, -1)
        cv2.putText(
            canvas,
            label,
            (x1 + thickness, top + th + thickness),
            cv2.FONT_HERSHEY_SIMPLEX,
            font,
            (255, 255, 255),
            thickness,
            cv2.LINE_AA,
        )
        for point, dot in zip(face.kps, LANDMARK_COLOURS):
            cv2.circle(canvas, (int(round(point[0])), int(round(point[1]))), thickness + 1, dot, -1)
    return canvas
