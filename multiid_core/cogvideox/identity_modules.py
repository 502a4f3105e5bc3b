"""The identity modules ConsisID and Ingredients add to CogVideoX, under diffusers' state-dict names.

`LocalFacialExtractor` turns one face's ArcFace+CLIP embedding and EVA hidden states into 32 tokens;
`PerceiverCrossAttention` injects them into the video tokens; `IdentityRouter` (Ingredients) scores
every video token against each identity. Every layer comes from `operations`, so ComfyUI can cast
and offload them like the rest of the transformer.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Multi-head attention in the released rounding order: d**-0.25 on both sides, fp32 softmax.

    A batch-1 `k`/`v` broadcasts over `q`'s batch (one face for both CFG branches).
    """
    batch, length, _ = q.shape
    q, k, v = (t.unflatten(-1, (heads, -1)).transpose(1, 2) for t in (q, k, v))
    scale = 1 / math.sqrt(math.sqrt(q.shape[-1]))
    weight = (q * scale) @ (k * scale).transpose(-2, -1)
    weight = torch.softmax(weight.float(), dim=-1).to(weight.dtype)
    return (weight @ v).transpose(1, 2).reshape(batch, length, -1)


class _Perceiver(nn.Module):
    """The layers both perceiver attentions share: LayerNorms on both inputs, bias-free projections."""

    def __init__(
        self,
        dim: int,
        kv_dim: int,
        dim_head: int,
        heads: int,
        operations: Any = nn,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        factory = {"dtype": dtype, "device": device}
        self.heads = heads
        inner = dim_head * heads
        self.norm1 = operations.LayerNorm(kv_dim, **factory)
        self.norm2 = operations.LayerNorm(dim, **factory)
        self.to_q = operations.Linear(dim, inner, bias=False, **factory)
        self.to_kv = operations.Linear(kv_dim, inner * 2, bias=False, **factory)
        self.to_out = operations.Linear(inner, dim, bias=False, **factory)


class PerceiverAttention(_Perceiver):
    """Queries attend to [context; queries] (the LFE's resampler layer)."""

    def __init__(self, dim: int, dim_head: int, heads: int, operations: Any = nn, **factory: Any) -> None:
        super().__init__(dim, dim, dim_head, heads, operations, **factory)

    def forward(self, context: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        context = self.norm1(context)
        latents = self.norm2(latents)
        k, v = self.to_kv(torch.cat((context, latents), dim=-2)).chunk(2, dim=-1)
        return self.to_out(_attend(self.to_q(latents), k, v, self.heads))


def _mlp(dims: tuple[int, int, int], operations: Any, factory: dict[str, Any]) -> nn.Sequential:
    """Linear-LN-LeakyReLU x2 then Linear: the indices 0,1,3,4,6 are the released key names."""
    d_in, d_mid, d_out = dims
    return nn.Sequential(
        operations.Linear(d_in, d_mid, **factory),
        operations.LayerNorm(d_mid, **factory),
        nn.LeakyReLU(),
        operations.Linear(d_mid, d_mid, **factory),
        operations.LayerNorm(d_mid, **factory),
        nn.LeakyReLU(),
        operations.Linear(d_mid, d_out, **factory),
    )


class LocalFacialExtractor(nn.Module):
    """ConsisID's perceiver (LFE): [N, id_dim] + num_scale x [N, tokens, vit_dim] -> [N, queries, output_dim].

    It depends only on the face, so the sampler runs it once per video rather than every step.
    """

    def __init__(
        self,
        id_dim: int = 1280,
        vit_dim: int = 1024,
        depth: int = 10,
        dim_head: int = 64,
        heads: int = 16,
        num_id_token: int = 5,
        num_queries: int = 32,
        output_dim: int = 2048,
        ff_mult: int = 4,
        num_scale: int = 5,
        operations: Any = nn,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        if depth % num_scale:
            raise ValueError(f"LFE depth {depth} must be a multiple of its {num_scale} scales")
        factory = {"dtype": dtype, "device": device}
        self.num_id_token = num_id_token
        self.num_queries = num_queries
        self.num_scale = num_scale
        self.layers_per_scale = depth // num_scale
        scale = vit_dim**-0.5
        self.latents = nn.Parameter(torch.randn(1, num_queries, vit_dim, **factory) * scale)
        self.proj_out = nn.Parameter(torch.randn(vit_dim, output_dim, **factory) * scale)
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [
                    PerceiverAttention(vit_dim, dim_head, heads, operations, **factory),
                    nn.Sequential(
                        operations.LayerNorm(vit_dim, **factory),
                        operations.Linear(vit_dim, vit_dim * ff_mult, bias=False, **factory),
                        nn.GELU(),
                        operations.Linear(vit_dim * ff_mult, vit_dim, bias=False, **factory),
                    ),
                ]
            )
            for _ in range(depth)
        )
        for i in range(num_scale):
            self.add_module(f"mapping_{i}", _mlp((vit_dim, vit_dim, vit_dim), operations, factory))
        self.id_embedding_mapping = _mlp((id_dim, vit_dim, vit_dim * num_id_token), operations, factory)

    def forward(self, id_cond: torch.Tensor, vit_hidden: list[torch.Tensor] | tuple[torch.Tensor, ...]) -> torch.Tensor:
        if len(vit_hidden) != self.num_scale:
            raise ValueError(f"LFE expects {self.num_scale} ViT hidden states, got {len(vit_hidden)}")
        id_tokens = self.id_embedding_mapping(id_cond).unflatten(-1, (self.num_id_token, -1))
        queries = self.latents.to(id_tokens).expand(id_tokens.shape[0], -1, -1)
        latents = torch.cat((queries, id_tokens), dim=1)
        n = self.layers_per_scale
        for i, hidden in enumerate(vit_hidden):
            context = torch.cat((id_tokens, getattr(self, f"mapping_{i}")(hidden)), dim=1)
            for attn, ff in self.layers[i * n : (i + 1) * n]:
                latents = attn(context, latents) + latents
                latents = ff(latents) + latents
        return latents[:, : self.num_queries] @ self.proj_out.to(latents)


class PerceiverCrossAttention(_Perceiver):
    """Video tokens (queries) attend to one identity's face tokens; the output is a residual."""

    def __init__(
        self,
        dim: int = 3072,
        dim_head: int = 128,
        heads: int = 16,
        kv_dim: int = 2048,
        operations: Any = nn,
        **factory: Any,
    ) -> None:
        super().__init__(dim, kv_dim, dim_head, heads, operations, **factory)

    def forward(self, face_tokens: torch.Tensor, video_tokens: torch.Tensor) -> torch.Tensor:
        """[N or 1, Q, kv_dim], [B, L, dim] -> [B, L, dim]; a batch-1 face serves every video batch."""
        k, v = self.to_kv(self.norm1(face_tokens)).chunk(2, dim=-1)
        return self.to_out(_attend(self.to_q(self.norm2(video_tokens)), k, v, self.heads))

    def per_identity(self, face_tokens: torch.Tensor, video_tokens: torch.Tensor) -> torch.Tensor:
        """[N, Q, kv_dim], [B, L, dim] -> [B, N, L, dim]: every video token against every identity.

        The queries are computed once and broadcast over identities, where Ingredients repeats the video
        tokens once per identity; the arithmetic per (token, identity) is the same.
        """
        k, v = self.to_kv(self.norm1(face_tokens)).chunk(2, dim=-1)  # [N, Q, inner]
        q = self.to_q(self.norm2(video_tokens))  # [B, L, inner]
        batch, length, _ = q.shape
        q = q.unflatten(-1, (self.heads, -1)).transpose(1, 2)[:, None]  # [B, 1, H, L, d]
        k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2)[None] for t in (k, v))  # [1, N, H, Q, d]
        scale = 1 / math.sqrt(math.sqrt(q.shape[-1]))
        weight = torch.softmax(((q * scale) @ (k * scale).transpose(-2, -1)).float(), dim=-1).to(q.dtype)
        out = (weight @ v).transpose(2, 3).reshape(batch, -1, length, q.shape[-1] * self.heads)
        return self.to_out(out)


