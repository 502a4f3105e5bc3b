"""People placed where the user paints them, on ComfyUI's own VACE (WanVaceToVideo's conditioning, VaceWanModel).

VACE puts each reference image as one latent frame *before* the video's, in the sampled latent and in the VACE
context alike (`vace_encode_frames`: `torch.cat([*ref_latent, latent], dim=1)`). A reference reaches the video two
ways: through the main blocks' self-attention (the video tokens attend to the reference frames' tokens), and through
the VACE blocks, whose self-attention over the whole context mixes the reference frames into every frame's hint,
which is then added to the video token at the same place. Both are self-attention over the same token layout, so one
rule placed on every such attention call ties a reference to a region: the video inside person k's mask sees person
k's reference frames and no other person's (outside every mask: none), and each person's frames see that person's
frames and the video inside the mask. Everything else (cross-attention, feed-forward, the hints' addition) acts per
token and carries nothing across.

The rule enters through ComfyUI's own attention hook (`optimized_attention_override` in `transformer_options`), set
per call by a DIFFUSION_MODEL wrapper that knows the call's token layout: VACE's forward stays ComfyUI's, uncopied.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

import comfy.ldm.wan.model
import comfy.model_patcher
import comfy.patcher_extension
import torch

from ...multiid_core.errors import MultiIDError
from ...multiid_core.wan.reference_tokens import VAE_SCALE, AttentionGroups, token_regions

PLACEMENT = "multiid_vace_placement"  # transformer option: the MODEL's VacePlacement; its wrapper's key
OVERRIDE = "optimized_attention_override"  # ComfyUI's attention hook (comfy/ldm/modules/attention.py wrap_attn)


@dataclass(eq=False)
class VacePlacement:
    """Where each person may be, and which reference frame shows whom (in VACE's order)."""

    masks: Sequence[torch.Tensor | None]  # one per person; None: that person everywhere
    owners: Sequence[int]  # per reference frame: its person
    labels: Sequence[str]
    _groups: dict = field(default_factory=dict)

    def __deepcopy__(self, memo: dict) -> VacePlacement:
        """ComfyUI deep-copies a MODEL's options on every clone: the placement is shared, never copied."""
        return self

    def groups(self, frames: int, rows: int, cols: int) -> AttentionGroups:
        """Who attends to whom for a sequence of `frames` latent frames (the references first) of rows x cols
        tokens each, in the sequence's own order."""
        key = (frames, rows, cols)
        if key not in self._groups:
            refs, per_frame = len(self.owners), rows * cols
            video_frames = frames - refs
            pixels = (video_frames - 1) * VAE_SCALE[0] + 1, rows * 2 * VAE_SCALE[1], cols * 2 * VAE_SCALE[1]
            regions = token_regions([self.masks[owner] for owner in self.owners], *pixels)
            n_video = video_frames * per_frame
            groups = AttentionGroups.for_batch_item(regions, refs, n_video, per_frame, owners=self.owners)
            position = torch.cat([torch.arange(n_video) + refs * per_frame, torch.arange(refs * per_frame)])
            self._groups[key] = groups.moved(position)
        return self._groups[key]


def regional_attention(groups: AttentionGroups, tokens: int, previous, func, *args, **kwargs):
    """ComfyUI's attention hook: self-attention over the call's whole sequence follows `groups`; every other call
    (text cross-attention) goes on unchanged, to a hook set before this one if there was one."""

    def attend(q, k, v, **rest):
        return func(q, k, v, **rest) if previous is None else previous(func, q, k, v, **rest)

    q, k, v = args[:3]
    if not all(torch.is_tensor(t) and t.ndim == 3 for t in (q, k, v)) or len(args) > 3:
        raise MultiIDError(
            "This ComfyUI calls attention in a form MultiID VACE References cannot restrict (the placement would be "
            "silently lost): update the pack, or remove the masks from ID Router."
        )
    if q.shape[1] != tokens or k.shape[1] != tokens:
        return attend(q, k, v, **kwargs)
    heads = kwargs.pop("heads")

    def call(q_, k_, v_, heads_):
        return attend(q_, k_, v_, heads=heads_, **kwargs)

    return groups.attend(q, k, v, heads, call)


def with_layout(executor, x, timestep, context, clip_fea=None, time_dim_concat=None, transformer_options={}, **kwargs):  # noqa: B006 - ComfyUI's signature
    """DIFFUSION_MODEL wrapper: the call's token layout (its frames, references first) chooses the groups."""
    placement: VacePlacement = transformer_options[PLACEMENT]
    if kwargs.get("vace_context") is None or not isinstance(executor.class_obj, comfy.ldm.wan.model.VaceWanModel):
        raise MultiIDError(
            "MultiID VACE References placed its people on a MODEL that is not VACE, or the conditioning is not its "
            "own: load a Wan VACE model (wan2.1_vace_14B / 1.3B) with Load Diffusion Model and sample the outputs of "
            "MultiID VACE References."
        )
    patch = executor.class_obj.patch_size
    frames, rows, cols = x.shape[2], -(-x.shape[3] // patch[1]), -(-x.shape[4] // patch[2])
    if frames <= len(placement.owners):
        raise MultiIDError(
            f"The latent has {frames} frames, no more than the {len(placement.owners)} reference frames: sample the "
            "latent of MultiID VACE References (and trim the references off after with Trim Video Latent)."
        )
    groups = placement.groups(frames, rows, cols)
    options = {**transformer_options}
    options[OVERRIDE] = functools.partial(
        regional_attention, groups, frames * rows * cols, transformer_options.get(OVERRIDE)
    )
    return executor(x, timestep, context, clip_fea, time_dim_concat, options, **kwargs)


def place_people(model: comfy.model_patcher.ModelPatcher, placement: VacePlacement) -> comfy.model_patcher.ModelPatcher:
    """A clone of a VACE MODEL whose self-attention follows `placement`."""
    dit = getattr(getattr(model, "model", None), "diffusion_model", None)
    if not isinstance(dit, comfy.ldm.wan.model.VaceWanModel):
        raise MultiIDError(
            f"MultiID VACE References places people on a Wan VACE model from Load Diffusion Model; this MODEL is "
            f"{type(dit).__name__}. Leave its model input unconnected to use it as a plain several-references node."
        )
    clone = model.clone()
    clone.model_options["transformer_options"][PLACEMENT] = placement
    clone.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, PLACEMENT, with_layout)
    return clone
