"""MultiID Multi-GPU: what one video costs each GPU in communication and compute, a speed model for 2-8 GPUs
beside xDiT's measured ConsisID times, and what CPU ranks measure on a tiny model.

    python benchmarks/multi_gpu.py               # tables a and b (arithmetic), then c (CPU ranks, tiny model)
    python benchmarks/multi_gpu.py --model-only  # tables a and b only: no ComfyUI, no Ray
    python benchmarks/multi_gpu.py --gpu         # CUDA: ConsisID at 49x480x720 on 1 GPU, then 2 (guidance
                                                 # parallel), 4, 6, 8 as the machine has them

a. Per denoising step and rank, at the released sizes (ConsisID and Ingredients on CogVideoX-5B at 49x480x720,
   Concat-ID-Wan on Wan2.1-1.3B at 81x480x832; bf16, cfg on, so every step has both guidance branches): the
   bytes each scheme sends from one GPU to the others, from the collectives the code makes
   (multiid_core/parallel.py; the sharded forwards in multiid_core/dit/cogvideox.py and nodes/concat_id_wan.py;
   nodes/multi_gpu_rank.py), what ComfyUI and the ranks exchange through Ray, and the compute per GPU.
   Table c checks these formulas against the bytes the CPU ranks actually send.
b. Predicted seconds for 50 steps on 1-8 GPUs: compute / N plus communication at a stated bandwidth, anchored
   on xDiT's measured 1-GPU ConsisID time; beside xDiT's measured times.
c. Measured on CPU ranks (Ray actors over gloo) with the tiny ConsisID of the tests: single-process sampling
   against 2 ranks (guidance parallel; Ulysses 2), ratios to the single process measured in the same run, the
   latents' difference, and the collectives' bytes counted in the ranks against table a's formulas.
d. --gpu: absolute seconds on this machine's GPUs. The real ConsisID when `ConsisID-preview` is in ComfyUI's
   models/multiid (COMFYUI_PATH), else a transformer of ConsisID's 5B shape with random bf16 weights built on
   each GPU (speed only: the video is noise).

ComfyUI comes from COMFYUI_PATH, by default the pack's dev tree `.comfyui/ComfyUI` (`python multiid.py test
--setup-only` makes it); Ray from the pack's [multigpu] extra.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent))

from consisid_speed import import_comfyui_and_pack, print_table  # noqa: E402

from multiid_core.parallel import token_splits  # noqa: E402

STEPS = 50
XDIT = {1: ("1 GPU", 114.9), 2: ("guidance 2", 59.7), 6: ("guidance 2 x ring 3", 35.8)}  # H100, 49x480x720, 50 steps
SERIAL_S = 2 * XDIT[2][1] - XDIT[1][1]  # what does not split over GPUs (VAE, encoders), fitted on xDiT's 2-GPU run
LINKS = {"NVLink": 450e9, "PCIe": 25e9}  # bytes/s per direction per GPU: H100 NVSwitch; PCIe 4.0 x16 (or 200 Gb/s IB)
LATENCY_S = 25e-6  # per collective
HOST_BPS = 5e9  # ComfyUI <-> ranks through Ray: serialising, the object store, host <-> GPU copies
RAY_CALL_S = 5e-3  # per step: one Ray task per rank and the wait for it


@dataclass(frozen=True)
class Workload:
    """One video's model calls: the sizes the FLOPs and the collectives depend on."""

    name: str
    family: str  # "cogvideox": text in the joint sequence; "wan": text in cross-attention
    layers: int
    heads: int
    head_dim: int
    ffn: int
    video: int  # video tokens
    references: int  # tokens appended to the video and split with it (Concat-ID's reference frames)
    text: int  # text tokens
    identities: int = 0  # CogVideoX family: faces injected every `interval` blocks
    routed: bool = False  # one residual for both branches (Ingredients as released, masks): crosses the guidance pair
    router: bool = False  # Ingredients' learned router
    out_per_token: int = 64  # values each output token carries (patch volume x 16 channels)
    call: tuple[tuple[int, ...], ...] = ()  # tensors ComfyUI hands the model per call, both branches
    out_shape: tuple[int, ...] = ()  # the prediction of one branch
    interval: int = 2
    face_width: int = 2048  # identity cross-attention: 16 heads x 128
    face_tokens: int = 32
    element: int = 2  # bytes per value: bf16
    text_dim: int = 4096

    @property
    def width(self) -> int:
        return self.heads * self.head_dim

    @property
    def injections(self) -> int:
        return self.layers // self.interval if self.identities else 0


CONSISID = Workload(
    "ConsisID", "cogvideox", layers=42, heads=48, head_dim=64, ffn=4 * 3072, video=13 * 30 * 45, references=0,
    text=226, identities=1, call=((2, 32, 13, 60, 90), (2, 226, 4096)), out_shape=(16, 13, 60, 90),
)  # fmt: skip
INGREDIENTS = replace(CONSISID, name="Ingredients, 2 people", identities=2, routed=True, router=True)
WAN = Workload(
    "Concat-ID-Wan", "wan", layers=30, heads=12, head_dim=128, ffn=8960, video=21 * 30 * 52, references=30 * 52,
    text=512, call=((2, 16, 21, 60, 104), (2, 512, 4096), (2, 16, 1, 60, 104)), out_shape=(16, 21, 60, 104),
)  # fmt: skip
WORKLOADS = (CONSISID, INGREDIENTS, WAN)


