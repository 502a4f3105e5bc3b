"""The reference the Stand-In tests compare against, written from the authors' equations (WeChatCV/Stand-In
`models/wan_video_dit.py` `DiTBlock`/`SelfAttention`, `pipelines/wan_video.py` `model_fn_wan_video` and the
`__call__` loop; several faces as on their `dev/multi` branch), on the modules of ComfyUI's own WanModel.

Two streams, as the authors write it: the video tokens and each face's tokens go through the blocks side by side;
the faces are modulated at timestep 0, get the adapter's LoRA on q/k/v (before the norms), attend only to
themselves, skip the text; the video attends to the video and every face. RoPE: video (t, i, j); face k at
(-1, H + k h + i, W + k h + j). No kept keys: every call computes the faces again (the authors' kept keys are
exactly these).
"""

import torch
import torch.nn.functional as F


def _lora(lora: dict, i: int, projection: str, x: torch.Tensor) -> torch.Tensor:
    name = f"blocks.{i}.self_attn.{projection}_loras"
    down, up = lora[f"{name}.down.weight"].float(), lora[f"{name}.up.weight"].float()
    return F.linear(F.linear(x.float(), down), up).to(x.dtype)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """[B, L, H, D] each -> [B, Lq, H * D], plain softmax attention."""
    out = F.scaled_dot_product_attention(*(t.transpose(1, 2) for t in (q, k, v)))
    return out.transpose(1, 2).flatten(2)


def _project(attn, lora: dict, i: int, h: torch.Tensor, rope: torch.Tensor, lora_on: bool, heads: int):
    """q, k (normalised, RoPE'd) and v [B, L, heads, D] of one stream in block i; LoRA before the norms."""
    from comfy.ldm.flux.math import apply_rope1  # importable once the tests' ComfyUI is loaded

    q, k, v = attn.q(h), attn.k(h), attn.v(h)
    if lora_on:
        q, k, v = q + _lora(lora, i, "q", h), k + _lora(lora, i, "k", h), v + _lora(lora, i, "v", h)
    b, n = h.shape[:2]
    q = apply_rope1(attn.norm_q(q).view(b, n, heads, -1), rope)
    k = apply_rope1(attn.norm_k(k).view(b, n, heads, -1), rope)
    return q, k, v.view(b, n, heads, -1)


def _sinusoid(dim: int, t: torch.Tensor) -> torch.Tensor:
    half = dim // 2
    angles = torch.outer(t.double(), torch.pow(10000, -torch.arange(half, dtype=torch.float64).div(half)))
    return torch.cat([angles.cos(), angles.sin()], dim=1).float()


def release_forward(wm, lora: dict, x, t, context, faces: list[torch.Tensor], regions=None) -> torch.Tensor:
    """Stand-In's forward on ComfyUI's WanModel `wm`; `faces`: latents [1, 16, 1, h, w] each; `regions` (beyond
    the release: placed people) bool [faces, video tokens] of who sees whom."""
    video = wm.patch_embedding(x.float())
    f, hh, ww = video.shape[2:]
    video = video.flatten(2).transpose(1, 2)
    streams = [wm.patch_embedding(face.float()) for face in faces]
    fh, fw = streams[0].shape[3:] if streams else (0, 0)
    streams = [s.flatten(2).transpose(1, 2).expand(len(x), -1, -1) for s in streams]
    e = wm.time_embedding(_sinusoid(wm.freq_dim, t))
    e0 = wm.time_projection(e).unflatten(1, (6, wm.dim))
    e0_face = wm.time_projection(wm.time_embedding(_sinusoid(wm.freq_dim, torch.zeros_like(t)))).unflatten(
        1, (6, wm.dim)
    )
    context = wm.text_embedding(context)
    grid = torch.stack(torch.meshgrid(torch.arange(f), torch.arange(hh), torch.arange(ww), indexing="ij"), -1)
    freqs = wm.rope_embedder(grid.reshape(1, -1, 3).float()).movedim(1, 2)
    face_freqs = []
    for k in range(len(faces)):
        rows, cols = torch.meshgrid(torch.arange(fh), torch.arange(fw), indexing="ij")
        ids = torch.stack([torch.full_like(rows, -1), hh + k * fh + rows, ww + k * fh + cols], -1)
        face_freqs.append(wm.rope_embedder(ids.reshape(1, -1, 3).float()).movedim(1, 2))
    heads = wm.num_heads
    for i, blk in enumerate(wm.blocks):
        attn = blk.self_attn
        mod = (blk.modulation + e0).chunk(6, dim=1)
        fmod = (blk.modulation + e0_face).chunk(6, dim=1)
        q, k, v = _project(attn, lora, i, blk.norm1(video) * (1 + mod[1]) + mod[0], freqs, False, heads)
        face_qkv = [
            _project(attn, lora, i, blk.norm1(s) * (1 + fmod[1]) + fmod[0], r, True, heads)
            for s, r in zip(streams, face_freqs, strict=True)
        ]
        face_out = [_attend(*qkv) for qkv in face_qkv]
        keys = torch.cat([k, *(qkv[1] for qkv in face_qkv)], 1)
        values = torch.cat([v, *(qkv[2] for qkv in face_qkv)], 1)
        if regions is None:
            main = _attend(q, keys, values)
        else:  # each video token: the video, and the faces whose region holds it
            n, n_face = q.shape[1], fh * fw
            allowed = torch.ones(n, keys.shape[1], dtype=torch.bool)
            for face, inside in enumerate(regions):
                allowed[:, n + face * n_face : n + (face + 1) * n_face] = inside[:, None]
            main = F.scaled_dot_product_attention(
                *(t.transpose(1, 2) for t in (q, keys, values)), attn_mask=allowed
            ).transpose(1, 2).flatten(2)  # fmt: skip
        video = video + mod[2] * attn.o(main)
        video = video + blk.cross_attn(blk.norm3(video), context)
        video = video + mod[5] * blk.ffn(blk.norm2(video) * (1 + mod[4]) + mod[3])
        for s, out in enumerate(face_out):
            stream = streams[s] + fmod[2] * attn.o(out)
            streams[s] = stream + fmod[5] * blk.ffn(blk.norm2(stream) * (1 + fmod[4]) + fmod[3])
    return wm.unpatchify(wm.head(video, e), (f, hh, ww))


def release_sample(experts, noise, positive, negative, steps: int, cfg: float, shift: float = 5.0, boundary=0.875):
    """The authors' loop: flow sigmas linspace(1, 0, steps + 1)[:-1] shifted, Euler, CFG with the face in both
    branches; `experts`: [(forward(x, t, context) -> flow)] one (Wan2.1) or (high, low) switched at t < 875."""
    sigmas = torch.linspace(1.0, 0.0, steps + 1)[:-1]
    sigmas = torch.cat([shift * sigmas / (1 + (shift - 1) * sigmas), torch.zeros(1)])
    x, forward = noise, experts[0]
    for i in range(steps):
        t = sigmas[i] * 1000
        if len(experts) > 1 and float(t) < boundary * 1000:
            forward = experts[1]
        flow = forward(x, t.reshape(1), negative)
        flow = flow + cfg * (forward(x, t.reshape(1), positive) - flow)
        x = x + flow * (sigmas[i + 1] - sigmas[i])
    return x
