"""Which file a MODEL of ComfyUI's Load Diffusion Model came from, so that the ranks can load it again.

Newer ComfyUI writes the loader's call on its MODELs (`cached_patcher_init`); ComfyUI 0.3.75 does not, and the
ranks of MultiID Multi-GPU need it. The file is found again by its weights: a file in the diffusion_models folders
whose first one-dimensional tensors and first matrix, cast to the MODEL's dtypes, equal the MODEL's own. Files of
the same architecture (Wan2.1-T2V-14B and Phantom-14B, say) differ there, as trained weights do; the bf16 and fp8
files of one model may both hold a MODEL loaded in fp8, and then either gives the ranks the same weights (the one
stored as the MODEL holds it is taken).
"""

from __future__ import annotations

from pathlib import Path

import comfy.model_patcher
import comfy.sd
import folder_paths
import torch
from safetensors import safe_open

PREFIXES = ("", "model.diffusion_model.", "diffusion_model.")  # where a file may keep the DiT's tensors
STORED_AS = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float8_e4m3fn: "F8_E4M3",
             torch.float8_e5m2: "F8_E5M2"}  # safetensors' names of the dtypes  # fmt: skip
FINGERPRINT = 4  # how many of the DiT's one-dimensional tensors identify its file (with its first matrix)


def native_file_factory(model: comfy.model_patcher.ModelPatcher) -> tuple | None:
    """(comfy.sd.load_diffusion_model, (path, model_options)) that builds this MODEL's weights again, or None when
    no single file in the diffusion_models folders holds them."""
    fingerprint = _fingerprint(model)
    if not fingerprint:
        return None
    found = [path for path in _candidates() if _holds(path, fingerprint)]
    if not found:
        return None
    found.sort(key=lambda path: not _stored_as_held(path, fingerprint))
    options: dict = {"dtype": model.model.get_dtype()}
    layers = {type(module).__qualname__ for module in model.model.diffusion_model.modules()}
    if any(name.startswith("fp8_ops.") for name in layers):  # loaded as fp8_e4m3fn_fast where fp8 computes
        options["fp8_optimizations"] = True
    return comfy.sd.load_diffusion_model, (str(found[0]), options)


def _fingerprint(model: comfy.model_patcher.ModelPatcher) -> dict[str, torch.Tensor]:
    """The DiT's first one-dimensional tensors and first matrix by name, as loaded (before any LoRA patch)."""
    state = model.model.diffusion_model.state_dict()
    names = sorted(name for name, tensor in state.items() if tensor.ndim == 1)[:FINGERPRINT]
    names += sorted(name for name, tensor in state.items() if tensor.ndim == 2)[:1]
    kept = model.backup  # the weights a LoRA patched in place, as they were
    return {
        name: (kept[f"diffusion_model.{name}"].weight if f"diffusion_model.{name}" in kept else state[name])
        .detach()
        .cpu()
        for name in names
    }


def _candidates() -> list[Path]:
    names = folder_paths.get_filename_list("diffusion_models")
    paths = [folder_paths.get_full_path("diffusion_models", name) for name in names]
    return [Path(p) for p in paths if p and p.endswith((".safetensors", ".sft"))]


def _stored_as_held(path: Path, fingerprint: dict[str, torch.Tensor]) -> bool:
    """Whether the file stores the fingerprint's matrix in the dtype the MODEL holds it."""
    name, tensor = next((n, t) for n, t in reversed(fingerprint.items()) if t.ndim == 2)
    with safe_open(str(path), framework="pt") as file:
        prefix = next(p for p in PREFIXES if p + name in set(file.keys()))
        return file.get_slice(prefix + name).get_dtype() == STORED_AS.get(tensor.dtype)


def _holds(path: Path, fingerprint: dict[str, torch.Tensor]) -> bool:
    try:
        with safe_open(str(path), framework="pt") as file:
            keys = set(file.keys())
            prefix = next((p for p in PREFIXES if all(p + name in keys for name in fingerprint)), None)
            if prefix is None:
                return False
            for name, tensor in fingerprint.items():
                stored = file.get_slice(prefix + name)
                if tuple(stored.get_shape()) != tuple(tensor.shape):
                    return False
                if not torch.equal(file.get_tensor(prefix + name).to(tensor.dtype), tensor):
                    return False
    except (OSError, ValueError, RuntimeError):  # unreadable or not a safetensors file: not this MODEL's
        return False
    return True
