"""The workflows in workflows/, described once. `python tests/build_workflows.py` rewrites the files from a
live ComfyUI's /object_info; tests/server/test_workflows.py checks the files still equal this output.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))

from multiid_core.models import FACE_FILES, ModelFile  # noqa: E402
from workflow_builder import Graph  # noqa: E402

WORKFLOWS_DIR = Path(__file__).resolve().parents[1] / "workflows"
FACES = "ConsisID-preview/face_encoder"


def model_entries(files: tuple[ModelFile, ...]) -> list[dict]:
    """The `models` list the frontend reads to offer downloads of missing files."""
    return [{"name": f.path, "url": f.url, "directory": f.folder} for f in files]


def face_extractor(graph: Graph, row: int = 0):
    return graph.add(
        "MultiID_LoadFaceExtractor",
        f"{FACES}/models/antelopev2",
        f"{FACES}/EVA02_CLIP_L_336_psz14_s6B.pt",
        f"{FACES}/parsing_bisenet.pth",
        "auto",
        "auto",
        column=0,
        row=row,
    )


def face_identity_preview() -> tuple[Graph, list[dict], str]:
    graph = Graph()
    extractor = face_extractor(graph)
    photo = graph.add("LoadImage", "portrait.png", "image", column=0, row=1)
    identity = graph.add(
        "MultiID_EncodeIdentity", "largest", 0, "", column=1, row=0,
        face_extractor=(extractor, "face_extractor"), photos=(photo, "IMAGE"),
    )  # fmt: skip
    graph.add("PreviewImage", column=2, row=0, title="Aligned face", images=(identity, "aligned_faces"))
    graph.add("PreviewImage", column=2, row=1, title="Detections", images=(identity, "detections"))
    return graph, model_entries(FACE_FILES), "Check which face each photo gives: detections and the aligned face."


WORKFLOWS = {"face_identity_preview": face_identity_preview}


def build(object_info: dict) -> dict[str, dict]:
    built = {}
    for name, describe in WORKFLOWS.items():
        graph, models, description = describe()
        built[name] = graph.to_ui(object_info, models, description)
    return built


def dump(workflow: dict) -> str:
    return json.dumps(workflow, indent=2) + "\n"


def main() -> None:
    from comfy_env import ComfyServer, make_base_dir

    with tempfile.TemporaryDirectory() as base, ComfyServer(make_base_dir(Path(base))) as server:
        object_info = server.get("/object_info")
    WORKFLOWS_DIR.mkdir(exist_ok=True)
    for name, workflow in build(object_info).items():
        (WORKFLOWS_DIR / f"{name}.json").write_text(dump(workflow))
        print(WORKFLOWS_DIR / f"{name}.json")


if __name__ == "__main__":
    main()
