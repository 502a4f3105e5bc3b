"""What the pack's features (TeaCache, Multi-GPU, the family checks of the nodes) ask of a family's model.

Each family's diffusion-model class answers for itself (`CogVideoXDiT`, `WanReferenceDiT` and its methods'
subclasses); a feature asks, it keeps no table of families.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch

from ..multiid_core.families import Loader


class FamilyDiT(Protocol):
    family_tag: str  # written on its latents and conditionings (family_tags)
    loader: Loader  # the node that makes its MODEL
    teacache: Any  # its TeaCacheFit (nodes/teacache.py), or None
    multi_gpu: bool  # whether MultiID Multi-GPU runs it
    rank_options: tuple[str, ...]  # the transformer options its multi-GPU ranks need, beyond the sampler's

    @property
    def attention_heads(self) -> int: ...

    def video_tokens(self, x: torch.Tensor) -> int:
        """Video tokens of a call's latents (what a multi-GPU rank's shard cuts)."""
        ...

    def routing_condition(self, kwargs: dict) -> Any:
        """The call's identity that records routing (`.recorder`), or None."""
        ...


def family_dit(model: Any) -> FamilyDiT | None:
    """The diffusion model of a MODEL made by one of the pack's loaders, or None."""
    dit = getattr(getattr(model, "model", None), "diffusion_model", None)
    return dit if isinstance(getattr(dit, "loader", None), Loader) else None
