"""Concat-ID-Wan as a native ComfyUI MODEL: ComfyUI's own WanModel with Concat-ID's reference frames.

ComfyUI builds and loads the model as it does any Wan 2.1 text-to-video checkpoint
(`comfy.sd.load_diffusion_model_state_dict`), so detection, weight dtype (fp8 included), ops, offloading and the
ModelPatcher are ComfyUI's own. The `WAN21` becomes `ConcatIDWanModel` and its WanModel `ConcatIDWanDiT`, a
`WanReferenceDiT` (nodes/wan/reference_dit.py) that says only what Concat-ID does differently, as released
(ML-GSAI/Concat-ID `pipelines/wan_video.py`, `inference_wan.py`, `train_concat-id_wan2.1.py`):

- each clean reference latent is appended after the video's latent frames, every token shares the timestep
  (the base's default), and the prediction of the reference slots is dropped before it leaves the model;
- RoPE: reference k sits at (F + k, i, j + W) (multiid_core.concat_id_wan.references);
- reference tokens skip the text cross-attention (the base's default);
- AdaLN release: reference tokens are modulated by `time_projection_ref` + `modulation_ref`, and their
  feed-forward input uses the *attention* shift/scale of that branch, as in the release's training and
  inference; the head uses the shared modulation for all tokens;
- the timestep is rounded to bf16 and embedded in fp64, as the release (which samples in bf16) does: the
  weights only saw such timesteps.

The release samples with flow shift 5 (ComfyUI's Wan default is 8), set as ModelSamplingSD3 sets a shift, so a
later ModelSamplingSD3 node still overrides it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import comfy.ldm.wan.model
import comfy.model_patcher
import torch

from ...multiid_core.concat_id_wan.checkpoint import SHIFT, ConcatIDWanConfig, expected_shapes, read_checkpoint
from ...multiid_core.concat_id_wan.references import token_positions
from ...multiid_core.errors import MultiIDError
from ...multiid_core.families import Loader
from .. import family_tags
from ..options import SHARD
from ..teacache import WAN_1_3B
from ..wan.reference_dit import WanReferenceDiT
from ..wan.reference_model import WanReferenceModel, adopt_wan_model, flow_shift_sampling, load_wan_model

REFERENCES = "concat_id_references"  # conditioning key: raw VAE latents [1, 16, R, h, w]
REGIONS = "concat_id_regions"  # conditioning key: token regions [1, R, F, h/2, w/2]


def release_timestep_embedding(dim: int, timestep: torch.Tensor) -> torch.Tensor:
    """[B] -> [B, dim] cos|sin of the bf16-rounded timestep, in fp64 as the release computes it."""
    half = dim // 2
    timestep = timestep.to(torch.bfloat16).to(torch.float64)
    freqs = torch.pow(10000, -torch.arange(half, dtype=torch.float64, device=timestep.device).div(half))
    angles = torch.outer(timestep, freqs)
    return torch.cat([angles.cos(), angles.sin()], dim=1)


class ConcatIDWanDiT(WanReferenceDiT):
    """ComfyUI's WanModel with Concat-ID's appended references; made from a loaded WanModel by `adopt`."""

    method = "Concat-ID-Wan"
    reference_node = "Concat-ID Wan Reference"
    references_key = REFERENCES
    regions_key = REGIONS
    family_tag = family_tags.CONCAT_ID_WAN
    loader = Loader.CONCAT_ID_WAN
    teacache = WAN_1_3B
    adaln_reference: bool

    @classmethod
    def adopt(cls, model: comfy.ldm.wan.model.WanModel, reference_branch: bool = False) -> ConcatIDWanDiT:
        """Turn ComfyUI's loaded WanModel into this class in place; add the AdaLN branch's (empty) layers."""
        model = super().adopt(model)
        model.adaln_reference = reference_branch
        if reference_branch:
            sibling = model.time_projection[1]
            model.time_projection_ref = torch.nn.Sequential(
                torch.nn.SiLU(),
                type(sibling)(model.dim, 6 * model.dim, device=sibling.weight.device, dtype=model.dtype),
            )
            for block in model.blocks:
                block.modulation_ref = torch.nn.Parameter(torch.empty_like(block.modulation))
        return model

    def check_call(self, references: torch.Tensor | None, options: dict) -> None:
        if references is None and options.get(SHARD) is not None:
            raise MultiIDError(
                "MultiID Multi-GPU runs Concat-ID Wan with its reference frames: sample the latent and conditionings "
                "of a Concat-ID Wan Reference node (a plain Wan prompt runs on one GPU)."
            )

    def embed_time(self, timestep: torch.Tensor) -> torch.Tensor:
        return release_timestep_embedding(self.freq_dim, timestep)

    def reference_time(self, e: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor | None:
        return self.time_projection_ref(e).unflatten(1, (6, self.dim)) if self.adaln_reference else None

    def reference_block_modulation(self, block: comfy.ldm.wan.model.WanAttentionBlock) -> torch.nn.Parameter:
        return block.modulation_ref

    def reference_ffn_shift_scale(self, ref: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        # The release feeds the reference tokens' FFN with the attention shift/scale of the reference branch
        # (shift_msa_ref, scale_msa_ref), in training and inference; the weights expect it.
        return ref[0], ref[1]

    def reference_positions(self, video: tuple[int, int, int], references: tuple[int, int, int]) -> torch.Tensor:
        super().reference_positions(video, references)  # refuses references of another size than the video
        return token_positions(*video, references[0])


class ConcatIDWanModel(WanReferenceModel):
    """WAN21 whose conditioning may carry Concat-ID references and regions; made by `concat_id_model_patcher`."""


def load_concat_id_wan(
    path: str | os.PathLike, weight_dtype: str = "default", **comfy_options: Any
) -> comfy.model_patcher.ModelPatcher:
    """A released Concat-ID-Wan file -> MODEL. Also the MODEL's reload factory: newer ComfyUI calls it again
    (with `disable_dynamic=True`, which goes to its loader) when a node such as MultiGPU CFG Split needs a copy."""
    sd, config, _ = read_checkpoint(path)
    patcher = concat_id_model_patcher(sd, config, weight_dtype, str(path), **comfy_options)
    patcher.cached_patcher_init = (load_concat_id_wan, (path, weight_dtype))
    return patcher


def concat_id_model_patcher(
    sd: dict[str, torch.Tensor],
    config: ConcatIDWanConfig,
    weight_dtype: str = "default",
    name: str = "the file",
    **comfy_options: Any,
) -> comfy.model_patcher.ModelPatcher:
    """A checked Concat-ID-Wan state dict (original Wan layout) -> MODEL, through ComfyUI's own loader."""
    plain = {k: v for k, v in sd.items() if not _reference_branch(k)}
    reference_branch = {k: v for k, v in sd.items() if _reference_branch(k)}
    patcher = load_wan_model(plain, weight_dtype, name, **comfy_options)
    dit = ConcatIDWanDiT.adopt(patcher.model.diffusion_model, config.adaln_reference)
    adopt_wan_model(patcher, ConcatIDWanModel, dit)
    if reference_branch:  # adopted like the rest: in place where ComfyUI's dynamic VRAM loads that way
        dynamic = getattr(patcher, "is_dynamic", lambda: False)()
        _, unexpected = torch.nn.Module.load_state_dict(dit, reference_branch, strict=False, assign=dynamic)
        if unexpected:
            raise MultiIDError(f"{name}: the reference branch has tensors the model lacks ({unexpected[:3]}).")
    kept = {k: tuple(v.shape) for k, v in dit.state_dict().items()}
    lost = sorted(k for k, shape in expected_shapes(config).items() if kept.get(k) != shape)
    if lost:
        raise MultiIDError(
            f"ComfyUI's Wan model has no place for {len(lost)} tensors of {name} (e.g. {', '.join(lost[:3])}); "
            "this ComfyUI may be too new for the pack: see docs/compatibility.md, and update the pack."
        )
    patcher.add_object_patch("model_sampling", flow_shift_sampling(patcher.model, SHIFT))
    return patcher


def _reference_branch(key: str) -> bool:
    return key.startswith("time_projection_ref.") or key.endswith(".modulation_ref")
