"""CogVideoX 1.0 transformer (T2V/I2V) with ConsisID's identity injection and Ingredients' routers.

State dicts are diffusers' (`CogVideoXTransformer3DModel` / `ConsisIDTransformer3DModel`), so the
released safetensors load as they are; the forward is the same math, rearranged for speed and for
the sampler's extensions:

- text and video tokens stay in one [B, T + L, C] tensor through the blocks (LayerNorm and the
  feed-forward are per token, and attention runs on the concatenation anyway), so a block is
  `x -> x` and the loop in `run_blocks` can be wrapped for block swapping or step caching;
- the face perceiver (`encode_faces`) runs once per video, not at every step;
- identities enter through one object (`Injection.residual`), so one or several people, learned or
  mask routing, all go through the same loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from ..parallel import SequenceShard, UlyssesAttention
from ..teacache import TeaCache
from .identity_modules import IdentityRouter, LocalFacialExtractor, PerceiverCrossAttention

Rope = tuple[torch.Tensor, torch.Tensor]


class Injection(Protocol):
    """Adds the identity residual at injection point k (see multiid_core.routing.IdentityInjection)."""

    def residual(self, transformer: nn.Module, k: int, video: torch.Tensor) -> torch.Tensor: ...


# Config values of layouts this module does not implement (CogVideoX 1.5, other activations).
_FIXED = {
    "patch_size_t": None,
    "ofs_embed_dim": None,
    "activation_fn": "gelu-approximate",
    "timestep_activation_fn": "silu",
}


@dataclass
class CogVideoXConfig:
    """The `transformer/config.json` fields the model uses, with diffusers' defaults."""

    num_attention_heads: int = 30
    attention_head_dim: int = 64
    in_channels: int = 16
    out_channels: int = 16
    flip_sin_to_cos: bool = True
    freq_shift: int = 0
    time_embed_dim: int = 512
    text_embed_dim: int = 4096
    num_layers: int = 30
    attention_bias: bool = True
    sample_width: int = 90
    sample_height: int = 60
    sample_frames: int = 49
    patch_size: int = 2
    patch_bias: bool = True
    temporal_compression_ratio: int = 4
    max_text_seq_length: int = 226
    norm_elementwise_affine: bool = True
    norm_eps: float = 1e-5
    norm_out_eps: float | None = None  # the output AdaLN's LayerNorm; None: norm_eps, as diffusers builds it
    spatial_interpolation_scale: float = 1.875
    temporal_interpolation_scale: float = 1.0
    use_rotary_positional_embeddings: bool = False
    use_learned_positional_embeddings: bool = False
    is_train_face: bool = False
    cross_attn_interval: int = 2
    cross_attn_dim_head: int = 128
    cross_attn_num_heads: int = 16
    LFE_id_dim: int = 1280
    LFE_vit_dim: int = 1024
    LFE_depth: int = 10
    LFE_dim_head: int = 64
    LFE_num_heads: int = 16
    LFE_num_id_token: int = 5
    LFE_num_querie: int = 32
    LFE_output_dim: int = 2048
    LFE_ff_mult: int = 4
    LFE_num_scale: int = 5
    local_face_scale: float = 1.0
    num_routers: int = 0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CogVideoXConfig:
        """Build from a diffusers config.json dict; unknown and `_private` keys are dropped."""
        for key, supported in _FIXED.items():
            if d.get(key, supported) != supported:
                raise ValueError(f"transformer config {key}={d[key]!r} is not supported (CogVideoX 1.0 only)")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def inner_dim(self) -> int:
        return self.num_attention_heads * self.attention_head_dim

    @property
    def num_cross_attn(self) -> int:
        return self.num_layers // self.cross_attn_interval

    @property
    def cross_attn_kv_dim(self) -> int:
        """Width of the face tokens the cross-attention reads (2048 for the 3072-wide 5B)."""
        return int(self.inner_dim / 3 * 2)

    @property
    def latent_grid(self) -> tuple[int, int, int]:
        """(frames, height, width) of the trained token grid, in patches."""
        frames = (self.sample_frames - 1) // self.temporal_compression_ratio + 1
        return frames, self.sample_height // self.patch_size, self.sample_width // self.patch_size


