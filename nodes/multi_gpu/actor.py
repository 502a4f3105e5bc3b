"""The Ray actor of one rank: a process with a ComfyUI of its own, holding one copy of the model.

Ray ships this class by value, so it imports nothing of the pack at module level: the worker process can
import the pack (by the folder name ComfyUI gave it) only once `__init__` has put ComfyUI and the pack on its
path, with the server's launch options and model folders. The work itself is `rank.RankWorker`.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


class RankActor:
    def __init__(self, setup: dict[str, Any]) -> None:
        if setup["comfyui_root"] not in sys.path:
            sys.path.insert(0, setup["comfyui_root"])
        from comfy.cli_args import args

        for key, value in setup["comfy_args"].items():
            setattr(args, key, value)
        pack = setup["pack_name"]
        if pack not in sys.modules:  # the pack's package without its __init__ (no ComfyUI extension to register)
            package = types.ModuleType(pack)
            package.__path__ = [setup["pack_dir"]]
            sys.modules[pack] = package
        rank_module = importlib.import_module(f"{pack}.nodes.multi_gpu.rank")
        self.worker = rank_module.RankWorker(setup)

    def address(self) -> tuple[str, int]:
        return self.worker.address()

    def join(self, master: str, port: int) -> str:
        return self.worker.join(master, port)

    def load(self, factory: tuple, patches: dict, dit_class: type) -> None:
        self.worker.load(factory, patches, dit_class)

    def forward(self, call: Any) -> Any:
        return self.worker.forward(call)

    def offload(self) -> None:
        self.worker.offload()
