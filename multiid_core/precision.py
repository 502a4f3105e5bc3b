"""Precision names, as the nodes offer them, and the torch dtype each one stands for: one table for all."""

from __future__ import annotations

import torch

DTYPES: dict[str, torch.dtype] = {
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
    "fp32": torch.float32,
    "fp8_e4m3fn": torch.float8_e4m3fn,
    "fp8_e5m2": torch.float8_e5m2,
}
COMPUTE_PRECISIONS = ("bf16", "fp16", "fp32")  # the ones torch computes in (fp8 is a storage format here)
