"""Stand-In on the user's own Wan 14B MODEL (ComfyUI's Load Diffusion Model, LoRAs, fp8), as the authors run it.

WeChatCV/Stand-In (`models/wan_video_dit.py`, `pipelines/wan_video.py`): each face, VAE-encoded at 512x512, is
patch-embedded into its own block of 1024 reference tokens. The reference tokens are modulated at timestep 0, their
q/k/v get the adapter's LoRA, they attend only to their own block, skip the text cross-attention, and share the
block's output projection and feed-forward; the video tokens attend to the video and to every face (placed people:
to the faces whose masks hold them). The reference stream depends on nothing of the video, so its keys and values
are computed by the first call of a run and kept (`ReferenceStream`), as the authors keep them; from then on the calls
carry the video tokens only. Both guidance branches see the face, as in the authors' loop, whose negative branch
reads the same kept keys.

`apply_stand_in` gives a clone of the MODEL: the adapter rides along as an additional model (ComfyUI loads and
offloads it with the MODEL), the faces travel in its `transformer_options`, the flow shift is the authors' 5 (set
as ModelSamplingSD3 sets one, so a later ModelSamplingSD3 node still overrides it), and the loaded WanModel becomes
a `StandInDiT`, which is WanModel itself for every call without Stand-In's inputs (other clones of the same model).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import comfy.ldm.wan.model
import comfy.model_base
import comfy.model_patcher
import comfy.patcher_extension
import torch

from ...multiid_core.errors import MultiIDError
from ...multiid_core.families import Loader
from ...multiid_core.stand_in.adapter import StandInAdapter
from ...multiid_core.stand_in.checkpoint import SHIFT, check_fits
from ...multiid_core.stand_in.references import token_positions
from ...multiid_core.wan.reference_tokens import VAE_SCALE, AttentionGroups, token_regions
from .. import family_tags
from ..teacache import WAN_14B
from ..wan.reference_dit import ReferenceStream, WanReferenceDiT
from ..wan.reference_model import flow_shift_sampling

STAND_IN = "multiid_stand_in"  # transformer option: the MODEL's StandInFaces; key of its additional model and wrapper
STREAMS = "multiid_stand_in_streams"  # transformer option: this sampling run's ReferenceStreams


@dataclass(eq=False)
class StandInFaces:
    """What Apply Stand-In gives the model: the adapter, the faces' latents and where each person may be."""

    adapter: StandInAdapter
    latents: torch.Tensor  # [1, 16, faces, h, w], as the model sees latents (process_latent_in applied)
    masks: Sequence[torch.Tensor | None] | None = None  # one per face (ID Router's); None: no placement
    _regions: dict = field(default_factory=dict)

    def __deepcopy__(self, memo: dict) -> StandInFaces:
        """ComfyUI deep-copies a MODEL's options on every clone (a LoRA loader after Apply Stand-In): the faces and
        the adapter weights ComfyUI loads as the MODEL's additional model stay shared, never copied."""
        return self

    def on_rank(self, device: torch.device) -> StandInFaces:
        """A multi-GPU rank's copy (sent to it once): the adapter and the faces on the rank's device."""
        self.adapter.to(device)
        self.latents = self.latents.to(device)
        return self

    def regions(self, x: torch.Tensor) -> torch.Tensor | None:
        """[1, faces, F, h/2, w/2] token regions for video latents x (None: every video token sees every face)."""
        if self.masks is None:
            return None
        frames, height, width = x.shape[2:]
        key = (frames, height, width)
        if key not in self._regions:
            pixels = (frames - 1) * VAE_SCALE[0] + 1, height * VAE_SCALE[1], width * VAE_SCALE[1]
            regions = token_regions(self.masks, *pixels)
            self._regions[key] = None if regions is None else regions[None]
        regions = self._regions[key]
        return None if regions is None else regions.to(x.device)


