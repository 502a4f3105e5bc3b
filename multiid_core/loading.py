"""Safe tensor-file loading: safetensors, or pickles restricted to tensors (`weights_only=True`).

A file that is missing, truncated, of the wrong kind, or that would need code execution to unpickle
becomes a MultiIDError naming the file and where to get a good copy.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

from .errors import MultiIDError

PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
_NESTED_KEYS = ("state_dict", "model", "module")


def load_state_dict(path: str | os.PathLike, what: str, source: str) -> dict[str, torch.Tensor]:
    """Tensors of one file, on the CPU. `what` names the model, `source` where to download it."""
    path = Path(path)
    if not path.is_file():
        raise MultiIDError(f"The {what} file {path} does not exist. Download {source}.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        elif path.suffix in PICKLE_SUFFIXES:
            sd = torch.load(path, map_location="cpu", weights_only=True, mmap=_is_zip(path))
        else:
            raise MultiIDError(
                f"{path} has an unsupported extension for the {what}; expected .safetensors or "
                f"{'/'.join(PICKLE_SUFFIXES)}. Download {source}."
            )
    except pickle.UnpicklingError as err:
        raise MultiIDError(
            f"Refused to load {path}: it holds Python objects other than tensors, and loading it could run "
            f"code ({str(err).splitlines()[0][:200]}). Only safetensors or plain tensor checkpoints are "
            f"loaded. Download the {what} from {source}."
        ) from None
    except MultiIDError:
        raise
    except Exception as err:  # noqa: BLE001 - any parse failure means a damaged or foreign file
        raise MultiIDError(
            f"Could not read the {what} file {path} ({type(err).__name__}: {str(err)[:200]}). It is probably "
            f"truncated or not a model file: download it again from {source}."
        ) from None
    for key in _NESTED_KEYS:
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise MultiIDError(f"{path} is not a state dict of tensors for the {what}. Download {source}.")
    return sd


def _is_zip(path: Path) -> bool:
    """torch's zip format can be memory-mapped (large files read lazily); legacy pickles cannot."""
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"
