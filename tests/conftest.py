"""Shared test setup: the repository root importable (after ComfyUI's root, which tests may prepend)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))
