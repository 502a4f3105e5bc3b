"""Run the pack's workflows headless in a real ComfyUI: the README's main job.

    python -m multiid_core.headless --photo me.jpg --prompt "A person walking ..." --out video.mp4

starts ComfyUI (the install this pack sits in, or --comfyui / COMFYUI_PATH) with the pack, turns
workflows/consisid_single_id.json into an API prompt with your photo and prompt, runs it and copies the
mp4. With the real ConsisID files in place it uses them; otherwise it runs on tiny random models (the
video is noise) and says loudly which files to download. This module talks to ComfyUI over HTTP only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

PACK_DIR = Path(__file__).resolve().parents[1]
PACK_NAME = "comfyui-multiid"
UI_ONLY_NODES = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    """`python main.py --cpu` on loopback with the given base directory, driven over HTTP."""

    def __init__(self, comfyui: Path, base: Path, extra_args: tuple[str, ...] = (), cpu: bool = True):
        self.comfyui = comfyui
        self.cpu = cpu
        self.base = base
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_args = extra_args
        self.log_path = base / f"server-{self.port}.log"

    def __enter__(self) -> ComfyServer:
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "main.py", *(["--cpu"] if self.cpu else []), "--listen", "127.0.0.1",
             "--port", str(self.port), "--base-directory", str(self.base), *self.extra_args],
            cwd=self.comfyui, stdout=self._log, stderr=subprocess.STDOUT,
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


def tiny_base_dir(base: Path, photos: dict[str, Path]) -> Path:
    """A ComfyUI base directory: tiny models, this pack in custom_nodes, the photos in input/."""
    from .testing.tiny_models import write_all

    write_all(base)
    (base / "custom_nodes").mkdir(parents=True, exist_ok=True)
    link = base / "custom_nodes" / PACK_NAME
    if not link.exists():
        link.symlink_to(PACK_DIR, target_is_directory=True)
    (base / "input").mkdir(exist_ok=True)
    for name, photo in photos.items():
        shutil.copy(photo, base / "input" / name)
    return base


def find_comfyui(explicit: str | None) -> Path:
    """--comfyui, COMFYUI_PATH, or the ComfyUI this pack is installed in (ComfyUI/custom_nodes/<pack>)."""
    for candidate in (explicit, os.environ.get("COMFYUI_PATH"), PACK_DIR.parent.parent):
        if candidate and (Path(candidate) / "main.py").is_file():
            return Path(candidate)
    raise SystemExit(
        "ComfyUI not found: install this pack in ComfyUI/custom_nodes, or pass --comfyui /path/to/ComfyUI "
        "(or set COMFYUI_PATH)."
    )


def missing_model_files(models_dir: Path) -> list[str]:
    """The ConsisID workflow's files that are not in `models_dir` (as '<where> <- <url>' lines)."""
    from .models import CONSISID_MODEL_FILES, FACE_FILES

    return [
        f"{f.where}  <-  {f.url}"
        for f in FACE_FILES + CONSISID_MODEL_FILES
        if not (models_dir / f.folder / f.path).is_file()
    ]


def set_widgets(prompt: dict, class_type: str, title_inputs: dict[str, object], which: int = 0) -> None:
    """Set inputs of the `which`-th node of `class_type` in an API prompt."""
    nodes = [n for n in prompt.values() if n["class_type"] == class_type]
    nodes[which]["inputs"].update(title_inputs)


def run_consisid(args: argparse.Namespace) -> Path:
    comfyui = find_comfyui(args.comfyui)
    missing = missing_model_files(comfyui / "models")
    workdir = Path(tempfile.mkdtemp(prefix="multiid-"))
    photo_name = "multiid_headless" + Path(args.photo).suffix.lower()
    if missing:
        print("=" * 100)
        print("NOTE: the real ConsisID files are not all in place, so this run uses TINY RANDOM MODELS.")
        print("The video will be noise. To run the real model, download these files:")
        for line in missing:
            print("  " + line)
        print("=" * 100, flush=True)
        base = tiny_base_dir(workdir, {photo_name: Path(args.photo)})
    else:
        base = comfyui
        if not (comfyui / "custom_nodes" / PACK_DIR.name).exists():
            raise SystemExit(f"Install this pack in {comfyui / 'custom_nodes'} to run it on your ComfyUI.")
        (comfyui / "input").mkdir(exist_ok=True)
        shutil.copy(args.photo, comfyui / "input" / photo_name)
    workflow = json.loads((PACK_DIR / "workflows" / "consisid_single_id.json").read_text())
    with ComfyServer(comfyui, base, cpu=args.cpu) as server:
        prompt = ui_to_api(workflow, server.get("/object_info"))
        set_widgets(prompt, "LoadImage", {"image": photo_name})
        set_widgets(prompt, "MultiID_TextEncode", {"text": args.prompt})
        set_widgets(prompt, "MultiID_Sampler", {"seed": args.seed, "steps": args.steps})
        set_widgets(prompt, "SaveVideo", {"filename_prefix": "MultiID/headless"})
        print(f"Running on ComfyUI at {server.url} (log: {server.log_path}) ...", flush=True)
        entry = server.run(prompt, timeout=args.timeout)
        failure = error_message(entry)
        if failure:
            raise SystemExit(f"The workflow failed: {failure}")
        for out in entry["outputs"].values():
            for item in out.get("images", []) + out.get("videos", []):
                if item["filename"].endswith(".mp4"):
                    produced = Path(base) / item["type"] / item["subfolder"] / item["filename"]
                    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(produced, args.out)
                    return Path(args.out)
    raise SystemExit("The workflow finished without writing a video.")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", required=True, help="a photo of the person (jpg/png)")
    parser.add_argument("--prompt", required=True, help="a long, detailed description of the video")
    parser.add_argument("--out", default="multiid_consisid.mp4", help="where to write the mp4")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--steps", type=int, default=50, help="denoising steps (the authors use 50)")
    parser.add_argument("--comfyui", help="ComfyUI folder (default: the one this pack is installed in)")
    parser.add_argument("--cpu", action="store_true", help="run ComfyUI on the CPU")
    parser.add_argument("--timeout", type=float, default=3 * 3600, help="seconds to wait for the video")
    args = parser.parse_args(argv)
    if not Path(args.photo).is_file():
        raise SystemExit(f"No such photo: {args.photo}")
    print(f"Wrote {run_consisid(args)}")


if __name__ == "__main__":
    main()
