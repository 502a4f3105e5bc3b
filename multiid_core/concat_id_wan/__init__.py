"""Concat-ID-Wan without ComfyUI: its released checkpoints, and its reference image and positions."""
