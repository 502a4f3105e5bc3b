"""Speed and memory of ConsisID in ComfyUI (MultiID Sampler's path: the MODEL, ComfyUI's guider, the pack's
CogVideoX DPM sampler) against diffusers' ConsisIDPipeline, on the same weights.

    python benchmarks/consisid_speed.py              # CPU: small, medium and large configs, ratios in one run
    python benchmarks/consisid_speed.py --gpu        # CUDA, under 8 minutes: seconds per video and peak memory at the
                                                     # released sizes (ConsisID, Concat-ID Wan, Stand-In on 14B)
    python benchmarks/consisid_speed.py --compass    # the same script on the CPU at small sizes
    python benchmarks/consisid_speed.py --only wan   # one table: consisid, families (Ingredients, Concat-ID), wan
    python benchmarks/consisid_speed.py --profile    # where a step's time goes, per family

Then Concat-ID Wan with and without TeaCache (the full Wan2.1-1.3B at 81x480x832 with --gpu): the model is
ComfyUI's own WanModel, loaded by ComfyUI as the pack's loader does (nodes/concat_id_wan/model.py), sampled by ComfyUI's
KSampler (euler, the pack's linear-time scheduler = the release's schedule, cfg 5, 50 steps), plain and on the
MultiID TeaCache (Wan) node's MODEL. ComfyUI comes from COMFYUI_PATH, by default the pack's dev tree
`.comfyui/ComfyUI` (made by `python multiid.py test --setup-only`).

Each ConsisID measurement runs in its own process (clean peak memory); the table compares seconds per step
(steady state, first step excluded), peak memory, and the latents of both implementations. TeaCache rows
report the transformer calls saved and the PSNR of the decoded frames against the uncached video.
Weights are random: speed and memory are those of the real architecture, not the pictures.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from multiid import TREE  # noqa: E402
from multiid_core.concat_id_wan.checkpoint import ConcatIDWanConfig  # noqa: E402
from multiid_core.wan.checkpoint import WanConfig  # noqa: E402
from multiid_tools import PACK_NAME  # noqa: E402
from multiid_tools.tiny_models import cogvideox as tiny_cogvideox  # noqa: E402
from multiid_tools.tiny_models.teacache import keep_slow_timestep_frequencies  # noqa: E402

CONFIGS = {
    # name: (transformer overrides, sampling size, steps)
    "small": (dict(num_attention_heads=2, attention_head_dim=64, num_layers=4, time_embed_dim=64,
                   sample_frames=9, sample_height=16, sample_width=20), dict(frames=9, height=128, width=160), 8),
    "medium": (dict(num_attention_heads=8, attention_head_dim=64, num_layers=6, time_embed_dim=128,
                    sample_frames=13, sample_height=30, sample_width=44), dict(frames=13, height=240, width=352), 6),
    "large": (dict(num_attention_heads=12, attention_head_dim=64, num_layers=8, time_embed_dim=256,
                   sample_frames=13, sample_height=40, sample_width=60), dict(frames=13, height=320, width=480), 4),
    "full": (dict(num_attention_heads=48, attention_head_dim=64, num_layers=42, time_embed_dim=512,
                  text_embed_dim=4096, cross_attn_num_heads=16, LFE_vit_dim=1024, LFE_output_dim=2048,
                  LFE_depth=10, LFE_num_heads=16, sample_frames=49, sample_height=60, sample_width=90),
             dict(frames=49, height=480, width=720), 50),
}  # fmt: skip


def write_snapshot(folder: Path, name: str, family: str = "consisid") -> None:
    """A tiny-layout snapshot at the config's sizes: ConsisID's, or Ingredients' (ConsisID with a router)."""
    overrides, _, _ = CONFIGS[name]
    overrides = {**overrides, "LFE_output_dim": int(overrides["num_attention_heads"] * 64 / 3 * 2)}
    original = dict(tiny_cogvideox.TINY_TRANSFORMER)
    tiny_cogvideox.TINY_TRANSFORMER.update(overrides)
    try:
        if family == "ingredients":
            tiny_cogvideox.write_tiny_ingredients_snapshot(folder)
        else:
            tiny_cogvideox.write_tiny_consisid_snapshot(folder)
    finally:
        tiny_cogvideox.TINY_TRANSFORMER.clear()
        tiny_cogvideox.TINY_TRANSFORMER.update(original)
    smooth_timestep_embedding(folder / "transformer")


