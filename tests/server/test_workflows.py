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


def test_tiny_models_carry_every_file_name_the_workflows_declare(server):
    """The editor's missing-model prompt stays silent on the tiny models: the same names as the releases."""
    absent = []
    for path in sorted(WORKFLOWS_DIR.glob("*.json")):
        for model in json.loads(path.read_text())["models"]:
            if not (Path(server.base) / "models" / model["directory"] / model["name"]).is_file():
                absent.append(f"{path.name}: {model['directory']}/{model['name']}")
    assert absent == []


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


def saved_videos(server, entry: dict) -> list[Path]:
    files = []
    for out in entry["outputs"].values():
        for item in out.get("images", []) + out.get("videos", []):
            if item["filename"].endswith(".mp4"):
                files.append(Path(server.base) / item["type"] / item["subfolder"] / item["filename"])
    return files


def video_frames(path: Path) -> list:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [(frame.width, frame.height, float(stream.average_rate)) for frame in container.decode(stream)]


def test_consisid_single_id_writes_the_authors_video_format(server, object_info):
    """As shipped (49 frames at 720x480, 8 fps: the real grid), with 3 of its 50 steps: each step is the same
    code, and 47 more cost a minute of CPU."""
    entry = shrunk(server, object_info, "consisid_single_id", frames=49, width=720, height=480, steps=3)
    videos = saved_videos(server, entry)
    assert len(videos) == 1 and videos[0].stat().st_size > 0
    frames = video_frames(videos[0])
    assert len(frames) == 49
    assert {f[:2] for f in frames} == {(720, 480)}
    assert frames[0][2] == 8.0


# What shrunk() lowers for CPU time, by node: the video's size and length where it is set, and the steps.
SIZE = {"frames": 9, "width": 352, "height": 240}
SHRINK = {
    "MultiID_Sampler": {**SIZE, "steps": 2},
    "MultiID_IdentityConditioning": SIZE,
    "KSampler": {"steps": 2},
    "BasicScheduler": {"steps": 2},
}


def shrunk_prompt(object_info, name: str, **sampler) -> dict:
    """A workflow as shipped, as the API prompt, with its size/length/steps cut (the graph is unchanged);
    `sampler` overrides the cuts."""
    prompt = ui_to_api(json.loads((WORKFLOWS_DIR / f"{name}.json").read_text()), object_info)
    for node in prompt.values():
        cuts = SHRINK.get(node["class_type"], {})
        node["inputs"].update({**cuts, **{k: v for k, v in sampler.items() if k in cuts}})
    return prompt


def shrunk(server, object_info, name: str, **sampler) -> dict:
    """A shipped workflow, shrunk (shrunk_prompt), run on the server to the end."""
    entry = server.run(shrunk_prompt(object_info, name, **sampler))
    assert error_message(entry) is None, f"{name} failed: {error_message(entry)}\n{server.log()}"
    return entry


def first_frame_rgb(path: Path):
    import av

    with av.open(str(path)) as container:
        return next(container.decode(container.streams.video[0])).to_ndarray(format="rgb24").astype(float)


def test_ingredients_two_ids_writes_video_and_routing_map(server, object_info):
    entry = shrunk(server, object_info, "ingredients_two_ids")
    videos = sorted(saved_videos(server, entry), key=lambda p: "routing" in p.name)
    assert len(videos) == 2 and "routing" in videos[1].name
    for video in videos:
        frames = video_frames(video)
        assert len(frames) == 9 and frames[0][:2] == (352, 240)


def test_consisid_placed_two_ids_puts_each_person_in_their_mask(server, object_info):
    entry = shrunk(server, object_info, "consisid_placed_two_ids")
    videos = sorted(saved_videos(server, entry), key=lambda p: "routing" in p.name)
    assert len(videos) == 2
    routing = first_frame_rgb(videos[1])
    left, right = routing[:, 40:130].mean((0, 1)), routing[:, 220:310].mean((0, 1))
    assert left[0] > left[2] + 100  # person 1 (orange) on the left
    assert right[2] > right[0] + 100  # person 2 (blue) on the right


def test_concat_id_cogvideox_two_ids_writes_video(server, object_info):
    entry = shrunk(server, object_info, "concat_id_cogvideox_two_ids")
    videos = saved_videos(server, entry)
    assert len(videos) == 1
    frames = video_frames(videos[0])
    assert len(frames) == 9 and frames[0][:2] == (352, 240) and frames[0][2] == 8.0


def test_consisid_ksampler_lora_writes_video_through_ksampler(server, object_info):
    entry = shrunk(server, object_info, "consisid_ksampler_lora")
    (video,) = saved_videos(server, entry)
    frames = video_frames(video)
    assert len(frames) == 9 and frames[0][:2] == (352, 240) and frames[0][2] == 8.0
    scores = [out for out in entry["outputs"].values() if "images" in out and "text" in out]
    assert scores, "Identity Similarity showed no result"


def test_the_example_lora_loads_and_changes_the_video(server, object_info):
    """The tests' LoRA (diffusers keys, `transformer.transformer_blocks.0.attn1.to_q.lora_A/B`) is mapped onto
    the ConsisID MODEL: ComfyUI loads every key, and the same seed at strength 0 gives another video."""
    log_start = server.log_path.stat().st_size
    videos = {}
    for strength in (1.0, 0.0):
        prompt = shrunk_prompt(object_info, "consisid_ksampler_lora", frames=5, width=96, height=64)
        (lora,) = [node for node in prompt.values() if node["class_type"] == "LoraLoaderModelOnly"]
        lora["inputs"]["strength_model"] = strength
        entry = server.run(prompt)
        assert error_message(entry) is None, f"strength {strength}: {error_message(entry)}\n{server.log()}"
        (video,) = saved_videos(server, entry)
        videos[strength] = first_frame_rgb(video)
    with open(server.log_path, errors="replace") as log:
        log.seek(log_start)
        written = log.read()
    assert "lora key not loaded" not in written, written[-4000:]
    assert abs(videos[1.0] - videos[0.0]).max() > 0, "the LoRA did not change the video"


def test_ingredients_sampler_custom_advanced_writes_video(server, object_info):
    entry = shrunk(server, object_info, "ingredients_sampler_custom_advanced")
    (video,) = saved_videos(server, entry)
    frames = video_frames(video)
    assert len(frames) == 9 and frames[0][:2] == (352, 240) and frames[0][2] == 8.0
