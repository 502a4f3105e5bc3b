"""What the test suite needs that this Python lacks: packages by distribution name, and a ComfyUI tree."""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

from multiid import TREE, requirement_lines, requirement_name

ROOT = Path(__file__).resolve().parents[1]
PACK_ENV_FLAG = "MULTIID_TEST_ENV"  # set by `python multiid.py test`: there, anything missing is a setup bug
NOT_CHECKED = {"torchaudio"}
SAME_PACKAGE = {"onnxruntime": ("onnxruntime", "onnxruntime-gpu")}  # either build serves


def comfyui_root() -> Path:
    """COMFYUI_PATH, else the tree `python multiid.py test` unpacks into .comfyui/ComfyUI."""
    return Path(os.environ.get("COMFYUI_PATH") or TREE)


def requirement_names(path: Path) -> list[str]:
    return [requirement_name(line) for line in requirement_lines(path)]


def installed(distribution: str) -> bool:
    try:
        metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


def what_is_missing() -> str | None:
    """None when the tests can run here; else one sentence saying what is missing and what to run."""
    tree = comfyui_root()
    files = [ROOT / "requirements.txt", ROOT / "requirements-test.txt"]
    if (tree / "requirements.txt").is_file():
        files.append(tree / "requirements.txt")
    names = {n.lower() for path in files for n in requirement_names(path)} - NOT_CHECKED
    missing = sorted(name for name in names if not any(installed(n) for n in SAME_PACKAGE.get(name, (name,))))
    problems = []
    if missing:
        listed = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        problems.append(f"{len(missing)} required packages are not installed ({listed})")
    if not (tree / "main.py").is_file():
        problems.append(f"there is no ComfyUI tree at {tree}")
    if not problems:
        return None
    return (
        f"This Python cannot run the pack's tests: {'; '.join(problems)}. Run `python multiid.py test` instead: "
        f"it sets everything up in the pack's own environment (.venv/, .comfyui/) and runs the tests there."
    )
