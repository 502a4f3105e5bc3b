"""tests/core runs on plain PyTorch and the pack's requirements: no ComfyUI module, no file of a ComfyUI tree.

The tiny T5 writers (Concat-ID's t5-v1_1-xxl folder) rebuild spiece.model from a T5 tokenizer.json, which they
look for in a ComfyUI tree. No test here reads that tokenizer, so each module gets a small stand-in written by
`stand_in_t5_tokenizer_json` instead; the real vocabulary is compared where ComfyUI is (tests/comfy).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

# Top-level modules of ComfyUI (and of this pack's nodes/, which imports them) and of the tests' ComfyUI helpers.
COMFYUI_MODULES = {
    "comfy",
    "comfy_api",
    "comfy_execution",
    "comfy_extras",
    "comfy_env",
    "execution",
    "folder_paths",
    "nodes",
    "server",
}


def stand_in_t5_tokenizer_json(path: Path) -> Path:
    """A tokenizer.json in the layout of ComfyUI's T5 one (unigram, a Precompiled normaliser), 32000 pieces."""
    vocab = [["<pad>", 0.0], ["</s>", 0.0], ["<unk>", 0.0], ["▁", -2.0]]
    vocab += [[f"▁{chr(c)}", -3.0] for c in range(ord("a"), ord("z") + 1)]
    vocab += [[f"▁w{i}", -10.0 - i * 1e-4] for i in range(32000 - len(vocab))]
    content = {
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Precompiled", "precompiled_charsmap": ""}]},
        "model": {"type": "Unigram", "unk_id": 2, "vocab": vocab},
    }
    path.write_text(json.dumps(content))
    return path


def comfyui_modules() -> set[str]:
    return {name for name in sys.modules if name.split(".")[0] in COMFYUI_MODULES}


@pytest.fixture(scope="module", autouse=True)
def without_comfyui(tmp_path_factory: pytest.TempPathFactory):
    """Per test module: the tiny T5 writers get the stand-in tokenizer, and no ComfyUI module gets imported.

    Module scope, so the stand-in never outlives tests/core into a ComfyUI test of the same session.
    """
    import multiid_tools.tiny_models.t5 as tiny_t5  # here, not above: a bare Python must reach the gate's skip

    tokenizer = stand_in_t5_tokenizer_json(tmp_path_factory.mktemp("t5_tokenizer") / "tokenizer.json")
    before = comfyui_modules()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tiny_t5, "find_t5_tokenizer_json", lambda: tokenizer)
        yield
    imported = comfyui_modules() - before
    assert not imported, f"tests/core must run without ComfyUI, but imported {sorted(imported)}"