def write_concat_id(folder: Path, name: str) -> None:
    """Concat-ID's two-identities SAT checkpoint and VAE at the config's sizes (folder/two-identities, folder/vae),
    and the same weights in diffusers' layout (folder/diffusers) for CogVideoXPipeline."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXTransformer3DModel

    import multiid_tools.tiny_models.concat_id as tiny
    from multiid_core.cogvideox.sat_conversion import load_sat_pickle, sat_checkpoint_file, sat_transformer_to_diffusers

    overrides, _, _ = CONFIGS[name]
    original = dict(tiny.TINY_T2V)
    tiny.TINY_T2V.update({k: v for k, v in overrides.items() if k in original})
    try:
        tiny.write_sat_checkpoint(folder / "two-identities", seed=1)
        config = {k: v for k, v in tiny.TINY_T2V.items() if k not in ("is_train_face", "is_kps")}  # ConsisID's
    finally:
        tiny.TINY_T2V.clear()
        tiny.TINY_T2V.update(original)
    sat = load_sat_pickle(sat_checkpoint_file(folder / "two-identities"), "Concat-ID transformer")
    transformer = CogVideoXTransformer3DModel.from_config(config)
    transformer.load_state_dict(sat_transformer_to_diffusers(sat))
    transformer.save_pretrained(folder / "diffusers" / "transformer")
    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(**tiny_cogvideox.TINY_VAE)
    vae.save_pretrained(folder / "diffusers" / "vae")
    (folder / "vae").mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": tiny.diffusers_to_sat_vae(vae.state_dict())}, folder / "vae" / "3d-vae.pt")


def smooth_timestep_embedding(folder: Path) -> None:
    """TeaCache needs a timestep embedding that changes as a trained one does (see keep_slow_timestep_frequencies).

    Both implementations load the same weights, so the comparison is unaffected.
    """
    from safetensors.torch import load_file, save_file

    key = "time_embedding.linear_1.weight"
    for shard in folder.glob("*.safetensors"):
        state = load_file(shard)
        if key in state:
            state[key] = keep_slow_timestep_frequencies(state[key])
            save_file(state, shard, metadata={"format": "pt"})


def worker(spec: dict) -> dict:
    """One measurement, in its own process."""
    from multiid_tools.tiny_models.identities import random_identity

    device = torch.device(spec["device"])
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    folder = Path(spec["snapshot"])
    _, size, steps = CONFIGS[spec["config"]]
    steps = spec.get("steps", steps)
    config_file = folder / "transformer" / "config.json"  # Concat-ID's SAT folders have none
    config = json.loads(config_file.read_text()) if config_file.exists() else dict(tiny_cogvideox.TINY_TRANSFORMER)
    text_dim = config["text_embed_dim"]
    vit_dim = config.get("LFE_vit_dim", tiny_cogvideox.TINY_TRANSFORMER["LFE_vit_dim"])  # Ingredients' omits it
    g = torch.Generator().manual_seed(0)
    positive, negative = torch.randn(1, 226, text_dim, generator=g), torch.randn(1, 226, text_dim, generator=g)
    identity = random_identity(0, vit_dim)
    people = [identity, *(random_identity(i, vit_dim) for i in range(1, spec.get("people", 1)))]
    stamps = []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def tick(*_args, **_kwargs):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        stamps.append(time.perf_counter())
        return _kwargs.get("callback_kwargs", {}) if _kwargs else {}

    if spec["impl"] == "diffusers":
        from diffusers import (
            AutoencoderKLCogVideoX,
            CogVideoXDPMScheduler,
            ConsisIDPipeline,
            ConsisIDTransformer3DModel,
        )
        from PIL import Image

        pipe = ConsisIDPipeline(
            tokenizer=None, text_encoder=None,
            vae=AutoencoderKLCogVideoX.from_pretrained(folder / "vae", torch_dtype=dtype),
            transformer=ConsisIDTransformer3DModel.from_pretrained(folder / "transformer", torch_dtype=dtype),
            scheduler=CogVideoXDPMScheduler.from_pretrained(folder / "scheduler"),
        ).to(device)  # fmt: skip
        image = Image.fromarray((identity.primary.face_on_white.numpy() * 255).astype("uint8"))
        stamps.append(time.perf_counter())
        with torch.no_grad():
            latents = pipe(
                image=image, prompt_embeds=positive.to(device, dtype),
                negative_prompt_embeds=negative.to(device, dtype),
                num_inference_steps=steps, guidance_scale=6.0, generator=torch.Generator().manual_seed(42),
                output_type="latent", id_cond=identity.id_cond("consisid").to(device, dtype),
                id_vit_hidden=[h.to(device, dtype) for h in identity.vit_hidden("consisid")],
                num_frames=size["frames"], height=size["height"], width=size["width"],
                callback_on_step_end=lambda pipe, i, t, callback_kwargs: tick() or callback_kwargs,
            ).frames.float()  # fmt: skip
        calls = steps
    elif spec["impl"] == "diffusers-cogvideox":
        latents, calls = run_diffusers_cogvideox(folder, dtype, device, size, steps, positive, negative, tick)
    elif spec.get("profile"):
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
            latents, calls = run_ours(spec, folder, dtype, device, size, steps, positive, negative, people, tick)
        shares = op_shares(profile)
    else:
        latents, calls = run_ours(spec, folder, dtype, device, size, steps, positive, negative, people, tick)
    torch.save(latents.cpu(), spec["latents_out"])
    steady = [b - a for a, b in zip(stamps[1:], stamps[2:])]
    peak = (
        torch.cuda.max_memory_allocated(device)
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    return {
        "shares": shares if spec.get("profile") else None,
        "step_s": sorted(steady)[len(steady) // 2] if steady else float("nan"),
        "total_s": stamps[-1] - stamps[0],
        "peak_bytes": peak,
        "calls": calls,
    }


def run_diffusers_cogvideox(folder, dtype, device, size, steps, positive, negative, tick):
    """diffusers' CogVideoXPipeline on Concat-ID's weights with two more latent frames: the token count of Concat-ID
    with two references (which it appends to the video as clean frames), for the time per step."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDPMScheduler, CogVideoXPipeline, CogVideoXTransformer3DModel

    from multiid_core.cogvideox.checkpoint import RELEASED_SCHEDULER_CONFIG

    pipe = CogVideoXPipeline(
        tokenizer=None, text_encoder=None,
        vae=AutoencoderKLCogVideoX.from_pretrained(folder / "vae", torch_dtype=dtype),
        transformer=CogVideoXTransformer3DModel.from_pretrained(folder / "transformer", torch_dtype=dtype),
        scheduler=CogVideoXDPMScheduler.from_config(RELEASED_SCHEDULER_CONFIG),
    ).to(device)  # fmt: skip
    tick()
    with torch.no_grad():
        latents = pipe(
            prompt_embeds=positive.to(device, dtype), negative_prompt_embeds=negative.to(device, dtype),
            num_inference_steps=steps, guidance_scale=6.0, generator=torch.Generator().manual_seed(42),
            output_type="latent", num_frames=size["frames"] + 2 * 4, height=size["height"], width=size["width"],
            callback_on_step_end=lambda pipe, i, t, callback_kwargs: tick() or callback_kwargs,
        ).frames.float()  # fmt: skip
    return latents, steps


