"""What one rank of MultiID Multi-GPU does in its own process: load the model with its own ComfyUI model
management, join the torch.distributed group, and run its share of each model call.

A call holds what ComfyUI's `BaseModel._apply_model` hands the diffusion model (latents with any concat
channels, timesteps, text, the conditioning's extra inputs) and the guidance branch of each batch chunk. With
guidance parallel each guidance group takes one branch's rows; with Ulysses each rank of a group takes a slice
of the video tokens (`multiid_core.parallel`). The first rank of each group returns its rows.
"""

from __future__ import annotations

import datetime
import gc
import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

import comfy.model_management as mm
import folder_paths
import torch
import torch.distributed as dist

from ...multiid_core.parallel import ParallelPlan, PeerResiduals, SequenceShard
from ...multiid_core.routing import RoutingRecorder
from ..options import PEER_RESIDUALS, SHARD

OPTIONS = ("sigmas", "sample_sigmas", "rope_options")  # transformer options a rank needs (the rest stay here)
JOIN_TIMEOUT = datetime.timedelta(minutes=10)  # a collective waiting longer than this fails (a peer is gone)


@dataclass(frozen=True)
class SentBefore:
    """Stands for a conditioning object (an IdentityCondition) or a method's transformer option (Stand-In's faces,
    Phantom's placement) the ranks received in an earlier call."""

    key: int


@dataclass
class ModelCall:
    """One diffusion-model call, as the driver's ComfyUI made it."""

    x: torch.Tensor
    timesteps: torch.Tensor
    context: torch.Tensor | None
    kwargs: dict[str, Any]
    branches: list[int]  # cond_or_uncond: the guidance branch of each equal chunk of the batch
    uuids: list[Any]
    options: dict[str, Any]
    objects: dict[int, Any] = field(default_factory=dict)  # conditioning objects and options sent for the first time
    forget: bool = False  # the driver dropped its record of sent objects: drop ours first


@dataclass
class RankResult:
    """A guidance group's rows of the output, and the routing its identity recorded (summed, count)."""

    rows: list[int]
    out: torch.Tensor
    routing: tuple[torch.Tensor, int] | None


