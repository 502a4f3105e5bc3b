"""What a person's photos give each method, computed once and carried to the sampler.

ConsisID, Ingredients and Concat-ID preprocess the same face differently (parsed grey face on white,
colour crop, parsed face on black); an Identity carries all of them so one EncodeIdentity node serves
every model family.

Several photos of one person: each photo keeps its own features; the sampler runs the perceiver (LFE)
on every photo and averages its 32 output tokens, so the model sees one token set in the space it was
trained on. The first photo is the primary one: it provides the first-frame face (ConsisID,
Ingredients) and the appended reference (Concat-ID, Stand-In).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import MultiIDError
from ..families import EvaStyle


@dataclass
class PhotoFeatures:
    """One photo of one person, after detection, alignment and parsing."""

    arcface: torch.Tensor  # [512] raw glintr100 embedding of the detected face (ConsisID, scoring)
    arcface_crop: torch.Tensor  # [512] glintr100 on the 512 FFHQ crop resized to 112 (Ingredients)
    aligned_crop: torch.Tensor  # [512, 512, 3] in 0..1, FFHQ-aligned colour crop (Ingredients canvas)
    face_on_white: torch.Tensor  # [512, 512, 3] colour face, background white (ConsisID first frame)
    face_on_black: torch.Tensor  # [448, 448, 3] norm_crop face, background black (Concat-ID)
    face_stand_in: torch.Tensor  # [512, 512, 3] 1.5x face box padded and parsed, background white (Stand-In)
    bbox: np.ndarray  # [4] in the pixels of the (long-edge <= 1024) photo the detector saw
    kps: np.ndarray  # [5, 2]
    # EVA-CLIP features (None when the extractor was loaded without EVA-CLIP, enough for Concat-ID):
    eva_cls_parsed: torch.Tensor | None = None  # [768] L2-normalised, grey face on white (ConsisID)
    eva_hidden_parsed: list[torch.Tensor] | None = None  # 5 x [577, width]
    eva_cls_crop: torch.Tensor | None = None  # [768] colour crop, not parsed (Ingredients)
    eva_hidden_crop: list[torch.Tensor] | None = None


@dataclass
class Identity:
    """One person: features of one or more photos."""

    photos: list[PhotoFeatures]
    label: str = ""

    @property
    def primary(self) -> PhotoFeatures:
        return self.photos[0]

    def id_cond(self, style: EvaStyle) -> torch.Tensor:
        """[P, 1280]: ArcFace 512 next to EVA CLS 768, one row per photo, as each method builds it."""
        self._require_eva()
        if style == "consisid":
            rows = [torch.cat([p.arcface, p.eva_cls_parsed]) for p in self.photos]
        else:
            rows = [torch.cat([p.arcface_crop, p.eva_cls_crop]) for p in self.photos]
        return torch.stack(rows)

    def vit_hidden(self, style: EvaStyle) -> list[torch.Tensor]:
        """Five [P, 577, width] EVA hidden states for the LFE."""
        self._require_eva()
        per_photo = [p.eva_hidden_parsed if style == "consisid" else p.eva_hidden_crop for p in self.photos]
        return [torch.stack([hidden[i] for hidden in per_photo]) for i in range(len(per_photo[0]))]

    def _require_eva(self) -> None:
        if any(p.eva_cls_parsed is None for p in self.photos):
            raise MultiIDError(
                f"The identity {self.label or ''} was encoded without EVA-CLIP, which ConsisID and Ingredients need: "
                f"choose the EVA02_CLIP_L_336_psz14_s6B.pt file in Load Face Extractor (not 'none')."
            )

    def arcface_unit(self) -> torch.Tensor:
        """[512] mean direction of the photos' ArcFace embeddings, for identity scoring."""
        units = torch.nn.functional.normalize(torch.stack([p.arcface for p in self.photos]), dim=-1)
        return torch.nn.functional.normalize(units.mean(0), dim=-1)
