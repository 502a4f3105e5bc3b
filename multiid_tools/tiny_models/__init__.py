"""Tiny random models in the exact released layouts, so every workflow runs without real weights.

    .venv/bin/python -m multiid_tools.tiny_models OUT_DIR

treats OUT_DIR as a ComfyUI base directory: tiny models under OUT_DIR/models/, this pack linked into
OUT_DIR/custom_nodes/ and sample photos in OUT_DIR/input/. A ComfyUI started with `--base-directory
OUT_DIR` then runs the pack's workflows unchanged (any portrait photo works as input). The videos are
noise: the weights are random. Tests use this; so can users, to smoke-test an install.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from multiid_core.faces.eva_clip import timm_to_eva_clip

from .. import PACK_DIR, PACK_NAME
from .cogvideox import write_tiny_consisid_snapshot, write_tiny_ingredients_snapshot
from .concat_id import write_tiny_concat_id_snapshot
from .faces import write_tiny_antelopev2
from .parsing import write_random_face_parser
from .stand_in import write_tiny_stand_in
from .t5 import write_tiny_t5_snapshot
from .wan import write_tiny_wan_models


def write_tiny_eva_clip(path: str | os.PathLike, width: int = 64, depth: int = 24, seed: int = 0) -> Path:
    """An EVA02-CLIP-L-14-336-shaped tower (336 px, patch 14, 577 tokens, 24 blocks) at a tiny width."""
    import timm.models.eva as timm_eva

    torch.manual_seed(seed)
    eva = timm_eva.Eva(
        img_size=336,
        patch_size=14,
        embed_dim=width,
        depth=depth,
        num_heads=max(1, width // 64),
        mlp_ratio=4 * 2 / 3,
        qkv_fused=False,
        swiglu_mlp=True,
        scale_mlp=True,
        scale_attn_inner=True,
        use_rot_pos_emb=True,
        ref_feat_shape=(16, 16),
        num_classes=768,
        global_pool="token",
    )
    state = timm_to_eva_clip({k: v for k, v in eva.state_dict().items() if "rope" not in k})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.half() for k, v in state.items()}, path)
    return path


def sample_photos() -> dict[str, Path]:
    """Input photos the workflows name, taken from the insightface wheel (real faces, freely shipped)."""
    import insightface

    images = Path(insightface.__file__).parent / "data" / "images"
    return {
        "portrait.png": images / "Tom_Hanks_54745.png",
        "person_1.png": images / "Tom_Hanks_54745.png",
        "person_2.png": images / "t1.jpg",
    }


def write_face_models(multiid_dir: Path, snapshot: str = "ConsisID-preview") -> list[Path]:
    """The face_encoder/ folder exactly as it sits in the ConsisID-preview and Ingredients snapshots."""
    face_encoder = multiid_dir / snapshot / "face_encoder"
    antelope = write_tiny_antelopev2(face_encoder / "models" / "antelopev2")
    parser = face_encoder / "parsing_bisenet.pth"
    write_random_face_parser(parser)
    return [
        antelope / "scrfd_10g_bnkps.onnx",
        antelope / "glintr100.onnx",
        write_tiny_eva_clip(face_encoder / "EVA02_CLIP_L_336_psz14_s6B.pt"),
        parser,
    ]


def base_dir(base: Path, photos: dict[str, Path]) -> Path:
    """A ComfyUI base directory: tiny models, this pack in custom_nodes, the photos in input/."""
    write_all(base)
    (base / "custom_nodes").mkdir(parents=True, exist_ok=True)
    link = base / "custom_nodes" / PACK_NAME
    if not link.exists():
        link.symlink_to(PACK_DIR, target_is_directory=True)
    (base / "input").mkdir(exist_ok=True)
    for name, photo in photos.items():
        shutil.copy(photo, base / "input" / name)
    return base


def write_all(base_dir: Path) -> list[Path]:
    """Every tiny model, at the paths the workflows expect; returns the files written."""
    multiid = Path(base_dir) / "models" / "multiid"
    written = []
    for snapshot, write_model in (
        ("ConsisID-preview", write_tiny_consisid_snapshot),
        ("Ingredients", write_tiny_ingredients_snapshot),
    ):
        written += write_face_models(multiid, snapshot)
        written += write_tiny_t5_snapshot(multiid / snapshot)
        written += write_model(multiid / snapshot)
    # antelopev2 and the parser where InstantID/PuLID/facexlib users keep them (the Concat-ID workflows' choice)
    written += [p for p in write_tiny_antelopev2(multiid.parent / "insightface" / "models" / "antelopev2").iterdir()]
    written.append(multiid.parent / "facexlib" / "parsing_bisenet.pth")
    written[-1].parent.mkdir(parents=True, exist_ok=True)
    write_random_face_parser(written[-1])
    written += write_tiny_concat_id_snapshot(multiid / "Concat-ID")
    written += write_tiny_wan_models(Path(base_dir) / "models")
    written += write_tiny_stand_in(Path(base_dir) / "models")
    return written
