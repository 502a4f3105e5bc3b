"""Wan2.1 text-to-video DiT with Concat-ID's appended reference frames (first stage and AdaLN).

State dicts are the original Wan2.1 layout that Concat-ID-Wan's `first_stage.pt` and
`second_stage_adaln.pt` use (`blocks.N.self_attn.q.weight`, `time_projection.1.weight`, `head.head.weight`,
...); the AdaLN release adds `time_projection_ref.1.*` and `blocks.N.modulation_ref`. Without references
the forward is plain Wan2.1 (ComfyUI's WanModel gives the same tensors). With references, as released
(ML-GSAI/Concat-ID `pipelines/wan_video.py`, `inference_wan.py`, `train_concat-id_wan2.1.py`):

- each clean reference latent is appended after the video's latent frames and every token shares the
  timestep; the prediction of the reference slots is dropped before it leaves `forward`;
- RoPE: video token (t, i, j) as in Wan; reference k sits at temporal index F + k with width indices
  shifted by one frame width (i, j + w), as if placed to the right of the frame;
- reference tokens skip the text cross-attention (self-attention and feed-forward see every token);
- AdaLN variant: reference tokens are modulated by `time_projection_ref` + `modulation_ref`, and, as in
  the release (training and inference), their feed-forward input uses the *attention* shift/scale of
  that branch; the head uses the shared modulation for all tokens.

Beyond the release: several references (experimental; the weights saw one) and regional reference
attention (`AttentionGroups`): video tokens attend only to the references whose region contains them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..step_cache import TeaCache

# attention(q, k, v, heads) on [B, L, heads * head_dim] tensors -> [B, Lq, heads * head_dim]
Attention = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int], torch.Tensor]
Rope = tuple[torch.Tensor, torch.Tensor]

HEAD_DIM = 128  # every Wan2.1 DiT (1.3B: 1536 / 12, 14B: 5120 / 40); heads are not in the tensors
ROPE_THETA = 10000.0
ADALN_KEY = "time_projection_ref.1.weight"


def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Plain scaled dot-product attention; ComfyUI passes its optimized_attention instead."""
    b, lq, c = q.shape
    q, k, v = (t.view(b, t.shape[1], heads, c // heads).transpose(1, 2) for t in (q, k, v))
    return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, lq, c)


@dataclass(frozen=True)
class WanConfig:
    """Sizes of a Wan2.1 T2V DiT (defaults: Wan2.1-T2V-1.3B) and whether it has Concat-ID's AdaLN branch."""

    dim: int = 1536
    ffn_dim: int = 8960
    num_heads: int = 12
    num_layers: int = 30
    in_dim: int = 16
    out_dim: int = 16
    text_dim: int = 4096
    freq_dim: int = 256
    eps: float = 1e-6
    patch_size: tuple[int, int, int] = (1, 2, 2)
    adaln_reference: bool = False

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, torch.Tensor]) -> WanConfig:
        """Sizes read off the tensors (heads: dim / 128, as for every Wan2.1 model)."""
        dim, in_dim, *patch = sd["patch_embedding.weight"].shape
        layers = {int(k.split(".")[1]) for k in sd if k.startswith("blocks.") and k.endswith(".self_attn.q.weight")}
        return cls(
            dim=dim,
            ffn_dim=sd["blocks.0.ffn.0.weight"].shape[0],
            num_heads=max(1, dim // HEAD_DIM),
            num_layers=max(layers) + 1,
            in_dim=in_dim,
            out_dim=sd["head.head.weight"].shape[0] // math.prod(patch),
            text_dim=sd["text_embedding.0.weight"].shape[1],
            freq_dim=sd["time_embedding.0.weight"].shape[1],
            patch_size=tuple(patch),
            adaln_reference=ADALN_KEY in sd,
        )

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads


# ---------------------------------------------------------------------------------------------- positions


def token_positions(frames: int, height: int, width: int, references: int = 0) -> torch.Tensor:
    """[(frames + references) * height * width, 3] (t, h, w) RoPE indices of the token grid.

    Video tokens: (t, i, j). Reference k (Concat-ID-Wan's `freqs_ref`): (frames + k, i, j + width).
    """
    t = torch.arange(frames + references)
    grid = torch.stack(torch.meshgrid(t, torch.arange(height), torch.arange(width), indexing="ij"), dim=-1)
    grid[frames:, :, :, 2] += width
    return grid.reshape(-1, 3)


def rope_axes(head_dim: int) -> tuple[int, int, int]:
    """Channels per axis (t, h, w): Wan's split, 44/42/42 of 128."""
    spatial = 2 * (head_dim // 6)
    return head_dim - 2 * spatial, spatial, spatial


def rope_tables(positions: torch.Tensor, head_dim: int, device: torch.device | None = None) -> Rope:
    """(cos, sin), each [N, head_dim / 2] fp32, for integer positions [N, 3]; angles in fp64 as Wan does."""
    parts = []
    for axis, channels in enumerate(rope_axes(head_dim)):
        omega = ROPE_THETA ** -(torch.arange(0, channels, 2, dtype=torch.float64, device=device) / channels)
        parts.append(positions[:, axis].to(device=device, dtype=torch.float64)[:, None] * omega[None])
    angles = torch.cat(parts, dim=1)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, rope: Rope) -> torch.Tensor:
    """Rotate channel pairs (2i, 2i+1) of x [B, N, heads, head_dim] by (cos, sin) [N, head_dim / 2], in fp32."""
    cos, sin = (t[:, None] for t in rope)
    pairs = x.float().unflatten(-1, (-1, 2))
    real, imag = pairs[..., 0], pairs[..., 1]
    out = torch.stack((real * cos - imag * sin, real * sin + imag * cos), dim=-1)
    return out.flatten(-2).to(x.dtype)


# ------------------------------------------------------------------------------------------ regional attention


@dataclass
class AttentionGroups:
    """Self-attention split by which references a token may see: (query indices, key indices) per group.

    Every token sees every video token. A video token sees reference k's tokens only inside region k;
    reference k's tokens see their own reference and the video tokens of region k (the mask is
    symmetric, so no identity leaks through another's tokens). One attention call per group, exact.
    """

    groups: list[tuple[torch.Tensor, torch.Tensor]]

    @classmethod
    def from_regions(cls, regions: torch.Tensor, ref_tokens: int) -> AttentionGroups:
        """`regions`: bool [R, N_video] (token k may see reference k); references follow the video tokens."""
        refs, n_video = regions.shape
        device = regions.device
        video = torch.arange(n_video, device=device)
        ref_index = [n_video + k * ref_tokens + torch.arange(ref_tokens, device=device) for k in range(refs)]
        codes = (regions.long() << torch.arange(refs, device=device)[:, None]).sum(0)
        groups = []
        for code in torch.unique(codes).tolist():
            keys = [video] + [ref_index[k] for k in range(refs) if code >> k & 1]
            groups.append((torch.nonzero(codes == code)[:, 0], torch.cat(keys)))
        for k in range(refs):
            groups.append((ref_index[k], torch.cat([torch.nonzero(regions[k])[:, 0], ref_index[k]])))
        return cls(groups)

    def allowed(self, n: int) -> torch.Tensor:
        """The dense [N, N] bool mask these groups implement (for checks)."""
        mask = torch.zeros(n, n, dtype=torch.bool)
        for queries, keys in self.groups:
            mask[queries.cpu()[:, None], keys.cpu()[None]] = True
        return mask

    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, attention: Attention
    ) -> torch.Tensor:
        out = torch.empty_like(q)
        for queries, keys in self.groups:
            out[:, queries] = attention(q[:, queries], k[:, keys], v[:, keys], heads)
        return out


