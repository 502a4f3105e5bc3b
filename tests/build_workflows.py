"""The workflows in workflows/, described once. `python tests/build_workflows.py` rewrites the files from a
live ComfyUI's /object_info; tests/server/test_workflows.py checks the files still equal this output.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))

from workflow_builder import Graph  # noqa: E402

from multiid_core.models import CONSISID_MODEL_FILES, FACE_FILES, ModelFile  # noqa: E402

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


CONSISID_PROMPT = (
    "The video shows a person standing on a quiet city street in the late afternoon, facing the camera. Warm "
    "sunlight falls across their face from the left, and the background is softly blurred with passing cars and "
    "shop windows. They smile slightly, turn their head a little towards the light and then look back at the "
    "camera. The shot is a steady medium close-up with shallow depth of field, natural colours and fine detail "
    "in the skin, hair and clothing."
)


def text_encoders(graph: Graph, prompt: str, column: int = 0, row: int = 2):
    """The T5 loader and the two prompt encoders every CogVideoX-family workflow uses."""
    clip = graph.add(
        "MultiID_LoadTextEncoder", "ConsisID-preview/text_encoder", "auto", "default", column=column, row=row
    )
    positive = graph.add("MultiID_TextEncode", prompt, column=column + 1, row=row, title="Prompt", clip=(clip, "clip"))
    negative = graph.add(
        "MultiID_TextEncode", "", column=column + 1, row=row + 1, title="Negative prompt", clip=(clip, "clip")
    )
    return positive, negative


def video_output(graph: Graph, model, latent, prefix: str, fps: float, column: int):
    """Decode, assemble at the family's frame rate and save as mp4."""
    frames = graph.add("MultiID_Decode", True, column=column, row=0, model=(model, "model"), latent=(latent, "latent"))
    video = graph.add("CreateVideo", fps, column=column, row=1, images=(frames, "frames"))
    graph.add("SaveVideo", prefix, "mp4", "h264", column=column + 1, row=0, video=(video, "VIDEO"))


def consisid_single_id() -> tuple[Graph, list[dict], str]:
    graph = Graph()
    extractor = face_extractor(graph)
    photo = graph.add("LoadImage", "portrait.png", "image", column=0, row=1)
    identity = graph.add(
        "MultiID_EncodeIdentity", "largest", 0, "", column=1, row=0,
        face_extractor=(extractor, "face_extractor"), photos=(photo, "IMAGE"),
    )  # fmt: skip
    positive, negative = text_encoders(graph, CONSISID_PROMPT)
    model = graph.add(
        "MultiID_LoadModel", "ConsisID-preview", "from model folder", "bf16", "same as precision", column=1, row=4
    )
    latent = graph.add(
        "MultiID_Sampler", 720, 480, 49, 50, 6.0, False, "CogVideoX DPM", 42, "fixed", 1.0, column=2, row=0,
        model=(model, "model"), positive=(positive, "conditioning"), negative=(negative, "conditioning"),
        identity=(identity, "identity"),
    )  # fmt: skip
    video_output(graph, model, latent, "MultiID/consisid", 8.0, column=3)
    description = (
        "ConsisID: one person from one photo and a detailed prompt, 49 frames at 720x480, 8 fps (the authors' "
        "settings). Put the whole BestWishYsh/ConsisID-preview snapshot in models/multiid/ConsisID-preview."
    )
    return graph, model_entries(FACE_FILES + CONSISID_MODEL_FILES), description


WORKFLOWS = {"face_identity_preview": face_identity_preview, "consisid_single_id": consisid_single_id}


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
