"""The bad files and photos users send, written into a ComfyUI base directory for the reliability server.

Besides the tiny snapshots of make_base_dir, the base directory holds extra `models/multiid/<name>/`
folders, each standing for one fault (no faces, three faces, a corrupt ONNX, a truncated shard, a model of
another family, an Ingredients download without its routers, pickles that run code, integer or NaN weights,
configs of the wrong shape), LoRAs in models/loras that do not fit the tiny ConsisID, and odd photos in input/.
The tiny detector reports fixed faces whatever the pixels, so "no face" and "several faces" are detectors
written to report zero or three faces.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx
import torch
from comfy_env import sample_photo
from onnx import numpy_helper
from PIL import Image
from safetensors.torch import load_file, save_file

from multiid_tools.tiny_models.faces import TinyFace, write_corrupt_onnx, write_tiny_antelopev2


class RunsCode:
    """Unpickling this calls `pathlib.Path(marker).touch()`: the marker file proves the payload ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return Path.touch, (Path(self.marker),)


def write_payload(path: Path, marker: Path) -> Path:
    """A torch checkpoint (zip format, as torch.save writes) whose unpickling runs code."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"visual.patch_embed.proj.weight": torch.zeros(1), "payload": RunsCode(marker)}, path)
    return path


def copy_snapshot(
    base: Path, source: str, name: str, parts: tuple[str, ...] = ("transformer", "vae", "scheduler")
) -> Path:
    """Folders of a tiny snapshot (by default transformer/, vae/, scheduler/) copied to models/multiid/<name>."""
    multiid = base / "models" / "multiid"
    for part in parts:
        shutil.copytree(multiid / source / part, multiid / name / part)
    return multiid / name


def rewrite_tensors(folder: Path, change, prefixes: tuple[str, ...] = ("",)) -> None:
    """Rewrites every shard of a diffusers folder with `change(tensor)` applied to the tensors under `prefixes`."""
    for shard in folder.glob("*.safetensors"):
        sd = load_file(str(shard))
        save_file({k: change(v) if k.startswith(prefixes) else v for k, v in sd.items()}, str(shard))


def rewrite_checkpoint(source: Path, dest: Path, change) -> None:
    """A torch checkpoint with `change(tensor)` applied to every tensor."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: change(v) for k, v in torch.load(source, weights_only=True).items()}, dest)


def edit_json(path: Path, change) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def nan_onnx(folder: Path, name: str) -> None:
    """One antelopev2 model (glintr100.onnx, scrfd_10g_bnkps.onnx) with NaN weights."""
    path = folder / name
    model = onnx.load(str(path))
    for i, tensor in enumerate(model.graph.initializer):
        weights = numpy_helper.to_array(tensor)
        if np.issubdtype(weights.dtype, np.floating):  # shapes and indices stay, as in a damaged download
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(np.full_like(weights, np.nan), tensor.name))
    onnx.save(model, str(path))


def nan_like(tensor: torch.Tensor) -> torch.Tensor:
    return torch.full_like(tensor, float("nan"))


def drop_tensors(folder: Path, prefixes: tuple[str, ...]) -> None:
    """Rewrites every shard (and the index) of a diffusers folder without the tensors under `prefixes`."""
    for shard in folder.glob("*.safetensors"):
        kept = {k: v for k, v in load_file(str(shard)).items() if not k.startswith(prefixes)}
        save_file(kept, str(shard), metadata={"format": "pt"})
    for index in folder.glob("*.index.json"):
        data = json.loads(index.read_text())
        data["weight_map"] = {k: v for k, v in data["weight_map"].items() if not k.startswith(prefixes)}
        index.write_text(json.dumps(data))


def write_fault_models(base: Path) -> None:
    multiid = base / "models" / "multiid"
    antelope = Path("face_encoder") / "models" / "antelopev2"
    write_tiny_antelopev2(multiid / "NoFaces" / antelope, faces=())
    three = (TinyFace((40, 200, 150, 330)), TinyFace((250, 150, 400, 330)), TinyFace((480, 220, 580, 340)))
    write_tiny_antelopev2(multiid / "ThreeFaces" / antelope, faces=three)
    write_corrupt_onnx(write_tiny_antelopev2(multiid / "CorruptOnnx" / antelope) / "scrfd_10g_bnkps.onnx")

    marker = base / "payload_ran"
    write_payload(multiid / "Evil" / "face_encoder" / "EVA02_CLIP_L_336_psz14_s6B.pt", marker)
    write_payload(multiid / "Evil" / "face_encoder" / "parsing_bisenet.pth", marker)
    write_payload(multiid / "Evil" / "second_stage_adaln.pt", marker)  # a Concat-ID-Wan checkpoint's name

    truncated = copy_snapshot(base, "ConsisID-preview", "Truncated")
    shard = sorted((truncated / "transformer").glob("*.safetensors"))[0]
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])

    plain = copy_snapshot(base, "ConsisID-preview", "CogVideoX-plain")  # CogVideoX without identity modules
    drop_tensors(plain / "transformer", ("local_facial_extractor.", "perceiver_cross_attention."))

    no_router = copy_snapshot(base, "Ingredients", "Ingredients-no-router")
    drop_tensors(no_router / "transformer", ("router.",))
    half_router = copy_snapshot(base, "Ingredients", "Ingredients-half-router")
    drop_tensors(half_router / "transformer", ("router.0.to_k", "router.0.to_v"))

    write_bad_weights(base)
    write_bad_configs(base)
    write_fault_loras(base)

    wan = {"head.modulation": torch.zeros(1, 2, 8), "blocks.0.self_attn.q.weight": torch.zeros(8, 8)}
    (base / "models" / "diffusion_models").mkdir(parents=True, exist_ok=True)
    save_file(wan, str(base / "models" / "diffusion_models" / "wan2.1_t2v_1.3B.safetensors"))


