"""Concat-ID's reference frames on ComfyUI's own WanModel.

ComfyUI builds and loads the model as it does any Wan 2.1 text-to-video checkpoint (see wan_model.py);
`ConcatIDWanDiT` only adds methods to that WanModel (and, for the AdaLN release, the reference-branch
layers, built with the same ComfyUI ops as their siblings). Without a reference and without TeaCache the
forward is WanModel's own. With one, as released (ML-GSAI/Concat-ID `pipelines/wan_video.py`,
`inference_wan.py`, `train_concat-id_wan2.1.py`):

- each clean reference latent is appended after the video's latent frames, every token shares the
  timestep, and the prediction of the reference slots is dropped before it leaves the model;
- RoPE: reference k sits at (F + k, i, j + W) (multiid_core.reference_attention);
- reference tokens skip the text cross-attention (self-attention and feed-forward see every token);
- AdaLN release: reference tokens are modulated by `time_projection_ref` + `modulation_ref`, and their
  feed-forward input uses the *attention* shift/scale of that branch, as in the release's training and
  inference; the head uses the shared modulation for all tokens;
- the timestep is rounded to bf16 and embedded in fp64, as the release (which samples in bf16) does: the
  weights only saw such timesteps.

ComfyUI's block-replace patches, `rope_options` (ScaleROPE) and attention overrides reach this forward too.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import comfy.ldm.common_dit
import comfy.ldm.flux.math
import comfy.ldm.modules.attention
import comfy.ldm.wan.model
import comfy.model_management as mm
import torch

from ..multiid_core.errors import MultiIDError, non_finite_message
from ..multiid_core.parallel import SequenceShard
from ..multiid_core.reference_attention import AttentionGroups, token_positions
from ..multiid_core.step_cache import TeaCache

REFERENCES = "concat_id_references"  # conditioning key: raw VAE latents [1, 16, R, h, w]
REGIONS = "concat_id_regions"  # conditioning key: token regions [1, R, F, h/2, w/2]
TEACACHE = "multiid_teacache"  # transformer option: the running sample's TeaCache (see wan_model.with_teacache)
SHARD = "multiid_sequence_shard"  # transformer option (multi-GPU ranks): this rank's SequenceShard
_FOREIGN = {
    "time_dim_concat": "WanPhantomSubjectToVideo",
    "clip_fea": "a CLIP vision (image-to-video) node",
    "reference_latent": "a reference-latent node",
}


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return torch.addcmul(shift, x, 1 + scale)


def release_timestep_embedding(dim: int, timestep: torch.Tensor) -> torch.Tensor:
    """[B] -> [B, dim] cos|sin of the bf16-rounded timestep, in fp64 as the release computes it."""
    half = dim // 2
    timestep = timestep.to(torch.bfloat16).to(torch.float64)
    freqs = torch.pow(10000, -torch.arange(half, dtype=torch.float64, device=timestep.device).div(half))
    angles = torch.outer(timestep, freqs)
    return torch.cat([angles.cos(), angles.sin()], dim=1)


@dataclass
class BlockInputs:
    """What each block needs beyond ComfyUI's block arguments: the video/reference split and routing."""

    n_video: int  # tokens before this index are video tokens, the rest reference tokens
    e_ref: torch.Tensor | None  # [B, 6, C] reference-branch modulation (AdaLN release)
    groups: AttentionGroups | None
    shard: SequenceShard | None = None  # multi-GPU: the blocks see this rank's slice of the sequence
    tokens: int = 0  # with a shard: the whole sequence's length


