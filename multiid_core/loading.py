"""Safe tensor-file loading: safetensors, or pickles restricted to tensors (`weights_only=True`).

A file that is missing, truncated, of the wrong kind, or that would need code execution to unpickle
becomes a MultiIDError naming the file and where to get a good copy.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path

import torch

from .errors import MultiIDError
from .file_kinds import foreign

PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
_NESTED_KEYS = ("state_dict", "model", "module")


def load_state_dict(
    path: str | os.PathLike, what: str, source: str, allowed_globals: tuple[type, ...] = ()
) -> dict[str, torch.Tensor]:
    """Tensors of one file, on the CPU. `what` names the model, `source` where to download it.

    `allowed_globals`: plain-data classes a release pickles beside its tensors (e.g. argparse.Namespace
    in DeepSpeed checkpoints), allowed in weights-only unpickling.
    """
    path = Path(path)
    if not path.is_file():
        raise MultiIDError(f"The {what} file {path} does not exist. Download {source}.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        elif path.suffix in PICKLE_SUFFIXES:
            with torch.serialization.safe_globals(list(allowed_globals)):
                sd = torch.load(path, map_location="cpu", weights_only=True, mmap=_is_zip(path))
        else:
            raise MultiIDError(
                f"{path} has an unsupported extension for the {what}; expected .safetensors or "
                f"{'/'.join(PICKLE_SUFFIXES)}. Download {source}."
            )
    except pickle.UnpicklingError as err:
        other = _not_a_pickle(path)
        if other:  # not a pickle whose objects were refused, but a damaged or foreign file
            raise MultiIDError(
                f"Could not read the {what} file {path}: it is {other}. Download it again from {source}."
            ) from None
        raise MultiIDError(
            f"Refused to load {path}: besides tensors it holds Python objects ({_unpickling_refusal(err)}), and "
            f"unpickling them could run code, so it is never loaded. Only safetensors or plain tensor "
            f"checkpoints are read. Download the {what} from {source}."
        ) from None
    except MultiIDError:
        raise
    except Exception as err:  # any parse failure means a damaged or foreign file
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


def _unpickling_refusal(err: pickle.UnpicklingError) -> str:
    """What weights-only unpickling refused, without torch's advice to retry with weights_only=False."""
    found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
    return found.group(1) if found else "pickle instructions weights-only loading does not allow"


def _not_a_pickle(path: Path) -> str | None:
    """What a file weights-only unpickling cannot read is, when it is no pickle at all (None: it is one)."""
    with open(path, "rb") as f:
        head = f.read(64)
    if head.startswith((b"\x80", b"PK\x03\x04")):  # a pickle (protocol 2+), or torch.save's zip of one
        return None
    return foreign(head) or "corrupt or not a model file"


def _is_zip(path: Path) -> bool:
    """torch's zip format can be memory-mapped (large files read lazily); legacy pickles cannot."""
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"


def load_sharded_folder(folder: str | os.PathLike, what: str, source: str) -> dict[str, torch.Tensor]:
    """Every `*.safetensors` shard of a diffusers/transformers folder, merged.

    All shards are read, not the ones the index names: Ingredients ships an index that misses its
    router tensors. A shard the index names but the folder lacks means an unfinished download.
    """
    folder = Path(folder)
    shards = sorted(folder.glob("*.safetensors"))
    if not shards:
        raise MultiIDError(f"No .safetensors files in {folder} for the {what}. Download {source}.")
    for index in folder.glob("*.safetensors.index.json"):
        named = set(json.loads(index.read_text()).get("weight_map", {}).values())
        missing = sorted(name for name in named if not (folder / name).is_file())
        if missing:
            raise MultiIDError(
                f"The {what} in {folder} is incomplete: {', '.join(missing)} listed in {index.name} "
                f"is missing. Finish the download of {source}."
            )
    merged: dict[str, torch.Tensor] = {}
    for shard in shards:
        merged.update(load_state_dict(shard, what, source))
    return merged


def check_keys(
    expected: dict[str, torch.Size],
    found: dict[str, torch.Tensor],
    what: str,
    path: str | os.PathLike,
    source: str,
    optional: tuple[str, ...] = (),
) -> None:
    """Strict key and shape check with a readable report (never a silent non-strict load).

    Keys ending with one of `optional` may be absent (e.g. BatchNorm's num_batches_tracked).
    """
    missing = sorted(k for k in set(expected) - set(found) if not k.endswith(optional or ("\0",)))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(k for k in set(expected) & set(found) if tuple(found[k].shape) != tuple(expected[k]))
    if not (missing or unexpected or wrong):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing tensors (e.g. {', '.join(missing[:4])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected tensors (e.g. {', '.join(unexpected[:4])})")
    if wrong:
        k = wrong[0]
        parts.append(
            f"{len(wrong)} tensors of the wrong shape (e.g. {k}: {tuple(found[k].shape)} instead of "
            f"{tuple(expected[k])})"
        )
    raise MultiIDError(f"{path} does not match the {what}: {'; '.join(parts)}. Download {source}.")