# --- a. FLOPs and bytes ----------------------------------------------------------------------------------------


def branch_flops(w: Workload) -> tuple[float, float, float]:
    """(blocks, of which every Ulysses rank repeats, identity injections) FLOPs of one branch's forward.

    A multiply-add is 2 FLOPs. Per block, on N tokens of width C with feed-forward width F: the q, k, v and
    output projections 8NC^2, the feed-forward 4NCF, attention 4N^2C (QK^T and AV). CogVideoX attends over
    [text; video] jointly: the text tokens' projections and feed-forward run on every Ulysses rank. Wan: N =
    video + references; the video tokens' text cross-attention adds 4VC^2 + 4VTC, the text keys and values
    4TC^2 (on every rank). Identity (every 2nd CogVideoX block): per video token 2C*Fi for the query, 2Fi*C per
    identity for the output, 4Q*Fi per identity for attention over Q face tokens, 2C*Fi for Ingredients' router.
    Left out (under 1%): patch embedding, time embedding and modulation, norms, softmax, the face perceiver.
    """
    c, f, v, t = w.width, w.ffn, w.video + w.references, w.text
    if w.family == "cogvideox":
        n = v + t
        blocks = w.layers * (n * (8 * c * c + 4 * c * f) + 4 * n * n * c)
        repeated = w.layers * t * (8 * c * c + 4 * c * f)
    else:
        blocks = w.layers * (v * (8 * c * c + 4 * c * f) + 4 * v * v * c + w.video * (4 * c * c + 4 * t * c))
        repeated = w.layers * 4 * t * c * c
    per_token = 2 * c * w.face_width + w.identities * (2 * w.face_width * c + 4 * w.face_tokens * w.face_width)
    per_token += 2 * c * w.face_width if w.router else 0
    identity = w.injections * w.video * per_token
    return blocks, repeated, identity


@dataclass(frozen=True)
class Scheme:
    """guidance x ring x Ulysses ranks, as the node's inputs make them (parallel.ParallelPlan)."""

    guidance: int = 1
    ulysses: int = 1
    ring: int = 1

    @property
    def world(self) -> int:
        return self.guidance * self.ulysses * self.ring

    @property
    def sequence(self) -> int:
        return self.ulysses * self.ring

    @property
    def batch(self) -> int:
        return 1 if self.guidance == 2 else 2  # rows per rank with cfg on

    def __str__(self) -> str:
        parts = [f"{name} {n}" for name, n in (("guidance", self.guidance), ("ring", self.ring),
                                              ("Ulysses", self.ulysses)) if n > 1]  # fmt: skip
        return " x ".join(parts) or "1 GPU"

    def refusal(self, w: Workload) -> str:
        if w.heads % self.ulysses:
            return f"refused: {w.heads} heads"
        if (w.video + w.references) % self.ring:
            return f"refused: {w.video + w.references} tokens"
        return ""


def rank_flops(w: Workload, s: Scheme) -> float:
    """FLOPs per step of the busiest rank (cfg on: two branches per step)."""
    blocks, repeated, identity = branch_flops(w)
    if s.world == 1:
        return 2 * blocks + identity * (1 if w.routed else 2)
    branches = 1 if s.guidance == 2 else 2
    if w.family == "cogvideox" and s.ring > 1:  # the text queries attend on every ring chunk (their heads)
        n = w.video + w.references + w.text
        repeated += w.layers * 4 * w.text * n * w.width * (1 / s.ulysses - 1 / s.sequence) * s.sequence
    own = branches * ((blocks - repeated) / s.sequence + repeated)
    # Routed identities are computed once, on the unconditional rows (their rank, with guidance parallel).
    return own + (identity if w.routed else branches * identity) / s.sequence


def attention_flops(w: Workload, s: Scheme) -> float:
    """Attention FLOPs per step of one rank (what a ring's transfers can hide behind)."""
    n = w.video + w.references + (w.text if w.family == "cogvideox" else 0)
    return (1 if s.guidance == 2 else 2) * w.layers * 4 * n * n * w.width / s.sequence


