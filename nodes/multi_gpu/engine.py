"""MultiID Multi-GPU's engine: one video's model calls spread over Ray actors (one per GPU, each a ComfyUI of its
own with a copy of the model), joined by torch.distributed (NCCL on GPUs, gloo on CPU).

The MODEL it returns is the loader's MODEL with a stand-in diffusion model (`RemoteDiT`, no weights): ComfyUI's
samplers, guiders, previews and progress run here as usual, and each model call goes to the ranks
(`rank.py`), which load the model through the loader's own reload factory, with this MODEL's weight
patches (LoRAs). Guidance parallel, Ulysses and ring sequence parallel are `multiid_core.parallel`.

Lifetime: the actors start when the node runs and stay warm between runs, and for the next parallel MODEL with
the same plan and devices (which they load in place of the last: the GPUs hold one at a time). ComfyUI unloading
the MODEL unloads the ranks' weights (reloaded on the next call); when no parallel MODEL is left, or the server
stops, the actors end, and Ray with them when it was started here. Any rank failing ends all of them; the next
call starts fresh ones.
"""

from __future__ import annotations

import atexit
import copy
import os
import signal
import socket
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import comfy.model_management as mm
import comfy.model_patcher
import comfy.patcher_extension
import comfy.utils
import folder_paths
import torch
from comfy.cli_args import args as comfy_args

from ...multiid_core.errors import MultiIDError
from ...multiid_core.families import Loader
from ...multiid_core.parallel import ParallelPlan
from ..family_model import family_dit
from ..options import TEACACHE, step_of
from . import actor as multi_gpu_actor
from .native_files import native_file_factory
from .rank import OPTIONS, ModelCall, RankResult, SentBefore

INSTALL = "pip install 'comfyui-multiid[multigpu]' (or pip install ray) in ComfyUI's Python, then restart ComfyUI"
ANSWER_TIMEOUT = 3.0  # seconds a Ray address has to accept a connection
JOIN_TIMEOUT = 120.0  # seconds for the ranks to start and form the torch.distributed group
KEPT_OBJECTS = 16  # conditioning objects the ranks keep between calls before both sides start over