def _crop_region(height: int, width: int, base_height: int, base_width: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Where a (height, width) grid lands when fitted into the trained grid: RoPE positions span it."""
    if height / width > base_height / base_width:
        fit_h, fit_w = base_height, int(round(base_height / height * width))
    else:
        fit_h, fit_w = int(round(base_width / width * height)), base_width
    top, left = int(round((base_height - fit_h) / 2.0)), int(round((base_width - fit_w) / 2.0))
    return (top, left), (top + fit_h, left + fit_w)


def _rope_axis(dim: int, start: float, stop: float, n: int, device: torch.device | str | None) -> Rope:
    """cos/sin [n, dim] of n positions spread over [start, stop), each frequency used twice."""
    pos = torch.linspace(start, stop * (n - 1) / n, n, dtype=torch.float32, device=device)
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, dim, 2, dtype=torch.float32, device=device) / dim))
    angles = torch.outer(pos, inv_freq).repeat_interleave(2, dim=1)
    return angles.cos(), angles.sin()


def cogvideox_rope(
    config: CogVideoXConfig,
    latent_frames: int,
    latent_height: int,
    latent_width: int,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Rope:
    """3D RoPE (cos, sin), each [frames * h * w / p^2, head_dim], as diffusers' CogVideoX 1.0 pipelines.

    Spatial positions are those of the grid resized into the trained grid, so a smaller video keeps
    the positions' range the model saw in training.
    """
    p = config.patch_size
    grid_h, grid_w = latent_height // p, latent_width // p
    (top, left), (bottom, right) = _crop_region(grid_h, grid_w, config.sample_height // p, config.sample_width // p)
    dim = config.attention_head_dim
    axes = (
        _rope_axis(dim // 4, 0, latent_frames, latent_frames, device),
        _rope_axis(dim // 8 * 3, top, bottom, grid_h, device),
        _rope_axis(dim // 8 * 3, left, right, grid_w, device),
    )
    shape = (latent_frames, grid_h, grid_w)

    def combine(t: torch.Tensor, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        parts = (t[:, None, None], h[None, :, None], w[None, None, :])
        return torch.cat([x.expand(*shape, -1) for x in parts], dim=-1).reshape(-1, dim).to(dtype)

    return combine(*(a[0] for a in axes)), combine(*(a[1] for a in axes))


def _apply_rope_(x: torch.Tensor, rope: Rope) -> None:
    """Rotate x [B, L, H, D] in place by (cos, sin) [L, D], pairs (2i, 2i+1), in fp32 as diffusers."""
    cos, sin = (t[:, None] for t in rope)
    xf = x.float()
    rotated = torch.stack((-xf[..., 1::2], xf[..., 0::2]), dim=-1).flatten(-2)
    x.copy_(xf * cos + rotated * sin)


def _sincos(dim: int, pos: torch.Tensor) -> torch.Tensor:
    """[len(pos), dim] sin|cos table, in float64 as diffusers builds it before casting."""
    omega = torch.arange(dim // 2, dtype=torch.float64, device=pos.device) / (dim / 2.0)
    out = torch.outer(pos.reshape(-1).double(), 1.0 / 10000**omega)
    return torch.cat([out.sin(), out.cos()], dim=1)


def _sincos_3d(config: CogVideoXConfig, frames: int, height: int, width: int, device: torch.device) -> torch.Tensor:
    """Fixed [frames * height * width, C] embedding of non-RoPE models (CogVideoX-2B)."""
    dim = config.inner_dim
    spatial_scale, temporal_scale = config.spatial_interpolation_scale, config.temporal_interpolation_scale
    grid_w = torch.arange(width, dtype=torch.float32, device=device) / spatial_scale
    grid_h = torch.arange(height, dtype=torch.float32, device=device) / spatial_scale
    ww, hh = torch.meshgrid(grid_w, grid_h, indexing="xy")
    spatial = torch.cat([_sincos(3 * dim // 8, ww), _sincos(3 * dim // 8, hh)], dim=1)
    temporal = _sincos(dim // 4, torch.arange(frames, dtype=torch.float32, device=device) / temporal_scale)
    hw = height * width
    return torch.cat([temporal[:, None].expand(-1, hw, -1), spatial[None].expand(frames, -1, -1)], -1).flatten(0, 1)


class _PatchEmbed(nn.Module):
    """2x2 patches of [B, F, C, H, W] latents and projected text -> one [B, T + L, C] sequence."""

    def __init__(self, config: CogVideoXConfig, operations: Any, factory: dict[str, Any]) -> None:
        super().__init__()
        self.config = config
        p, dim = config.patch_size, config.inner_dim
        self.proj = operations.Conv2d(
            config.in_channels, dim, kernel_size=(p, p), stride=p, bias=config.patch_bias, **factory
        )
        self.text_proj = operations.Linear(config.text_embed_dim, dim, **factory)
        if config.use_learned_positional_embeddings:
            frames, height, width = config.latent_grid
            rows = config.max_text_seq_length + frames * height * width
            self.pos_embedding = nn.Parameter(torch.zeros(1, rows, dim, **factory))
        self._sincos_cache: tuple[tuple, torch.Tensor] | None = None

    def positions(
        self, text_len: int, frames: int, height: int, width: int, device: torch.device, dtype: torch.dtype
    ) -> tuple[torch.Tensor | None, torch.Tensor] | None:
        """Rows added to the text and video tokens (grid in patches), or None for RoPE-only models.

        The learned table (CogVideoX-5B-I2V 1.0, ConsisID, Ingredients) is used as is on the trained
        grid. On a smaller grid we take its [:frames, :height, :width] corner, where diffusers raises
        for another size and switches to a sincos table for fewer frames, which the weights never
        saw; a larger grid has no trained rows and raises.
        """
        cfg = self.config
        if cfg.use_learned_positional_embeddings:
            base_f, base_h, base_w = cfg.latent_grid
            t_max = cfg.max_text_seq_length
            if frames > base_f or height > base_h or width > base_w or text_len > t_max:
                raise ValueError(
                    f"this model's learned positions cover {base_f} latent frames of {base_h}x{base_w} "
                    f"patches and {t_max} text tokens; got {frames} of {height}x{width} and {text_len}"
                )
            table = self.pos_embedding
            video = table[:, t_max:].view(1, base_f, base_h, base_w, -1)[:, :frames, :height, :width]
            return table[:, :text_len].to(device, dtype), video.flatten(1, 3).to(device, dtype)
        if cfg.use_rotary_positional_embeddings:
            return None
        key = (frames, height, width, device, dtype)
        if self._sincos_cache is None or self._sincos_cache[0] != key:
            self._sincos_cache = (key, _sincos_3d(cfg, frames, height, width, device)[None].to(dtype))
        return None, self._sincos_cache[1]

    def forward(self, text: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        b, f, c, h, w = latents.shape
        video = self.proj(latents.reshape(b * f, c, h, w))
        grid_h, grid_w = video.shape[-2:]
        video = video.flatten(2).transpose(1, 2).reshape(b, f * grid_h * grid_w, -1)
        x = torch.cat([self.text_proj(text), video], dim=1)
        text_len = text.shape[1]
        pos = self.positions(text_len, f, grid_h, grid_w, x.device, x.dtype)
        if pos is not None:
            text_rows, video_rows = pos
            if text_rows is not None:
                x[:, :text_len] += text_rows
            x[:, text_len:] += video_rows
        return x


class _TimestepEmbedding(nn.Module):
    """MLP on the sinusoidal timestep features (keys `linear_1`, `linear_2`)."""

    def __init__(self, dim: int, out_dim: int, operations: Any, factory: dict[str, Any]) -> None:
        super().__init__()
        self.linear_1 = operations.Linear(dim, out_dim, **factory)
        self.linear_2 = operations.Linear(out_dim, out_dim, **factory)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.silu(self.linear_1(t)))


def _timestep_features(timestep: torch.Tensor, dim: int, flip_sin_to_cos: bool, shift: float) -> torch.Tensor:
    """[B] -> [B, dim] sinusoidal features, always in fp32."""
    half = dim // 2
    exponent = -math.log(10000) * torch.arange(half, dtype=torch.float32, device=timestep.device)
    angles = timestep[:, None].float() * torch.exp(exponent / (half - shift))[None]
    parts = (angles.cos(), angles.sin()) if flip_sin_to_cos else (angles.sin(), angles.cos())
    return torch.cat(parts, dim=-1)


class _AdaNormZero(nn.Module):
    """CogVideoXLayerNormZero: one LayerNorm, separate shift/scale/gate for text and video tokens."""

    def __init__(self, config: CogVideoXConfig, operations: Any, factory: dict[str, Any]) -> None:
        super().__init__()
        dim = config.inner_dim
        self.linear = operations.Linear(config.time_embed_dim, 6 * dim, **factory)
        self.norm = operations.LayerNorm(
            dim, eps=config.norm_eps, elementwise_affine=config.norm_elementwise_affine, **factory
        )

    def forward(
        self, x: torch.Tensor, text_len: int, temb: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Modulated norm(x) and the (text, video) gates, each [B, 1, C]."""
        shift, scale, gate, t_shift, t_scale, t_gate = self.linear(F.silu(temb))[:, None].chunk(6, dim=-1)
        out = self.norm(x)
        out[:, :text_len].mul_(1 + t_scale).add_(t_shift)
        out[:, text_len:].mul_(1 + scale).add_(shift)
        return out, (t_gate, gate)


def _gated_add(
    x: torch.Tensor, y: torch.Tensor, text_len: int, gates: tuple[torch.Tensor, torch.Tensor]
) -> torch.Tensor:
    """x + gate * y with the text gate on the text tokens and the video gate on the rest; y is consumed."""
    y[:, :text_len].mul_(gates[0])
    y[:, text_len:].mul_(gates[1])
    return x + y


class _Attention(nn.Module):
    """Self-attention on [text; video] with per-head LayerNorm on q, k and RoPE on video tokens."""

    attend: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] = staticmethod(
        F.scaled_dot_product_attention
    )

    def __init__(self, config: CogVideoXConfig, operations: Any, factory: dict[str, Any]) -> None:
        super().__init__()
        dim, head_dim = config.inner_dim, config.attention_head_dim
        self.heads = config.num_attention_heads
        self.to_q = operations.Linear(dim, dim, bias=config.attention_bias, **factory)
        self.to_k = operations.Linear(dim, dim, bias=config.attention_bias, **factory)
        self.to_v = operations.Linear(dim, dim, bias=config.attention_bias, **factory)
        self.norm_q = operations.LayerNorm(head_dim, eps=1e-6, **factory)
        self.norm_k = operations.LayerNorm(head_dim, eps=1e-6, **factory)
        self.to_out = nn.ModuleList([operations.Linear(dim, dim, **factory)])

    def forward(self, x: torch.Tensor, text_len: int, rope: Rope | None) -> torch.Tensor:
        b, n, _ = x.shape
        q = self.norm_q(self.to_q(x).view(b, n, self.heads, -1))
        k = self.norm_k(self.to_k(x).view(b, n, self.heads, -1))
        v = self.to_v(x).view(b, n, self.heads, -1)
        if rope is not None:
            _apply_rope_(q[:, text_len:], rope)
            _apply_rope_(k[:, text_len:], rope)
        out = self.attend(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.to_out[0](out.transpose(1, 2).reshape(b, n, -1))


class _GeluProj(nn.Module):
    def __init__(self, dim: int, inner: int, operations: Any, factory: dict[str, Any]) -> None:
        super().__init__()
        self.proj = operations.Linear(dim, inner, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.proj(x), approximate="tanh")


class _FeedForward(nn.Module):
    def __init__(self, dim: int, operations: Any, factory: dict[str, Any]) -> None:
        super().__init__()
        # Index 1 stands where diffusers keeps a Dropout, so the output layer is `net.2` as released.
        self.net = nn.ModuleList(
            [
                _GeluProj(dim, 4 * dim, operations, factory),
                nn.Identity(),
                operations.Linear(4 * dim, dim, **factory),
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net[2](self.net[0](x))


class CogVideoXBlock(nn.Module):
    """One DiT block on the joint [B, T + L, C] sequence: x -> x."""

    def __init__(self, config: CogVideoXConfig, operations: Any, factory: dict[str, Any]) -> None:
        super().__init__()
        self.norm1 = _AdaNormZero(config, operations, factory)
        self.attn1 = _Attention(config, operations, factory)
        self.norm2 = _AdaNormZero(config, operations, factory)
        self.ff = _FeedForward(config.inner_dim, operations, factory)

    def forward(self, x: torch.Tensor, text_len: int, temb: torch.Tensor, rope: Rope | None) -> torch.Tensor:
        h, gates = self.norm1(x, text_len, temb)
        x = _gated_add(x, self.attn1(h, text_len, rope), text_len, gates)
        h, gates = self.norm2(x, text_len, temb)
        return _gated_add(x, self.ff(h), text_len, gates)


class _AdaNormOut(nn.Module):
    """Output AdaLayerNorm; note the (shift, scale) order, unlike the blocks' (shift, scale, gate)."""

    def __init__(self, config: CogVideoXConfig, operations: Any, factory: dict[str, Any]) -> None:
        super().__init__()
        dim = config.inner_dim
        self.linear = operations.Linear(config.time_embed_dim, 2 * dim, **factory)
        eps = config.norm_eps if config.norm_out_eps is None else config.norm_out_eps
        self.norm = operations.LayerNorm(dim, eps=eps, elementwise_affine=config.norm_elementwise_affine, **factory)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        shift, scale = self.linear(F.silu(temb))[:, None].chunk(2, dim=-1)
        return self.norm(x) * (1 + scale) + shift


class CogVideoXTransformer(nn.Module):
    """CogVideoX 1.0 DiT; with `is_train_face`, ConsisID's LFE and per-interval identity injection."""

    def __init__(
        self,
        config: CogVideoXConfig,
        operations: Any = nn,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        factory = {"dtype": dtype, "device": device}
        dim = config.inner_dim
        self.patch_embed = _PatchEmbed(config, operations, factory)
        self.time_embedding = _TimestepEmbedding(dim, config.time_embed_dim, operations, factory)
        self.transformer_blocks = nn.ModuleList(
            CogVideoXBlock(config, operations, factory) for _ in range(config.num_layers)
        )
        self.norm_final = operations.LayerNorm(
            dim, eps=config.norm_eps, elementwise_affine=config.norm_elementwise_affine, **factory
        )
        self.norm_out = _AdaNormOut(config, operations, factory)
        self.proj_out = operations.Linear(dim, config.patch_size**2 * config.out_channels, **factory)
        if config.is_train_face:
            self.local_facial_extractor = LocalFacialExtractor(
                id_dim=config.LFE_id_dim,
                vit_dim=config.LFE_vit_dim,
                depth=config.LFE_depth,
                dim_head=config.LFE_dim_head,
                heads=config.LFE_num_heads,
                num_id_token=config.LFE_num_id_token,
                num_queries=config.LFE_num_querie,
                output_dim=config.LFE_output_dim,
                ff_mult=config.LFE_ff_mult,
                num_scale=config.LFE_num_scale,
                operations=operations,
                **factory,
            )
            self.perceiver_cross_attention = nn.ModuleList(
                PerceiverCrossAttention(
                    dim,
                    config.cross_attn_dim_head,
                    config.cross_attn_num_heads,
                    config.cross_attn_kv_dim,
                    operations,
                    **factory,
                )
                for _ in range(config.num_cross_attn)
            )
        if config.num_routers:
            # Ingredients hard-codes 2048 for both widths: the 5B's cross_attn_kv_dim.
            kv_dim = config.cross_attn_kv_dim
            self.router = nn.ModuleList(
                IdentityRouter(dim, kv_dim, config.LFE_num_querie, kv_dim, operations, **factory)
                for _ in range(config.num_routers)
            )

    @classmethod
    def from_state_dict(
        cls,
        config: CogVideoXConfig,
        state_dict: Mapping[str, torch.Tensor],
        operations: Any = nn,
        dtype: torch.dtype | None = None,
        device: torch.device | str = "cpu",
    ) -> CogVideoXTransformer:
        """Adopt the state dict's tensors without allocating or initialising a second copy (strict)."""
        model = cls(config, operations, device="meta")
        model.load_state_dict(state_dict, strict=True, assign=True)
        return model.to(device=device, dtype=dtype)

    def set_attention(self, attend: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
        """The attention kernel of every block ([B, H, L, D] q, k, v -> out), e.g. SageAttention."""
        for block in self.transformer_blocks:
            block.attn1.attend = attend

    def encode_faces(self, id_cond: torch.Tensor, id_vit_hidden: Sequence[torch.Tensor]) -> torch.Tensor:
        """[N, id_dim] + LFE_num_scale x [N, 577, vit_dim] -> face tokens [N, 32, kv_dim]."""
        if not self.config.is_train_face:
            raise ValueError("this transformer has no face modules (is_train_face is false)")
        return self.local_facial_extractor(id_cond, list(id_vit_hidden))

    def embed_time(self, timestep: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        cfg = self.config
        t = _timestep_features(timestep, cfg.inner_dim, cfg.flip_sin_to_cos, cfg.freq_shift)
        return self.time_embedding(t.to(dtype))

    def run_blocks(
        self,
        x: torch.Tensor,
        text_len: int,
        temb: torch.Tensor,
        rope: Rope | None,
        identity: Injection | None,
    ) -> torch.Tensor:
        """All blocks and identity injections on the joint sequence; the unit a step cache skips."""
        interval = self.config.cross_attn_interval
        injections = len(self.perceiver_cross_attention) if identity is not None else 0
        for i, block in enumerate(self.transformer_blocks):
            x = block(x, text_len, temb, rope)
            k, rest = divmod(i, interval)
            if rest == 0 and k < injections:
                video = x[:, text_len:]
                video += identity.residual(self, k, video)
        return x

    def forward(
        self,
        latents: torch.Tensor,
        text: torch.Tensor,
        timestep: torch.Tensor,
        rope: Rope | None,
        identity: Injection | None = None,
        cache: TeaCache | None = None,
        branches: Sequence[Hashable] = (0,),
        shard: SequenceShard | None = None,
    ) -> torch.Tensor:
        """[B, F, in_channels, H, W] (noise and image latents concatenated) -> [B, F, out_channels, H, W].

        `timestep` has one value or one per batch item; `identity` adds the face residual at every
        injection point (its face tokens, from `encode_faces`, serve both CFG branches, as released).
        `cache` (TeaCache) may replace the blocks by the residual it kept for each guidance branch (the batch
        holds one equal chunk per entry of `branches`).
        `shard`: this rank's slice of the video tokens (sequence parallel); `identity` is then this slice's.
        """
        cfg = self.config
        b, f, _, h, w = latents.shape
        p = cfg.patch_size
        if h % p or w % p:
            raise ValueError(f"latent height and width must be multiples of {p}, got {h}x{w}")
        video_len = f * (h // p) * (w // p)
        if not cfg.use_rotary_positional_embeddings and rope is not None:
            raise ValueError("this model has no RoPE; pass rope=None")
        if cfg.use_rotary_positional_embeddings and (rope is None or rope[0].shape[0] != video_len):
            raise ValueError(f"this model needs cogvideox_rope(...) for {f}x{h}x{w} latents")
        if identity is not None and not cfg.is_train_face:
            raise ValueError("an identity given to a transformer without face modules")
        text_len = text.shape[1]
        temb = self.embed_time(timestep.to(latents.device).reshape(-1).expand(b), latents.dtype)
        x = self.patch_embed(text, latents)
        if shard is not None:
            if cache is not None:
                raise ValueError("a step cache cannot run on a slice of the sequence")
            return self._sharded(x, text_len, temb, rope, identity, shard, (b, f, h, w))
        if cache is None:
            x = self.run_blocks(x, text_len, temb, rope, identity)
        else:
            x = cache.run(x, temb, lambda x: self.run_blocks(x, text_len, temb, rope, identity), branches)
        return self._unpatchify(self._head(x, text_len, temb), b, f, h, w)

    def _sharded(
        self,
        x: torch.Tensor,
        text_len: int,
        temb: torch.Tensor,
        rope: Rope | None,
        identity: Injection | None,
        shard: SequenceShard,
        shape: tuple[int, int, int, int],
    ) -> torch.Tensor:
        """The blocks on [text; this rank's video tokens], attention over all ranks' tokens (Ulysses)."""
        video_len = x.shape[1] - text_len
        x = torch.cat([x[:, :text_len], shard.take(x[:, text_len:], dim=1)], dim=1)
        if rope is not None:
            rope = (shard.take(rope[0], 0), shard.take(rope[1], 0))
        kernel = self.transformer_blocks[0].attn1.attend
        self.set_attention(UlyssesAttention(shard, kernel, video_len, front=text_len))
        try:
            x = self.run_blocks(x, text_len, temb, rope, identity)
        finally:
            self.set_attention(kernel)
        return self._unpatchify(shard.gather(self._head(x, text_len, temb), 1, shard.sizes(video_len)), *shape)

    def _head(self, x: torch.Tensor, text_len: int, temb: torch.Tensor) -> torch.Tensor:
        """The video tokens' prediction, [B, L, p * p * out_channels] (before unpatchify)."""
        return self.proj_out(self.norm_out(self.norm_final(x[:, text_len:]), temb))

    def _unpatchify(self, out: torch.Tensor, b: int, f: int, h: int, w: int) -> torch.Tensor:
        p = self.config.patch_size
        out = out.reshape(b, f, h // p, w // p, -1, p, p).permute(0, 1, 4, 2, 5, 3, 6)
        return out.reshape(b, f, -1, h, w)
