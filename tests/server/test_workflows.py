"""Every workflow in workflows/ is current, and runs in a real ComfyUI server on the tiny models."""

import json
from pathlib import Path

import pytest

from build_workflows import WORKFLOWS, WORKFLOWS_DIR, build, dump
from comfy_env import error_message, ui_to_api

pytestmark = pytest.mark.server


def test_workflow_files_match_their_descriptions(object_info):
    built = build(object_info)
    assert sorted(p.stem for p in WORKFLOWS_DIR.glob("*.json")) == sorted(WORKFLOWS)
    for name, workflow in built.items():
        committed = (WORKFLOWS_DIR / f"{name}.json").read_text()
        assert committed == dump(workflow), f"workflows/{name}.json is stale: run python tests/build_workflows.py"


def run_workflow(server, object_info, name: str) -> dict:
    workflow = json.loads((WORKFLOWS_DIR / f"{name}.json").read_text())
    entry = server.run(ui_to_api(workflow, object_info))
    assert error_message(entry) is None, f"{name} failed: {error_message(entry)}\n{server.log()}"
    return entry


def test_face_identity_preview(server, object_info):
    entry = run_workflow(server, object_info, "face_identity_preview")
    previews = [out for out in entry["outputs"].values() if "images" in out]
    assert len(previews) >= 2  # the two PreviewImage nodes (plus EncodeIdentity's own preview)
    for out in previews:
        for image in out["images"]:
            assert (Path(server.base) / image["type"] / image["subfolder"] / image["filename"]).is_file()
