"""Safe tensor-file loading: safetensors, or pickles restricted to tensors (`weights_only=True`).

A file that is missing, truncated, of the wrong kind, or that would need code execution to unpickle
becomes a MultiIDError naming the file and where to get a good copy; so does a tensor of integers where
the model needs floating-point weights, NaN or infinite weights in the modules checked for them, and a
JSON config that is not an object of the expected keys and value types.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .errors import MultiIDError
from .file_kinds import foreign

PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
_NESTED_KEYS = ("state_dict", "model", "module")
INTEGER_BUFFERS = ("num_batches_tracked",)  # BatchNorm's step counter: the one integer state the modules keep
ConfigTypes = Mapping[str, type | tuple[type, ...]]
_TYPE_NAMES = {
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    str: "a string",
    list: "a list",
    dict: "an object",
    type(None): "null",
}


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
        weight_map = read_json_config(index, f"{what} index", source, required={"weight_map": dict})["weight_map"]
        if not all(isinstance(name, str) for name in weight_map.values()):
            raise MultiIDError(
                f"{index} is damaged: its weight_map must name a shard file for each tensor. Download it again "
                f"from {source}."
            )
        named = set(weight_map.values())
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
    """Strict key, shape and dtype check with a readable report (never a silent non-strict load).

    Keys ending with one of `optional` may be absent (e.g. BatchNorm's num_batches_tracked).
    """
    missing = sorted(k for k in set(expected) - set(found) if not k.endswith(optional or ("\0",)))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(k for k in set(expected) & set(found) if tuple(found[k].shape) != tuple(expected[k]))
    if missing or unexpected or wrong:
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
    check_floats(found, what, path, source)


SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2, "I64": torch.int64, "I32": torch.int32,
    "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool,
}  # fmt: skip


def safetensors_layout(path: str | os.PathLike, what: str, source: str) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors as meta tensors (names, shapes, dtypes; no data), from its header alone:
    what a file is can be checked before the loader that will read it (ComfyUI's own) does."""
    from safetensors import safe_open

    path = Path(path)
    if path.suffix != ".safetensors" or not path.is_file():
        raise MultiIDError(f"The {what} must be a .safetensors file; {path} is not one. Download {source}.")
    try:
        with safe_open(str(path), framework="pt") as file:
            layout = {}
            for name in file.keys():
                tensor = file.get_slice(name)
                layout[name] = torch.empty(
                    tensor.get_shape(), dtype=SAFETENSORS_DTYPES[tensor.get_dtype()], device="meta"
                )
            return layout
    except Exception as err:  # any parse failure means a damaged or foreign file
        raise MultiIDError(
            f"Could not read the {what} file {path} ({type(err).__name__}: {str(err)[:200]}). It is probably "
            f"truncated or not a model file: download it again from {source}."
        ) from None


def check_floats(sd: Mapping[str, torch.Tensor], what: str, path: str | os.PathLike, source: str) -> None:
    """Every weight is floating point (BatchNorm counters aside): integer or boolean tensors mean a file saved
    wrongly or not this model, and torch would fail on them with an error about requiring gradients."""
    wrong = sorted(k for k, v in sd.items() if not v.is_floating_point() and not k.endswith(INTEGER_BUFFERS))
    if wrong:
        k = wrong[0]
        raise MultiIDError(
            f"{path} holds {len(wrong)} tensors of integers or booleans where the {what} needs floating-point "
            f"weights (e.g. {k}: {sd[k].dtype}): it was saved wrongly or is not this model. Download {source}."
        )


def check_finite(sd: Mapping[str, torch.Tensor], what: str, path: str | os.PathLike, source: str) -> None:
    """No NaN or infinite weight: a damaged file would otherwise give NaN features and a black video reported as
    a success. Summed in float64 (finite weights cannot overflow it), so no tensor-sized mask is allocated;
    about a second per 400M weights, so only modules far smaller than the transformer and T5 are checked."""
    bad = sorted(k for k, v in sd.items() if v.is_floating_point() and not torch.isfinite(v.sum(dtype=torch.float64)))
    if bad:
        raise MultiIDError(
            f"{path} is damaged: {len(bad)} tensors of the {what} hold NaN or infinite values (e.g. "
            f"{', '.join(bad[:3])}), which would make every result NaN. Download it again from {source}."
        )


def read_json_config(
    path: str | os.PathLike,
    what: str,
    source: str,
    required: ConfigTypes | None = None,
    typed: ConfigTypes | None = None,
) -> dict[str, Any]:
    """A JSON object with the `required` keys, each value (and those of `typed` keys present) of its type.

    A config that is missing, not JSON, a list, short of a key or holding a string where a number belongs is
    named with what to do, instead of a KeyError or AttributeError deep inside a loader. A float type
    accepts whole numbers; a number type never accepts true/false.
    """
    path = Path(path)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MultiIDError(f"{path} is missing: the {what} folder is incomplete. Download {source}.") from None
    except (OSError, ValueError) as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise MultiIDError(f"{path} is not valid JSON ({err}). Download it again from {source}.") from None
    if not isinstance(config, dict):
        raise MultiIDError(
            f"{path} holds {_TYPE_NAMES.get(type(config), type(config).__name__)}, not the object of settings the "
            f"{what} config is. Download it again from {source}."
        )
    absent = [key for key in required or {} if key not in config]
    if absent:
        raise MultiIDError(
            f"{path} lacks {', '.join(absent)}, which the {what} needs. Download it again from {source}."
        )
    for key, kinds in {**(typed or {}), **(required or {})}.items():
        kinds = kinds if isinstance(kinds, tuple) else (kinds,)
        if key in config and not _fits(config[key], kinds):
            expected = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
            raise MultiIDError(
                f"{path} sets {key} to {json.dumps(config[key])[:60]}; it must be {expected}. Download it again "
                f"from {source}."
            )
    return config


def _fits(value: Any, kinds: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in kinds
    return isinstance(value, kinds) or isinstance(value, int) and float in kinds