def run_ours(spec, folder, dtype, device, size, steps, positive, negative, people, tick):
    """MultiID Sampler's path: the MODEL under ComfyUI's guider and the pack's CogVideoX DPM sampler."""
    pack = import_comfyui_and_pack(device.type == "cuda", sage=spec.get("attention") == "sage")
    routing = sys.modules[f"{pack}.multiid_core.routing"]
    identity = people[0] if len(people) == 1 else routing.IdentitySet(people, [None] * len(people))
    import comfy.model_management
    import comfy.ops
    import comfy.utils

    loading = sys.modules[f"{pack}.multiid_core.cogvideox.checkpoint"]
    loader, sampler = sys.modules[f"{pack}.nodes.cogvideox.loader"], sys.modules[f"{pack}.nodes.cogvideox.sampler"]
    teacache = sys.modules[f"{pack}.nodes.teacache"]
    size_type = sys.modules[f"{pack}.multiid_core.cogvideox.inputs"].VideoSize
    operations = comfy.ops.manual_cast if spec.get("fp8") else comfy.ops.disable_weight_init
    if spec.get("family") == "concat-id":
        core = loading.load_concat_id_cogvideox(folder, dtype, operations)
    else:
        core = loading.load_snapshot(folder, dtype, operations, device="cpu")
    if spec.get("fp8"):
        loader.store_linear_weights_fp8(core.transformer)  # what the loader's weight_storage fp8_e4m3fn does
    model, vae = loader.video_model(core)
    if spec.get("teacache"):
        model = teacache.with_teacache(model, spec["teacache"], teacache.COGVIDEOX_FITS)
    comfy.model_management.load_models_gpu([model])
    dit = model.model.diffusion_model
    block_runs = []
    run_blocks = dit.run_blocks
    dit.run_blocks = lambda *args: block_runs.append(1) or run_blocks(*args)
    comfy.utils.set_progress_bar_global_hook(lambda *_args, **_kwargs: tick())
    tick()
    raw, _, _ = sampler.sample_video(
        model, vae, [[positive, {}]], [[negative, {}]], identity, size_type(**size), steps, 6.0, False,
        "CogVideoX DPM", 42, 1.0,
    )  # fmt: skip
    if spec.get("decode"):
        torch.save(vae.decode(raw, tiled=True).cpu(), spec["frames_out"])
    latents = (raw * vae.vae.config.scaling_factor).movedim(1, 2)  # diffusers' scaled [B, T, C, h, w]
    return latents, len(block_runs)


def measure(spec: dict) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True, cwd=ROOT
    )
    if out.returncode != 0:
        raise RuntimeError(f"{spec['impl']} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a - b) ** 2).mean().item()
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)


