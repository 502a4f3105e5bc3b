"""The README's main job: the ConsisID workflow, headless, in a real ComfyUI.

    python multiid.py video --photo me.jpg --prompt "A person walking ..." [--out video.mp4]

starts ComfyUI (the one this pack is installed in, or the pack's own) with the pack, turns
workflows/consisid_single_id.json into an API prompt with your photo and prompt, runs it, shows the
progress and copies the mp4 to --out (relative to the folder you ran the command in). With the real
ConsisID files in place (as `python multiid.py models check` finds them) it uses them; otherwise it runs on
tiny random models (the video is noise) and says loudly which files to download. Without a GPU it runs on
the CPU. It talks to ComfyUI over HTTP and its websocket only, and removes its temporary files.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

from . import PACK_DIR
from .model_files import FileStatus, SetupError, family_statuses, find_comfyui, model_folders

UI_ONLY_NODES = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    """`python main.py --cpu` on loopback with the given base directory, driven over HTTP."""

    def __init__(
        self, comfyui: Path, base: Path, extra_args: tuple[str, ...] = (), cpu: bool = True, log_dir: Path | None = None
    ):
        self.comfyui = comfyui
        self.cpu = cpu
        self.base = base
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.client_id = uuid.uuid4().hex
        self.extra_args = extra_args
        self.log_path = (log_dir or base) / f"server-{self.port}.log"

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
        status, body = self.post("/prompt", {"prompt": prompt, "client_id": self.client_id})
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

    def run(self, prompt: dict, timeout: float = 600, progress: Callable[[dict], None] | None = None) -> dict:
        stop = self.follow(progress) if progress is not None else lambda: None
        try:
            return self.wait(self.queue(prompt), timeout)
        finally:
            stop()

    def follow(self, on_message: Callable[[dict], None]) -> Callable[[], None]:
        """Hands the server's websocket messages for our client id (progress, executing...) to `on_message`,
        from a thread, as the editor receives them; returns the function that stops listening."""
        import aiohttp  # a ComfyUI requirement: present wherever the server runs

        stop, ready = threading.Event(), threading.Event()
        url = f"ws://127.0.0.1:{self.port}/ws?clientId={self.client_id}"

        async def listen() -> None:
            try:
                async with aiohttp.ClientSession() as session, session.ws_connect(url) as socket_:
                    ready.set()
                    while not stop.is_set():
                        try:
                            message = await socket_.receive(timeout=0.5)
                        except asyncio.TimeoutError:
                            continue
                        if message.type == aiohttp.WSMsgType.TEXT:
                            on_message(json.loads(message.data))
                        elif message.type != aiohttp.WSMsgType.BINARY:  # closed or failed: no more progress
                            return
            finally:
                ready.set()

        thread = threading.Thread(target=asyncio.run, args=(listen(),), daemon=True)
        thread.start()
        ready.wait(10)

        def close() -> None:
            stop.set()
            thread.join(5)

        return close


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


def accelerator() -> str | None:
    """The GPU ComfyUI would use, or None (then the server runs with --cpu)."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "Apple MPS"
    if getattr(torch, "xpu", None) is not None and torch.xpu.is_available():
        return "Intel XPU"
    return None


def consisid_files(comfyui: Path, extra_configs: list[str]) -> list[FileStatus]:
    """The ConsisID workflow's files as `models check` sees them (one resolver for both)."""
    return family_statuses("ConsisID", model_folders(str(comfyui), None, extra_configs))


def retarget(prompt: dict, object_info: dict, statuses: list[FileStatus]) -> None:
    """Point the workflow's model combos at files found in other packs' places (antelopev2 in
    models/insightface, a T5 file in models/text_encoders...) instead of the snapshot it names."""
    for status in (s for s in statuses if s.instead):
        for node in prompt.values():
            for name, value in node["inputs"].items():
                if not isinstance(value, str) or not (
                    value == status.file.path or status.file.path.startswith(value + "/")
                ):
                    continue
                options = object_info[node["class_type"]]["input"]
                spec = {**options.get("required", {}), **options.get("optional", {})}.get(name, [None])
                choices = spec[0] if isinstance(spec[0], list) else spec[1].get("options", []) if len(spec) > 1 else []
                found = status.found.as_posix()
                for option in choices:
                    if found.endswith("/" + option) or found.rsplit("/", 1)[0].endswith("/" + option):
                        node["inputs"][name] = option
                        break


