"""Files that run code when unpickled are refused by every loader, and model names cannot leave the model folders.

The payload (conftest.RunsCode) touches a marker file when unpickled. Every loader that reads .pt/.pth/.bin
must refuse it with a clear message, and the marker must not exist afterwards. The same files reach the
loaders through POST /prompt on the real server. Names from inputs ('../..', absolute paths) must not
resolve to anything outside the registered model folders.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from reliability_files import RunsCode, write_payload
from reliability_graphs import assert_clear, outcome, succeed, video_prompt

from multiid_core.cogvideox.sat_conversion import load_sat_pickle
from multiid_core.concat_id_wan.checkpoint import read_checkpoint
from multiid_core.errors import MultiIDError
from multiid_core.faces.eva_clip import load_eva_clip
from multiid_core.faces.parsing import load_face_parser
from multiid_core.loading import load_state_dict

REFUSAL = r"Refused to load .*Python objects \(.*\).*could run code, so it is never loaded.*Download"


def zip_payload(path: Path, marker: Path) -> Path:
    return write_payload(path, marker)  # torch.save's zip format, as every release since torch 1.6


def legacy_payload(path: Path, marker: Path) -> Path:
    torch.save({"weight": torch.zeros(1), "payload": RunsCode(marker)}, path, _use_new_zipfile_serialization=False)
    return path


def raw_pickle_payload(path: Path, marker: Path) -> Path:
    with open(path, "wb") as f:
        pickle.dump({"weight": torch.zeros(1), "payload": RunsCode(marker)}, f, protocol=2)
    return path


PAYLOADS = {"zip": zip_payload, "legacy": legacy_payload, "raw pickle": raw_pickle_payload}
LOADERS = {
    "load_state_dict": lambda path: load_state_dict(path, "test model", "its repository"),
    "EVA-CLIP": load_eva_clip,
    "BiSeNet": load_face_parser,
    "Concat-ID-Wan .pt": read_checkpoint,
    "Concat-ID CogVideoX SAT .pt": lambda path: load_sat_pickle(path, "Concat-ID transformer"),
}


def test_the_payload_does_run_code_when_unpickled_unsafely(tmp_path):
    """The check below means something: the same file, loaded the unsafe way, runs its code."""
    marker = tmp_path / "ran"
    raw_pickle_payload(tmp_path / "payload.pt", marker)
    with open(tmp_path / "payload.pt", "rb") as f:
        pickle.load(f)  # noqa: S301 - deliberately unsafe, on our own harmless payload
    assert marker.exists()


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin"])
@pytest.mark.parametrize("payload", list(PAYLOADS))
@pytest.mark.parametrize("loader", list(LOADERS))
def test_every_loader_refuses_code_in_pickles(tmp_path, loader, payload, suffix):
    marker = tmp_path / "payload_ran"
    path = PAYLOADS[payload](tmp_path / f"model{suffix}", marker)
    with pytest.raises(MultiIDError) as refused:
        LOADERS[loader](path)
    assert not marker.exists(), "the payload ran"
    message = str(refused.value)
    assert str(path) in message and "Download" in message
    assert "weights_only=False" not in message and "trust the source" not in message
    assert_clear("MultiIDError: " + message, REFUSAL)


def with_concat_id_wan(prompt: dict) -> dict:
    """Adds Load Concat-ID Wan Model (and a preview, so it runs) to a prompt."""
    prompt["wan"] = {"class_type": "MultiID_LoadConcatIDWan", "inputs": {"weight_dtype": "default"}}
    prompt["wan_info"] = {"class_type": "PreviewAny", "inputs": {"source": ["wan", 0]}}
    return prompt


@pytest.mark.server
@pytest.mark.parametrize(
    ("node", "name", "value"),
    [
        ("face", "eva_clip", "Evil/face_encoder/EVA02_CLIP_L_336_psz14_s6B.pt"),
        ("face", "face_parser", "Evil/face_encoder/parsing_bisenet.pth"),
        ("wan", "model", "Evil/second_stage_adaln.pt"),
    ],
)
def test_payloads_through_the_server_are_refused(server, node, name, value):
    prompt = with_concat_id_wan(video_prompt())
    prompt[node]["inputs"][name] = value
    error, _ = outcome(server, prompt)
    assert_clear(error, REFUSAL)
    assert not (Path(server.base) / "payload_ran").exists(), "the payload ran inside ComfyUI"
    succeed(server, video_prompt())


ESCAPES = ["../../../../etc/passwd", "/etc/passwd", "ConsisID-preview/../../../../etc"]
NOT_FOUND = r"not found at '.*'\. Expected ComfyUI/models/multiid/ConsisID-preview/face_encoder"
# node, input, what the refusal says
NAMED_INPUTS = [
    ("face", "eva_clip", NOT_FOUND),
    ("face", "face_parser", NOT_FOUND),
    ("face", "antelopev2", NOT_FOUND),
    ("model", "model", r"The model '.*' was not found\. Expected a snapshot folder ComfyUI/models/multiid/"),
    ("model", "vae", r"not in ComfyUI's models/vae folder"),
    ("t5", "source", r"The T5 text encoder was not found at '.*'\. Expected ComfyUI/models/multiid/"),
    ("wan", "model", r"The Concat-ID Wan model '.*' was not found"),
]


@pytest.mark.server
@pytest.mark.parametrize("escape", ESCAPES)
@pytest.mark.parametrize(("node", "name", "pattern"), NAMED_INPUTS, ids=[f"{n}.{i}" for n, i, _ in NAMED_INPUTS])
def test_model_names_cannot_leave_the_model_folders(server, node, name, pattern, escape):
    """ComfyUI 0.3.75 does not check V3 combo values against their options: our resolvers must refuse."""
    prompt = video_prompt()
    if node == "wan":
        prompt = with_concat_id_wan(prompt)
        prompt["wan"]["inputs"]["model"] = escape
    prompt[node]["inputs"][name] = escape
    error, _ = outcome(server, prompt)
    assert_clear(error, pattern)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"<!DOCTYPE html><html><body>Sign in to continue</body></html>", r"it is a web page saved in place of"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:0123\nsize 1024\n", r"it is a Git LFS pointer"),
        (bytes(64), r"it is corrupt or not a model file"),
    ],
    ids=["web page", "Git LFS pointer", "zeros"],
)
def test_files_that_are_no_checkpoint_are_named_for_what_they_are(tmp_path, content, says):
    path = tmp_path / "EVA02_CLIP_L_336_psz14_s6B.pt"
    path.write_bytes(content)
    with pytest.raises(MultiIDError, match=rf"Could not read the .* file {path}: {says}.*Download it again"):
        load_eva_clip(path)


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_truncated_checkpoints_are_reported_as_truncated(tmp_path, zipped):
    path = tmp_path / "model.pth"
    torch.save({"weight": torch.zeros(256)}, path, _use_new_zipfile_serialization=zipped)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(MultiIDError, match=r"Could not read the .* It is probably truncated .*download it again"):
        load_state_dict(path, "test model", "its repository")