@dataclass(frozen=True)
class MultiGPUSettings:
    world_size: int = 2
    guidance_parallel: bool = True
    ulysses_degree: int = 0  # 0: world_size / (guidance x ring)
    ray_address: str = ""  # "": a Ray started on this machine; "auto", "host:port" or "ray://host:port": a cluster
    devices: str = ""  # "": GPUs Ray finds; "0,1": these GPUs of this machine; "cpu": CPU ranks
    ring_degree: int = 1

    @property
    def plan(self) -> ParallelPlan:
        guidance = 2 if self.guidance_parallel else 1
        ulysses = self.ulysses_degree or max(1, self.world_size // (guidance * self.ring_degree))
        if guidance * ulysses * self.ring_degree != self.world_size:
            raise MultiIDError(
                f"World size {self.world_size} is not {guidance} (guidance parallel "
                f"{'on' if guidance == 2 else 'off'}) x {self.ring_degree} (ring degree) x {ulysses} (Ulysses "
                f"degree): set the Ulysses degree to 0 (automatic) and a world size divisible by "
                f"{guidance * self.ring_degree}, or make the product match."
            )
        return ParallelPlan(guidance, ulysses, self.ring_degree)

    @property
    def on_cpu(self) -> bool:
        return self.devices.strip().lower() == "cpu" or mm.get_torch_device().type == "cpu"

    def gpu_list(self) -> list[str]:
        return [] if self.on_cpu else [d.strip() for d in self.devices.split(",") if d.strip()]

    @property
    def key(self) -> tuple:
        """What ranks must share to serve another model: plan, devices and cluster."""
        return self.plan, self.on_cpu, tuple(self.gpu_list()), self.ray_address.strip()


def import_ray():
    # Ray's C++ crash handler takes SIGTERM over from the second ray.init on, and the handler below (which ends
    # Ray's processes) would never run. Read when ray is first imported.
    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
    try:
        import ray
    except ImportError:
        raise MultiIDError(f"MultiID Multi-GPU runs on Ray, which is not installed: {INSTALL}.") from None
    return ray


class RayRuntime:
    """The process's Ray (started here, or a cluster joined) and its one pool of ranks: the GPUs hold one
    parallel model at a time, and the ranks stay when another model with the same plan takes their place."""

    def __init__(self) -> None:
        self.config: tuple[str, str] | None = None
        self.started_here = False
        self.pool: RankPool | None = None
        self.models: weakref.WeakSet[ParallelModel] = weakref.WeakSet()
        self.lock = threading.RLock()

    def pool_for(self, settings: MultiGPUSettings) -> RankPool:
        """The running pool if it fits `settings`, else a new one (the old one's actors end first)."""
        with self.lock:
            if self.pool is not None and self.pool.actors and self.pool.settings_key == settings.key:
                return self.pool
            if self.pool is not None:
                self.pool.close()
            ray = self.connect(settings)
            self.pool = RankPool(settings)
            self.pool.start(ray)
            return self.pool

    def connect(self, settings: MultiGPUSettings):
        ray = import_ray()
        config = (settings.ray_address.strip(), ",".join(settings.gpu_list()))
        if ray.is_initialized() and self.config == config:
            return ray
        if ray.is_initialized():
            ray.shutdown()
        address, gpus = config
        if address:
            check_answers(address)
            try:
                ray.init(address=address, log_to_driver=False)
            except Exception as e:  # Ray's own connection errors, after its retries
                raise MultiIDError(
                    f"Could not join the Ray cluster at {address}: {_last_line(e)}. Check that `ray status` works "
                    "on that machine and that this ComfyUI runs the same Ray and Python versions as the cluster."
                ) from None
        else:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            if gpus:  # Ray's raylet reads the GPUs it may hand out from the environment it starts in
                os.environ["CUDA_VISIBLE_DEVICES"] = gpus
            try:
                ray.init(address="local", include_dashboard=False, log_to_driver=False)
            finally:
                if gpus:
                    _restore_env("CUDA_VISIBLE_DEVICES", visible)
        self.config, self.started_here = config, not address
        return ray

    def model_released(self) -> None:
        """When no parallel MODEL is left, the ranks end, and a Ray started here too: no process outlives its use."""
        with self.lock:
            if any(True for _ in self.models):
                return
            self.shutdown()

    def shutdown(self, wait: float = -1) -> None:
        """Ends the ranks and a Ray started here; `wait`: at most this long for a run holding the lock (at exit)."""
        locked = self.lock.acquire(timeout=wait)
        try:
            if self.pool is not None and locked:
                self.pool.close()
                self.pool = None
            ray = sys.modules.get("ray")
            if ray is not None and ray.is_initialized() and self.started_here:
                ray.shutdown()
                self.config = None
        finally:
            if locked:
                self.lock.release()


RUNTIME = RayRuntime()
atexit.register(RUNTIME.shutdown, 5.0)


def _end_ray_then(previous):
    """SIGTERM (a service manager, docker stop) ends Python without atexit, and Ray's agents would outlive the
    server by a minute or two: end Ray first, then do what SIGTERM did before (by default, end the process)."""

    def handler(signum, frame):
        try:
            RUNTIME.shutdown(wait=5.0)
        finally:
            if callable(previous):
                previous(signum, frame)
            else:
                signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
                os.kill(os.getpid(), signum)

    return handler


if threading.current_thread() is threading.main_thread():  # where ComfyUI imports the pack
    signal.signal(signal.SIGTERM, _end_ray_then(signal.getsignal(signal.SIGTERM)))


def _restore_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


HTTP2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # preface + empty SETTINGS


def check_answers(address: str) -> None:
    """A clear message within seconds where ray.init would wait on an address nobody answers: Ray's head (and
    Ray Client) speak gRPC, so the address must accept a connection and answer HTTP/2's greeting."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise MultiIDError(
            f"Ray address {address!r} is not host:port (e.g. 10.0.0.5:6379, or ray://10.0.0.5:10001 for Ray "
            "Client); leave it empty to start Ray on this machine, or 'auto' for the cluster it joined."
        )
    try:
        with socket.create_connection((host, int(port)), timeout=ANSWER_TIMEOUT) as connection:
            connection.settimeout(ANSWER_TIMEOUT)
            connection.sendall(HTTP2_HELLO)
            answer = connection.recv(9)
        if len(answer) < 9 or answer[3] != 4:  # a SETTINGS frame
            raise OSError("it answered, but not as a Ray head node (gRPC)")
    except OSError as e:
        raise MultiIDError(
            f"No Ray cluster answered at {address} within {ANSWER_TIMEOUT:.0f} s ({e.strerror or e}). Start one "
            "with `ray start --head` on that machine (and `ray start --address=...` on the others), check the "
            "address and firewall, or leave the address empty to use this machine's GPUs."
        ) from None


class RankPool:
    """Ray actors, one per rank, joined in one torch.distributed group; they hold one model at a time."""

    def __init__(self, settings: MultiGPUSettings) -> None:
        self.settings, self.plan, self.settings_key = settings, settings.plan, settings.key
        self.actors: list[Any] = []
        self.labels: list[str] = [f"rank {rank}" for rank in range(self.plan.world)]
        self.holding: weakref.ref | None = None  # the ParallelModel whose weights the ranks hold
        self.sent: dict[int, Any] = {}

    def start(self, ray) -> None:
        self._check_resources(ray)
        ray.cloudpickle.register_pickle_by_value(multi_gpu_actor)
        actor = ray.remote(multi_gpu_actor.RankActor)
        gpus = 0 if self.settings.on_cpu else 1
        self.actors = [
            actor.options(num_cpus=0, num_gpus=gpus).remote(self._setup(rank)) for rank in range(self.plan.world)
        ]
        try:
            master, port = self._wait([self.actors[0].address.remote()], "starting", JOIN_TIMEOUT)[0]
            refs = [a.join.remote(master, port) for a in self.actors]
            self.labels = self._wait(refs, "forming the torch.distributed group", JOIN_TIMEOUT)
        except BaseException:
            self.close()
            raise

    def load(self, model: ParallelModel) -> None:
        """Each rank loads `model` (through the loader's reload factory, with its weight patches)."""
        self.holding, self.sent = None, {}
        try:
            loads = [a.load.remote(model.factory, model.patches, model.dit_class) for a in self.actors]
            self._wait(loads, "loading the model")
        except BaseException:
            self.close()
            raise
        self.holding = weakref.ref(model)

    def holds(self, model: ParallelModel) -> bool:
        return self.holding is not None and self.holding() is model

    def _check_resources(self, ray) -> None:
        world = self.plan.world
        if self.settings.on_cpu:
            return
        gpus = int(ray.cluster_resources().get("GPU", 0))
        free = int(ray.available_resources().get("GPU", 0))
        where = f"the Ray cluster at {self.settings.ray_address}" if self.settings.ray_address else "this machine"
        if free < world:
            busy = f" ({gpus - free} busy with other Ray work)" if gpus > free else ""
            raise MultiIDError(
                f"World size {world} needs {world} GPUs; {where} has {free} free{busy} (devices: "
                f"{self.settings.devices or 'any'}). Lower the world size, list more devices, or join a cluster."
            )

    def _setup(self, rank: int) -> dict[str, Any]:
        plain = (bool, int, float, str, type(None))
        options = {
            k: v for k, v in vars(comfy_args).items()
            if isinstance(v, plain) or (isinstance(v, list) and all(isinstance(x, plain) for x in v))
        }  # fmt: skip
        if self.settings.on_cpu:
            options["cpu"] = True
        folders = {name: (list(p), sorted(e)) for name, (p, e) in folder_paths.folder_names_and_paths.items()}
        return dict(
            comfyui_root=str(Path(folder_paths.__file__).parent),
            pack_dir=str(Path(__file__).parents[2]),
            pack_name=__name__.rsplit(".nodes.", 1)[0],
            comfy_args=options,
            folders=folders,
            guidance=self.plan.guidance,
            ulysses=self.plan.ulysses,
            ring=self.plan.ring,
            rank=rank,
            threads=max(1, (os.cpu_count() or 1) // self.plan.world) if self.settings.on_cpu else 0,
        )

    def run(self, call: ModelCall, step: str) -> tuple[torch.Tensor, list[tuple[torch.Tensor, int]]]:
        """The output of one model call (rows in the call's order) and the routing the ranks recorded."""
        self._send_once(call)
        ray = import_ray()
        shared = ray.put(call)
        results: list[RankResult | None] = self._wait([a.forward.remote(shared) for a in self.actors], step)
        done = [r for r in results if r is not None]
        out = torch.empty((len(call.x), *done[0].out.shape[1:]), dtype=done[0].out.dtype)
        for result in done:
            out[result.rows] = result.out
        return out, [r.routing for r in done if r.routing is not None]

    def _send_once(self, call: ModelCall) -> None:
        """Conditioning objects (identities) and a method's options (Stand-In's faces and adapter, Phantom's
        placement) travel with the first call that uses them, then by key."""
        if len(self.sent) > KEPT_OBJECTS:
            self.sent, call.forget = {}, True
        objects = [(call.kwargs, name) for name, value in call.kwargs.items() if not torch.is_tensor(value)]
        objects += [(call.options, name) for name, value in call.options.items() if not _sent_each_call(value)]
        for values, name in objects:
            value = values[name]
            key = id(value)
            if key not in self.sent:
                self.sent[key] = value
                call.objects[key] = value
            values[name] = SentBefore(key)

    def _wait(self, refs: list, what: str, timeout: float | None = None) -> list:
        """Every rank's answer; stops at the first failure, at an interrupt, or after `timeout` seconds."""
        ray = import_ray()
        pending, start = list(refs), time.monotonic()
        progress = comfy.utils.ProgressBar(len(refs)) if what == "loading the model" else None
        while pending:
            done, pending = ray.wait(pending, num_returns=len(pending), timeout=0.1)
            for ref in done:
                self._get(ray, ref, refs.index(ref), what, [r for r in refs if r is not ref])
                if progress:
                    progress.update(1)
            if mm.processing_interrupted():
                mm.throw_exception_if_processing_interrupted()
            if timeout is not None and pending and time.monotonic() - start > timeout:
                late = ", ".join(self.labels[refs.index(r)] for r in pending)
                self.close()
                raise MultiIDError(
                    f"MultiID Multi-GPU: {late} did not answer within {timeout:.0f} s while {what}; the group was "
                    "shut down. Check that every machine reaches the others (firewall, NCCL_SOCKET_IFNAME), then run "
                    "again."
                )
        return ray.get(refs)

    def _get(self, ray, ref, rank: int, what: str, others: list) -> Any:
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as e:
            cause = e.cause
            if isinstance(cause, MultiIDError):
                if not self._all_refused(ray, others):
                    self.close()
                raise MultiIDError(str(cause)) from None
            self.close()
            if isinstance(cause, torch.OutOfMemoryError):
                raise MultiIDError(
                    f"MultiID Multi-GPU: {self.labels[rank]} ran out of GPU memory while {what}. Use more ranks "
                    "(a higher Ulysses degree holds fewer tokens per GPU), fewer frames or a smaller size, or fp8 "
                    "weight storage; the group was shut down and the next run starts a fresh one."
                ) from None
            raise MultiIDError(
                f"MultiID Multi-GPU: {self.labels[rank]} failed while {what}: {type(cause).__name__}: "
                f"{_last_line(cause)}. The group was shut down; the next run starts a fresh one."
            ) from None
        except ray.exceptions.RayActorError as e:
            self.close()
            cause = getattr(e, "cause", None)
            reason = _last_line(cause) if isinstance(cause, BaseException) else "its process ended"
            raise MultiIDError(
                f"MultiID Multi-GPU: {self.labels[rank]} stopped while {what} ({reason}: killed, crashed or out of "
                "host memory). The group was shut down and the next run starts a fresh one; if it happens again, "
                "look at the Ray logs (/tmp/ray/session_latest/logs) of that machine."
            ) from None

    def _all_refused(self, ray, others: list) -> bool:
        """Whether every other rank refused the call too: the input checks come before any exchange, so then the
        ranks are in step and stay (a user's mistake costs no restart)."""
        if not others:
            return True
        done, late = ray.wait(others, num_returns=len(others), timeout=JOIN_TIMEOUT / 4)
        if late:
            return False
        for ref in done:
            try:
                ray.get(ref)
                return False
            except ray.exceptions.RayTaskError as e:
                if not isinstance(e.cause, MultiIDError):
                    return False
            except ray.exceptions.RayError:
                return False
        return True

    def offload(self) -> None:
        if not import_ray().is_initialized():  # a call on an actor would start a new local Ray (auto-init)
            return
        for actor in self.actors:
            actor.offload.remote()

    def close(self) -> None:
        """Ends the actors (after a failure: the next call starts a fresh pool)."""
        actors, self.actors, self.holding = self.actors, [], None
        if not actors:
            return
        ray = import_ray()
        if not ray.is_initialized():  # Ray ended first (its atexit runs before ours): the actors went with it,
            return  # and ray.kill would start a new local Ray (auto-init)
        for actor in actors:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # already gone, or Ray shut down
                pass


class ParallelModel:
    """One parallel MODEL's weights (the loader's reload factory and the MODEL's patches), the class its diffusion
    model runs as, and settings; it runs on the process's pool, loading itself there when another model held the
    ranks."""

    def __init__(self, settings: MultiGPUSettings, factory: tuple, patches: dict, dit_class: type) -> None:
        self.settings, self.factory, self.patches, self.dit_class = settings, factory, patches, dit_class
        RUNTIME.models.add(self)
        weakref.finalize(self, RUNTIME.model_released)

    def pool(self) -> RankPool:
        with RUNTIME.lock:
            pool = RUNTIME.pool_for(self.settings)
            if not pool.holds(self):
                pool.load(self)
            return pool

    def run(self, call: ModelCall, step: str) -> tuple[torch.Tensor, list[tuple[torch.Tensor, int]]]:
        return self.pool().run(call, step)

    def offload(self) -> None:
        pool = RUNTIME.pool
        if pool is not None and pool.holds(self):
            pool.offload()


class RemoteDiT(torch.nn.Module):
    """The diffusion model's stand-in: each call runs on the ranks. Holds no weights; the local model's
    attributes (config, dtype, patch size) answer for it."""

    def __init__(self, local: torch.nn.Module, parallel: ParallelModel) -> None:
        super().__init__()
        self.parallel = parallel
        object.__setattr__(self, "local", local)  # not a submodule: its weights are not this MODEL's

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.__dict__["local"], name)

    def forward(self, x, timesteps, context=None, control=None, transformer_options=None, **kwargs):
        options = transformer_options or {}
        return comfy.patcher_extension.WrapperExecutor.new_class_executor(
            self._remote,
            self,
            comfy.patcher_extension.get_all_wrappers(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, options),
        ).execute(x, timesteps, context, options, **kwargs)

    def _remote(self, x, timesteps, context, options, **kwargs) -> torch.Tensor:
        if options.get(TEACACHE) is not None or options.get("patches_replace"):
            raise MultiIDError(
                "MultiID Multi-GPU runs the model as loaded (LoRAs included): remove TeaCache and block-replacing "
                "patches from this MODEL, or run it on one GPU."
            )
        branches = list(options.get("cond_or_uncond") or [0])
        call = ModelCall(
            x=x.cpu(),
            timesteps=timesteps.cpu(),
            context=None if context is None else context.cpu(),
            kwargs={k: v.cpu() if torch.is_tensor(v) else v for k, v in kwargs.items() if v is not None},
            branches=branches,
            uuids=list(options.get("uuids") or [None] * len(branches)),
            options={k: _to_cpu(options[k]) for k in (*OPTIONS, *self.local.rank_options) if k in options},
        )
        out, routing = self.parallel.run(call, _step_label(options))
        condition = self.local.routing_condition(kwargs)
        for total, count in routing:
            condition.recorder.merge(total, count)
        return out.to(x.device)


def _sent_each_call(option: Any) -> bool:
    """The sampler's options (sigmas, ScaleROPE's rope_options) change from call to call; a method's do not."""
    return torch.is_tensor(option) or isinstance(option, dict)


def _last_line(error: BaseException) -> str:
    """The line of an error's text that says what happened (Ray puts the remote traceback before it)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def _to_cpu(value: Any) -> Any:
    return value.cpu() if torch.is_tensor(value) else value


def _step_label(options: dict) -> str:
    if options.get("sample_sigmas") is None or options.get("sigmas") is None:
        return "sampling"
    return "sampling step {} of {}".format(*step_of(options))


def parallel_model(
    model: comfy.model_patcher.ModelPatcher, settings: MultiGPUSettings
) -> comfy.model_patcher.ModelPatcher:
    """The MODEL whose diffusion model runs on `settings.world_size` ranks; the ranks are started here."""
    dit = family_dit(model)
    if dit is None or isinstance(dit, RemoteDiT):
        raise MultiIDError(
            f"MultiID Multi-GPU takes the MODEL of {Loader.VIDEO_MODEL.value} (ConsisID, Ingredients, Concat-ID), "
            f"{Loader.CONCAT_ID_WAN.value}, {Loader.PHANTOM.value} or {Loader.STAND_IN.value} (LoRA loaders between "
            "them are fine), once."
        )
    if not dit.multi_gpu:
        raise MultiIDError(
            f"The MODEL of {dit.loader.value} does not run on MultiID Multi-GPU yet: connect it to the sampler "
            "without the MultiID Multi-GPU node (one GPU; ComfyUI offloads what does not fit)."
        )
    plan = settings.plan
    heads = dit.attention_heads
    if heads % plan.ulysses:
        raise MultiIDError(
            f"This model has {heads} attention head{'s' if heads > 1 else ''}, which Ulysses degree {plan.ulysses} "
            f"does not divide: each rank takes an equal share of the heads. Use a degree that divides {heads}."
        )
    teacache = model.get_wrappers(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, TEACACHE)
    if teacache or model.model_options.get("transformer_options", {}).get("patches_replace"):
        raise MultiIDError(
            "MultiID Multi-GPU runs the model as loaded (LoRAs included): connect it before TeaCache and block-"
            "replacing patches, or leave those out."
        )
    factory = reload_factory(model)
    if factory is None:
        raise MultiIDError(
            "The ranks cannot load this MODEL again: no file in the diffusion_models folders holds its weights "
            "(the file moved or changed since it was loaded). Load it again with Load "
            "Diffusion Model from one file there, or with the pack's loaders."
        )
    parallel = ParallelModel(settings, factory, {k: list(v) for k, v in model.patches.items()}, type(dit))
    parallel.pool()
    return remote_patcher(model, RemoteDiT(dit, parallel), parallel)


def reload_factory(model: comfy.model_patcher.ModelPatcher) -> tuple | None:
    """The loader's (function, args) that builds these weights again; clones (LoRA loaders) do not copy it in
    every ComfyUI, so the clone's parents are asked too. ComfyUI 0.3.75's Load Diffusion Model sets none: its
    file is then found by its weights."""
    first = model
    while model is not None:
        factory = getattr(model, "cached_patcher_init", None)
        if factory is not None:
            return factory
        model = getattr(model, "parent", None)
    return native_file_factory(first)


def remote_patcher(
    model: comfy.model_patcher.ModelPatcher, dit: RemoteDiT, parallel: ParallelModel
) -> comfy.model_patcher.ModelPatcher:
    """A clone of the MODEL (sampling, conditioning, options) over a weightless copy of its BaseModel."""
    remote = copy.copy(model.model)
    for name in ("_modules", "_parameters", "_buffers"):
        remote.__dict__[name] = dict(model.model.__dict__[name])
    remote.diffusion_model = dit
    remote.memory_required = _no_working_memory
    remote.device, remote.model_loaded_weight_memory, remote.lowvram_patch_counter = model.offload_device, 0, 0
    remote.model_lowvram, remote.current_weight_patches_uuid = False, None
    patcher = model.clone()
    patcher.model, patcher.size, patcher.parent = remote, 0, None
    patcher.patches, patcher.backup, patcher.object_patches_backup = {}, {}, {}
    patcher.patches_uuid = uuid.uuid4()
    patcher.add_callback(comfy.patcher_extension.CallbacksMP.ON_DETACH, _offload_ranks(parallel))
    return patcher


def _no_working_memory(input_shape, cond_shapes=None) -> int:
    """The work happens on the ranks: ComfyUI may always batch both guidance branches into one call."""
    return 0


def _offload_ranks(parallel: ParallelModel) -> Callable[..., None]:
    """ComfyUI unloading the MODEL (free memory, Unload Models) unloads the ranks' weights too; it also detaches
    a MODEL to load it again, without unpatching, which leaves them."""

    def offload(patcher, unpatch_all=True) -> None:
        if unpatch_all:
            parallel.offload()

    return offload
