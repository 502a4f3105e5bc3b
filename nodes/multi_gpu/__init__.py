"""One video on several GPUs: the node (node.py), the engine in the ComfyUI process (engine.py), the Ray actor
(actor.py) and what each rank does (rank.py)."""

from .node import MultiGPU

NODES = [MultiGPU]