# ---------------------------------------------------------------------------------------------------- modules


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return torch.addcmul(shift, x, 1 + scale)


def sinusoidal(dim: int, timestep: torch.Tensor) -> torch.Tensor:
    """[B] -> [B, dim] cos|sin features, computed in fp64 as the release does."""
    half = dim // 2
    freqs = torch.pow(10000, -torch.arange(half, dtype=torch.float64, device=timestep.device).div(half))
    angles = torch.outer(timestep.to(torch.float64), freqs)
    return torch.cat([angles.cos(), angles.sin()], dim=1)


class _Attention(nn.Module):
    """Wan's attention (q, k, v, o; RMSNorm on q and k over all heads); self-attention applies RoPE."""

    def __init__(self, config: WanConfig, operations: Any, factory: dict[str, Any]) -> None:
        super().__init__()
        dim = config.dim
        self.heads = config.num_heads
        self.q = operations.Linear(dim, dim, **factory)
        self.k = operations.Linear(dim, dim, **factory)
        self.v = operations.Linear(dim, dim, **factory)
        self.o = operations.Linear(dim, dim, **factory)
        self.norm_q = operations.RMSNorm(dim, eps=config.eps, elementwise_affine=True, **factory)
        self.norm_k = operations.RMSNorm(dim, eps=config.eps, elementwise_affine=True, **factory)

    def self_attention(
        self, x: torch.Tensor, rope: Rope, attention: Attention, groups: AttentionGroups | None
    ) -> torch.Tensor:
        b, n, c = x.shape
        q = apply_rope(self.norm_q(self.q(x)).view(b, n, self.heads, -1), rope).view(b, n, c)
        k = apply_rope(self.norm_k(self.k(x)).view(b, n, self.heads, -1), rope).view(b, n, c)
        v = self.v(x)
        out = attention(q, k, v, self.heads) if groups is None else groups.attend(q, k, v, self.heads, attention)
        return self.o(out)

    def cross_attention(self, x: torch.Tensor, context: torch.Tensor, attention: Attention) -> torch.Tensor:
        q = self.norm_q(self.q(x))
        k = self.norm_k(self.k(context))
        return self.o(attention(q, k, self.v(context), self.heads))