class RankWorker:
    def __init__(self, setup: dict[str, Any]) -> None:
        folder_paths.folder_names_and_paths.update(
            {name: (list(paths), set(extensions)) for name, (paths, extensions) in setup["folders"].items()}
        )
        self.plan = ParallelPlan(setup["guidance"], setup["ulysses"], setup["ring"])
        self.rank = setup["rank"]
        self.label = f"rank {self.rank} (pid {os.getpid()} on {socket.gethostname()})"
        if setup.get("threads"):
            torch.set_num_threads(setup["threads"])
        self.patcher = None
        self.objects: dict[int, Any] = {}
        self.shard: SequenceShard | None = None
        self.pair: Any = None

    def address(self) -> tuple[str, int]:
        """This machine's address and a free port, where rank 0 hosts the group's rendezvous."""
        import ray

        with socket.socket() as s:
            s.bind(("", 0))
            return ray.util.get_node_ip_address(), s.getsockname()[1]

    def join(self, master: str, port: int) -> str:
        device = mm.get_torch_device()
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(
            backend, init_method=f"tcp://{master}:{port}", rank=self.rank, world_size=self.plan.world,
            timeout=JOIN_TIMEOUT,
        )  # fmt: skip
        plan = self.plan
        g, piece = plan.coordinates(self.rank)
        for group in range(plan.guidance):  # every rank creates every group, in the same order
            ranks = [plan.rank(group, s) for s in range(plan.sequence)]
            sequence = dist.new_group(ranks)
            ulysses = [dist.new_group(ranks[r * plan.ulysses : (r + 1) * plan.ulysses]) for r in range(plan.ring)]
            ring = [dist.new_group(ranks[u :: plan.ulysses]) for u in range(plan.ulysses)]
            if group == g:
                chunk, mine = divmod(piece, plan.ulysses)
                self.shard = SequenceShard(piece, plan.sequence, sequence, plan.ring, ulysses[chunk], ring[mine])
        for s in range(plan.sequence):
            created = dist.new_group([plan.rank(group, s) for group in range(plan.guidance)])
            if s == piece:
                self.pair = created
        return f"{self.label}, {device}"

    def load(self, factory: tuple, patches: dict, dit_class: type) -> None:
        """The model through the loader's own reload factory, with the driver's weight patches (LoRAs), its
        diffusion model running as the driver's does (ComfyUI's loaders build a plain WanModel: a method's
        class adopts it)."""
        if self.patcher is not None:  # the previous model leaves the device and the process first
            self.patcher = None
            self.offload()
            gc.collect()
        function, args = factory
        patcher = function(*args)
        if type(patcher.model.diffusion_model) is not dit_class:
            dit_class.adopt(patcher.model.diffusion_model)
        patcher.patches = {key: list(value) for key, value in patches.items()}
        patcher.patches_uuid = uuid.uuid4()
        self.patcher = patcher
        mm.load_models_gpu([patcher])

    def offload(self) -> None:
        mm.unload_all_models()
        mm.soft_empty_cache()

    @torch.inference_mode()
    def forward(self, call: ModelCall) -> RankResult | None:
        if call.forget:
            self.objects.clear()
        mm.load_models_gpu([self.patcher])
        device = self.patcher.load_device
        for key, value in call.objects.items():  # a method's object may hold weights for this rank's device
            on_rank = getattr(value, "on_rank", None)
            self.objects[key] = value if on_rank is None else on_rank(device)
        g, u = self.plan.coordinates(self.rank)
        batch = len(call.x)
        chunks = len(call.branches)
        parallel = self.plan.guidance == 2 and chunks == 2
        if parallel:
            size = batch // chunks
            rows, branches, uuids = list(range(g * size, (g + 1) * size)), [call.branches[g]], [call.uuids[g]]
        elif g == 0:
            rows, branches, uuids = list(range(batch)), call.branches, call.uuids
        else:  # one branch only (guidance off): the other group has nothing to add, and joins no collective
            return None
        x = call.x[rows].to(device)
        options = {name: self._object(value) for name, value in call.options.items()}
        options.update({"cond_or_uncond": branches, "uuids": uuids})
        if self.shard.size > 1:
            options[SHARD] = self.shard
        kwargs = {key: self._input(value, rows, batch, device) for key, value in call.kwargs.items()}
        dit = self.patcher.model.diffusion_model
        condition = dit.routing_condition(kwargs)
        if condition is not None:
            condition.recorder = RoutingRecorder()
            if parallel and sorted(call.branches) == [0, 1]:
                options[PEER_RESIDUALS] = self._peer_residuals(call, x, len(rows))
        context = None if call.context is None else call.context[rows].to(device)
        out = dit(x, call.timesteps[rows].to(device), context=context, transformer_options=options, **kwargs)
        routing = None
        if condition is not None and condition.recorder.total is not None:
            total = condition.recorder.total
            if self.shard.size > 1:
                total = self.shard.gather(total, 0, self.shard.sizes(dit.video_tokens(x)))
            routing = (total.cpu(), condition.recorder.count)
        return RankResult(rows, out.cpu(), routing) if u == 0 else None

    def _object(self, value: Any) -> Any:
        return self.objects[value.key] if isinstance(value, SentBefore) else value

    def _input(self, value: Any, rows: list[int], batch: int, device: torch.device) -> Any:
        if isinstance(value, SentBefore):
            return self.objects[value.key]
        if torch.is_tensor(value) and value.ndim and value.shape[0] == batch:
            return value[rows].to(device)
        return value.to(device) if torch.is_tensor(value) else value

    def _peer_residuals(self, call: ModelCall, x: torch.Tensor, rows: int) -> PeerResiduals:
        """The unconditional group sends its identity residuals; the conditional one receives them."""
        like = self.patcher.model.diffusion_model.residual_buffer(x, rows, self.shard)
        source = self.plan.rank(call.branches.index(1), self.shard.rank)
        return PeerResiduals(self.pair, source, like)