def rank_sizes(w: Workload, s: Scheme) -> list[int]:
    """Each rank's tokens of the split sequence, in rank order (SequenceShard.sizes)."""
    return token_splits((w.video + w.references) // s.ring, s.ulysses) * s.ring


def rank_bytes(w: Workload, s: Scheme, group: int, piece: int, uncond: int = 1) -> dict:
    """Bytes one rank (guidance group `group`, position `piece` among the ranks sharing its tokens) sends to and
    receives from the other ranks in one model call, and its collectives: what multiid_core.parallel does.

    Ulysses, per block: q, k, v each go from [own tokens, all heads] to [the chunk's tokens, own heads]
    (all-to-all) and the attention output back (all-to-all); CogVideoX's text tokens are on every rank, their
    attention output's heads are all-gathered. Ring: the chunk's video keys and values (own heads) pass ring - 1
    times to the next rank (isend/irecv, while attending). After the blocks the video tokens' output is
    all-gathered (padded to the longest slice), and the routing the identities recorded (float32, [tokens,
    identities]) too. Guidance parallel with routed identities: at every injection the unconditional rank (group
    `uncond`) broadcasts its residual to its pair, and only the unconditional group records routing.
    """
    e, batch, u, r = w.element, s.batch, s.ulysses, s.ring
    sent = received = collectives = 0
    sizes = rank_sizes(w, s)
    heads = batch * (w.heads // u) * w.head_dim * e  # bytes of one token's share of the heads
    if u > 1:
        chunk = (w.video + w.references) // r
        mine, others = sizes[piece], chunk - sizes[piece]
        sent += w.layers * (3 * mine * (u - 1) + others) * heads
        received += w.layers * (3 * others + mine * (u - 1)) * heads
        collectives += 4 * w.layers
        if w.family == "cogvideox":  # text attention output: every Ulysses rank's heads to the others
            sent += w.layers * w.text * (u - 1) * heads
            received += w.layers * w.text * (u - 1) * heads
            collectives += w.layers
    if r > 1:
        ring = ring_bytes(w, s)
        sent, received, collectives = sent + ring, received + ring, collectives + w.layers * (r - 1)
    if s.sequence > 1:
        # The prediction: CogVideoX gathers every token after the text (references are cut later), Wan the
        # video tokens of each slice.
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        gathered = sizes if w.family == "cogvideox" else [min(max(w.video - a, 0), n) for a, n in zip(starts, sizes)]
        output = max(gathered) * batch * w.out_per_token * e * (s.sequence - 1)
        sent, received, collectives = sent + output, received + output, collectives + 1
        if w.identities and (not w.routed or s.guidance == 1 or group == uncond):
            routing = max(token_splits(w.video // r, u)) * w.identities * 4 * (s.sequence - 1)
            sent, received, collectives = sent + routing, received + routing, collectives + 1
    if s.guidance == 2 and w.routed:
        residuals = w.injections * sizes[piece] * w.width * e
        if group == uncond:
            sent += residuals
        else:
            received += residuals
        collectives += w.injections
    return {"sent": sent, "received": received, "collectives": collectives}


def ring_bytes(w: Workload, s: Scheme) -> int:
    """What a rank sends (and receives) around its ring in one call: per block, ring - 1 times its chunk's video
    keys and values for its share of the heads."""
    heads = s.batch * (w.heads // s.ulysses) * w.head_dim * w.element
    return w.layers * (s.ring - 1) * 2 * (w.video + w.references) // s.ring * heads if s.ring > 1 else 0


def busiest(w: Workload, s: Scheme) -> dict:
    ranks = [rank_bytes(w, s, g, p) for g in range(s.guidance) for p in range(s.sequence)]
    return {k: max(r[k] for r in ranks) for k in ("sent", "received", "collectives")}


def ray_bytes(w: Workload, s: Scheme) -> tuple[int, int]:
    """(to each rank, back from each group's first rank) per step: the whole call goes to every rank, each
    guidance group's first rank returns its rows of the prediction."""
    to_rank = sum(math.prod(shape) for shape in w.call) * w.element
    back = s.batch * math.prod(w.out_shape) * w.element
    return to_rank, back


TABLE_A = [Scheme(2), Scheme(1, 2), Scheme(1, 4), Scheme(1, 8), Scheme(2, 2), Scheme(2, 3), Scheme(2, 4),
           Scheme(2, 1, 2), Scheme(2, 1, 3), Scheme(2, 2, 2)]  # fmt: skip


def table_a() -> list[list[str]]:
    rows = []
    for w in WORKLOADS:
        single = rank_flops(w, Scheme())
        rows.append([w.name, "1 GPU", "1", str(w.video + w.references), "0", "0", "0", "0", f"{single / 1e12:.1f}",
                     "1.000"])  # fmt: skip
        for s in TABLE_A:
            if s.refusal(w):
                rows.append([w.name, str(s), str(s.world), *["-"] * 6, s.refusal(w)])
                continue
            comm = busiest(w, s)
            to_rank, back = ray_bytes(w, s)
            flops = rank_flops(w, s)
            rows.append([
                w.name, str(s), str(s.world), str(max(rank_sizes(w, s))), f"{comm['collectives']}",
                f"{comm['sent'] / 1e9:.3f}", f"{comm['received'] / 1e9:.3f}",
                f"{to_rank / 1e6:.1f} / {back / 1e6:.1f}", f"{flops / 1e12:.1f}", f"{flops / single:.3f}",
            ])  # fmt: skip
    return rows


# --- b. the speed model ----------------------------------------------------------------------------------------

SCHEMES = {
    1: [Scheme()],
    2: [Scheme(2), Scheme(1, 2)],
    4: [Scheme(2, 2), Scheme(2, 1, 2), Scheme(1, 4)],
    6: [Scheme(2, 3), Scheme(2, 1, 3), Scheme(1, 6)],
    8: [Scheme(2, 4), Scheme(2, 2, 2), Scheme(1, 8), Scheme(1, 4, 2)],
}


def transformer_rate() -> float:
    """FLOP/s of one H100 on ConsisID, from xDiT's 1-GPU time less the serial part."""
    return STEPS * rank_flops(CONSISID, Scheme()) / (XDIT[1][1] - SERIAL_S)


def predicted_s(w: Workload, s: Scheme, link_bps: float) -> float:
    """SERIAL_S + 50 x (compute of the busiest rank + its GPU traffic + latencies + the Ray round trip). A ring's
    transfers overlap the attention of the chunk held meanwhile; only what they take beyond it counts."""
    rate = transformer_rate()
    step = rank_flops(w, s) / rate
    if s.world > 1:
        comm, ring = busiest(w, s), ring_bytes(w, s)
        exposed = max(0.0, ring / link_bps - attention_flops(w, s) * (s.ring - 1) / s.ring / rate)
        step += (max(comm["sent"], comm["received"]) - ring) / link_bps + exposed + comm["collectives"] * LATENCY_S
        to_rank, back = ray_bytes(w, s)
        step += (to_rank + back) / HOST_BPS + RAY_CALL_S
    return SERIAL_S + STEPS * step


def table_b() -> list[list[str]]:
    rows = []
    for w in WORKLOADS:
        one = predicted_s(w, Scheme(), 1.0)
        for gpus, schemes in SCHEMES.items():
            for s in schemes:
                xdit = XDIT.get(gpus) if w is CONSISID and s.ulysses == 1 and (gpus < 6 or s.ring > 1) else None
                measured = f"{xdit[1]:.1f} s ({xdit[0]})" if xdit and (gpus != 2 or s.guidance == 2) else ""
                if s.refusal(w):
                    rows.append([w.name, str(gpus), str(s), "-", "-", "-", "-", s.refusal(w)])
                    continue
                cells = []
                for bps in LINKS.values():
                    seconds = predicted_s(w, s, bps)
                    cells += [f"{seconds:.1f}", f"{one / seconds:.2f}x"]
                rows.append([w.name, str(gpus), str(s), *cells, measured])
    return rows


# --- c. CPU ranks on the tiny model ----------------------------------------------------------------------------

TINY_HEADS = dict(num_attention_heads=4, attention_head_dim=48, LFE_output_dim=128)  # as tests/comfy/test_multi_gpu
TINY_SIZE = dict(width=160, height=128, frames=5)  # latents 2 x 16 x 20: 160 video tokens
TINY = Workload(
    "tiny", "cogvideox", layers=2, heads=4, head_dim=48, ffn=4 * 192, video=2 * 8 * 10, references=0, text=226,
    identities=1, element=4,
)  # fmt: skip


def count_collectives() -> None:
    """Ray's worker_process_setup_hook for the counting runs: each rank adds up what its collectives send and
    receive (payload to and from other ranks) and writes it to MULTIID_BENCH_COUNTS/<pid>.json."""
    import json
    import os

    import torch.distributed as dist

    folder, counts = os.environ["MULTIID_BENCH_COUNTS"], {"sent": 0, "received": 0, "collectives": 0}

    def size(t) -> int:
        return t.numel() * t.element_size()

    def note(sent: int, received: int) -> None:
        counts["sent"] += sent
        counts["received"] += received
        counts["collectives"] += 1
        counts["rank"] = dist.get_rank()
        with open(os.path.join(folder, f"{os.getpid()}.json"), "w") as file:
            json.dump(counts, file)

    all_to_all, all_gather, broadcast, exchange = (
        dist.all_to_all_single, dist.all_gather, dist.broadcast, dist.batch_isend_irecv
    )  # fmt: skip

    def counted_all_to_all(output, input, output_split_sizes=None, input_split_sizes=None, group=None, **kw):
        me, world = dist.get_rank(group), dist.get_world_size(group)
        ins = input_split_sizes or [input.shape[0] // world] * world
        outs = output_split_sizes or [output.shape[0] // world] * world
        row_in, row_out = size(input[:1]), size(output[:1])
        note((sum(ins) - ins[me]) * row_in, (sum(outs) - outs[me]) * row_out)
        return all_to_all(output, input, output_split_sizes, input_split_sizes, group=group, **kw)

    def counted_all_gather(tensor_list, tensor, group=None, **kw):
        me = dist.get_rank(group)
        note(size(tensor) * (len(tensor_list) - 1), sum(size(t) for i, t in enumerate(tensor_list) if i != me))
        return all_gather(tensor_list, tensor, group=group, **kw)

    def counted_broadcast(tensor, src, group=None, **kw):
        if dist.get_rank() == src:
            note(size(tensor) * (dist.get_world_size(group) - 1), 0)
        else:
            note(0, size(tensor))
        return broadcast(tensor, src, group=group, **kw)

    def counted_exchange(ops):
        note(sum(size(op.tensor) for op in ops if op.op is dist.isend),
             sum(size(op.tensor) for op in ops if op.op is dist.irecv))  # fmt: skip
        return exchange(ops)

    dist.all_to_all_single, dist.all_gather, dist.broadcast = counted_all_to_all, counted_all_gather, counted_broadcast
    dist.batch_isend_irecv = counted_exchange


def setup_comfyui(gpu: bool) -> tuple[str, dict]:
    """ComfyUI and the pack in this process; the pack's modules this benchmark calls."""
    pack = import_comfyui_and_pack(gpu)
    import comfy.utils

    comfy.utils.PROGRESS_BAR_ENABLED = False
    names = {"loader": "nodes.cogvideox.loader", "engine": "nodes.multi_gpu.engine",
             "sampler": "nodes.cogvideox.sampler", "model_folders": "nodes.model_folders",
             "routing": "multiid_core.routing", "inputs": "multiid_core.cogvideox.inputs"}  # fmt: skip
    return pack, {short: sys.modules[f"{pack}.{name}"] for short, name in names.items()}


def write_tiny_snapshot(folder: Path) -> None:
    import multiid_tools.tiny_models.cogvideox as tiny

    original = dict(tiny.TINY_TRANSFORMER)
    tiny.TINY_TRANSFORMER.update(TINY_HEADS)
    try:
        tiny.write_tiny_consisid_snapshot(folder)
    finally:
        tiny.TINY_TRANSFORMER.clear()
        tiny.TINY_TRANSFORMER.update(original)


def prompts(width: int, seed: int = 0) -> tuple[list, list]:
    g = torch.Generator().manual_seed(seed)
    positive, negative = (torch.randn(1, 226, width, generator=g) for _ in range(2))
    return [[positive, {}]], [[negative, {}]]


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).abs().max() / b.float().abs().max()).item()


def settings(m: dict, s: Scheme, devices: str = "cpu"):
    """The node's settings for a scheme (MultiID Multi-GPU's inputs)."""
    return m["engine"].MultiGPUSettings(
        world_size=s.world, guidance_parallel=s.guidance == 2, ulysses_degree=s.ulysses, ray_address="",
        devices=devices, ring_degree=s.ring,
    )  # fmt: skip


def close(model) -> None:
    """Ends a parallel MODEL's ranks now (not when the garbage collector gets to it)."""
    import comfy.model_management as mm

    mm.unload_all_models()
    dit = model.model.diffusion_model
    if hasattr(dit, "group"):
        dit.group.close()
    gc.collect()


def cpu_rows(steps: int, repeats: int) -> tuple[list[list[str]], list[list[str]]]:
    """Table c: (timings, counted bytes against the formulas)."""

    _, m = setup_comfyui(gpu=False)
    import folder_paths

    with tempfile.TemporaryDirectory(prefix="multiid-multigpu-") as folder:
        scratch = Path(folder)
        folder_paths.add_model_folder_path("multiid", str(scratch / "multiid"))
        return measure_cpu(m, scratch, steps, repeats)


def measure_cpu(m: dict, scratch: Path, steps: int, repeats: int) -> tuple[list[list[str]], list[list[str]]]:
    from multiid_tools.tiny_models.identities import random_identity

    write_tiny_snapshot(scratch / "multiid" / "ConsisID-4heads")
    model, vae = m["loader"].load_video_model("ConsisID-4heads", "from model folder", "fp32", "same as precision")
    conditioning = prompts(model.model.diffusion_model.config.text_embed_dim)
    size = m["inputs"].VideoSize(**TINY_SIZE)
    one = random_identity(1)
    masks = [torch.zeros(1, 128, 160) for _ in range(2)]
    masks[0][:, :, :80], masks[1][:, :, 80:] = 1, 1
    two = m["routing"].IdentitySet([random_identity(1), random_identity(2)], masks, mode="masks")

    def sample(mdl, identity, n: int = steps) -> tuple[float, torch.Tensor]:
        start = time.perf_counter()
        latents, _, _ = m["sampler"].sample_video(
            mdl, vae, *conditioning, identity, size, n, 6.0, False, "CogVideoX DPM", 5, 1.0
        )
        return time.perf_counter() - start, latents

    def best(mdl, identity) -> tuple[float, torch.Tensor]:
        sample(mdl, identity, 1)  # first call: loads, allocates
        runs = [sample(mdl, identity) for _ in range(repeats)]
        return min(r[0] for r in runs), runs[0][1]

    schemes = [Scheme(2), Scheme(1, 2), Scheme(1, 1, 2), Scheme(2, 2)]
    threads = torch.get_num_threads()

    def single(n: int) -> tuple[float, torch.Tensor]:
        torch.set_num_threads(n)
        try:
            return best(model, one)
        finally:
            torch.set_num_threads(threads)

    references = {n: single(n) for n in (1, threads)}
    reference = references[1][1]
    timed = {}
    for scheme in schemes:
        start = time.perf_counter()
        parallel = m["engine"].parallel_model(model, settings(m, scheme))
        started = time.perf_counter() - start
        seconds, latents = best(parallel, one)
        timed[f"{scheme} ({scheme.world} ranks)"] = (started, seconds, rel_err(latents, reference))
        close(parallel)
    for n in references:  # before and after the ranks ran, the best kept: the machine may be shared
        again = single(n)
        references[n] = (min(references[n][0], again[0]), references[n][1])
    one_s, all_s = references[1][0], references[threads][0]
    timing = [["one process, 1 torch thread (the reference)", "-", f"{one_s:.2f}", f"{one_s / steps * 1e3:.0f}",
               "1.00", f"{one_s / all_s:.2f}", "-"],
              [f"one process, {threads} torch threads", "-", f"{all_s:.2f}", f"{all_s / steps * 1e3:.0f}",
               f"{all_s / one_s:.2f}", "1.00", "-"]]  # fmt: skip
    for label, (started, seconds, err) in timed.items():
        timing.append([f"MultiID Multi-GPU, {label}", f"{started:.1f}", f"{seconds:.2f}",
                       f"{seconds / steps * 1e3:.0f}", f"{seconds / one_s:.2f}", f"{seconds / all_s:.2f}",
                       f"{err:.1e}"])  # fmt: skip
    identities = {"one": (one, sample(model, one)[1]), "two": (two, sample(model, two)[1])}
    counting = count_rows(m, model, sample, identities, scratch, steps)
    return timing, counting


def count_rows(m, model, sample, identities: dict, scratch: Path, steps: int) -> list[list[str]]:
    """The collectives' bytes counted inside the ranks (worker_process_setup_hook) against rank_bytes, and the
    latents against one process's (`identities`: key -> (identity, latents))."""
    import ray

    runtime = m["engine"].RUNTIME
    rows = []
    routed = replace(TINY, identities=2, routed=True)
    cases = [
        ("1 person", "one", TINY, scheme)
        for scheme in (Scheme(2), Scheme(1, 2), Scheme(1, 1, 2), Scheme(2, 2), Scheme(2, 1, 2))
    ]
    cases += [("2 people, masks", "two", routed, scheme) for scheme in (Scheme(2), Scheme(2, 2), Scheme(2, 1, 2))]
    for number, (label, key, workload, scheme) in enumerate(cases):
        folder = scratch / f"counts-{number}"
        folder.mkdir()
        if ray.is_initialized():
            ray.shutdown()
        ray.init(address="local", include_dashboard=False, log_to_driver=False,
                 runtime_env={"worker_process_setup_hook": count_collectives,
                              "env_vars": {"MULTIID_BENCH_COUNTS": str(folder)}})  # fmt: skip
        runtime.config, runtime.started_here = ("", ""), True  # the node uses this Ray (same settings as its own)
        parallel = m["engine"].parallel_model(model, settings(m, scheme))
        identity, reference = identities[key]
        err = rel_err(sample(parallel, identity, steps)[1], reference)
        close(parallel)
        counted = {}
        for file in folder.glob("*.json"):
            entry = json.loads(file.read_text())
            counted[entry["rank"]] = entry
        for rank in range(scheme.world):
            g, piece = divmod(rank, scheme.sequence)
            # ComfyUI batches the negative first (cond_or_uncond [1, 0]): guidance group 0 is the unconditional.
            want = {k: steps * v for k, v in rank_bytes(workload, scheme, g, piece, uncond=0).items()}
            got = counted.get(rank, {"sent": 0, "received": 0, "collectives": 0})
            same = all(got[k] == want[k] for k in want)
            rows.append([label, str(scheme), str(rank), str(got["collectives"]),
                         str(want["collectives"]), str(got["sent"]), str(want["sent"]), str(got["received"]),
                         str(want["received"]), "yes" if same else "NO", f"{err:.1e}"])  # fmt: skip
    return rows


# --- d. GPUs ---------------------------------------------------------------------------------------------------

FULL_SIZE = dict(width=720, height=480, frames=49)
SMOKE_SIZE = dict(width=160, height=128, frames=5)
SMOKE_SHAPE = dict(num_attention_heads=4, attention_head_dim=48, num_layers=2, LFE_output_dim=128, LFE_vit_dim=64,
                   text_embed_dim=64, sample_frames=9, sample_height=16, sample_width=20)  # fmt: skip
SMALL_VAE = dict(block_out_channels=(8, 8, 8, 8), layers_per_block=1, latent_channels=16, norm_num_groups=4,
                 temporal_compression_ratio=4, scaling_factor=0.7)  # fmt: skip


def random_consisid(pack: str, shape: dict, precision: str, seed: int = 0):
    """The MODEL of a ConsisID-shaped transformer with random weights, built where ComfyUI computes; also the
    reload factory the ranks call (Ray ships it by value), so every rank builds the same weights."""
    import importlib

    import comfy.model_management as mm

    # Imported by name: an attribute named like torch.ops in this function would make Ray ship torch.ops with it.
    weightless = importlib.import_module("comfy.ops").disable_weight_init
    # By the pack's name, as ComfyUI imported it (in a rank: as the rank's actor registered it).
    dit, loading, families, loader = (
        importlib.import_module(f"{pack}.{name}")
        for name in ("multiid_core.cogvideox.transformer", "multiid_core.cogvideox.checkpoint",
                     "multiid_core.families", "nodes.cogvideox.loader")
    )  # fmt: skip
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[precision]
    config = dit.CogVideoXConfig.from_dict({**loading.RELEASED_TRANSFORMER_CONFIG, **shape})
    device = mm.get_torch_device()
    transformer = dit.CogVideoXTransformer(config, weightless, dtype=dtype, device=device)
    g = torch.Generator(device).manual_seed(seed)
    with torch.no_grad():
        for name, tensor in [*transformer.named_parameters(), *transformer.named_buffers()]:
            if not tensor.is_floating_point():
                continue
            if "norm" in name and name.endswith("weight"):
                tensor.fill_(1.0)
            elif name.endswith("bias"):
                tensor.zero_()
            else:
                tensor.normal_(0.0, 0.02, generator=g)
    from diffusers import AutoencoderKLCogVideoX

    vae = AutoencoderKLCogVideoX(**SMALL_VAE).to(device=device, dtype=dtype).eval()
    core = loading.CogVideoXModel(families.CONSISID, transformer, vae, dict(loading.RELEASED_SCHEDULER_CONFIG), dtype,
                                  "random weights")  # fmt: skip
    patcher, video_vae = loader.video_model(core)
    patcher.cached_patcher_init = (random_consisid_patcher, (pack, shape, precision, seed))
    return patcher, video_vae


def random_consisid_patcher(pack: str, shape: dict, precision: str, seed: int = 0, **comfy_options):
    return random_consisid(pack, shape, precision, seed)[0]


def gpu_rows(steps: int, smoke: bool) -> list[list[str]]:
    """Seconds for one video on 1 GPU, then on 2 (guidance parallel), 4, 6, 8 (guidance 2 x Ulysses) GPUs."""
    from multiid_tools.tiny_models.identities import random_identity

    pack, m = setup_comfyui(gpu=not smoke)
    import comfy.model_management as mm

    real = not smoke and any(
        (s / "transformer" / "config.json").is_file() and s.name == "ConsisID-preview"
        for s in m["model_folders"].snapshots()
    )
    if real:
        model, vae = m["loader"].load_video_model("ConsisID-preview", "from model folder", "bf16",
                                                       "same as precision")  # fmt: skip
        what = "ConsisID-preview (real weights)"
    else:
        shape = SMOKE_SHAPE if smoke else {}
        model, vae = random_consisid(pack, shape, "fp32" if smoke else "bf16")
        what = "CogVideoX-5B/ConsisID shape, random weights" if not smoke else "smoke test: tiny random model on CPU"
    config = model.model.diffusion_model.config
    size = m["inputs"].VideoSize(**(SMOKE_SIZE if smoke else FULL_SIZE))
    conditioning = prompts(config.text_embed_dim)
    identity = random_identity(0, config.LFE_vit_dim)

    def run(mdl) -> tuple[float, torch.Tensor]:
        if not smoke:
            torch.cuda.synchronize()
        start = time.perf_counter()
        latents, _, _ = m["sampler"].sample_video(
            mdl, vae, *conditioning, identity, size, steps, 6.0, False, "CogVideoX DPM", 42, 1.0
        )
        if not smoke:
            torch.cuda.synchronize()
        return time.perf_counter() - start, latents.float().cpu()

    gpus = 2 if smoke else torch.cuda.device_count()
    run(model)  # loads the weights where ComfyUI puts them
    single_s, reference = run(model)
    rows = [[what, "1 GPU (in ComfyUI)", "-", f"{single_s:.1f}", "1.00x", "-"]]
    mm.unload_all_models()  # the ranks get the GPUs to themselves; the loader's copy stays in RAM
    # guidance 2 x Ulysses up to 8 GPUs, and at 6 GPUs also xDiT's layout (guidance 2 x ring 3)
    for scheme in (Scheme(2), Scheme(2, 2), Scheme(2, 3), Scheme(2, 1, 3), Scheme(2, 4)):
        if scheme.world > gpus:
            continue
        start = time.perf_counter()
        parallel = m["engine"].parallel_model(model, settings(m, scheme, "cpu" if smoke else ""))
        started = time.perf_counter() - start
        run(parallel)  # warm: the ranks' first call
        seconds, latents = run(parallel)
        close(parallel)
        rows.append([what, str(scheme), f"{started:.0f}", f"{seconds:.1f}", f"{single_s / seconds:.2f}x",
                     f"{rel_err(latents, reference):.1e}"])  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-only", action="store_true", help="tables a and b only (arithmetic)")
    parser.add_argument("--gpu", action="store_true", help="time ConsisID on this machine's GPUs (table d)")
    parser.add_argument("--steps", type=int, help="denoising steps of the measured runs (CPU 8, GPU 50)")
    parser.add_argument("--repeats", type=int, default=2, help="timed CPU runs per configuration (best kept)")
    parser.add_argument(
        "--gpu-smoke", action="store_true", help="run --gpu's code on 2 CPU ranks with a tiny model (checks the script)"
    )
    args = parser.parse_args()
    if args.gpu or args.gpu_smoke:
        if args.gpu and not torch.cuda.is_available():
            raise SystemExit("--gpu needs CUDA devices.")
        steps = args.steps or (2 if args.gpu_smoke else STEPS)
        header = ["model", "scheme", "ranks' start s", f"sampling s ({steps} steps)", "speed-up", "latents vs 1 GPU"]
        rows = gpu_rows(steps, args.gpu_smoke)
        print(f"\nd. One video at {'49x480x720' if args.gpu else 'smoke size'}, {steps} steps, cfg 6 (CogVideoX DPM)\n")
        print_table(header, rows)
        where = "CPU" if args.gpu_smoke else f"{torch.cuda.device_count()} x {torch.cuda.get_device_name()}"
        print(f"\ntorch {torch.__version__}, {where}, {time.strftime('%Y-%m-%d')}")
        return
    print("a. Per denoising step (cfg on: both branches), per rank: GPU-to-GPU bytes of the busiest rank, ComfyUI <->")
    print("   rank bytes through Ray, and compute. bf16. ConsisID/Ingredients: CogVideoX-5B at 49x480x720 (17550 video")
    print("   + 226 text tokens, 42 blocks, 48 heads x 64); Concat-ID-Wan: Wan2.1-1.3B at 81x480x832 (32760 video +")
    print("   1560 reference tokens, 512 text tokens in cross-attention, 30 blocks, 12 heads x 128).\n")
    header = ["model", "scheme", "ranks", "tokens/rank", "collectives", "sent GB", "received GB",
              "Ray MB to rank / back", "TFLOP/rank", "of 1 GPU"]  # fmt: skip
    print_table(header, table_a())
    print("\n   FLOPs per block (2 per multiply-add), N tokens of width C, feed-forward width F: 8NC^2 (q, k, v, out)")
    print("   + 4NCF (feed-forward) + 4N^2C (attention); Wan adds the video tokens' text cross-attention; identity")
    print("   injections per video token (see branch_flops). Text tokens' projections repeat on every Ulysses rank.")
    print(
        f"\nb. Predicted seconds for {STEPS} steps = S + {STEPS} x (TFLOP per rank / R + bytes / link + collectives x "
        f"{LATENCY_S * 1e6:.0f} us\n   + Ray bytes / {HOST_BPS / 1e9:.0f} GB/s + {RAY_CALL_S * 1e3:.0f} ms). "
        f"R = {transformer_rate() / 1e12:.0f} TFLOP/s: xDiT's 1-GPU ConsisID time (H100) less S; S = {SERIAL_S:.1f} s\n"
        "   that does not split (VAE, encoders, scheduler), fitted so guidance 2 matches xDiT's 2-GPU time (the\n"
        "   model's one free parameter). Links per direction per GPU: NVLink/NVSwitch 450 GB/s (H100), PCIe 4.0 x16\n"
        "   25 GB/s (also about 200 Gb/s InfiniBand between machines). Only a ring's transfers overlap compute (the\n"
        "   attention of the chunk held meanwhile: only the time beyond it counts); the others wait. An upper bound:\n"
        "   a GPU doing 1/N of the work is taken to be as efficient per FLOP as one doing all of it; xDiT's 6-GPU\n"
        "   run is slower than this bound predicts.\n"
    )
    header = ["model", "GPUs", "scheme", "NVLink s", "speed-up", "PCIe s", "speed-up", "xDiT measured (H100)"]
    print_table(header, table_b())
    if args.model_only:
        return
    steps = args.steps or 8
    timing, counting = cpu_rows(steps, args.repeats)
    cores = os.cpu_count()
    print(
        "\nc. Measured: CPU ranks (Ray actors, gloo) against one process, tiny ConsisID (2 blocks, 4 heads x 48,\n"
        f"   5x128x160: 160 video tokens), {steps} steps, cfg 6, fp32, {cores} cores; each of P ranks gets cores / P\n"
        "   torch threads (1 here). Ratio: sampling time over that of one process with 1 thread, measured in the same\n"
        "   run; the next column over one process with every thread. Best of repeats; the load average is printed\n"
        "   at the end (a shared machine slows a process using every core most).\n"
    )
    header = ["run", "ranks' start s", f"sampling s ({steps} steps)", "ms/step", "ratio", "ratio to all threads",
              "latents vs one process"]  # fmt: skip
    print_table(header, timing)
    print("\n   The same runs' collectives, counted inside each rank, against table a's formulas at the tiny sizes")
    print(f"   (fp32; {steps} model calls):\n")
    header = ["identities", "scheme", "rank", "collectives", "formula", "bytes sent", "formula", "bytes received",
              "formula", "equal", "latents vs one process"]  # fmt: skip
    print_table(header, counting)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\ntorch {torch.__version__}, CPU, {time.strftime('%Y-%m-%d')}; load average at the end {load}")


if __name__ == "__main__":
    main()
