"""The base every Wan method that appends reference tokens builds on: the diffusion model (reference_dit.py) and
its ComfyUI model and loading (reference_model.py). No nodes of its own."""