@dataclass
class BlockInputs:
    """What every block reads: modulations, text, RoPE, the video/reference split, attention routing."""

    e: torch.Tensor  # [B, 6, C] timestep modulation (video tokens; all tokens in the first-stage model)
    e_ref: torch.Tensor | None  # [B, 6, C] reference-branch modulation (AdaLN model)
    context: torch.Tensor  # [B, L, C] embedded text
    rope: Rope
    n_video: int  # tokens before this index are video tokens, the rest reference tokens
    attention: Attention
    groups: AttentionGroups | None


class WanBlock(nn.Module):
    """One Wan2.1 block with Concat-ID's handling of the reference tokens at the end of the sequence."""

    def __init__(self, config: WanConfig, operations: Any, factory: dict[str, Any]) -> None:
        super().__init__()
        dim = config.dim
        self.norm1 = operations.LayerNorm(dim, eps=config.eps, elementwise_affine=False, **factory)
        self.self_attn = _Attention(config, operations, factory)
        self.norm3 = operations.LayerNorm(dim, eps=config.eps, elementwise_affine=True, **factory)
        self.cross_attn = _Attention(config, operations, factory)
        self.norm2 = operations.LayerNorm(dim, eps=config.eps, elementwise_affine=False, **factory)
        self.ffn = nn.Sequential(
            operations.Linear(dim, config.ffn_dim, **factory),
            nn.GELU(approximate="tanh"),
            operations.Linear(config.ffn_dim, dim, **factory),
        )
        self.modulation = nn.Parameter(torch.empty(1, 6, dim, **factory))
        if config.adaln_reference:
            self.modulation_ref = nn.Parameter(torch.empty(1, 6, dim, **factory))

    @staticmethod
    def _split(
        modulation: nn.Parameter, e: torch.Tensor, like: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:  # six [B, 1, C]
        return (modulation.to(dtype=like.dtype, device=like.device) + e.to(like.dtype)).chunk(6, dim=1)

    def forward(self, x: torch.Tensor, inputs: BlockInputs) -> torch.Tensor:
        nv = inputs.n_video
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self._split(self.modulation, inputs.e, x)
        has_refs = x.shape[1] > nv
        if inputs.e_ref is not None and has_refs:
            shift_ref, scale_ref, gate_msa_ref, _, _, gate_mlp_ref = self._split(self.modulation_ref, inputs.e_ref, x)

            def gated(x: torch.Tensor, y: torch.Tensor, gate: torch.Tensor, gate_ref: torch.Tensor) -> torch.Tensor:
                return torch.cat(
                    [torch.addcmul(x[:, :nv], y[:, :nv], gate), torch.addcmul(x[:, nv:], y[:, nv:], gate_ref)], 1
                )

            h = self.norm1(x)
            h = torch.cat([modulate(h[:, :nv], shift_msa, scale_msa), modulate(h[:, nv:], shift_ref, scale_ref)], 1)
            x = gated(
                x,
                self.self_attn.self_attention(h, inputs.rope, inputs.attention, inputs.groups),
                gate_msa,
                gate_msa_ref,
            )
            x = self._cross(x, inputs)
            h = self.norm2(x)
            # The release feeds the reference tokens' FFN with the attention shift/scale of the reference
            # branch (shift_msa_ref, scale_msa_ref), in training and inference; the weights expect it.
            h = torch.cat([modulate(h[:, :nv], shift_mlp, scale_mlp), modulate(h[:, nv:], shift_ref, scale_ref)], 1)
            return gated(x, self.ffn(h), gate_mlp, gate_mlp_ref)
        y = self.self_attn.self_attention(
            modulate(self.norm1(x), shift_msa, scale_msa), inputs.rope, inputs.attention, inputs.groups
        )
        x = torch.addcmul(x, y, gate_msa)
        x = self._cross(x, inputs)
        return torch.addcmul(x, self.ffn(modulate(self.norm2(x), shift_mlp, scale_mlp)), gate_mlp)

    def _cross(self, x: torch.Tensor, inputs: BlockInputs) -> torch.Tensor:
        """Text cross-attention on the video tokens only; reference tokens pass unchanged."""
        nv = inputs.n_video
        video = x[:, :nv]
        video = video + self.cross_attn.cross_attention(self.norm3(video), inputs.context, inputs.attention)
        return video if nv == x.shape[1] else torch.cat([video, x[:, nv:]], dim=1)


class _Head(nn.Module):
    def __init__(self, config: WanConfig, operations: Any, factory: dict[str, Any]) -> None:
        super().__init__()
        dim = config.dim
        self.norm = operations.LayerNorm(dim, eps=config.eps, elementwise_affine=False, **factory)
        self.head = operations.Linear(dim, config.out_dim * math.prod(config.patch_size), **factory)
        self.modulation = nn.Parameter(torch.empty(1, 2, dim, **factory))

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        shift, scale = (self.modulation.to(dtype=x.dtype, device=x.device) + e[:, None].to(x.dtype)).chunk(2, dim=1)
        return self.head(modulate(self.norm(x), shift, scale))


class ConcatIDWan(nn.Module):
    """Wan2.1 T2V DiT; `forward` appends clean reference latents as Concat-ID-Wan does."""

    def __init__(
        self,
        config: WanConfig,
        operations: Any = nn,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        round_timestep_to_bf16: bool = True,
    ) -> None:
        super().__init__()
        if config.patch_size[0] != 1:
            raise ValueError(f"Wan2.1 patches one latent frame at a time; got patch size {config.patch_size}")
        self.config = config
        # The release trains and samples in bf16 and casts the timestep to bf16 before embedding it
        # (980.24 becomes 980); the weights only saw such timesteps, so we embed the same values.
        self.round_timestep_to_bf16 = round_timestep_to_bf16
        factory = {"dtype": dtype, "device": device}
        dim = config.dim
        self.patch_embedding = operations.Conv3d(
            config.in_dim, dim, kernel_size=config.patch_size, stride=config.patch_size, **factory
        )
        self.text_embedding = nn.Sequential(
            operations.Linear(config.text_dim, dim, **factory),
            nn.GELU(approximate="tanh"),
            operations.Linear(dim, dim, **factory),
        )
        self.time_embedding = nn.Sequential(
            operations.Linear(config.freq_dim, dim, **factory), nn.SiLU(), operations.Linear(dim, dim, **factory)
        )
        self.time_projection = nn.Sequential(nn.SiLU(), operations.Linear(dim, 6 * dim, **factory))
        if config.adaln_reference:
            self.time_projection_ref = nn.Sequential(nn.SiLU(), operations.Linear(dim, 6 * dim, **factory))
        self.blocks = nn.ModuleList(WanBlock(config, operations, factory) for _ in range(config.num_layers))
        self.head = _Head(config, operations, factory)

    @classmethod
    def from_state_dict(
        cls,
        state_dict: Mapping[str, torch.Tensor],
        operations: Any = nn,
        dtype: torch.dtype | None = None,
        device: torch.device | str = "cpu",
        **kwargs: Any,
    ) -> ConcatIDWan:
        """Adopt a (checked) state dict's tensors without allocating a second copy; strict."""
        model = cls(WanConfig.from_state_dict(state_dict), operations, device="meta", **kwargs)
        model.load_state_dict(state_dict, strict=True, assign=True)
        return model.to(device=device, dtype=dtype)

    def embed_time(
        self, timestep: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """[B] timesteps in 0..1000 -> (e [B, C], modulation [B, 6, C], reference modulation or None)."""
        if self.round_timestep_to_bf16:
            timestep = timestep.to(torch.bfloat16)
        e = self.time_embedding(sinusoidal(self.config.freq_dim, timestep).to(dtype))
        e_mod = self.time_projection(e).unflatten(1, (6, self.config.dim))
        e_ref = self.time_projection_ref(e).unflatten(1, (6, self.config.dim)) if self.config.adaln_reference else None
        return e, e_mod, e_ref

    def forward(
        self,
        x: torch.Tensor,
        timestep: torch.Tensor,
        context: torch.Tensor,
        references: torch.Tensor | None = None,
        regions: torch.Tensor | None = None,
        attention: Attention = sdpa,
        cache: TeaCache | None = None,
        branches: Sequence[Hashable] = (0,),
    ) -> torch.Tensor:
        """Predicted flow [B, C, F, H, W] of the video latents x [B, C, F, H, W] (model space).

        `references` [B, C, R, H, W]: clean reference latents (model space), appended after the video
        frames; their slots are dropped from the output. `regions` [B, R, F, H/2, W/2] (token grid,
        > 0.5 = inside): restricts which video tokens attend to which reference (see AttentionGroups).
        `timestep` [B] or scalar, in 0..1000, shared by every token. `cache` (TeaCache) may replace the
        blocks by the residuals it kept; the batch holds one equal chunk per guidance branch in `branches`.
        """
        b, _, frames, height, width = x.shape
        if regions is not None and b > 1 and not bool((regions == regions[:1]).all()):
            per_branch = b // len(branches)
            return torch.cat(
                [
                    self.forward(x[i : i + 1], timestep.reshape(-1).expand(b)[i : i + 1], context[i : i + 1],
                                 None if references is None else references[i : i + 1], regions[i : i + 1], attention,
                                 cache, [(branches[i // per_branch], i)])
                    for i in range(b)
                ]
            )  # fmt: skip
        _, ph, pw = self.config.patch_size
        pad = (0, -width % pw, 0, -height % ph, 0, 0)  # as ComfyUI's Wan pads odd latent sizes
        tokens_in = F.pad(x, pad, mode="circular") if any(pad) else x
        n_refs = 0
        if references is not None:
            if references.shape[-2:] != x.shape[-2:] or references.shape[1] != x.shape[1]:
                raise ValueError(
                    f"reference latents {tuple(references.shape)} do not match the video latents {tuple(x.shape)}"
                )
            references = references.to(device=x.device, dtype=x.dtype)
            references = F.pad(references, pad, mode="circular") if any(pad) else references
            n_refs = references.shape[2]
            tokens_in = torch.cat([tokens_in, references.expand(b, -1, -1, -1, -1)], dim=2)
        tokens = self.patch_embedding(tokens_in)
        grid_h, grid_w = tokens.shape[3:]
        tokens = tokens.flatten(2).transpose(1, 2)
        n_video = frames * grid_h * grid_w

        e, e_mod, e_ref = self.embed_time(timestep.to(x.device).reshape(-1).expand(b), tokens.dtype)
        positions = token_positions(frames, grid_h, grid_w, n_refs)
        groups = None
        if regions is not None and n_refs:
            groups = self._groups(regions, n_refs, n_video, grid_h * grid_w, tokens.device)
        inputs = BlockInputs(
            e=e_mod,
            e_ref=e_ref,
            context=self.text_embedding(context.to(tokens.dtype)),
            rope=rope_tables(positions, self.config.head_dim, tokens.device),
            n_video=n_video,
            attention=attention,
            groups=groups,
        )
        if cache is None:
            tokens = self.run_blocks(tokens, inputs)
        else:  # the release's indicator: the time embedding before the modulation projection
            tokens = cache.run(tokens, e, lambda tokens: self.run_blocks(tokens, inputs), branches)
        out = self.head(tokens[:, :n_video], e)
        out = out.view(b, frames, grid_h, grid_w, ph, pw, -1).permute(0, 6, 1, 2, 4, 3, 5)
        return out.reshape(b, -1, frames, grid_h * ph, grid_w * pw)[..., :height, :width]

    def run_blocks(self, tokens: torch.Tensor, inputs: BlockInputs) -> torch.Tensor:
        """The block loop on the joint [video; references] sequence; the unit to wrap for swapping/caching."""
        for block in self.blocks:
            tokens = block(tokens, inputs)
        return tokens

    @staticmethod
    def _groups(
        regions: torch.Tensor, refs: int, n_video: int, ref_tokens: int, device: torch.device
    ) -> AttentionGroups:
        """AttentionGroups of the first batch item's regions (forward splits batches whose regions differ)."""
        regions = regions[0].reshape(regions.shape[1], -1) > 0.5
        if regions.shape != (refs, n_video):
            raise ValueError(
                f"regions {tuple(regions.shape)} do not match {refs} reference(s) and {n_video} video tokens"
            )
        return AttentionGroups.from_regions(regions.to(device), ref_tokens)
