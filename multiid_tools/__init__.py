"""What `python multiid.py` runs: the headless video runner (video.py), the model-file check and download
(model_files.py), and tiny random models in the released layouts (tiny_models/) for the runner's no-weights
mode, the tests and the benchmarks. Imports multiid_core, never ComfyUI (the runner talks to a ComfyUI server).
"""

import os
from pathlib import Path

PACK_DIR = Path(os.path.abspath(__file__)).parents[1]  # not resolved: a symlinked pack still sits in its ComfyUI
PACK_NAME = "comfyui-multiid"  # the pack's folder name in custom_nodes (as the Registry installs it)
