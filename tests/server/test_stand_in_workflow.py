"""The Stand-In workflows run in a real ComfyUI server on the tiny models (ComfyUI's own Load Diffusion Model on
the tiny Wan 14B-layout files, the tiny adapters) and write mp4s of the requested size.

The graphs, nodes and model files are the shipped ones; only the size and the steps are shrunk for CPU time
(9 frames of 80x48 and 2 steps instead of 81 frames of 832x480 and 20; the Wan2.2 experts split 1 + 1).
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
        inputs = node["inputs"]
        if node["class_type"] == "EmptyHunyuanLatentVideo":
            assert (inputs["width"], inputs["height"], inputs["length"]) == (832, 480, 81)
            inputs.update(SHRUNK)
        if node["class_type"] == "KSampler":
            assert (inputs["steps"], inputs["cfg"], inputs["scheduler"]) == (20, 5.0, "simple")
            inputs["steps"] = 2
        if node["class_type"] == "KSamplerAdvanced":  # high: steps 0-8 of 20, low: 9 to the end
            assert inputs["steps"] == 20 and 9 in (inputs["start_at_step"], inputs["end_at_step"])
            inputs.update(steps=2, **{k: 1 for k in ("start_at_step", "end_at_step") if inputs[k] == 9})
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


@pytest.mark.parametrize("name", ["stand_in_wan21_14b", "stand_in_two_people_placed", "stand_in_wan22_a14b"])
def test_stand_in_workflow_writes_the_requested_video_with_identity_scores(server, object_info, name):
    entry = run_shrunk(server, object_info, name)
    frames = mp4_frames(server, entry)
    assert len(frames) == SHRUNK["length"]
    assert set(frames) == {(SHRUNK["width"], SHRUNK["height"], 16.0)}
    texts = [text for out in entry["outputs"].values() for text in out.get("text", [])]
    assert any("Stand-In (" in text for text in texts)  # Apply Stand-In's summary on the node
