"""People placed by masks on ComfyUI's own Phantom: the model (model.py) and MultiID Placed References (nodes.py)."""

from .nodes import PlacedReferences

NODES = [PlacedReferences]
