"""Tiny random models in the exact released layouts, so every workflow runs without real weights.

    python -m multiid_core.testing.tiny_models OUT_DIR

treats OUT_DIR as a ComfyUI base directory and writes under OUT_DIR/models/. A ComfyUI started with
`--base-directory OUT_DIR` then runs the pack's workflows unchanged, on any portrait photo. The videos
are noise: the weights are random. Tests use this; so can users, to smoke-test an install.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from ..faces.eva_clip import timm_to_eva_clip
from .tiny_cogvideox import write_tiny_consisid_snapshot
from .tiny_faces import write_tiny_antelopev2
from .tiny_parsing import write_random_face_parser
from .tiny_t5 import write_tiny_t5_snapshot


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path, help="a ComfyUI base directory; files go under OUT_DIR/models/")
    args = parser.parse_args(argv)
    for path in write_all(args.out_dir):
        print(path)


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


def write_all(base_dir: Path) -> list[Path]:
    """Every tiny model, at the paths the workflows expect; returns the files written."""
    consisid = Path(base_dir) / "models" / "multiid" / "ConsisID-preview"
    return (
        write_face_models(consisid.parent)
        + write_tiny_t5_snapshot(consisid)
        + write_tiny_consisid_snapshot(consisid)
    )


if __name__ == "__main__":
    main()
