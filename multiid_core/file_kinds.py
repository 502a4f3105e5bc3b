"""Is a file on disk really the model file its name says? Checked from its header and size, standard library only.

The model check and the loaders use this, so a 10-byte placeholder, a Git LFS pointer, a saved web page or a
download cut short is named as such instead of counting as present.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

ZIP_HEAD = b"PK\x03\x04"
ZIP_END = b"PK\x05\x06"
MAX_SAFETENSORS_HEADER = 100 * 2**20


def foreign(head: bytes) -> str | None:
    """What the first bytes of a file say it is, when that is not a model file at all."""
    if head.startswith(b"version https://git-lfs"):
        return "a Git LFS pointer, not the model (fetch the file itself: hf download, or git lfs pull)"
    if head.lstrip().lower().startswith((b"<!doctype", b"<html", b"<head", b"<body", b"<?xml")):
        return "a web page saved in place of the model (an error or login page)"
    return None


def _safetensors_problem(path: Path, size: int) -> str | None:
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            return "not a safetensors file (shorter than its header)"
        (length,) = struct.unpack("<Q", raw)
        if length > min(size - 8, MAX_SAFETENSORS_HEADER):
            return "not a safetensors file (its header length is impossible)"
        try:
            header = json.loads(f.read(length))
        except ValueError:
            return "not a safetensors file (its header is not JSON)"
    if not isinstance(header, dict):
        return "not a safetensors file (its header is not a table of tensors)"
    ends = [
        entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__" and "data_offsets" in entry
    ]
    expected = 8 + length + max(ends, default=0)
    if size < expected:
        return f"truncated: {size:,} of {expected:,} bytes (the download did not finish)"
    return None


def _pickle_problem(path: Path, size: int) -> str | None:
    with open(path, "rb") as f:
        head = f.read(4)
        if head == ZIP_HEAD:  # torch.save's zip: its end record sits in the last 64 KiB + 22 bytes
            f.seek(max(0, size - 65558))
            return None if ZIP_END in f.read() else "truncated (a torch zip file without its end; download again)"
    if head.startswith(b"\x80"):
        return None
    return "not a PyTorch checkpoint"


def _json_problem(path: Path, size: int) -> str | None:
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return "not valid JSON"
    return None


def _protobuf_problem(path: Path, size: int) -> str | None:
    """ONNX graphs and SentencePiece models are protobuf messages; their first field tag is small and fixed."""
    with open(path, "rb") as f:
        first = f.read(1)
    if size < 64 or first not in (b"\x08", b"\x0a", b"\x12", b"\x1a", b"\x3a"):
        return "not an ONNX or SentencePiece file"
    return None


CHECKS = {
    ".safetensors": _safetensors_problem,
    ".pt": _pickle_problem,
    ".pth": _pickle_problem,
    ".bin": _pickle_problem,
    ".ckpt": _pickle_problem,
    ".json": _json_problem,
    ".onnx": _protobuf_problem,
    ".model": _protobuf_problem,
}


def problem(path: Path) -> str | None:
    """None when `path` looks like a complete file of the kind its suffix names (or a non-empty folder)."""
    if path.is_dir():
        return None if any(path.iterdir()) else "an empty folder"
    size = path.stat().st_size
    if size == 0:
        return "empty (0 bytes)"
    with open(path, "rb") as f:
        head = f.read(64)
    if path.suffix != ".json":
        other = foreign(head)
        if other:
            return other
    check = CHECKS.get(path.suffix.lower())
    return check(path, size) if check else None
