"""Concat-ID on Wan2.1-T2V-1.3B: ComfyUI's own Wan model with Concat-ID's reference frames (model.py), and its
loader and reference nodes (nodes.py)."""

from .nodes import ConcatIDWanReference, LoadConcatIDWan

NODES = [LoadConcatIDWan, ConcatIDWanReference]
