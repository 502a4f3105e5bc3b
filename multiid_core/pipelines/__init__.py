"""Sampling pipelines: from conditioning to latents and frames, one module per model family."""