class StandInDiT(WanReferenceDiT):
    """ComfyUI's WanModel with Stand-In's reference stream; its inputs come from the MODEL's transformer_options."""

    method = "Stand-In"
    reference_node = "Apply Stand-In"
    references_key = STAND_IN
    regions_key = STAND_IN
    family_tag = family_tags.STAND_IN
    loader = Loader.STAND_IN
    teacache = WAN_14B
    rank_options = (STAND_IN,)  # on multi-GPU ranks the faces' keys are computed at every call (kept: one GPU)
    reference_projections = True

    def call_references(self, x: torch.Tensor, kwargs: dict, options: dict):
        faces: StandInFaces | None = options.get(STAND_IN)
        if faces is None:
            return None, None
        return faces.latents, faces.regions(x)

    def reference_time(self, e: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        """The faces' modulation: the same time MLPs at timestep 0."""
        zero = self.time_embedding(self.embed_time(torch.zeros_like(timestep)).to(e.dtype))
        return self.time_projection(zero).unflatten(1, (6, self.dim))

    def reference_positions(self, video: tuple[int, int, int], references: tuple[int, int, int]) -> torch.Tensor:
        return token_positions(video, references)

    def attention_groups(
        self, regions: torch.Tensor | None, refs: int, n_video: int, ref_tokens: int, options: dict
    ) -> AttentionGroups | None:
        if not refs:
            return None
        return AttentionGroups.for_batch_item(regions, refs, n_video, ref_tokens, references_see_video=False)

    def reference_stream(self, references: torch.Tensor, grid: tuple[int, int], options: dict):
        streams = options.get(STREAMS)
        if streams is None:  # sampled without Apply Stand-In's wrapper (a direct call): computed every call
            return None
        key = (references.data_ptr(), tuple(references.shape), grid)
        return streams.setdefault(key, ReferenceStream())

    def qkv(self, block: comfy.ldm.wan.model.WanAttentionBlock, index: int, h, n_video: int, options: dict):
        attn = block.self_attn
        q, k, v = attn.q(h), attn.k(h), attn.v(h)
        if h.shape[1] > n_video:  # the faces' tokens: base projections plus the adapter's, before the norms
            adapter = options[STAND_IN].adapter
            faces = h[:, n_video:]
            q, k, v = (
                torch.cat([out[:, :n_video], out[:, n_video:] + adapter.delta(index, name, faces)], dim=1)
                for out, name in ((q, "q"), (k, "k"), (v, "v"))
            )
        return attn.norm_q(q), attn.norm_k(k), v


def fresh_streams(executor, *args, **kwargs):
    """OUTER_SAMPLE wrapper: every sampling run keeps its own reference keys and values (a LoRA or another expert
    changes them), and the loaded WanModel is a StandInDiT even when ComfyUI built it again since Apply Stand-In."""
    guider = executor.class_obj
    dit = guider.model_patcher.model.diffusion_model
    if isinstance(dit, comfy.ldm.wan.model.WanModel):  # on MultiID Multi-GPU the ranks adopt theirs
        StandInDiT.adopt(dit)
    original = guider.model_options
    guider.model_options = comfy.model_patcher.create_model_options_clone(original)
    guider.model_options["transformer_options"][STREAMS] = {}
    try:
        return executor(*args, **kwargs)
    finally:
        guider.model_options = original


def apply_stand_in(
    model: comfy.model_patcher.ModelPatcher, adapter: comfy.model_patcher.ModelPatcher, faces: StandInFaces, name: str
) -> comfy.model_patcher.ModelPatcher:
    """A clone of a Wan 14B MODEL that runs Stand-In with `faces`; `adapter` is the adapter's ModelPatcher."""
    base = getattr(model, "model", None)
    dit = getattr(base, "diffusion_model", None)
    if not isinstance(base, comfy.model_base.WAN21) or type(dit) not in (comfy.ldm.wan.model.WanModel, StandInDiT):
        kind = f"{type(base).__name__} with {type(dit).__name__}"
        raise MultiIDError(
            "Apply Stand-In takes a Wan text-to-video MODEL from Load Diffusion Model (Wan2.1-T2V-14B, or an expert "
            f"of Wan2.2-T2V-A14B); this MODEL is {kind}. Image-to-video, VACE, Phantom and the pack's own loaders' "
            "MODELs do not take the adapter."
        )
    check_fits(faces.adapter.sizes, dit.dim, len(dit.blocks), name)
    if model.model_options.get("transformer_options", {}).get(STAND_IN) is not None:
        raise MultiIDError("This MODEL already has Stand-In applied: connect Apply Stand-In once per model.")
    StandInDiT.adopt(dit)
    clone = model.clone()
    clone.set_additional_models(STAND_IN, [adapter])
    clone.model_options["transformer_options"][STAND_IN] = faces
    clone.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, STAND_IN, fresh_streams)
    clone.add_object_patch("model_sampling", flow_shift_sampling(base, SHIFT))
    return clone
