"""`python multiid.py models check|download`: what it reports, where it looks, what it fetches, which files it
refuses to count, and that it fails fast without a network."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_hub import FakeHub, model_file_bytes

from multiid_core.catalog import CONSISID_REPO, INGREDIENTS_REPO
from multiid_core.families import FAMILY_FILES

ROOT = Path(__file__).resolve().parents[2]
CONSISID = FAMILY_FILES["ConsisID"]


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> tuple[int, str, float]:
    """The command as a user runs it; returns (exit code, stdout + stderr, seconds)."""
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(ROOT / "multiid.py"), "models", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )  # fmt: skip
    return result.returncode, result.stdout + result.stderr, time.monotonic() - start


@pytest.fixture
def comfyui(tmp_path: Path) -> Path:
    """An empty ComfyUI folder (main.py and models/), as a user has before downloading anything."""
    (tmp_path / "ComfyUI" / "models").mkdir(parents=True)
    (tmp_path / "ComfyUI" / "main.py").write_text("")
    return tmp_path / "ComfyUI"


def place(models: Path, files, tag: str = "") -> None:
    """Complete (tiny) files of the right kinds; a checkpoint-folder entry gets a file inside."""
    for file in files:
        path = models / file.folder / file.path
        if "." not in Path(file.path).name:
            path = path / "latest"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(model_file_bytes(file.path, tag))


def test_catalog_lists_every_family_with_hub_files():
    assert {"ConsisID", "Ingredients"} <= set(FAMILY_FILES)
    hubs = {"huggingface": "https://huggingface.co/{}/resolve/main/", "modelscope": "https://modelscope.cn/models/{}/"}
    for name, files in FAMILY_FILES.items():
        assert files, name
        for file in files:
            assert file.repo_path and file.url.startswith(hubs[file.host].format(file.repo)), file
    assert {f.repo for f in CONSISID} == {CONSISID_REPO} and all(f.path.endswith(f.repo_path) for f in CONSISID)
    assert {f.repo for f in FAMILY_FILES["Ingredients"]} == {INGREDIENTS_REPO}


def test_check_lists_every_file_folder_and_source(comfyui: Path):
    code, out, _ = run("check", "--comfyui", str(comfyui), "--verbose")
    assert code == 1
    assert f"ComfyUI models folder: {comfyui / 'models'}" in out
    snapshot = comfyui / "models" / "multiid" / "ConsisID-preview"
    for folder in ("", "transformer/", "vae/", "scheduler/", "text_encoder/", "tokenizer/", "face_encoder/models/"):
        assert f"[missing] {snapshot}/{folder}\n" in out, folder
    for file in CONSISID:
        assert f"[missing] {comfyui / 'models' / file.folder / file.path}\n" in out
        assert file.url in out
    assert "ConsisID: missing 19 of 19 files, about 23.5 GB to download   [BestWishYsh/ConsisID-preview]" in out
    assert "Ready: 0 of 7 families. Next, for the files above:" in out
    assert "  python multiid.py models download --family ConsisID\n" in out
    assert f"hf download {CONSISID_REPO} face_encoder/models/antelopev2/scrfd_10g_bnkps.onnx" in out
    assert f"--local-dir {snapshot}\n" in out
    assert "Ingredients: missing 19 of 19 files, about 23.5 GB to download   [feizhengcong/Ingredients]" in out


def test_check_is_short_by_default(comfyui: Path):
    """One summary line per family and the files to fetch; the full listing only with --verbose."""
    place(comfyui / "models", [f for f in CONSISID if f.size_gb == 0])
    code, out, _ = run("check", "--comfyui", str(comfyui), "--family", "ConsisID")
    assert code == 1
    assert "ConsisID: missing 9 of 19 files, about 23.5 GB to download" in out
    assert out.count("[missing]") == 9 and "[ok" not in out and "folders:" not in out
    assert len(out.splitlines()) < 40, out


def test_check_passes_when_everything_is_there(comfyui: Path):
    place(comfyui / "models", CONSISID)
    code, out, _ = run("check", "--comfyui", str(comfyui), "--family", "consisid")
    assert code == 0, out
    assert "[missing]" not in out and "ConsisID: ready (19 files)" in out and "Ingredients" not in out
    assert "Every family checked is ready. Next: python multiid.py video" in out


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"0123456789", "not a safetensors file (its header length is impossible)"),
        (b"", "empty (0 bytes)"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:0123\nsize 9\n", "a Git LFS pointer"),
        (b"<!DOCTYPE html><html><body>Sign in</body></html>", "a web page saved in place of the model"),
        (model_file_bytes("x.safetensors", "a complete file"), None),
    ],
    ids=["10-byte placeholder", "empty", "Git LFS pointer", "web page", "valid"],
)
def test_files_count_by_their_header_not_their_name(comfyui: Path, content: bytes, reason: str | None):
    place(comfyui / "models", CONSISID)
    shard = comfyui / "models" / "multiid" / "ConsisID-preview" / "vae" / "diffusion_pytorch_model.safetensors"
    shard.write_bytes(content)
    code, out, _ = run("check", "--comfyui", str(comfyui), "--family", "ConsisID")
    if reason is None:
        assert code == 0 and "ConsisID: ready (19 files)" in out, out
        return
    assert code == 1, out
    assert "ConsisID: missing 1 of 19 files (1 of them present but unusable), about 0.9 GB to download" in out
    assert f"[bad    ] {shard}: {reason}" in out
    code, out, _ = run("download", "--comfyui", str(comfyui), "--family", "ConsisID", "--dry-run")
    assert code == 0 and "  vae/diffusion_pytorch_model.safetensors\n" in out, out


def test_a_download_cut_short_is_named(comfyui: Path):
    """A safetensors file shorter than its header says, and a torch zip without its end record."""
    place(comfyui / "models", CONSISID)
    snapshot = comfyui / "models" / "multiid" / "ConsisID-preview"
    header = b'{"w": {"dtype": "F32", "shape": [1024], "data_offsets": [0, 4096]}}'
    (snapshot / "vae" / "diffusion_pytorch_model.safetensors").write_bytes(
        len(header).to_bytes(8, "little") + header + b"\0" * 1000
    )
    (snapshot / "face_encoder" / "EVA02_CLIP_L_336_psz14_s6B.pt").write_bytes(b"PK\x03\x04" + b"\0" * 5000)
    code, out, _ = run("check", "--comfyui", str(comfyui), "--family", "ConsisID")
    assert code == 1
    assert "truncated: 1,075 of 4,171 bytes (the download did not finish)" in out
    assert "EVA02_CLIP_L_336_psz14_s6B.pt: truncated (a torch zip file without its end; download again)" in out


def test_extra_model_paths_and_other_packs_folders_are_honoured(comfyui: Path, tmp_path: Path):
    """Files in a folder extra_model_paths.yaml adds (relative base_path), antelopev2 in models/insightface."""
    shared = tmp_path / "shared"
    place(shared, [f for f in CONSISID if "antelopev2" not in f.path])
    for name in ("scrfd_10g_bnkps.onnx", "glintr100.onnx"):
        (comfyui / "models" / "insightface" / "models" / "antelopev2").mkdir(parents=True, exist_ok=True)
        (comfyui / "models" / "insightface" / "models" / "antelopev2" / name).write_bytes(model_file_bytes(name))
    (comfyui / "extra_model_paths.yaml").write_text(
        "mine:\n    base_path: ../shared\n    is_default: true\n    multiid: multiid\n    clip_vision: |\n"
        "        clip_vision\n        more_clip_vision\n"
    )
    code, out, _ = run("check", "--comfyui", str(comfyui), "--family", "ConsisID")
    assert code == 0, out
    assert f"Also searched, from {comfyui / 'extra_model_paths.yaml'}:" in out
    assert f"multiid: {shared / 'multiid'} (default)" in out and f"clip_vision: {shared / 'more_clip_vision'}" in out
    assert "ConsisID: ready (19 files)" in out
    code, out, _ = run("check", "--comfyui", str(comfyui), "--family", "ConsisID", "--verbose")
    assert f"[ok     ] {shared / 'multiid' / 'ConsisID-preview' / 'vae' / 'config.json'}" in out
    assert f"{comfyui / 'models' / 'insightface' / 'models' / 'antelopev2' / 'glintr100.onnx'}  (used instead" in out


def test_an_extra_model_paths_file_the_user_names_with_a_base_path_that_is_no_folder_is_refused(
    comfyui: Path, tmp_path: Path
):
    """ComfyUI skips such a section without a word; the files the user put there would look missing."""
    stale = tmp_path / "stale.yaml"
    stale.write_text(f"drive:\n    base_path: {tmp_path / 'unmounted'}\n    multiid: multiid\n")
    code, out, _ = run("check", "--comfyui", str(comfyui), "--extra-model-paths", str(stale))
    assert code == 2
    assert f"section 'drive' has base_path {tmp_path / 'unmounted'}, which is not a folder" in out
    assert "Traceback" not in out


def test_face_models_of_another_snapshot_serve_every_family(comfyui: Path):
    place(comfyui / "models", [f for f in CONSISID if "face_encoder" in f.path])
    code, out, _ = run("download", "--comfyui", str(comfyui), "--family", "Ingredients", "--dry-run")
    assert code == 0, out
    assert "face_encoder" not in out and "transformer/config.json" in out


def test_dry_run_names_only_the_missing_files(comfyui: Path):
    present = [f for f in CONSISID if f.path.endswith(".json")]
    place(comfyui / "models", present)
    code, out, _ = run("download", "--comfyui", str(comfyui), "--family", "ConsisID", "--dry-run")
    assert code == 0, out
    assert f"{CONSISID_REPO} -> {comfyui / 'models' / 'multiid' / 'ConsisID-preview'}" in out
    listed = {line.strip() for line in out.splitlines() if line.startswith("  ")}
    assert listed == {f.repo_path for f in CONSISID if f not in present}


def test_offline_setting_fails_at_once(comfyui: Path):
    code, out, seconds = run("download", "--comfyui", str(comfyui), env={"HF_HUB_OFFLINE": "1"})
    assert code == 2 and "HF_HUB_OFFLINE is set" in out
    assert seconds < 10


def test_unreachable_hub_fails_fast_with_instructions(comfyui: Path):
    """A name that does not resolve, and a server that accepts connections but never answers (a dead proxy)."""
    code, out, seconds = run("download", "--comfyui", str(comfyui), env={"HF_ENDPOINT": "https://hub.invalid"})
    assert code == 2 and "Cannot reach https://hub.invalid" in out, out
    assert f"hf download {CONSISID_REPO} " in out and "no internet access" in out
    assert seconds < 15

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # never accepted, never answered
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        code, out, seconds = run("download", "--comfyui", str(comfyui), env={"HF_ENDPOINT": url})
    assert code == 2 and f"Cannot reach {url} (no answer within 5 s)" in out, out
    assert seconds < 15


def test_download_fetches_only_the_missing_files_into_the_snapshot(comfyui: Path, tmp_path: Path):
    files = {f.repo_path: model_file_bytes(f.repo_path, f"hub copy of {f.repo_path}") for f in CONSISID}
    files["face_encoder/models/buffalo_l/w600k_r50.onnx"] = b"not needed"
    files["README.md"] = b"not needed"
    present = [f for f in CONSISID if f.path.endswith("config.json")]
    place(comfyui / "models", present, "already here")
    env = {"HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    with FakeHub({CONSISID_REPO: files}) as hub:
        env["HF_ENDPOINT"] = hub.url
        code, out, _ = run("download", "--comfyui", str(comfyui), "--family", "ConsisID", env=env)
        assert code == 0, out
        assert sorted(name for _, name in hub.sent) == sorted(f.repo_path for f in CONSISID if f not in present)
        hub.sent.clear()
        code, out, _ = run("download", "--comfyui", str(comfyui), "--family", "ConsisID", env=env)
        assert code == 0 and "nothing to download" in out and hub.sent == []
    snapshot = comfyui / "models" / "multiid" / "ConsisID-preview"
    for file in CONSISID:
        expected = model_file_bytes(file.path, "already here") if file in present else files[file.repo_path]
        assert (comfyui / "models" / file.folder / file.path).read_bytes() == expected
    assert not (snapshot / "README.md").exists() and not (snapshot / "face_encoder" / "models" / "buffalo_l").exists()
    assert not (snapshot / ".cache").exists()
    assert run("check", "--comfyui", str(comfyui), "--family", "ConsisID")[0] == 0


def test_renamed_files_and_other_hosts(comfyui: Path, tmp_path: Path):
    """Wan's VAE is stored flat in models/vae (split_files/vae/... on the hub); ModelScope files are printed
    as commands to run by hand, and the command exits 1 to say the set is not complete."""
    wan = [f for f in FAMILY_FILES["Concat-ID-Wan-AdaLN"] if f.folder == "vae"]
    assert wan and not wan[0].path.endswith(wan[0].repo_path)
    env = {"HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    repos = {f.repo: {} for f in FAMILY_FILES["Concat-ID-Wan-AdaLN"]}
    for file in FAMILY_FILES["Concat-ID-Wan-AdaLN"]:
        repos[file.repo][file.repo_path] = file.repo_path.encode()
    with FakeHub(repos) as hub:
        env["HF_ENDPOINT"] = hub.url
        code, out, _ = run("download", "--comfyui", str(comfyui), "--family", "Concat-ID-Wan-AdaLN", env=env)
    assert code == 0, out
    target = comfyui / "models" / "vae" / wan[0].path
    assert target.read_bytes() == wan[0].repo_path.encode()
    assert not (target.parent / ".multiid-download").exists()

    code, out, _ = run("download", "--comfyui", str(comfyui), "--family", "Concat-ID (CogVideoX)", "--dry-run")
    assert code == 1, out
    assert "Not on Hugging Face; fetch by hand:" in out
    assert "modelscope download --model yongzhong/Concat-ID --include 'single-identity/*'" in out