class IdentityRouter(nn.Module):
    """Ingredients' per-layer router: one logit per (video token, identity); softmax is the caller's.

    Each identity's tokens are pooled by a learned weighting (`id_merge`), so a token is compared with
    one vector per identity; there is no scale or temperature, as released.
    """

    def __init__(
        self,
        dim: int = 3072,
        id_dim: int = 2048,
        id_tokens: int = 32,
        inner_dim: int = 2048,
        operations: Any = nn,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        factory = {"dtype": dtype, "device": device}
        self.norm1 = operations.LayerNorm(id_dim, **factory)
        self.norm2 = operations.LayerNorm(dim, **factory)
        self.id_merge = operations.Linear(id_tokens, 1, bias=False, **factory)
        self.to_q = operations.Linear(dim, inner_dim, bias=False, **factory)
        self.to_kv = operations.Linear(id_dim, inner_dim, bias=False, **factory)

    def forward(self, face_tokens: torch.Tensor, video_tokens: torch.Tensor) -> torch.Tensor:
        """[N_ids, Q, id_dim] (or [B, N_ids, Q, id_dim]), [B, L, dim] -> logits [B, L, N_ids]."""
        pooled = self.id_merge(self.norm1(face_tokens).transpose(-2, -1)).squeeze(-1)
        return self.to_q(self.norm2(video_tokens)) @ self.to_kv(pooled).transpose(-2, -1)
