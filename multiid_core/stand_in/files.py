"""Stand-In's downloadable files (torch-free: `families.py` reads them, and the front door reads that before torch
is installed)."""

from __future__ import annotations

from ..catalog import ModelFile, snapshot_file

REPO = "BowenXue/Stand-In"
SOURCE = f"https://huggingface.co/{REPO} (Stand-In_wan2.1_T2V_14B_ver1.0.ckpt; Wan2.2: the _high and _low files)"


def _adapter(repo_path: str, purpose: str) -> ModelFile:
    return snapshot_file("Stand-In", REPO, repo_path, f"Stand-In adapter, {purpose}", 0.63)


WAN21 = _adapter("Stand-In_wan2.1_T2V_14B_ver1.0.ckpt", "Wan2.1-T2V-14B")
WAN22_HIGH = _adapter("Stand-In_wan2.2_T2V_A14B_high.ckpt", "Wan2.2-T2V-A14B high-noise expert")
WAN22_LOW = _adapter("Stand-In_wan2.2_T2V_A14B_low.ckpt", "Wan2.2-T2V-A14B low-noise expert")
