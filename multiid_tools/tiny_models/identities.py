"""Identities with random features of the right shapes, for samplers fed without face models."""

from __future__ import annotations

import numpy as np
import torch

from multiid_core.faces.identity import Identity, PhotoFeatures


def random_identity(seed: int = 0, vit_dim: int = 64, label: str = "") -> Identity:
    """One photo's worth of features (ArcFace scale ~20, unit EVA CLS, 5 EVA hidden states, face pictures)."""
    g = torch.Generator().manual_seed(seed)
    face = torch.rand(512, 512, 3, generator=g)
    photo = PhotoFeatures(
        arcface=torch.randn(512, generator=g) * 20,
        arcface_crop=torch.randn(512, generator=g) * 20,
        eva_cls_parsed=torch.nn.functional.normalize(torch.randn(768, generator=g), dim=0),
        eva_hidden_parsed=[torch.randn(577, vit_dim, generator=g) for _ in range(5)],
        eva_cls_crop=torch.nn.functional.normalize(torch.randn(768, generator=g), dim=0),
        eva_hidden_crop=[torch.randn(577, vit_dim, generator=g) for _ in range(5)],
        aligned_crop=face,
        face_on_white=face,
        face_on_black=torch.rand(448, 448, 3, generator=g),
        face_stand_in=torch.rand(512, 512, 3, generator=g),
        bbox=np.array([10, 10, 100, 100], dtype=np.float32),
        kps=np.zeros((5, 2), dtype=np.float32),
    )
    return Identity(photos=[photo], label=label)