def rows_for(config: str, device: str, scratch: Path, repeats: int, teacache: bool = True) -> list[list[str]]:
    snapshot = scratch / config / "ConsisID-preview"
    write_snapshot(snapshot, config)
    base = {"config": config, "device": device, "snapshot": str(snapshot)}

    def run(name: str, **extra) -> tuple[dict, torch.Tensor]:
        spec = {**base, **extra, "latents_out": str(scratch / f"{config}-{name}.pt"),
                "frames_out": str(scratch / f"{config}-{name}-frames.pt")}  # fmt: skip
        return measure(spec), torch.load(spec["latents_out"])

    # Alternate the two implementations and keep each one's best run: the machine may be shared.
    timings: dict[str, list[dict]] = {"diffusers": [], "ours": []}
    for _ in range(repeats):
        for impl in timings:
            result, latents = run(impl, impl=impl)
            timings[impl].append(result)
    best = {impl: min(results, key=lambda r: r["step_s"]) for impl, results in timings.items()}
    reference, ref_latents = best["diffusers"], torch.load(scratch / f"{config}-diffusers.pt")
    rows = []

    def row(label, result, latents, extra=""):
        err = (
            "-" if latents is None else f"{((latents - ref_latents).abs().max() / ref_latents.abs().max()).item():.1e}"
        )
        rows.append([config, label, f"{result['step_s']:.3f}", f"{result['step_s'] / reference['step_s']:.2f}",
                     f"{result['total_s']:.1f}", f"{result['peak_bytes'] / 2**20:.0f}", err,
                     str(result["calls"]), extra])  # fmt: skip

    row("diffusers ConsisIDPipeline", reference, ref_latents)
    row("ours", best["ours"], torch.load(scratch / f"{config}-ours.pt"))
    if not teacache or config not in TEACACHE_CONFIGS:
        return rows
    steps = 50  # TeaCache's published settings are for 50-step runs; these rows compare with ours uncached
    uncached, exact = run("exact50", impl="ours", steps=steps, decode=True)
    exact_frames = torch.load(scratch / f"{config}-exact50-frames.pt")
    row("ours, 50 steps, decoded", {**uncached, "step_s": uncached["total_s"] / steps}, None,
        "the reference for the TeaCache rows; s/step = total / 50, peak includes the decode")  # fmt: skip
    for threshold in (0.1, 0.15, 0.2):
        cached, latents = run(f"tea{threshold}", impl="ours", steps=steps, teacache=threshold, decode=True)
        frames = torch.load(scratch / f"{config}-tea{threshold}-frames.pt")
        diff = ((latents - exact).abs().max() / exact.abs().max()).item()
        row(f"ours + TeaCache {threshold}", {**cached, "step_s": cached["total_s"] / steps}, None,
            f"{uncached['total_s'] / cached['total_s']:.2f}x the uncached run; {steps - cached['calls']} of "
            f"{steps} calls skipped; frames' PSNR {psnr(frames, exact_frames):.1f} dB, latents {diff:.1e}")  # fmt: skip
    return rows


def family_rows(device: str, scratch: Path, repeats: int, config: str) -> list[list[str]]:
    """Ingredients with two people and Concat-ID with two, against diffusers at equal work: Ingredients' base
    (diffusers' ConsisIDPipeline, one person: diffusers has no Ingredients) and, for Concat-ID, diffusers'
    CogVideoXPipeline on the same weights with the two reference frames as video frames."""
    consisid, ingredients, concat_id = scratch / "consisid", scratch / "ingredients", scratch / "concat-id"
    write_snapshot(consisid, config)
    write_snapshot(ingredients, config, "ingredients")
    write_concat_id(concat_id, config)
    pairs = {
        "Ingredients, 2 people": (dict(impl="diffusers", snapshot=str(consisid)),
                                  dict(impl="ours", snapshot=str(ingredients), people=2)),
        "Concat-ID, 2 people": (dict(impl="diffusers-cogvideox", snapshot=str(concat_id / "diffusers")),
                                dict(impl="ours", snapshot=str(concat_id / "two-identities"), people=2,
                                     family="concat-id")),
    }  # fmt: skip
    rows = []
    for family, (reference_spec, ours_spec) in pairs.items():
        best: list[dict | None] = [None, None]
        for _ in range(repeats):
            for i, extra in enumerate((reference_spec, ours_spec)):
                result = measure({"config": config, "device": device, "latents_out": str(scratch / "latents.pt"),
                                  **extra})  # fmt: skip
                if best[i] is None or result["step_s"] < best[i]["step_s"]:
                    best[i] = result
        reference, ours = best
        label = "diffusers ConsisIDPipeline, 1 person" if "Ingredients" in family else "diffusers CogVideoXPipeline"
        rows.append([config, family, label, f"{reference['step_s']:.3f}", f"{ours['step_s']:.3f}",
                     f"{ours['step_s'] / reference['step_s']:.2f}",
                     f"{reference['peak_bytes'] / 2**20:.0f} / {ours['peak_bytes'] / 2**20:.0f}"])  # fmt: skip
    return rows


TEACACHE_CONFIGS = ("small", "medium")  # 50-step runs: "large" would take an hour on a CPU

WAN_CONFIGS = {
    # name: (DiT sizes, latent frames, height, width); text width 4096 as released (ComfyUI's Wan assumes it)
    "wan-small": (WanConfig(dim=256, ffn_dim=512, num_heads=2, num_layers=2), (3, 16, 26)),  # --compass on a CPU
    "wan-medium": (WanConfig(dim=512, ffn_dim=1024, num_heads=4, num_layers=4), (5, 30, 52)),
    "wan-full": (WanConfig(), (21, 60, 104)),  # Wan2.1-T2V-1.3B at 81x480x832
}