class ConcatIDWanDiT(comfy.ldm.wan.model.WanModel):
    """ComfyUI's WanModel with Concat-ID's appended references; made from a loaded WanModel by `adopt`."""

    adaln_reference: bool

    @classmethod
    def adopt(cls, model: comfy.ldm.wan.model.WanModel, reference_branch: bool) -> ConcatIDWanDiT:
        """Turn ComfyUI's loaded WanModel into this class in place; add the AdaLN branch's (empty) layers."""
        model.__class__ = cls
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

    def _forward(self, x, timestep, context, clip_fea=None, time_dim_concat=None, transformer_options={}, **kwargs):  # noqa: B006 - ComfyUI's signature
        references, regions = kwargs.pop(REFERENCES, None), kwargs.pop(REGIONS, None)
        cache = transformer_options.get(TEACACHE)
        if references is None and transformer_options.get(SHARD) is not None:
            raise MultiIDError(
                "MultiID Multi-GPU runs Concat-ID Wan with its reference frames: sample the latent and conditionings "
                "of a Concat-ID Wan Reference node (a plain Wan prompt runs on one GPU)."
            )
        if references is None and cache is None:
            out = super()._forward(x, timestep, context, clip_fea, time_dim_concat, transformer_options, **kwargs)
        else:
            given = {**kwargs, "clip_fea": clip_fea, "time_dim_concat": time_dim_concat}
            foreign = [name for key, name in _FOREIGN.items() if given.get(key) is not None]
            if foreign and references is not None:
                raise MultiIDError(
                    f"The conditioning was made by {foreign[0]}, which does not fit Concat-ID: give Concat-ID Wan "
                    "Reference plain prompt conditionings (CLIP Text Encode) and sample its outputs."
                )
            branches = transformer_options.get("uuids") or [0]
            out = self.concat_id_forward(x, timestep, context, references, regions, transformer_options, branches)
        if not torch.isfinite(out).all():
            raise MultiIDError(non_finite_message(*_step_of(transformer_options)))
        return out

    def concat_id_forward(
        self,
        x: torch.Tensor,
        timestep: torch.Tensor,
        context: torch.Tensor,
        references: torch.Tensor | None,
        regions: torch.Tensor | None,
        options: dict,
        branches: Sequence[Hashable],
    ) -> torch.Tensor:
        """Predicted flow [B, C, F, H, W] for video latents x with clean `references` [B|1, C, R, H, W] appended.

        `regions` [B, R, F, H/2, W/2] (token grid, > 0.5 = inside) restrict which video tokens attend to which
        reference. The batch holds one equal chunk per guidance branch in `branches` (TeaCache keeps one
        state per branch).
        """
        b, _, frames, height, width = x.shape
        timestep = timestep.to(x.device).reshape(-1).expand(b)
        if regions is not None and b > 1 and not bool((regions == regions[:1]).all()):
            per_branch = b // len(branches)
            return torch.cat(
                [
                    self.concat_id_forward(x[i : i + 1], timestep[i : i + 1], context[i : i + 1],
                                           None if references is None else references[i : i + 1],
                                           regions[i : i + 1], options, [(branches[i // per_branch], i)])
                    for i in range(b)
                ]
            )  # fmt: skip
        x = comfy.ldm.common_dit.pad_to_patch_size(x, self.patch_size)
        n_refs = 0
        if references is not None:
            if references.shape[1] != x.shape[1] or references.shape[-2:] != (height, width):
                raise MultiIDError(
                    f"The reference latents {tuple(references.shape)} do not fit the video latents "
                    f"{(b, x.shape[1], frames, height, width)}: "
                    "use the latent and conditionings of the same Concat-ID Wan Reference node."
                )
            references = comfy.ldm.common_dit.pad_to_patch_size(references.to(x), self.patch_size)
            n_refs = references.shape[2]
            x = torch.cat([x, references.expand(b, -1, -1, -1, -1)], dim=2)
        tokens = self.patch_embedding(x.float()).to(x.dtype)
        grid_h, grid_w = tokens.shape[3:]
        tokens = tokens.flatten(2).transpose(1, 2)
        n_video = frames * grid_h * grid_w

        e = self.time_embedding(release_timestep_embedding(self.freq_dim, timestep).to(tokens.dtype))
        e0 = self.time_projection(e).unflatten(1, (6, self.dim))
        e_ref = self.time_projection_ref(e).unflatten(1, (6, self.dim)) if self.adaln_reference else None
        groups = None
        if regions is not None and n_refs:
            groups = AttentionGroups.for_batch_item(regions[0].to(tokens.device), n_refs, n_video, grid_h * grid_w)
        freqs = self.reference_rope(frames, grid_h, grid_w, n_refs, options, tokens.device)
        context = self.text_embedding(context)
        inputs = BlockInputs(n_video=n_video, e_ref=e_ref, groups=groups)
        shard: SequenceShard | None = options.get(SHARD)
        if shard is not None:
            if options.get(TEACACHE) is not None:
                raise MultiIDError("TeaCache does not run on MultiID Multi-GPU: remove the TeaCache node.")
            total = tokens.shape[1]
            start, stop = shard.bounds(total)
            tokens, freqs = tokens[:, start:stop], freqs[:, start:stop]
            local_video = min(max(n_video - start, 0), stop - start)
            inputs = BlockInputs(local_video, e_ref, groups, shard, total)

        def run_blocks(tokens: torch.Tensor) -> torch.Tensor:
            return self.run_blocks(tokens, e0, freqs, context, inputs, options)

        cache: TeaCache | None = options.get(TEACACHE)
        if cache is None:
            tokens = run_blocks(tokens)
        else:  # the release's indicator: the time embedding before the modulation projection
            cache.step = _step_of(options)[0] - 1
            tokens = cache.run(tokens, e, run_blocks, branches)
        out = self.head(tokens[:, : inputs.n_video], e)
        if shard is not None:
            out = shard.gather(out, 1, shard.sizes_within(inputs.tokens, n_video))
        out = self.unpatchify(out, (frames, grid_h, grid_w))
        return out[:, :, :frames, :height, :width]

    def reference_rope(
        self, frames: int, height: int, width: int, refs: int, options: dict, device: torch.device
    ) -> torch.Tensor:
        """RoPE of video and reference tokens; `rope_options` (ScaleROPE) scale and shift every axis."""
        positions = token_positions(frames, height, width, refs).to(device=device, dtype=torch.float32)
        rope = options.get("rope_options")
        if rope is not None:
            scale = torch.tensor([rope.get(f"scale_{axis}", 1.0) for axis in "tyx"], device=device)
            shift = torch.tensor([rope.get(f"shift_{axis}", 0.0) for axis in "tyx"], device=device)
            positions = positions * scale + shift
        return self.rope_embedder(positions[None]).movedim(1, 2)

    def run_blocks(
        self,
        tokens: torch.Tensor,
        e0: torch.Tensor,
        freqs: torch.Tensor,
        context: torch.Tensor,
        inputs: BlockInputs,
        options: dict,
    ) -> torch.Tensor:
        """The block loop on the joint [video; references] sequence, honouring ComfyUI's block replacements."""
        replace = options.get("patches_replace", {}).get("dit", {})
        for i, block in enumerate(self.blocks):

            def original(args: dict, block=block) -> dict:
                out = self.block_forward(block, args["img"], args["vec"], args["pe"], args["txt"], inputs,
                                         args["transformer_options"])  # fmt: skip
                return {"img": out}

            args = {"img": tokens, "txt": context, "vec": e0, "pe": freqs, "transformer_options": options}
            patch = replace.get(("double_block", i))
            tokens = (patch(args, {"original_block": original}) if patch else original(args))["img"]
        return tokens

    def block_forward(
        self,
        block: comfy.ldm.wan.model.WanAttentionBlock,
        x: torch.Tensor,
        e0: torch.Tensor,
        freqs: torch.Tensor,
        context: torch.Tensor,
        inputs: BlockInputs,
        options: dict,
    ) -> torch.Tensor:
        """One Wan block with Concat-ID's handling of the reference tokens at the end of the sequence."""
        nv = inputs.n_video
        x = x.contiguous()
        mod = (mm.cast_to(block.modulation, dtype=x.dtype, device=x.device) + e0.to(x.dtype)).chunk(6, dim=1)
        if inputs.e_ref is None or x.shape[1] == nv:
            x = torch.addcmul(x, self.self_attention(block, modulate(block.norm1(x), mod[0], mod[1]), freqs,
                                                     inputs, options), mod[2])  # fmt: skip
            x = self.video_cross_attention(block, x, context, nv, options)
            return torch.addcmul(x, block.ffn(modulate(block.norm2(x), mod[3], mod[4])), mod[5])
        ref = (mm.cast_to(block.modulation_ref, dtype=x.dtype, device=x.device) + inputs.e_ref.to(x.dtype)).chunk(6, 1)

        def gated(x: torch.Tensor, y: torch.Tensor, gate: torch.Tensor, gate_ref: torch.Tensor) -> torch.Tensor:
            return torch.cat(
                [torch.addcmul(x[:, :nv], y[:, :nv], gate), torch.addcmul(x[:, nv:], y[:, nv:], gate_ref)], 1
            )

        norm = block.norm1(x)
        h = torch.cat([modulate(norm[:, :nv], mod[0], mod[1]), modulate(norm[:, nv:], ref[0], ref[1])], dim=1)
        x = gated(x, self.self_attention(block, h, freqs, inputs, options), mod[2], ref[2])
        x = self.video_cross_attention(block, x, context, nv, options)
        # The release feeds the reference tokens' FFN with the attention shift/scale of the reference
        # branch (shift_msa_ref, scale_msa_ref), in training and inference; the weights expect it.
        norm = block.norm2(x)
        h = torch.cat([modulate(norm[:, :nv], mod[3], mod[4]), modulate(norm[:, nv:], ref[0], ref[1])], dim=1)
        return gated(x, block.ffn(h), mod[5], ref[5])

    @staticmethod
    def self_attention(
        block: comfy.ldm.wan.model.WanAttentionBlock, h: torch.Tensor, freqs: torch.Tensor, inputs: BlockInputs,
        options: dict,
    ) -> torch.Tensor:  # fmt: skip
        """ComfyUI's self-attention; with regions, one exact attention call per group of allowed keys; with a
        shard, over every rank's tokens (each rank attends with its share of the heads)."""
        attn = block.self_attn
        if inputs.groups is None and inputs.shard is None:
            return attn(h, freqs, transformer_options=options)
        b, s, _ = h.shape
        q = comfy.ldm.flux.math.apply_rope1(attn.norm_q(attn.q(h)).view(b, s, attn.num_heads, -1), freqs)
        k = comfy.ldm.flux.math.apply_rope1(attn.norm_k(attn.k(h)).view(b, s, attn.num_heads, -1), freqs)
        v = attn.v(h).view(b, s, attn.num_heads, -1)
        groups, shard = inputs.groups, inputs.shard

        def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
            return comfy.ldm.modules.attention.optimized_attention(q, k, v, heads, transformer_options=options)

        def kernel(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:  # [B, L, H, D] each
            heads = q.shape[2]
            q, k, v = (x.flatten(2) for x in (q, k, v))
            out = attention(q, k, v, heads) if groups is None else groups.attend(q, k, v, heads, attention)
            return out.unflatten(2, (heads, -1))

        if shard is None:
            return attn.o(kernel(q, k, v).flatten(2))
        if groups is not None and shard.ring > 1:
            raise MultiIDError(
                "Placed references (regions) restrict which tokens attend to which, which ring attention does not "
                "do: use ring degree 1 (Ulysses) with regions."
            )
        out = shard.attend(*(x.transpose(1, 2) for x in (q, k, v)), inputs.tokens, _heads_first(kernel))
        out = out.transpose(1, 2).flatten(2)
        return attn.o(out)

    @staticmethod
    def video_cross_attention(
        block: comfy.ldm.wan.model.WanAttentionBlock, x: torch.Tensor, context: torch.Tensor, nv: int, options: dict
    ) -> torch.Tensor:
        """Text cross-attention on the video tokens only; reference tokens pass unchanged."""
        video = x[:, :nv]
        video = video + block.cross_attn(block.norm3(video), context, context_img_len=None, transformer_options=options)
        return video if nv == x.shape[1] else torch.cat([video, x[:, nv:]], dim=1)


def _heads_first(kernel):
    """A [B, L, H, D] attention kernel as one on [B, H, L, D] (the layout sequence-parallel attention uses)."""

    def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return kernel(*(x.transpose(1, 2) for x in (q, k, v))).transpose(1, 2)

    return attend


def _step_of(transformer_options: dict) -> tuple[int, int]:
    """(step, steps) of the sampler's schedule this call belongs to (calls between two sigmas: the later)."""
    schedule, sigma = transformer_options.get("sample_sigmas"), transformer_options.get("sigmas")
    if schedule is None or sigma is None:
        return 1, 1
    return int((schedule[:-1] > sigma.max().to(schedule)).sum()) + 1, len(schedule) - 1