def set_widgets(prompt: dict, class_type: str, title_inputs: dict[str, object], which: int = 0) -> None:
    """Set inputs of the `which`-th node of `class_type` in an API prompt."""
    nodes = [n for n in prompt.values() if n["class_type"] == class_type]
    nodes[which]["inputs"].update(title_inputs)


class Progress:
    """Prints what the server reports over its websocket: which node runs, step k of n and the time left."""

    def __init__(self, names: dict[str, str], out=sys.stdout, every: float = 3.0):
        self.names = names
        self.out = out
        self.every = every
        self.started: dict[str, tuple[float, int]] = {}
        self.printed = 0.0
        self.begin = time.monotonic()

    def __call__(self, message: dict) -> None:
        kind, data = message.get("type"), message.get("data") or {}
        node = str(data.get("node"))
        if kind == "executing" and data.get("node") is not None:
            elapsed = time.monotonic() - self.begin
            print(f"  [{elapsed:5.0f} s] {self.names.get(node, node)}", file=self.out, flush=True)
        elif kind == "progress":
            value, total, now = int(data["value"]), int(data["max"]), time.monotonic()
            first_time, first_value = self.started.setdefault(node, (now, value))
            if value < first_value:  # the node runs again (another bar)
                self.started[node] = (first_time, first_value) = (now, value)
            if value < total and now - self.printed < self.every:
                return
            self.printed = now
            left = ""
            if value > first_value and value < total:
                seconds = (now - first_time) / (value - first_value) * (total - value)
                left = f", about {seconds / 60:.0f} min left" if seconds >= 90 else f", about {seconds:.0f} s left"
            print(f"            {self.names.get(node, node)}: step {value} of {total}{left}", file=self.out, flush=True)


def run_consisid(args: argparse.Namespace) -> Path:
    comfyui = Path(args.comfyui).absolute()
    statuses = consisid_files(comfyui, args.extra_model_paths)
    missing = [s for s in statuses if s.found is None]
    workdir = Path(tempfile.mkdtemp(prefix="multiid-"))
    photo_name = f"multiid_headless_{os.getpid()}{args.photo.suffix.lower()}"
    gpu = None if args.cpu else accelerator()
    extra_args = [a for config in args.extra_model_paths for a in ("--extra-model-paths-config", config)]
    if gpu:
        print(f"GPU: {gpu}", flush=True)
    else:
        reason = "CPU as asked" if args.cpu else "No GPU found"
        print(f"{reason}: running ComfyUI on the CPU (--cpu). A real ConsisID video takes hours this way.", flush=True)
    try:
        if missing:
            print("=" * 100)
            print(f"NOTE: {len(missing)} of the {len(statuses)} ConsisID files are not in place, so this run uses TINY "
                  "RANDOM MODELS:\nthe video will be noise. For the real model, `python multiid.py models download "
                  "--family ConsisID` fetches them\n(about {:.0f} GB); `python multiid.py models check` lists where "
                  "each goes.".format(sum(s.file.size_gb for s in missing)))  # fmt: skip
            if len(missing) < len(statuses):
                for status in missing:
                    why = f"  ({status.problem})" if status.problem else ""
                    print(f"  missing: {status.target}{why}")
            print("=" * 100, flush=True)
            from .tiny_models import base_dir

            base = base_dir(workdir, {photo_name: args.photo})
        else:
            print(f"Using the real ConsisID files ({len(statuses)} found).", flush=True)
            base = comfyui
            if not (comfyui / "custom_nodes" / PACK_DIR.name).exists() and not any(
                p.resolve() == PACK_DIR.resolve() for p in (comfyui / "custom_nodes").glob("*")
            ):
                raise SystemExit(f"Install this pack in {comfyui / 'custom_nodes'} to run it on your ComfyUI.")
            (comfyui / "input").mkdir(exist_ok=True)
            shutil.copy(args.photo, comfyui / "input" / photo_name)
        workflow = json.loads((PACK_DIR / "workflows" / "consisid_single_id.json").read_text())
        server = ComfyServer(comfyui, base, tuple(extra_args), cpu=gpu is None, log_dir=workdir)
        print(f"Starting ComfyUI ({comfyui}) ...", flush=True)
        with server:
            info = server.get("/object_info")
            prompt = ui_to_api(workflow, info)
            retarget(prompt, info, statuses)
            set_widgets(prompt, "LoadImage", {"image": photo_name})
            set_widgets(prompt, "MultiID_TextEncode", {"text": args.prompt})
            set_widgets(prompt, "MultiID_Sampler", {"seed": args.seed, "steps": args.steps})
            set_widgets(prompt, "SaveVideo", {"filename_prefix": "MultiID/headless"})
            names = {
                key: info[node["class_type"]].get("display_name", node["class_type"]) for key, node in prompt.items()
            }
            print(f"Running the ConsisID workflow on {server.url}:", flush=True)
            entry = server.run(prompt, timeout=args.timeout, progress=Progress(names))
            failure = error_message(entry)
            if failure:
                raise SystemExit(f"The workflow failed: {failure}")
            for out in entry["outputs"].values():
                for item in out.get("images", []) + out.get("videos", []):
                    if item["filename"].endswith(".mp4"):
                        produced = Path(base) / item["type"] / item["subfolder"] / item["filename"]
                        return deliver(produced, args.out)
        raise SystemExit("The workflow finished without writing a video.")
    finally:
        (comfyui / "input" / photo_name).unlink(missing_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)


