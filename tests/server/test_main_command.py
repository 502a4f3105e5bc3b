"""The README's main command, `python multiid.py video`, run as a user runs it.

On a fresh clone (a Python with nothing installed, no ComfyUI around): the pack's own environment and
ComfyUI, tiny models said loudly, the CPU chosen by itself, progress, the mp4 where the user asked, no
temporary files left. Inside a ComfyUI whose model files sit in a folder its extra_model_paths.yaml adds:
`models check`, the runner and the nodes all find them, so the run uses them instead of tiny models.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av
import pytest
from comfy_env import PACK_NAME, copy_comfyui, sample_photo

from multiid_tools.tiny_models import write_all

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[2]
BARE_PYTHON = getattr(sys, "_base_executable", sys.executable)  # the interpreter the venv was made from
PROMPT = "A person stands on a quiet street in warm evening light and smiles at the camera."


def run(python: str, *args: str, cwd: Path, env: dict[str, str], pack: Path = ROOT) -> tuple[int, str]:
    result = subprocess.run(
        [python, str(pack / "multiid.py"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    return result.returncode, result.stdout + result.stderr


def frames(video: Path) -> int:
    with av.open(str(video)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_fresh_clone_runs_on_tiny_models_with_progress_and_leaves_no_temp_files(tmp_path: Path):
    if (
        Path(os.environ.get("COMFYUI_PATH", ROOT / ".comfyui" / "ComfyUI")).resolve()
        != (ROOT / ".comfyui" / "ComfyUI").resolve()
    ):
        pytest.skip("COMFYUI_PATH points at another ComfyUI; a fresh clone uses the pack's own .comfyui tree")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("COMFYUI_PATH", "VIRTUAL_ENV")}
    env["TMPDIR"] = str(scratch)
    code, out = run(
        BARE_PYTHON, "video", "--photo", str(sample_photo()), "--prompt", PROMPT, "--out", "videos/me.mp4",
        "--steps", "2", cwd=tmp_path, env=env,
    )  # fmt: skip
    assert code == 0, out
    assert "No ComfyUI around this pack: running on the pack's own ComfyUI" in out
    assert "TINY RANDOM MODELS" in out and "the video will be noise" in out
    assert "python multiid.py models download --family ConsisID" in out
    import torch

    if not torch.cuda.is_available():
        assert "No GPU found: running ComfyUI on the CPU (--cpu)" in out
    assert "MultiID Sampler: step 2 of 2" in out and "] MultiID Decode" in out
    video = tmp_path / "videos" / "me.mp4"
    assert f"Wrote {video} in " in out
    assert frames(video) == 49
    # Its own files are gone; libraries keep a few bytes of cache there (torch's inductor folder, a session id).
    left = list(scratch.rglob("*"))
    assert not [p for p in left if "multiid" in p.name], left
    assert sum(p.stat().st_size for p in left if p.is_file()) < 64 * 1024, left


@pytest.fixture
def user_comfyui(tmp_path: Path) -> Path:
    """A ComfyUI install as users have one: its own tree, this pack in custom_nodes, and the model files
    in a shared folder that its extra_model_paths.yaml adds (nothing under ComfyUI/models)."""
    comfyui = tmp_path / "ComfyUI"
    copy_comfyui(comfyui)
    (comfyui / "custom_nodes").mkdir()
    (comfyui / "custom_nodes" / PACK_NAME).symlink_to(ROOT, target_is_directory=True)
    write_all(tmp_path / "shared")
    (comfyui / "extra_model_paths.yaml").write_text(
        "studio:\n"
        "    base_path: ../shared/models\n"
        "    multiid: multiid\n"
        "    insightface: insightface\n"
        "    facexlib: facexlib\n"
    )
    return comfyui


def test_bad_photo_out_or_model_paths_are_refused_before_comfyui_starts(tmp_path: Path):
    """A file that is no picture, an --out that cannot be written, a malformed, absent or stale
    extra_model_paths.yaml: each a message before the server starts, never after sampling or as a traceback."""
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    not_a_picture = tmp_path / "me.jpg"
    not_a_picture.write_text("a text file named like a photo")
    code, out = run(sys.executable, "video", "--photo", str(not_a_picture), "--prompt", PROMPT, cwd=tmp_path, env=env)
    assert code != 0 and f"{not_a_picture} is not a picture this can read" in out, out
    assert "Starting ComfyUI" not in out and "Traceback" not in out

    taken = tmp_path / "taken"
    taken.write_text("a file where the output folder should be")
    for where, message in ((taken / "me.mp4", f"Cannot write --out {taken / 'me.mp4'}"), (tmp_path, "is a folder")):
        code, out = run(
            sys.executable, "video", "--photo", str(sample_photo()), "--prompt", PROMPT, "--out", str(where),
            cwd=tmp_path, env=env,
        )  # fmt: skip
        assert code != 0 and message in out, out
        assert "Starting ComfyUI" not in out and "Traceback" not in out
    assert not list(tmp_path.glob(".multiid-*")), "the write probe was left behind"

    malformed, stale = tmp_path / "malformed.yaml", tmp_path / "stale.yaml"
    malformed.write_text("shared: [unclosed\n  checkpoints: models\n")
    stale.write_text(f"shared:\n  base_path: {tmp_path / 'unmounted'}\n  multiid: models/multiid\n")
    for config, message in (
        (malformed, f"Cannot read {malformed}"),
        (tmp_path / "absent.yaml", f"Cannot read {tmp_path / 'absent.yaml'}"),
        (stale, f"section 'shared' has base_path {tmp_path / 'unmounted'}, which is not a folder"),
    ):
        code, out = run(
            sys.executable, "video", "--photo", str(sample_photo()), "--prompt", PROMPT, "--extra-model-paths",
            str(config), cwd=tmp_path, env=env,
        )  # fmt: skip
        assert code != 0 and message in out, out
        assert "Starting ComfyUI" not in out and "Traceback" not in out


def test_inside_a_comfyui_extra_model_paths_serve_check_runner_and_nodes(user_comfyui: Path, tmp_path: Path):
    pack = user_comfyui / "custom_nodes" / PACK_NAME
    env = {k: v for k, v in os.environ.items() if k != "COMFYUI_PATH"}
    shared = tmp_path / "shared" / "models" / "multiid"

    code, out = run(sys.executable, "models", "check", "--family", "ConsisID", cwd=tmp_path, env=env, pack=pack)
    assert code == 0, out
    assert "ConsisID: ready (19 files)" in out and str(shared.resolve()) in out

    code, out = run(
        sys.executable, "video", "--photo", str(sample_photo()), "--prompt", PROMPT, "--steps", "2",
        cwd=tmp_path, env=env, pack=pack,
    )  # fmt: skip
    assert code == 0, out
    assert "Using the real ConsisID files (19 found)" in out and "TINY" not in out
    assert f"Starting ComfyUI ({user_comfyui})" in out
    assert frames(tmp_path / "multiid_consisid.mp4") == 49
    # The nodes read the snapshot through ComfyUI's own folder_paths: the server saved its video in the
    # user's output folder, and nothing the pack needs was copied under ComfyUI/models.
    assert list((user_comfyui / "output" / "MultiID").glob("headless*.mp4"))
    assert not (user_comfyui / "models" / "multiid").exists()
    assert not list((user_comfyui / "input").glob("multiid_headless*")), "the copied photo was left behind"

    (shared / "ConsisID-preview" / "vae" / "diffusion_pytorch_model.safetensors").write_bytes(b"0123456789")
    code, out = run(sys.executable, "models", "check", "--family", "ConsisID", cwd=tmp_path, env=env, pack=pack)
    assert code == 1
    assert "ConsisID: missing 1 of 19 files (1 of them present but unusable)" in out
    assert "diffusion_pytorch_model.safetensors: not a safetensors file" in out
