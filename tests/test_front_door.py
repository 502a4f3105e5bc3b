"""`python multiid.py` run from a pack inside a user's ComfyUI never changes that ComfyUI's Python."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from comfy_env import PACK_NAME, copy_comfyui

ROOT = Path(__file__).resolve().parents[1]


def freeze(python: Path) -> str:
    return subprocess.run(
        [str(python), "-m", "pip", "freeze", "--all"], capture_output=True, text=True, check=True
    ).stdout


def test_a_comfyui_python_is_left_exactly_as_it_was(tmp_path: Path):
    comfyui = tmp_path / "ComfyUI"
    copy_comfyui(comfyui)
    (comfyui / "custom_nodes").mkdir()
    (comfyui / "custom_nodes" / PACK_NAME).symlink_to(ROOT, target_is_directory=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(comfyui / "venv")], check=True)  # the user's ComfyUI Python
    python = comfyui / "venv" / "bin" / "python"
    before = freeze(python)
    front_door = comfyui / "custom_nodes" / PACK_NAME / "multiid.py"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}

    tests = subprocess.run([str(python), str(front_door), "test", "--setup-only"], env=env, capture_output=True,
                           text=True, timeout=600)  # fmt: skip
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert f"Test environment ready: {comfyui / 'custom_nodes' / PACK_NAME / '.venv'}" in tests.stdout

    env.pop("COMFYUI_PATH", None)
    video = subprocess.run(
        [str(python), str(front_door), "video", "--photo", "me.jpg", "--prompt", "a person"],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert video.returncode != 0
    assert f"This Python ({python}) lacks torch" in video.stderr, video.stdout + video.stderr
    assert "python -m pip install -r" in video.stderr and "Nothing was installed" in video.stderr

    # The model check needs nothing installed: it runs on the bare ComfyUI Python as it is.
    check = subprocess.run([str(python), str(front_door), "models", "check", "--family", "ConsisID"],
                           env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    assert check.returncode == 1, check.stdout + check.stderr
    assert f"ComfyUI models folder: {comfyui / 'models'}" in check.stdout
    assert "ConsisID: missing 19 of 19 files, about 23.5 GB to download" in check.stdout

    assert freeze(python) == before
