"""Shared test setup: the repository root importable, and a gate that keeps a bare Python from erroring.

The tests need the packages of requirements.txt, requirements-test.txt and ComfyUI's requirements, and a
ComfyUI tree (COMFYUI_PATH, or the pack's own .comfyui/ComfyUI). `python multiid.py test` sets all of that up
in the pack's own environment. Run under any other Python that lacks them, every test module is left out and
test_environment.py reports the one reason as a skip, instead of hundreds of import errors.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from environment import what_is_missing  # noqa: E402

if what_is_missing():
    HERE = Path(__file__).parent
    collect_ignore = [p.name for p in HERE.iterdir() if p.is_dir() or p.name.startswith("test_")]
    collect_ignore.remove("test_environment.py")