def write_fault_loras(base: Path) -> None:
    """LoRAs that do not fit the tiny ConsisID (width 48): one for a Wan DiT, one for a wider CogVideoX."""
    loras = base / "models" / "loras"
    loras.mkdir(parents=True, exist_ok=True)
    for name, module, width in (
        ("wan_style_lora.safetensors", "diffusion_model.blocks.0.self_attn.q", 48),
        ("wider_cogvideox_lora.safetensors", "transformer.transformer_blocks.0.attn1.to_q", 64),
    ):
        lora = {f"{module}.lora_A.weight": torch.ones(4, width), f"{module}.lora_B.weight": torch.ones(width, 4)}
        save_file(lora, str(loras / name))


def write_bad_weights(base: Path) -> None:
    """Integer weights where floats belong, and NaN weights, in the modules checked at load (and in T5 and
    ArcFace, whose outputs are checked)."""
    multiid = base / "models" / "multiid"
    faces = multiid / "ConsisID-preview" / "face_encoder"
    parser = "parsing_bisenet.pth"
    rewrite_checkpoint(faces / parser, multiid / "IntWeights" / "face_encoder" / parser, torch.Tensor.long)
    eva = "EVA02_CLIP_L_336_psz14_s6B.pt"
    rewrite_checkpoint(faces / eva, multiid / "NaNWeights" / "face_encoder" / eva, nan_like)
    nan_onnx(write_tiny_antelopev2(multiid / "NaNArcFace" / "face_encoder" / "models" / "antelopev2"), "glintr100.onnx")
    nan_onnx(
        write_tiny_antelopev2(multiid / "NaNDetector" / "face_encoder" / "models" / "antelopev2"),
        "scrfd_10g_bnkps.onnx",
    )
    rewrite_tensors(copy_snapshot(base, "ConsisID-preview", "NaN-VAE") / "vae", nan_like)
    identity = copy_snapshot(base, "ConsisID-preview", "NaN-identity-modules") / "transformer"
    rewrite_tensors(identity, nan_like, ("local_facial_extractor.latents",))
    integers = copy_snapshot(base, "ConsisID-preview", "IntTransformer") / "transformer"
    rewrite_tensors(integers, torch.Tensor.long, ("proj_out.",))
    t5 = ("text_encoder", "tokenizer")
    rewrite_tensors(copy_snapshot(base, "ConsisID-preview", "T5-int-weights", t5) / "text_encoder", torch.Tensor.long)
    rewrite_tensors(copy_snapshot(base, "ConsisID-preview", "T5-NaN-weights", t5) / "text_encoder", nan_like)


def write_bad_configs(base: Path) -> None:
    """A transformer config.json that is a list, a T5 config without d_model, a VAE config with a string size."""
    edit_json(copy_snapshot(base, "ConsisID-preview", "ListConfig") / "transformer" / "config.json", lambda c: [c])
    t5 = copy_snapshot(base, "ConsisID-preview", "T5-no-d-model", ("text_encoder", "tokenizer"))
    edit_json(t5 / "text_encoder" / "config.json", lambda c: {k: v for k, v in c.items() if k != "d_model"})
    vae = copy_snapshot(base, "ConsisID-preview", "VAE-string-config") / "vae" / "config.json"
    edit_json(vae, lambda c: {**c, "latent_channels": str(c["latent_channels"])})


def write_photos(base: Path) -> None:
    """Odd photos in input/: sizes, modes and bit depths LoadImage accepts, and a folder of mixed sizes."""
    inputs = base / "input"
    photo = Image.open(sample_photo()).convert("RGB")
    photo.resize((32, 32)).save(inputs / "tiny_32.png")
    photo.resize((100000, 64)).save(inputs / "strip_100000x64.png")
    photo.resize((8000, 8000), Image.BILINEAR).save(inputs / "huge_8000.jpg", quality=80)
    photo.convert("L").save(inputs / "gray.png")
    alpha = np.zeros(photo.size[::-1], np.uint8)
    alpha[20:-20, 20:-20] = 255  # a transparent border
    rgba = photo.convert("RGBA")
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(inputs / "rgba.png")
    gray16 = np.asarray(photo.convert("L"), np.uint16) * 257
    Image.fromarray(gray16).save(inputs / "gray_16bit.png")
    rgb16 = np.asarray(photo, np.uint16)[..., ::-1] * 257  # OpenCV writes BGR
    cv2.imwrite(str(inputs / "rgb_16bit.png"), np.ascontiguousarray(rgb16))
    Image.new("RGB", (640, 480), (0, 0, 0)).save(inputs / "black.png")
    mixed = inputs / "mixed_sizes"
    mixed.mkdir()
    photo.resize((600, 800)).save(mixed / "a.png")
    photo.resize((512, 512)).save(mixed / "b.png")
    photo.resize((900, 700)).save(mixed / "c.jpg")
    write_mask_animation(inputs / "mask_enters_late.png", 64, 64, [False, True, True, True, True])
    write_mask_animation(inputs / "mask_3_frames.png", 64, 64, [True, True, True])


def write_mask_animation(path: Path, width: int, height: int, painted: list[bool]) -> Path:
    """An animated PNG whose transparent pixels are Load Image's MASK: the left half, in the frames marked."""
    frames = []
    for on in painted:
        alpha = np.full((height, width), 255, np.uint8)
        if on:
            alpha[:, : width // 2] = 0
        frames.append(Image.merge("RGBA", [Image.new("L", (width, height), 128)] * 3 + [Image.fromarray(alpha)]))
    frames[0].save(path, save_all=True, append_images=frames[1:])
    return path
