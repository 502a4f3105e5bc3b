"""Stand-In on the user's own Wan 14B MODEL: the model (model.py) and Apply Stand-In (nodes.py)."""

from .nodes import ApplyStandIn

NODES = [ApplyStandIn]
