"""The Phantom placement workflows run in a real ComfyUI server: native Phantom on the tiny Phantom-Wan files, the
two people placed by their masks, the identity scores with the swap check; shrunk to 9 frames of 80x48, 2 steps."""

import json

import pytest
from build_workflows import WORKFLOWS_DIR
from comfy_env import error_message, ui_to_api
from test_stand_in_workflow import mp4_frames

pytestmark = pytest.mark.server

SHRUNK = {"width": 80, "height": 48, "length": 9}  # about 832x480's proportions: its masks fit


@pytest.mark.parametrize("name", ["phantom_two_people_placed", "phantom_14b_two_people_placed"])
def test_phantom_workflow_places_two_people_and_scores_them(server, object_info, name):
    prompt = ui_to_api(json.loads((WORKFLOWS_DIR / f"{name}.json").read_text()), object_info)
    for node in prompt.values():
        inputs = node["inputs"]
        if node["class_type"] == "WanPhantomSubjectToVideo":
            assert (inputs["width"], inputs["height"], inputs["length"]) == (832, 480, 81)
            inputs.update(SHRUNK)
        if node["class_type"] == "BasicScheduler":
            assert inputs["steps"] == 50
            inputs["steps"] = 2
    entry = server.run(prompt)
    assert error_message(entry) is None, f"{name} failed: {error_message(entry)}\n{server.log()}"
    frames = mp4_frames(server, entry)
    assert len(frames) == SHRUNK["length"] and set(frames) == {(SHRUNK["width"], SHRUNK["height"], 16.0)}
    texts = [text for out in entry["outputs"].values() for text in out.get("text", [])]
    assert any("2 people placed by their masks" in text for text in texts)
    assert any(text.startswith(("OK: no swap", "SWAP:", "BLEND:")) for text in texts)  # the scores' first line
