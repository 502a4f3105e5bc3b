"""The references the Concat-ID-Wan tests compare against, written from the release (ML-GSAI/Concat-ID).

`release_forward`: model_fn_wan_video with its first-stage and AdaLN block forwards, on the modules of
ComfyUI's own WanModel (the plain Wan parts are ComfyUI's; the Concat-ID parts are the authors' equations).
`release_sample`: WanVideoPipeline.__call__'s loop: sigmas linspace(1, 0, steps + 1) without the last,
shifted, Euler steps, the reference appended for every forward, text CFG with it in both branches, and
(Phantom-style, beyond the release) image guidance with a zeroed-reference third branch.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F


def release_forward(wm, sd: dict, x, t, context, ref) -> torch.Tensor:
    """Concat-ID-Wan's forward (first stage or AdaLN, from the keys of `sd`) on ComfyUI's WanModel `wm`."""
    adaln = "time_projection_ref.1.weight" in sd
    tokens = wm.patch_embedding(torch.cat([x, ref], dim=2))
    f, hh, ww = tokens.shape[2:]
    tokens = tokens.flatten(2).transpose(1, 2)
    half = wm.freq_dim // 2
    angles = torch.outer(t.double(), torch.pow(10000, -torch.arange(half, dtype=torch.float64).div(half)))
    e = wm.time_embedding(torch.cat([angles.cos(), angles.sin()], dim=1).float())
    e0 = wm.time_projection(e).unflatten(1, (6, wm.dim))
    if adaln:
        w, b = sd["time_projection_ref.1.weight"].float(), sd["time_projection_ref.1.bias"].float()
        e_ref = F.linear(F.silu(e), w, b).unflatten(1, (6, wm.dim))
    context = wm.text_embedding(context)
    ids = torch.stack(torch.meshgrid(torch.arange(f), torch.arange(hh), torch.arange(ww), indexing="ij"), -1).float()
    ids[-1, :, :, 2] += ww  # freqs_ref: the last (reference) frame at temporal index f-1, width w..2w-1
    freqs = wm.rope_embedder(ids.reshape(1, -1, 3)).movedim(1, 2)
    n = hh * ww
    for i, blk in enumerate(wm.blocks):
        mod = (blk.modulation + e0).chunk(6, dim=1)
        if adaln:
            rmod = (sd[f"blocks.{i}.modulation_ref"].float() + e_ref).chunk(6, dim=1)
            norm = blk.norm1(tokens)
            y = blk.self_attn(
                torch.cat([norm[:, :-n] * (1 + mod[1]) + mod[0], norm[:, -n:] * (1 + rmod[1]) + rmod[0]], 1), freqs
            )
            tokens = torch.cat([tokens[:, :-n] + mod[2] * y[:, :-n], tokens[:, -n:] + rmod[2] * y[:, -n:]], 1)
            cross = tokens[:, :-n] + blk.cross_attn(blk.norm3(tokens[:, :-n]), context)
            tokens = torch.cat([cross, tokens[:, -n:]], 1)
            norm = blk.norm2(tokens)
            y = blk.ffn(torch.cat([norm[:, :-n] * (1 + mod[4]) + mod[3], norm[:, -n:] * (1 + rmod[1]) + rmod[0]], 1))
            tokens = torch.cat([tokens[:, :-n] + mod[5] * y[:, :-n], tokens[:, -n:] + rmod[5] * y[:, -n:]], 1)
        else:
            tokens = tokens + mod[2] * blk.self_attn(blk.norm1(tokens) * (1 + mod[1]) + mod[0], freqs)
            tokens = torch.cat([tokens[:, :-n] + blk.cross_attn(blk.norm3(tokens[:, :-n]), context), tokens[:, -n:]], 1)
            tokens = tokens + mod[5] * blk.ffn(blk.norm2(tokens) * (1 + mod[4]) + mod[3])
    return wm.unpatchify(wm.head(tokens, e), (f, hh, ww))[:, :, :-1]


def flow_match_sigmas(steps: int, shift: float = 5.0) -> torch.Tensor:
    """steps + 1 sigmas, the last 0: DiffSynth's FlowMatchScheduler(extra_one_step=True, sigma_min=0)."""
    sigmas = torch.linspace(1.0, 0.0, steps + 1)[:-1]
    sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)
    return torch.cat([sigmas, sigmas.new_zeros(1)])


# forward(latents, t, context, references, options, branch) -> flow; options carry the schedule for TeaCache
Forward = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict, str], torch.Tensor]


def release_sample(
    forward: Forward,
    noise: torch.Tensor,
    context: torch.Tensor,
    negative_context: torch.Tensor,
    references: torch.Tensor,
    steps: int,
    cfg: float,
    image_cfg: float = 1.0,
    options: dict | None = None,
) -> torch.Tensor:
    """The released sampling loop: video latents from `noise`, one forward per guidance branch and step."""
    sigmas = flow_match_sigmas(steps)
    latents = noise
    for i in range(steps):
        t = (sigmas[i] * 1000).reshape(1)
        step_options = {**(options or {}), "sample_sigmas": sigmas, "sigmas": sigmas[i : i + 1]}
        flow = forward(latents, t, context, references, step_options, "positive")
        if cfg != 1.0 or image_cfg != 1.0:
            negative = forward(latents, t, negative_context, references, step_options, "negative")
            if image_cfg != 1.0:
                none = forward(latents, t, negative_context, torch.zeros_like(references), step_options, "no reference")
                flow = none + image_cfg * (negative - none) + cfg * (flow - negative)
            else:
                flow = negative + cfg * (flow - negative)
        latents = latents + flow * (sigmas[i + 1] - sigmas[i])
    return latents
