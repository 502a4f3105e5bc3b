"""A real ComfyUI for the tests: the tree, a base directory with tiny models, in-process and as a server."""

from __future__ import annotations

import asyncio
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from environment import comfyui_root
from PIL import Image

from multiid_tools import PACK_NAME  # noqa: F401 - used by tests
from multiid_tools import video as headless
from multiid_tools.tiny_models import base_dir, sample_photos
from multiid_tools.video import error_message, ui_to_api  # noqa: F401 - used by tests

ROOT = Path(__file__).resolve().parents[1]


def copy_comfyui(dest: Path) -> Path:
    """A ComfyUI install of a user's own: the test tree's code without its models, nodes or run folders."""
    tree = comfyui_root()
    skip = {"__pycache__", "models", "custom_nodes", "input", "output", "temp", "user"}
    shutil.copytree(
        tree,
        dest,
        ignore=lambda folder, names: [n for n in names if n in skip and Path(folder) == tree or n == "__pycache__"],
    )
    return dest


def sample_photo() -> Path:
    """A real portrait that ships inside the insightface wheel."""
    return sample_photos()["portrait.png"]


def photo_tensor(width: int = 600, height: int = 800) -> torch.Tensor:
    """The sample portrait as a ComfyUI IMAGE batch of one (B, H, W, C in 0..1)."""
    image = Image.open(sample_photo()).convert("RGB").resize((width, height))
    return torch.from_numpy(np.array(image)).float().div(255)[None]


def pack_error(node_classes: dict) -> type[Exception]:
    """The pack's MultiIDError class as ComfyUI loaded it (the pack is imported under its folder name)."""
    module = node_classes["MultiID_EncodeIdentity"].__module__.rsplit(".nodes.", 1)[0]
    return sys.modules[module + ".multiid_core.errors"].MultiIDError


def make_base_dir(base: Path) -> Path:
    """A ComfyUI base directory: tiny models, the pack in custom_nodes, example photos in input/."""
    return base_dir(base, sample_photos())


def load_in_process(base: Path) -> dict:
    """Imports ComfyUI on the CPU with `base` as its base directory, loads the pack, returns NODE_CLASS_MAPPINGS."""
    root = str(comfyui_root())
    if root not in sys.path:
        sys.path.insert(0, root)  # ahead of the repo: ComfyUI's `nodes` module, not our `nodes/` package
    from comfy.cli_args import args

    args.cpu = True
    args.base_directory = str(base)
    import folder_paths

    import nodes

    folder_paths.set_output_directory(str(base / "output"))
    folder_paths.set_temp_directory(str(base / "temp"))
    folder_paths.set_input_directory(str(base / "input"))
    # On a thread of its own: a browser test in the same session may leave this thread's event loop running.
    loaded = ThreadPoolExecutor(1).submit(asyncio.run, nodes.load_custom_node(str(base / "custom_nodes" / PACK_NAME)))
    if not loaded.result():
        raise RuntimeError("ComfyUI failed to load the pack; see the log above")
    return nodes.NODE_CLASS_MAPPINGS


class ComfyServer(headless.ComfyServer):
    """The headless driver on the test ComfyUI tree."""

    def __init__(self, base: Path, extra_args: tuple[str, ...] = ()):
        super().__init__(comfyui_root(), base, extra_args)
