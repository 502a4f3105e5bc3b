"""Several reference images on ComfyUI's own VACE, and the people placed (nodes.py, model.py)."""

from .nodes import VaceReferences

NODES = [VaceReferences]
