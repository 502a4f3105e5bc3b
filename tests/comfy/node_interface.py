"""The part of the pack's nodes that saved workflows and API prompts depend on: node ids, input names and types,
whether an input is optional, the options of fixed combos, output types and names. Kept in node_interface.json;
a change there breaks users' workflows and must be deliberate (rewrite it with `python tests/comfy/node_interface.py`
from the pack's environment, and say why in the commit)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

SAVED = Path(__file__).with_name("node_interface.json")
FILE_COMBOS = {"model", "vae", "source", "antelopev2", "eva_clip", "face_parser", "text_encoder", "adapter"}  # files


def interface(node_classes: dict) -> dict:
    nodes = {}
    for node_id, cls in sorted(node_classes.items()):
        if not node_id.startswith("MultiID_"):
            continue
        info = cls.GET_NODE_INFO_V1()
        inputs = {}
        for section in ("required", "optional"):
            for name, spec in info["input"].get(section, {}).items():
                kind = spec[0] if isinstance(spec[0], str) else "COMBO"
                entry = {"type": kind, "optional": section == "optional"}
                if kind == "COMBO" and name not in FILE_COMBOS:
                    entry["options"] = list(spec[1].get("options", spec[0]) if isinstance(spec[0], str) else spec[0])
                inputs[name] = entry
        outputs = [[t, n] for t, n in zip(info["output"], info["output_name"], strict=True)]
        nodes[node_id] = {"inputs": inputs, "outputs": outputs}
    return nodes


if __name__ == "__main__":  # rewrite the saved interface from a ComfyUI with the pack
    sys.path[:0] = [str(Path(__file__).parents[1]), str(Path(__file__).parents[2])]
    import tempfile

    from comfy_env import load_in_process, make_base_dir

    with tempfile.TemporaryDirectory() as base:
        classes = load_in_process(make_base_dir(Path(base)))
        SAVED.write_text(json.dumps(interface(classes), indent=1) + "\n")
        print(f"wrote {SAVED}")
