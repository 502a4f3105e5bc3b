"""The Concat-ID-Wan workflows run in a real ComfyUI server on the tiny models and write mp4s.

The graphs, nodes and model files are the shipped ones; only the size is shrunk for CPU time (9 frames of
80x48 and 2 steps instead of 81 frames of 832x480 and 50 steps, which takes minutes even on a GPU).
"""

import json
from pathlib import Path

import pytest
from build_workflows import WORKFLOWS_DIR
from comfy_env import error_message, ui_to_api

pytestmark = pytest.mark.server

SHRUNK = {"width": 80, "height": 48, "length": 9}  # about 832x480's proportions: its masks fit


def run_shrunk(server, object_info, name: str) -> dict:
    prompt = ui_to_api(json.loads((WORKFLOWS_DIR / f"{name}.json").read_text()), object_info)
    for node in prompt.values():
        if node["class_type"] == "MultiID_ConcatIDWanReference":
            assert (node["inputs"]["width"], node["inputs"]["height"], node["inputs"]["length"]) == (832, 480, 81)
            node["inputs"].update(SHRUNK)
        if node["class_type"] in ("KSampler", "BasicScheduler"):
            assert node["inputs"]["steps"] == 50
            node["inputs"]["steps"] = 2
    entry = server.run(prompt)
    assert error_message(entry) is None, f"{name} failed: {error_message(entry)}\n{server.log()}"
    return entry


def mp4_frames(server, entry: dict) -> list[tuple[int, int, float]]:
    import av

    (video,) = [
        Path(server.base) / item["type"] / item["subfolder"] / item["filename"]
        for out in entry["outputs"].values()
        for item in out.get("images", []) + out.get("videos", [])
        if item["filename"].endswith(".mp4")
    ]
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        return [(frame.width, frame.height, float(stream.average_rate)) for frame in container.decode(stream)]


@pytest.mark.parametrize("name", ["concat_id_wan", "concat_id_wan_two_ids_placed"])
def test_concat_id_wan_workflow_writes_the_requested_video(server, object_info, name):
    frames = mp4_frames(server, run_shrunk(server, object_info, name))
    assert len(frames) == SHRUNK["length"]
    assert set(frames) == {(SHRUNK["width"], SHRUNK["height"], 16.0)}