def import_comfyui_and_pack(gpu: bool, pytorch_attention: bool = False, sage: bool = False) -> str:
    """ComfyUI from COMFYUI_PATH (default: the pack's dev tree), then this pack as ComfyUI imports a custom node
    (a package named after its folder); returns that package name. As tests/comfy_env.load_in_process does,
    without a base directory of models, and on CUDA with --gpu; `pytorch_attention`: ComfyUI's
    --use-pytorch-cross-attention (PyTorch's SDPA, which ComfyUI picks by default on CUDA but not on the CPU)."""
    tree = Path(os.environ.get("COMFYUI_PATH") or TREE)
    if not (tree / "main.py").is_file():
        raise SystemExit(
            f"No ComfyUI tree at {tree}: set COMFYUI_PATH, or run `python multiid.py test --setup-only` first."
        )
    sys.path.insert(0, str(tree))  # ahead of the repository: ComfyUI's `nodes` module, not the pack's `nodes/`
    from comfy.cli_args import args

    args.cpu = not gpu
    args.use_pytorch_cross_attention = pytorch_attention or args.use_pytorch_cross_attention
    args.use_sage_attention = sage or args.use_sage_attention
    import comfy.utils

    comfy.utils.PROGRESS_BAR_ENABLED = False
    if PACK_NAME not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            PACK_NAME, ROOT / "__init__.py", submodule_search_locations=[str(ROOT)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[PACK_NAME] = module
        spec.loader.exec_module(module)
    return PACK_NAME


@dataclass
class WanRun:
    """Concat-ID Wan's MODEL at a benchmark size with one reference, and its KSampler run."""

    model: Any
    positive: list
    negative: list
    latent: dict
    scheduler: str
    block_runs: list[int]  # one entry per branch the blocks ran for (ComfyUI may batch prompt and negative)

    def ksampler(self, model=None, steps: int = 50, positive=None, negative=None, latent=None) -> torch.Tensor:
        import nodes

        return nodes.common_ksampler(
            model or self.model, 0, steps, 5.0, "euler", self.scheduler, positive or self.positive,
            negative or self.negative, latent or self.latent,
        )[0]["samples"]  # fmt: skip


def concat_id_wan_run(name: str, device: str, weight_dtype: str | None = None) -> WanRun:
    pack = import_comfyui_and_pack(device == "cuda")
    concat_id_wan = sys.modules[f"{pack}.nodes.concat_id_wan.model"]
    from multiid_tools.tiny_models.wan import tiny_concat_id_wan_state_dict

    sizes, (frames, height, width) = WAN_CONFIGS[name]
    sd = tiny_concat_id_wan_state_dict(adaln=True, sizes=sizes)
    sd["time_embedding.0.weight"] = keep_slow_timestep_frequencies(sd["time_embedding.0.weight"])
    weight_dtype = weight_dtype or ("bf16" if device == "cuda" else "fp32")
    model = concat_id_wan.concat_id_model_patcher(sd, ConcatIDWanConfig.from_state_dict(sd), weight_dtype, name)
    del sd
    g = torch.Generator().manual_seed(0)
    reference = torch.randn(1, 16, 1, height, width, generator=g)  # a raw VAE latent, as the Reference node gives
    positive, negative = (
        [[torch.randn(1, 512, sizes.text_dim, generator=g), {concat_id_wan.REFERENCES: reference}]] for _ in range(2)
    )
    block_runs: list[int] = []
    dit = model.model.diffusion_model
    run_blocks = dit.run_blocks
    dit.run_blocks = lambda tokens, *args: block_runs.append(tokens.shape[0]) or run_blocks(tokens, *args)
    run = WanRun(model, positive, negative, {"samples": torch.zeros(1, 16, frames, height, width)},
                 sys.modules[f"{pack}.nodes.schedulers"].LINEAR_TIME, block_runs)  # fmt: skip
    run.ksampler(steps=1)  # loads the model where ComfyUI puts it, outside the timed runs
    return run


def wan_rows(name: str, device: str, teacache_rows: bool = True) -> list[list[str]]:
    """Concat-ID Wan in ComfyUI's KSampler (the release's steps: 50, cfg 5, one reference): uncached against
    the MultiID TeaCache (Wan) node's MODEL at the published thresholds, and against the same WanModel without
    the reference at the same token count."""
    wan = concat_id_wan_run(name, device)
    import comfy.model_management

    from multiid_core.teacache import WAN_THRESHOLDS

    teacache = sys.modules[f"{PACK_NAME}.nodes.teacache"]
    model, block_runs, ksampler = wan.model, wan.block_runs, wan.ksampler

    def run(threshold: float) -> tuple[float, str, torch.Tensor, int]:
        m = teacache.with_teacache(model, threshold, teacache.WAN_FITS) if threshold else model
        block_runs.clear()
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.no_grad():
            latents = ksampler(m)
        if device == "cuda":
            torch.cuda.synchronize()
        peak = f"{torch.cuda.max_memory_allocated() / 2**20:.0f}" if device == "cuda" else "-"
        return time.perf_counter() - start, peak, latents.float().cpu(), sum(block_runs)

    plain_positive, plain_negative = ([[c[0][0], {}]] for c in (wan.positive, wan.negative))
    samples = wan.latent["samples"]
    longer = {"samples": torch.zeros(*samples.shape[:2], samples.shape[2] + 1, *samples.shape[3:])}  # reference's
    plain = per_step_pair(  # tokens as one more video frame
        lambda steps: ksampler(steps=steps),
        lambda steps: ksampler(steps=steps, positive=plain_positive, negative=plain_negative, latent=longer),
    )
    rows = [[name, "the same WanModel, no reference, one more frame", f"{plain[1]:.3f}", "-", "-", "-", "-", "-",
             f"equal token count: with the reference {plain[0]:.3f} s/step = {plain[0] / plain[1]:.2f}x (10 steps, "
             "best of 2)"]]  # fmt: skip
    if not teacache_rows:
        return rows
    exact_s, peak, exact, calls = run(0.0)
    cached = {threshold: run(threshold) for threshold in WAN_THRESHOLDS}
    again_s, again_peak, _, _ = run(0.0)  # timed before and after the cached runs, the best kept: the machine
    if again_s < exact_s:  # may be shared
        exact_s, peak = again_s, again_peak
    rows.insert(
        0,
        [
            name,
            "ComfyUI KSampler, 50 steps",
            f"{exact_s / 50:.3f}",
            "1.00",
            f"{exact_s:.1f}",
            peak,
            "-",
            str(calls),
            "the reference for the TeaCache rows (best of a run before and one after them)",
        ],
    )
    for threshold, (seconds, peak, latents, calls) in cached.items():
        err = ((latents - exact).abs().max() / exact.abs().max()).item()
        rows.append([name, f"+ MultiID TeaCache {threshold}", f"{seconds / 50:.3f}", f"{seconds / exact_s:.2f}",
                     f"{seconds:.1f}", peak, f"{err:.1e}", str(calls),
                     f"{exact_s / seconds:.2f}x; {100 - calls} of 100 branch calls skipped"])  # fmt: skip
    comfy.model_management.unload_all_models()
    return rows


def per_step_pair(first, second, steps: int = 10) -> tuple[float, float]:
    """s/step of two sampling runs (functions of a step count), alternated twice, the best of each kept."""
    best = [float("inf"), float("inf")]
    for _ in range(2):
        for i, run in enumerate((first, second)):
            start = time.perf_counter()
            with torch.no_grad():
                run(steps)
            best[i] = min(best[i], (time.perf_counter() - start) / steps)
    return best[0], best[1]


# Where a step's time goes: torch ops (self CPU time) by kind. Attention counts SDPA and the matmuls and softmax of
# ComfyUI's sub-quadratic kernel; "matmul" the linear layers.
OP_KINDS = {
    "matmul": {"addmm", "mm", "matmul", "linear"},
    "attention": {"_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_efficient_attention",
                  "_scaled_dot_product_flash_attention", "_efficient_attention_forward", "_flash_attention_forward",
                  "bmm", "baddbmm", "_softmax", "softmax"},
    "norms": {"native_layer_norm", "native_group_norm", "_fused_rms_norm", "rms_norm"},
    "activations": {"gelu", "silu", "tanh", "sigmoid"},
    "elementwise": {"mul", "mul_", "add", "add_", "sub", "sub_", "div", "div_", "neg", "cos", "sin", "exp", "pow",
                    "rsqrt", "addcmul", "addcmul_", "where", "lerp", "sum", "mean", "abs", "ne", "eq", "lt", "gt"},
    "copies and casts": {"copy_", "_to_copy", "cat", "clone", "contiguous", "fill_", "zero_", "index", "stack",
                         "index_select", "gather", "scatter", "masked_fill", "repeat", "expand_as"},
    "convolution": {"slow_conv3d_forward", "mkldnn_convolution", "_convolution", "convolution"},
}  # fmt: skip


def op_shares(profile) -> dict[str, float]:
    """Self CPU time of the profiled run by kind of op, in percent; "other": the ops of no kind above."""
    times = {kind: 0.0 for kind in [*OP_KINDS, "other"]}
    for event in profile.key_averages():
        name = event.key.removeprefix("aten::")
        if not event.key.startswith("aten::"):
            continue
        kind = next((k for k, names in OP_KINDS.items() if name in names), "other")
        times[kind] += event.self_cpu_time_total
    total = sum(times.values()) or 1.0
    return {kind: 100 * t / total for kind, t in times.items()}


def profile_rows(device: str, scratch: Path) -> list[list[str]]:
    """One profiled run per family at the medium sizes: ConsisID, Ingredients with two people, Concat-ID Wan with
    one reference and the same WanModel without it."""
    rows = []
    for family, writer, people in (("ConsisID", "consisid", 1), ("Ingredients, 2 people", "ingredients", 2)):
        snapshot = scratch / writer / "snapshot"
        write_snapshot(snapshot, "medium", writer)
        spec = {"config": "medium", "device": device, "snapshot": str(snapshot), "impl": "ours", "people": people,
                "profile": True, "steps": 3, "latents_out": str(scratch / f"{writer}.pt")}  # fmt: skip
        result = measure(spec)
        rows.append([family, f"{result['step_s']:.3f}", *(f"{v:.0f}%" for v in result["shares"].values())])
    wan = concat_id_wan_run("wan-medium", device)
    samples = wan.latent["samples"]
    longer = torch.zeros(*samples.shape[:2], samples.shape[2] + 1, *samples.shape[3:])
    plain = dict(positive=[[wan.positive[0][0], {}]], negative=[[wan.negative[0][0], {}]], latent={"samples": longer})
    for family, inputs in (("Concat-ID Wan, 1 reference", {}), ("WanModel, no reference, equal tokens", plain)):
        with torch.no_grad(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
            start = time.perf_counter()
            wan.ksampler(steps=3, **inputs)
            seconds = (time.perf_counter() - start) / 3
        rows.append([family, f"{seconds:.3f}", *(f"{v:.0f}%" for v in op_shares(profile).values())])
    return rows


COMPASS_BUDGET_S = 480  # 8 minutes: a row starts only if the time it reserves still fits (else it is listed)
COMPASS_STEPS = 5  # timed denoising steps per row; a 50-step video = the first step and setup + 50 x a later one


def compass(device: str, scratch: Path, consisid: str, wan: str, stand_in: str) -> None:
    """--gpu: seconds per 50-step video and peak memory at the released sizes, for each family and speed option,
    printed row by row; a row whose reserved time would end past COMPASS_BUDGET_S is listed as skipped."""
    start = time.perf_counter()
    print("| model | option | s/step | s per 50-step video | peak GiB | notes |\n|---|---|---|---|---|---|", flush=True)

    def row(model: str, option: str, step_s: float, video_s: float, peak_bytes: float, notes: str = "") -> None:
        peak = f"{peak_bytes / 2**30:.1f}" if peak_bytes else "-"  # on a CPU only the ConsisID workers' RSS
        print(f"| {model} | {option} | {step_s:.3f} | {video_s:.1f} | {peak} | {notes} |", flush=True)

    def in_budget(what: str, reserve_s: float) -> bool:
        if time.perf_counter() - start + reserve_s <= COMPASS_BUDGET_S:
            return True
        print(f"| {what} | skipped: would end past the {COMPASS_BUDGET_S} s budget | | | | |", flush=True)
        return False

    real = Path(os.environ.get("COMFYUI_PATH") or TREE) / "models" / "multiid" / "ConsisID-preview"
    snapshot = real if (real / "transformer" / "config.json").is_file() else scratch / "ConsisID-preview"
    if snapshot != real:
        write_snapshot(snapshot, consisid)
    name = f"ConsisID {CONFIGS[consisid][1]['frames']}x{CONFIGS[consisid][1]['height']}x{CONFIGS[consisid][1]['width']}"
    weights = "released weights" if snapshot == real else "random weights"
    options = {"diffusers ConsisIDPipeline": dict(impl="diffusers"), "ours": dict(impl="ours"),
               "ours, fp8 weights": dict(impl="ours", fp8=True)}  # fmt: skip
    if device == "cuda" and importlib.util.find_spec("sageattention"):
        options["ours, SageAttention"] = dict(impl="ours", attention="sage")
    options["ours + TeaCache 0.15"] = dict(impl="ours", teacache=0.15, steps=50)
    for option, extra in options.items():
        steps = extra.get("steps", COMPASS_STEPS)
        if not in_budget(f"{name}, {option}", 120 if steps == 50 else 60):
            continue
        r = measure({"config": consisid, "device": device, "snapshot": str(snapshot), "steps": COMPASS_STEPS,
                     "latents_out": str(scratch / "latents.pt"), **extra})  # fmt: skip
        video_s = r["total_s"] + (50 - steps) * r["step_s"]
        notes = f"{weights}; {50 - r['calls']} of 50 calls skipped" if steps == 50 else weights
        row(name, option, r["step_s"], video_s, r["peak_bytes"], notes)
    compass_wan(device, wan, in_budget, row)
    from stand_in_speed import CONFIGS as STAND_IN_CONFIGS
    from stand_in_speed import stand_in_rows

    _, latents, _ = STAND_IN_CONFIGS[stand_in]
    label = f"Stand-In on {'Wan2.1-T2V-14B' if stand_in == 'gpu' else 'a narrow Wan'}, {video_size(*latents)}"
    if in_budget(label, 180):  # a 14B model built from random weights, then 2 x 3 calls
        for option, first, later, peak in stand_in_rows(device == "cuda", stand_in, calls=2, recomputed=False):
            row(label, option, later, first + 49 * later, peak, "random weights; cond + uncond in one call")


def video_size(latent_frames: int, height: int, width: int) -> str:
    """Wan's pixel size for a latent size (frames x height x width)."""
    return f"{4 * (latent_frames - 1) + 1}x{8 * height}x{8 * width}"


def compass_wan(device: str, name: str, in_budget, row) -> None:
    """Concat-ID Wan (the full 1.3B at 81x480x832 on a GPU): plain, fp8 weights, TeaCache 0.07 at 50 steps."""
    import comfy.model_management

    teacache = sys.modules.get(f"{PACK_NAME}.nodes.teacache")
    _, (frames, height, width) = WAN_CONFIGS[name]
    label = f"Concat-ID Wan {video_size(frames, height, width)}"
    for option, weight_dtype, threshold in (("ComfyUI KSampler", None, 0.0), ("fp8 weights", "fp8_e4m3fn", 0.0),
                                             ("+ MultiID TeaCache 0.07", None, 0.07)):  # fmt: skip
        if not in_budget(f"{label}, {option}", 90 if threshold else 45):
            continue
        wan = concat_id_wan_run(name, device, weight_dtype)
        teacache = teacache or sys.modules[f"{PACK_NAME}.nodes.teacache"]
        model = teacache.with_teacache(wan.model, threshold, teacache.WAN_FITS) if threshold else wan.model
        steps = 50 if threshold else COMPASS_STEPS
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        seconds = []
        for count in (1, steps):
            wan.block_runs.clear()
            began = time.perf_counter()
            with torch.no_grad():
                wan.ksampler(model, count)
            if device == "cuda":
                torch.cuda.synchronize()
            seconds.append(time.perf_counter() - began)
        step_s = (seconds[1] - seconds[0]) / (steps - 1)
        video_s = seconds[1] if threshold else seconds[0] + 49 * step_s
        peak = torch.cuda.max_memory_allocated() if device == "cuda" else 0
        notes = f"{100 - sum(wan.block_runs)} of 100 branch calls skipped" if threshold else ""
        row(label, option, step_s, video_s, peak, f"random weights; one reference{'; ' + notes if notes else ''}")
        del wan, model
        comfy.model_management.unload_all_models()
        comfy.model_management.soft_empty_cache()


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", action="store_true", help="the full architecture on CUDA")
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs per implementation (best kept)")
    parser.add_argument(
        "--only", choices=("consisid", "families", "wan"),
        help="one table: ConsisID against diffusers, Ingredients and Concat-ID against diffusers, or Concat-ID Wan",
    )  # fmt: skip
    parser.add_argument("--profile", action="store_true", help="only the table of where a step's time goes")
    parser.add_argument(
        "--no-teacache", dest="teacache", action="store_false", help="without the 50-step TeaCache rows (faster)"
    )
    parser.add_argument(
        "--compass", action="store_true", help="on the CPU: what --gpu runs, at small sizes (checks the script)"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    if args.gpu and not torch.cuda.is_available():
        raise SystemExit("--gpu needs a CUDA device.")
    configs, device = ["small", "medium", "large"], "cpu"
    if args.gpu or args.compass:
        gpu_sizes = ("full", "wan-full", "gpu") if args.gpu else ("small", "wan-small", "compass-cpu")
        with tempfile.TemporaryDirectory() as scratch:
            import_comfyui_and_pack(args.gpu)
            compass(device, Path(scratch), *gpu_sizes)
        print(f"\ntorch {torch.__version__}, {'CUDA ' + torch.cuda.get_device_name() if args.gpu else 'CPU'}, "
              f"{time.strftime('%Y-%m-%d')}")  # fmt: skip
        return
    if args.profile:
        with tempfile.TemporaryDirectory() as scratch:
            rows = profile_rows(device, Path(scratch))
        print("Where a step's time goes (medium sizes, ours; torch ops' self time by kind)\n")
        print_table(["family", "s/step", *OP_KINDS, "other"], rows)
        return
    if args.only in (None, "consisid"):
        header = ["config", "implementation", "s/step", "ratio", "total s", "peak MiB", "vs diffusers", "calls",
                  "notes"]  # fmt: skip
        with tempfile.TemporaryDirectory() as scratch:
            rows = [r for c in configs for r in rows_for(c, device, Path(scratch), args.repeats, args.teacache)]
        print("ConsisID: ours against diffusers' ConsisIDPipeline (ratio: s/step over diffusers')\n")
        print_table(header, rows)
    if args.only in (None, "families"):
        with tempfile.TemporaryDirectory() as scratch:
            rows = family_rows(device, Path(scratch), args.repeats, "medium")
        print("\nIngredients and Concat-ID (CogVideoX) against diffusers at equal work\n")
        print_table(["config", "family", "reference", "reference s/step", "ours s/step", "ratio",
                     "peak MiB, reference / ours"], rows)  # fmt: skip
    if args.only in (None, "wan"):
        rows = wan_rows("wan-medium", device, args.teacache)  # ComfyUI logs while loading
        print("\nConcat-ID Wan: TeaCache4Wan2.1 in ComfyUI's KSampler (ratio: time over the uncached run)\n")
        header = ["config", "implementation", "s/step", "ratio", "total s", "peak MiB", "vs uncached", "block runs",
                  "notes"]  # fmt: skip
        print_table(header, rows)
    print(f"\ntorch {torch.__version__}, CPU, {time.strftime('%Y-%m-%d')}")


if __name__ == "__main__":
    main()
