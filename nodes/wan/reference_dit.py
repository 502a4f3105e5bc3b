"""The base of every Wan method that appends reference tokens to the video's self-attention sequence.

ComfyUI's own Wan variants (`VaceWanModel`, `CameraWanModel`, `HumoWanModel` in comfy/ldm/wan/model.py) are
subclasses of `WanModel` with a narrow override; so are the pack's. `WanReferenceDiT` is ComfyUI's WanModel,
whose forward is WanModel's own until a call brings reference latents (or TeaCache, or a multi-GPU shard).
Then `reference_forward` runs: the video and the reference frames patch-embedded into one sequence
[video; references], each token at its RoPE position, ComfyUI's blocks (and block-replace patches) over it,
the reference tokens dropped before the head. A method says what it does differently by overriding:

- `reference_positions`: where the reference tokens sit in RoPE (default: the frames after the video's);
- `embed_time` / `reference_time`: the timestep embedding, and the reference tokens' own modulation input;
- `reference_block_modulation` / `reference_ffn_shift_scale`: which table and which rows modulate them;
- `reference_sees_text`: whether the reference tokens take the text cross-attention (default: no);
- `attention_groups`: who may attend to whom (default: placed people, from regions);
- `check_call`: what the method refuses.

Placed people (regions), TeaCache and multi-GPU sharding are here once, for every method.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import comfy.ldm.common_dit
import comfy.ldm.flux.math
import comfy.ldm.modules.attention
import comfy.ldm.wan.model
import comfy.model_management as mm
import torch

from ...multiid_core.errors import MultiIDError, non_finite_message
from ...multiid_core.families import Loader
from ...multiid_core.parallel import SequenceShard
from ...multiid_core.wan.reference_tokens import AttentionGroups, frames_after_video
from ..options import SHARD, TEACACHE, step_of
from ..teacache import TeaCacheFit

# Inputs of ComfyUI's other Wan variants, which the reference forward does not take; each named by its maker.
FOREIGN_INPUTS = {
    "time_dim_concat": "WanPhantomSubjectToVideo",
    "clip_fea": "a CLIP vision (image-to-video) node",
    "reference_latent": "a reference-latent node",
    "context_latents": "an in-context reference node",
}


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return torch.addcmul(shift, x, 1 + scale)


@dataclass
class ReferenceStream:
    """The reference tokens' keys and values in every block, kept for the rest of a sampling run: a method whose
    reference tokens attend only to references, at a fixed timestep, gets the same ones at every call, so only the
    first call of a run carries the reference tokens (as Stand-In's authors cache them)."""

    keys: dict[int, torch.Tensor] = field(default_factory=dict)  # block -> [1, reference tokens, heads, head dim]
    values: dict[int, torch.Tensor] = field(default_factory=dict)
    complete: bool = False  # every block has its entry


@dataclass
class BlockInputs:
    """What each block needs beyond ComfyUI's block arguments: the video/reference split and routing."""

    n_video: int  # tokens before this index are video tokens, the rest reference tokens
    e_ref: torch.Tensor | None  # [B, 6, C] the reference tokens' modulation input (None: the video's)
    groups: AttentionGroups | None
    stream: ReferenceStream | None = None  # kept reference keys/values: filled (tokens in sequence) or read
    shard: SequenceShard | None = None  # multi-GPU: the blocks see this rank's slice of the sequence
    tokens: int = 0  # with a shard: the whole sequence's length


class WanReferenceDiT(comfy.ldm.wan.model.WanModel):
    """ComfyUI's WanModel with reference tokens appended to self-attention; made from a loaded WanModel by
    `adopt` (a subclass may add its layers there)."""

    family_tag: ClassVar[str]  # on the method's latents and conditionings (family_tags)
    loader: ClassVar[Loader]  # the node that makes the method's MODEL
    method: ClassVar[str]  # the method's name in messages ("Concat-ID-Wan")
    reference_node: ClassVar[str]  # the node whose conditioning carries this method's references
    references_key: ClassVar[str]  # conditioning key: raw VAE latents [1, 16, R, h, w]
    regions_key: ClassVar[str]  # conditioning key: token regions [1, R, F, h/2, w/2]
    reference_sees_text: ClassVar[bool] = False
    reference_projections: ClassVar[bool] = False  # whether `qkv` treats reference tokens apart (then attention is
    # always computed here, not by ComfyUI's WanSelfAttention)
    teacache: ClassVar[TeaCacheFit | None] = None
    multi_gpu: ClassVar[bool] = True
    rank_options: ClassVar[tuple[str, ...]] = ()  # transformer options the multi-GPU ranks need (the method's)

    @classmethod
    def adopt(cls, model: comfy.ldm.wan.model.WanModel) -> WanReferenceDiT:
        """Turn ComfyUI's loaded WanModel into this class in place (no state is added here)."""
        model.__class__ = cls
        return model

    @property
    def attention_heads(self) -> int:
        return self.num_heads

    def video_tokens(self, x: torch.Tensor) -> int:
        """Tokens of video latents [B, C, F, H, W] (2x2 patches)."""
        return x.shape[2] * -(-x.shape[3] // self.patch_size[1]) * -(-x.shape[4] // self.patch_size[2])

    def routing_condition(self, kwargs: dict) -> None:
        """No identity routing here (the regions are fixed): nothing to record."""
        return None

    # -------------------------------------------------------------------------------- what a method overrides

    def call_references(
        self, x: torch.Tensor, kwargs: dict, options: dict
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(reference latents, regions) of a call on latents x: by default from the conditioning (taken out of
        `kwargs`, which holds the call's conditioning inputs, `time_dim_concat` included)."""
        return kwargs.pop(self.references_key, None), kwargs.pop(self.regions_key, None)

    def check_call(self, references: torch.Tensor | None, options: dict) -> None:  # noqa: B027 - optional hook
        """Refuse a call this method cannot answer exactly (nothing by default)."""

    def embed_time(self, timestep: torch.Tensor) -> torch.Tensor:
        """[B] -> [B, freq_dim] sinusoid, as WanModel.forward_orig makes it (ComfyUI 0.3.75)."""
        return comfy.ldm.wan.model.sinusoidal_embedding_1d(self.freq_dim, timestep)

    def reference_time(self, e: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor | None:
        """[B, 6, C] modulation input of the reference tokens; None: the video's (`e` is the time embedding)."""
        return None

    def reference_block_modulation(self, block: comfy.ldm.wan.model.WanAttentionBlock) -> torch.nn.Parameter:
        """The table added to `reference_time` in each block."""
        return block.modulation

    def reference_ffn_shift_scale(self, ref: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Shift and scale of the reference tokens' feed-forward input, from their six modulation rows."""
        return ref[3], ref[4]

    def reference_positions(self, video: tuple[int, int, int], references: tuple[int, int, int]) -> torch.Tensor:
        """[video tokens + reference tokens, 3] (t, h, w) RoPE indices of the joint sequence, from the token grids
        (frames, height, width) of the video and of the references (count, height, width). By default reference
        k is frame F + k, which needs references of the video's size."""
        frames, height, width = video
        refs, ref_height, ref_width = references
        if refs and (ref_height, ref_width) != (height, width):
            raise MultiIDError(
                f"{self.method} takes reference frames of the video's size ({height * 16}x{width * 16} pixels here, "
                f"not {ref_height * 16}x{ref_width * 16}): use the latent and conditionings of the same "
                f"{self.reference_node}."
            )
        return frames_after_video(frames, height, width, refs)

    def reference_stream(
        self, references: torch.Tensor, grid: tuple[int, int], options: dict
    ) -> ReferenceStream | None:
        """Kept reference keys/values for this call (None: the reference tokens run in every call, the default).
        `grid`: the video's token rows and columns, which the references' positions may depend on."""
        return None

    def qkv(
        self, block: comfy.ldm.wan.model.WanAttentionBlock, index: int, h: torch.Tensor, n_video: int, options: dict
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised queries and keys, and values [B, L, C] of block `index` (WanSelfAttention's projections)."""
        attn = block.self_attn
        return attn.norm_q(attn.q(h)), attn.norm_k(attn.k(h)), attn.v(h)

    def attention_groups(
        self, regions: torch.Tensor | None, refs: int, n_video: int, ref_tokens: int, options: dict
    ) -> AttentionGroups | None:
        """Who attends to whom, as AttentionGroups (None: everyone to everyone). Default: placed people,
        from `regions` [R, F, h, w] (> 0.5 = inside)."""
        if regions is None or not refs:
            return None
        return AttentionGroups.for_batch_item(regions, refs, n_video, ref_tokens)

    # -------------------------------------------------------------------------------------------- the forward

    def _forward(self, x, timestep, context, clip_fea=None, time_dim_concat=None, transformer_options={}, **kwargs):  # noqa: B006 - ComfyUI's signature
        kwargs["time_dim_concat"] = time_dim_concat  # a method may take it as its references (Phantom's frames)
        references, regions = self.call_references(x, kwargs, transformer_options)
        time_dim_concat = kwargs.pop("time_dim_concat")
        self.check_call(references, transformer_options)
        cache, shard = transformer_options.get(TEACACHE), transformer_options.get(SHARD)
        if references is None and cache is None and shard is None:
            out = super()._forward(x, timestep, context, clip_fea, time_dim_concat, transformer_options, **kwargs)
        else:
            given = {**kwargs, "clip_fea": clip_fea, "time_dim_concat": time_dim_concat}
            foreign = [name for key, name in FOREIGN_INPUTS.items() if given.get(key) is not None]
            if foreign:
                raise MultiIDError(
                    f"The conditioning was made by {foreign[0]}, which does not fit {self.method}: give "
                    f"{self.reference_node} plain prompt conditionings (CLIP Text Encode) and sample its outputs."
                )
            branches = transformer_options.get("uuids") or [0]
            out = self.reference_forward(x, timestep, context, references, regions, transformer_options, branches)
        if not torch.isfinite(out).all():
            raise MultiIDError(non_finite_message(*step_of(transformer_options)))
        return out

    # Mirrors comfy.ldm.wan.model.WanModel.forward_orig (ComfyUI 0.3.75).
    def reference_forward(
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

        `regions` [B, R, F, H/2, W/2] (token grid) restrict which video tokens attend to which reference
        (`attention_groups`). The batch holds one equal chunk per guidance branch in `branches` (TeaCache keeps
        one state per branch).
        """
        b, _, frames, height, width = x.shape
        timestep = timestep.to(x.device).reshape(-1).expand(b)
        if regions is not None and b > 1 and not bool((regions == regions[:1]).all()):
            per_branch = b // len(branches)
            return torch.cat(
                [
                    self.reference_forward(x[i : i + 1], timestep[i : i + 1], context[i : i + 1],
                                           None if references is None else references[i : i + 1],
                                           regions[i : i + 1], options, [(branches[i // per_branch], i)])
                    for i in range(b)
                ]
            )  # fmt: skip
        x = comfy.ldm.common_dit.pad_to_patch_size(x, self.patch_size)
        tokens = self.patch_embedding(x.float()).to(x.dtype)
        grid_h, grid_w = tokens.shape[3:]
        if regions is not None and tuple(regions.shape[2:]) != (frames, grid_h, grid_w):
            placed, here = (
                f"{4 * (f - 1) + 1} frames at {16 * w}x{16 * h} pixels"
                for f, h, w in (regions.shape[2:], (frames, grid_h, grid_w))
            )
            raise MultiIDError(
                f"The people were placed for a video of {placed}, but the latent sampled here is {here}: sample the "
                f"latent of the same {self.reference_node} node (or give that node this latent's size)."
            )
        tokens = tokens.flatten(2).transpose(1, 2)
        n_video = frames * grid_h * grid_w
        n_refs, ref_grid, stream = 0, (grid_h, grid_w), None
        if references is not None:
            if references.shape[1] != x.shape[1]:
                raise MultiIDError(
                    f"The reference latents {tuple(references.shape)} do not fit the video latents "
                    f"{(b, x.shape[1], frames, height, width)}: use the latent and conditionings of the same "
                    f"{self.reference_node} node."
                )
            n_refs = references.shape[2]
            ref_grid = tuple(-(-side // patch) for side, patch in zip(references.shape[3:], self.patch_size[1:]))
            stream = self.reference_stream(references, (grid_h, grid_w), options)
            if stream is None or not stream.complete:
                references = comfy.ldm.common_dit.pad_to_patch_size(references.to(x), self.patch_size)
                embedded = self.patch_embedding(references.float()).to(x.dtype).flatten(2).transpose(1, 2)
                tokens = torch.cat([tokens, embedded.expand(b, -1, -1)], dim=1)
        in_sequence = n_refs if tokens.shape[1] > n_video else 0

        e = self.time_embedding(self.embed_time(timestep).to(tokens.dtype))
        e0 = self.time_projection(e).unflatten(1, (6, self.dim))
        e_ref = self.reference_time(e, timestep) if in_sequence else None
        ref_regions = None if regions is None else regions[0].to(tokens.device)
        groups = self.attention_groups(ref_regions, n_refs, n_video, ref_grid[0] * ref_grid[1], options)
        freqs = self.rope((frames, grid_h, grid_w), (in_sequence, *ref_grid), options, tokens.device)
        context = self.text_embedding(context)
        inputs = BlockInputs(n_video=n_video, e_ref=e_ref, groups=groups, stream=stream)
        shard: SequenceShard | None = options.get(SHARD)
        cache = options.get(TEACACHE)
        if shard is not None:
            if cache is not None:
                raise MultiIDError("TeaCache does not run on MultiID Multi-GPU: remove the TeaCache node.")
            if stream is not None:
                raise MultiIDError(
                    f"{self.method} does not run on MultiID Multi-GPU yet: sample this MODEL on one GPU (connect it "
                    "to the sampler without the MultiID Multi-GPU node)."
                )
            total = tokens.shape[1]
            start, stop = shard.bounds(total)
            tokens, freqs = tokens[:, start:stop], freqs[:, start:stop]
            local_video = min(max(n_video - start, 0), stop - start)
            inputs = BlockInputs(local_video, e_ref, groups, shard=shard, tokens=total)

        def run_blocks(tokens: torch.Tensor) -> torch.Tensor:
            return self.run_blocks(tokens, e0, freqs, context, inputs, options)

        if cache is None:
            tokens = run_blocks(tokens)
        else:  # TeaCache4Wan2.1's indicator: the time embedding before the modulation projection
            cache.step = step_of(options)[0] - 1
            tokens = cache.run(tokens, e, run_blocks, branches)
        if stream is not None:
            stream.complete = True
        out = self.head(tokens[:, : inputs.n_video], e)
        if shard is not None:
            out = shard.gather(out, 1, shard.sizes_within(inputs.tokens, n_video))
        out = self.unpatchify(out, (frames, grid_h, grid_w))
        return out[:, :, :frames, :height, :width]

    def rope(
        self, video: tuple[int, int, int], references: tuple[int, int, int], options: dict, device: torch.device
    ) -> torch.Tensor:
        """RoPE of video and reference tokens; `rope_options` (ScaleROPE) scale and shift every axis."""
        positions = self.reference_positions(video, references).to(device=device, dtype=torch.float32)
        rope = options.get("rope_options")
        if rope is not None:
            scale = torch.tensor([rope.get(f"scale_{axis}", 1.0) for axis in "tyx"], device=device)
            shift = torch.tensor([rope.get(f"shift_{axis}", 0.0) for axis in "tyx"], device=device)
            positions = positions * scale + shift
        return self.rope_embedder(positions[None]).movedim(1, 2)

    # Mirrors comfy.ldm.wan.model.WanModel.forward_orig (ComfyUI 0.3.75).
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

            def original(args: dict, block=block, index=i) -> dict:
                out = self.block_forward(block, index, args["img"], args["vec"], args["pe"], args["txt"], inputs,
                                         args["transformer_options"])  # fmt: skip
                return {"img": out}

            args = {"img": tokens, "txt": context, "vec": e0, "pe": freqs, "transformer_options": options}
            patch = replace.get(("double_block", i))
            tokens = (patch(args, {"original_block": original}) if patch else original(args))["img"]
        return tokens

    # Mirrors comfy.ldm.wan.model.WanAttentionBlock.forward (ComfyUI 0.3.75).
    def block_forward(
        self,
        block: comfy.ldm.wan.model.WanAttentionBlock,
        index: int,
        x: torch.Tensor,
        e0: torch.Tensor,
        freqs: torch.Tensor,
        context: torch.Tensor,
        inputs: BlockInputs,
        options: dict,
    ) -> torch.Tensor:
        """One Wan block over the joint sequence, the reference tokens at its end modulated by their own table when
        the method has one."""
        nv = inputs.n_video
        x = x.contiguous()
        mod = (mm.cast_to(block.modulation, dtype=x.dtype, device=x.device) + e0.to(x.dtype)).chunk(6, dim=1)
        if inputs.e_ref is None or x.shape[1] == nv:
            x = torch.addcmul(x, self.self_attention(block, index, modulate(block.norm1(x), mod[0], mod[1]),
                                                     freqs, inputs, options), mod[2])  # fmt: skip
            x = self.cross_attention(block, x, context, nv, options)
            return torch.addcmul(x, block.ffn(modulate(block.norm2(x), mod[3], mod[4])), mod[5])
        table = self.reference_block_modulation(block)
        ref = (mm.cast_to(table, dtype=x.dtype, device=x.device) + inputs.e_ref.to(x.dtype)).chunk(6, dim=1)

        def gated(x: torch.Tensor, y: torch.Tensor, gate: torch.Tensor, gate_ref: torch.Tensor) -> torch.Tensor:
            return torch.cat(
                [torch.addcmul(x[:, :nv], y[:, :nv], gate), torch.addcmul(x[:, nv:], y[:, nv:], gate_ref)], 1
            )

        norm = block.norm1(x)
        h = torch.cat([modulate(norm[:, :nv], mod[0], mod[1]), modulate(norm[:, nv:], ref[0], ref[1])], dim=1)
        x = gated(x, self.self_attention(block, index, h, freqs, inputs, options), mod[2], ref[2])
        x = self.cross_attention(block, x, context, nv, options)
        norm = block.norm2(x)
        h = torch.cat(
            [modulate(norm[:, :nv], mod[3], mod[4]), modulate(norm[:, nv:], *self.reference_ffn_shift_scale(ref))], 1
        )
        return gated(x, block.ffn(h), mod[5], ref[5])

    # Mirrors comfy.ldm.wan.model.WanSelfAttention.forward (ComfyUI 0.3.75).
    def self_attention(
        self, block: comfy.ldm.wan.model.WanAttentionBlock, index: int, h: torch.Tensor, freqs: torch.Tensor,
        inputs: BlockInputs, options: dict,
    ) -> torch.Tensor:  # fmt: skip
        """ComfyUI's self-attention; with groups, one exact attention call per group of allowed keys; with kept
        reference keys/values, those appended to the video's; with a shard, over every rank's tokens (each rank
        attends with its share of the heads)."""
        attn = block.self_attn
        b, s, _ = h.shape
        in_sequence = s > inputs.n_video
        plain = inputs.groups is None and inputs.shard is None and inputs.stream is None
        if plain and not (self.reference_projections and in_sequence):
            return attn(h, freqs, transformer_options=options)
        q, k, v = self.qkv(block, index, h, inputs.n_video, options)
        q = comfy.ldm.flux.math.apply_rope1(q.view(b, s, attn.num_heads, -1), freqs)
        k = comfy.ldm.flux.math.apply_rope1(k.view(b, s, attn.num_heads, -1), freqs)
        v = v.view(b, s, attn.num_heads, -1)
        groups, shard, stream = inputs.groups, inputs.shard, inputs.stream
        if stream is not None and in_sequence:
            nv = inputs.n_video
            stream.keys[index], stream.values[index] = k[:1, nv:].detach(), v[:1, nv:].detach()
        elif stream is not None:
            k = torch.cat([k, stream.keys[index].to(k).expand(b, -1, -1, -1)], dim=1)
            v = torch.cat([v, stream.values[index].to(v).expand(b, -1, -1, -1)], dim=1)
            groups = None if groups is None else groups.video_queries(inputs.n_video)

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
                f"{self.method} here restricts which tokens attend to which (people placed by masks, or reference "
                "tokens that attend only to themselves), which ring attention does not do: use ring degree 1 "
                "(Ulysses and guidance parallel)."
            )
        out = shard.attend(*(x.transpose(1, 2) for x in (q, k, v)), inputs.tokens, _heads_first(kernel))
        return attn.o(out.transpose(1, 2).flatten(2))

    # Mirrors comfy.ldm.wan.model.WanAttentionBlock.forward (ComfyUI 0.3.75).
    def cross_attention(
        self, block: comfy.ldm.wan.model.WanAttentionBlock, x: torch.Tensor, context: torch.Tensor, nv: int,
        options: dict,
    ) -> torch.Tensor:  # fmt: skip
        """Text cross-attention on the video tokens, and on the reference tokens when the method lets them see
        the text; otherwise they pass unchanged."""
        if self.reference_sees_text or nv == x.shape[1]:
            return x + block.cross_attn(block.norm3(x), context, context_img_len=None, transformer_options=options)
        video = x[:, :nv]
        video = video + block.cross_attn(block.norm3(video), context, context_img_len=None, transformer_options=options)
        return torch.cat([video, x[:, nv:]], dim=1)


def _heads_first(kernel):
    """A [B, L, H, D] attention kernel as one on [B, H, L, D] (the layout sequence-parallel attention uses)."""

    def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return kernel(*(x.transpose(1, 2) for x in (q, k, v))).transpose(1, 2)

    return attend