def check_photo(photo: Path) -> None:
    """A file that is no picture is refused before ComfyUI starts, not as a node error minutes later."""
    try:
        from PIL import Image
    except ImportError:  # the server's Python has it; this one may not
        return
    try:
        with Image.open(photo) as image:
            image.verify()
    except Exception as error:  # PIL raises several kinds for a file it cannot read
        raise SystemExit(
            f"{photo} is not a picture this can read ({error}). Give a photo as JPEG, PNG or WebP."
        ) from None


def check_out(out: Path) -> None:
    """Where the mp4 goes is tried before sampling: a run of many minutes must not end at a path it cannot write."""
    if out.is_dir():
        raise SystemExit(f"--out {out} is a folder: give a file name in it, e.g. --out {out / 'video.mp4'}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=".multiid-"):
            pass
    except OSError as error:
        raise SystemExit(
            f"Cannot write --out {out}: {error.strerror or error}. Choose a file in a folder you can write to."
        ) from None


def deliver(produced: Path, out: Path) -> Path:
    """The finished video at `out`; if that fails now (a full disk, a folder removed meanwhile), it is kept in the
    folder the command ran in, and the message says where."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(produced, out)
        return out
    except OSError as error:
        kept = Path.cwd() / f"multiid_{produced.name}"
        shutil.copy(produced, kept)
        raise SystemExit(f"Could not write {out} ({error.strerror or error}); the video is kept at {kept}.") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python multiid.py video", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photo", required=True, type=Path, help="a photo of the person (jpg/png)")
    parser.add_argument("--prompt", required=True, help="a long, detailed description of the video")
    parser.add_argument("--out", default="multiid_consisid.mp4", type=Path, help="where to write the mp4")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--steps", type=int, default=50, help="denoising steps (the authors use 50)")
    parser.add_argument(
        "--comfyui", help="the ComfyUI to run (default: the one this pack is in, COMFYUI_PATH, else the pack's own)"
    )
    parser.add_argument(
        "--extra-model-paths", action="append", default=[], metavar="YAML",
        help="another extra_model_paths.yaml, for the file check and the server (ComfyUI's own is read anyway)",
    )  # fmt: skip
    parser.add_argument("--cpu", action="store_true", help="run on the CPU even when a GPU is there")
    parser.add_argument("--timeout", type=float, default=6 * 3600, help="seconds to wait for the video")
    args = parser.parse_args(argv)
    if args.comfyui is None:
        found = find_comfyui(None)
        if found is None:
            raise SystemExit("No ComfyUI found: run this through `python multiid.py video`, which provides one.")
        args.comfyui = str(found)
    args.photo, args.out = args.photo.expanduser().absolute(), args.out.expanduser().absolute()
    args.extra_model_paths = [str(Path(p).expanduser().absolute()) for p in args.extra_model_paths]
    if not args.photo.is_file():
        raise SystemExit(f"No such photo: {args.photo}")
    check_photo(args.photo)
    check_out(args.out)
    if args.steps < 1:
        raise SystemExit(f"--steps must be at least 1 (got {args.steps}).")
    started = time.monotonic()
    try:
        written = run_consisid(args)
    except SetupError as error:
        raise SystemExit(str(error)) from None
    print(f"Wrote {written} in {time.monotonic() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
