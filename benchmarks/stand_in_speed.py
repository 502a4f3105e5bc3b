"""What Stand-In costs per sampling step on ComfyUI's own WanModel, against the same MODEL without it, in one run.

    python benchmarks/stand_in_speed.py                        # CPU: a narrow Wan at the released token counts
    python benchmarks/stand_in_speed.py --gpu                  # CUDA: Wan2.1-T2V-14B's architecture, bf16
    python benchmarks/stand_in_speed.py --authors /path/Stand-In   # also the authors' DiT (their repository's
                                                               # code, not shipped) on the same weights, CPU
    python benchmarks/stand_in_speed.py --pytorch-attention    # ComfyUI on PyTorch's SDPA, as the authors' code
                                                               # (on the CPU ComfyUI picks its own split kernel)

Each row times the diffusion model's calls as KSampler makes them with cfg (cond and uncond batched), at
81x480x832 (21x60x104 latents: 32760 video tokens) with one 512x512 face (1024 reference tokens): the plain model,
Stand-In with the faces' keys and values kept from the first call (the default), and Stand-In recomputing the faces
at every call (what the kept keys save). The first call of a run computes the faces, so it is reported apart.
Weights are random: speed is the architecture's, not the pictures'. Seconds are only meaningful on one machine
and in one run: compare the ratio column.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from consisid_speed import import_comfyui_and_pack  # noqa: E402

from multiid_core.stand_in.checkpoint import AdapterSizes  # noqa: E402
from multiid_core.wan.checkpoint import WanConfig  # noqa: E402
from multiid_tools.tiny_models.stand_in import tiny_adapter_state_dict  # noqa: E402
from multiid_tools.tiny_models.wan import tiny_concat_id_wan_state_dict  # noqa: E402

CONFIGS = {
    # name: (DiT sizes, video latents (frames, height, width), calls timed)
    "cpu": (WanConfig(dim=256, ffn_dim=512, num_heads=2, num_layers=2), (21, 60, 104), 2),
    "compass-cpu": (WanConfig(dim=256, ffn_dim=512, num_heads=2, num_layers=2), (3, 16, 26), 2),  # a dry run
    "gpu": (WanConfig(dim=5120, ffn_dim=13824, num_heads=40, num_layers=40), (21, 60, 104), 4),
}
FACE = (1, 64, 64)  # one 512x512 face: 1024 tokens


def build(sizes: WanConfig, device: torch.device, dtype: torch.dtype):
    """ComfyUI's own WanModel (Load Diffusion Model's path) with random weights, and a random adapter."""
    import comfy.sd

    sd = tiny_concat_id_wan_state_dict(adaln=False, sizes=sizes)
    patcher = comfy.sd.load_diffusion_model_state_dict(sd, model_options={"dtype": dtype})
    del sd
    adapter_sd = tiny_adapter_state_dict(sizes=sizes)
    return patcher, adapter_sd


def timed(call, calls: int, device: torch.device) -> tuple[float, list[float]]:
    """(first call, the later calls) in seconds."""
    seconds = []
    for _ in range(calls + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        call()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    return seconds[0], seconds[1:]


def stand_in_rows(gpu: bool, config: str, calls: int, recomputed: bool = True, authors: Path | None = None) -> list:
    """(row, first call s, later calls' median s, peak bytes) for the plain WanModel and Stand-In on it."""
    pack = import_comfyui_and_pack(gpu)
    model_module = sys.modules.get(f"{pack}.nodes.stand_in.model") or __import__(
        f"{pack}.nodes.stand_in.model", fromlist=["StandInDiT"]
    )
    adapter_module = sys.modules[f"{pack}.multiid_core.stand_in.adapter"]
    device = torch.device("cuda" if gpu else "cpu")
    dtype = torch.bfloat16 if gpu else torch.float32
    sizes, (frames, height, width), _ = CONFIGS[config]
    patcher, adapter_sd = build(sizes, device, dtype)
    dit = patcher.model.diffusion_model.to(device)
    model_module.StandInDiT.adopt(dit)
    adapter = adapter_module.StandInAdapter(
        adapter_sd, AdapterSizes(dim=sizes.dim, layers=sizes.num_layers, rank=128)
    ).to(device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 16, frames, height, width, generator=g).to(device, dtype)
    t = torch.tensor([875.0, 875.0], device=device)
    context = torch.randn(2, 512, sizes.text_dim, generator=g).to(device, dtype)
    face = torch.randn(1, 16, *FACE, generator=g).to(device, dtype)
    faces = model_module.StandInFaces(adapter, face)
    kept = {model_module.STAND_IN: faces, model_module.STREAMS: {}}

    def call(options: dict | None):
        with torch.inference_mode():
            return dit(x, t, context, transformer_options=options or {})

    variants = [("plain WanModel (no Stand-In)", lambda: call(None)),
                ("Stand-In, faces kept after the first call", lambda: call(dict(kept)))]  # fmt: skip
    if recomputed:
        variants.append(("Stand-In, faces recomputed at every call", lambda: call({model_module.STAND_IN: faces})))
    rows = []
    for name, run in variants:
        if gpu:
            torch.cuda.reset_peak_memory_stats()
        first, later = timed(run, calls, device)
        rows.append((name, first, statistics.median(later), torch.cuda.max_memory_allocated() if gpu else 0))
    if authors:
        row, diff = authors_row(authors, dit, adapter_sd, x, t, context, face, calls, kept, call)
        rows.append(row)
        print(f"Ours against the authors' on the same weights and inputs: relative difference {diff:.1e}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--authors", type=Path, help="a checkout of WeChatCV/Stand-In, to time their DiT too (CPU)")
    parser.add_argument("--pytorch-attention", action="store_true", help="ComfyUI's --use-pytorch-cross-attention")
    args = parser.parse_args()
    import_comfyui_and_pack(args.gpu, args.pytorch_attention)
    config = "gpu" if args.gpu else "cpu"
    sizes, (frames, height, width), calls = CONFIGS[config]
    tokens = frames * (height // 2) * (width // 2)
    print(
        f"\nStand-In per call (cond + uncond batched), {'CUDA ' + torch.cuda.get_device_name() if args.gpu else 'CPU'}"
        f", DiT width {sizes.dim}, {sizes.num_layers} blocks, {tokens} video tokens + {FACE[1] * FACE[2] // 4} face "
        f"tokens, {'bf16' if args.gpu else 'fp32'}, attention: "
        f"{'PyTorch SDPA' if args.pytorch_attention else 'ComfyUI default'}\n"
    )
    rows = stand_in_rows(args.gpu, config, calls, authors=args.authors)
    print("| model | first call s | later calls s (median) | ratio to plain |\n|---|---|---|---|")
    plain = rows[0][2]
    for name, first, steady, _ in rows:
        print(f"| {name} | {first:.3f} | {steady:.3f} | {steady / plain:.2f} |")


def authors_row(checkout: Path, dit, adapter_sd, x, t, context, face, calls, kept, call) -> tuple[tuple, float]:
    """The authors' DiT (their `WanModel` and `model_fn_wan_video`, CPU, SDPA) on the same weights: its row (seconds
    per call with their kept keys) and how far their prediction is from ours (relative)."""
    sys.path.insert(0, str(checkout))
    import models.wan_video_dit as their_dit
    from pipelines.wan_video import model_fn_wan_video

    their_dit.FLASH_ATTN_3_AVAILABLE = their_dit.FLASH_ATTN_2_AVAILABLE = their_dit.SAGE_ATTN_AVAILABLE = False
    their_dit.LoRALinearLayer.__init__.__defaults__ = (128, "cpu", torch.float32)
    theirs = their_dit.WanModel(
        dim=dit.dim, in_dim=16, ffn_dim=dit.blocks[0].ffn[0].out_features, out_dim=16, text_dim=context.shape[-1],
        freq_dim=dit.freq_dim, eps=1e-6, patch_size=(1, 2, 2), num_heads=dit.num_heads, num_layers=len(dit.blocks),
        has_image_input=False,
    ).eval()  # fmt: skip
    for block in theirs.blocks:
        block.self_attn.init_lora(False)
    theirs.load_state_dict({**dit.state_dict(), **adapter_sd}, strict=True)

    def their_step(first: bool) -> torch.Tensor:
        """Their loop's step: the positive call (computing the faces at the first step), then the negative one."""
        with torch.inference_mode():
            positive = model_fn_wan_video(
                dit=theirs, latents=x[:1], timestep=t[:1], context=context[:1], ip_image=face if first else None
            )
            model_fn_wan_video(dit=theirs, latents=x[1:], timestep=t[:1], context=context[1:], ip_image=None)
        return positive

    for block in theirs.blocks:
        block.self_attn.kv_cache, block.self_attn.cond_size = None, None
    start = time.perf_counter()
    reference = their_step(True)
    first = time.perf_counter() - start
    later = []
    for _ in range(calls):
        start = time.perf_counter()
        their_step(False)
        later.append(time.perf_counter() - start)
    ours = call(dict(kept))[:1]
    diff = float((ours.double() - reference.double()).norm() / reference.double().norm())
    return ("the authors' DiT, their kept keys", first, statistics.median(later), 0), diff


if __name__ == "__main__":
    main()
