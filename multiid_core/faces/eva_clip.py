"""The EVA02-CLIP-L-14-336 vision tower ConsisID and Ingredients use, run through timm's EVA.

The released file (`EVA02_CLIP_L_336_psz14_s6B.pt`) is an EVA-CLIP state dict with both towers; we
keep `visual.*`. Widths and depth are read from the tensors, so tiny test checkpoints in the same key
format load through the same code.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import MultiIDError
from ..loading import check_finite, check_floats, load_state_dict

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
EVA_SOURCE = "face_encoder/EVA02_CLIP_L_336_psz14_s6B.pt of https://huggingface.co/BestWishYsh/ConsisID-preview"

# EVA-CLIP names -> timm names (the only differences besides the `visual.` prefix).
_RENAMES = (
    (".attn.q_bias", ".attn.q_proj.bias"),
    (".attn.v_bias", ".attn.v_proj.bias"),
    (".attn.inner_attn_ln.", ".attn.norm."),
    (".mlp.ffn_ln.", ".mlp.norm."),
    (".mlp.w1.", ".mlp.fc1_g."),
    (".mlp.w2.", ".mlp.fc1_x."),
    (".mlp.w3.", ".mlp.fc2."),
)


def eva_clip_to_timm(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Vision-tower tensors of an EVA-CLIP state dict, under timm's key names (rope buffers dropped)."""
    out = {}
    for key, value in state_dict.items():
        if not key.startswith("visual.") or ".rope." in key:
            continue
        key = key.removeprefix("visual.")
        for old, new in _RENAMES:
            key = key.replace(old, new)
        out[key] = value
    return out


def timm_to_eva_clip(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of `eva_clip_to_timm`: used to write test checkpoints in the released key format."""
    out = {}
    for key, value in state_dict.items():
        for old, new in _RENAMES:
            key = key.replace(new, old)
        out["visual." + key] = value
    return out


def _architecture(sd: dict[str, torch.Tensor]) -> dict:
    """timm Eva kwargs for the tower in `sd`, with EVA02-CLIP-L-14-336's fixed choices."""
    width, _, patch, _ = sd["patch_embed.proj.weight"].shape
    depth = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    hidden = sd["blocks.0.mlp.fc1_g.weight"].shape[0]
    tokens = sd["pos_embed"].shape[1] - 1
    grid = int(round(tokens**0.5))
    return dict(
        img_size=grid * patch,
        patch_size=patch,
        embed_dim=width,
        depth=depth,
        num_heads=max(1, width // 64),
        mlp_ratio=hidden / width,
        qkv_fused=False,
        swiglu_mlp=True,
        scale_mlp=True,
        scale_attn_inner=True,
        use_rot_pos_emb=True,
        ref_feat_shape=(224 // patch, 224 // patch),
        num_classes=sd["head.weight"].shape[0],
        global_pool="token",
    )


class EvaClipVision(torch.nn.Module):
    """Returns what ConsisID's LFE consumes: the L2-normalised CLS projection and five hidden states."""

    # The authors' tower returns the residual stream entering blocks 4, 8, 12, 16, 20, whatever its depth.
    HIDDEN_INPUT_BLOCKS = (4, 8, 12, 16, 20)

    def __init__(self, eva: torch.nn.Module):
        super().__init__()
        self.eva = eva
        self.hidden_indices = [block - 1 for block in self.HIDDEN_INPUT_BLOCKS]

    @property
    def image_size(self) -> int:
        return self.eva.patch_embed.img_size[0]

    def preprocess(self, face: torch.Tensor) -> torch.Tensor:
        """[B,3,H,W] in 0..1 -> bicubic to the tower's size, CLIP-normalised (ConsisID's transform)."""
        face = F.interpolate(face, size=(self.image_size, self.image_size), mode="bicubic", antialias=True)
        mean = torch.tensor(CLIP_MEAN, device=face.device, dtype=face.dtype).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD, device=face.device, dtype=face.dtype).view(1, 3, 1, 1)
        return (face - mean) / std

    def forward(self, face: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """face: [B,3,H,W] in 0..1. Returns (cls [B,768] L2-normalised, 5 x [B, 1+tokens, width])."""
        param = next(self.eva.parameters())
        x = self.preprocess(face.to(device=param.device, dtype=torch.float32)).to(param.dtype)
        cls_tokens_and_patches = self.eva.forward_intermediates(
            x,
            indices=self.hidden_indices,
            norm=False,
            output_fmt="NLC",
            intermediates_only=True,
            return_prefix_tokens=True,
        )
        hidden = [torch.cat([prefix, patches], dim=1) for patches, prefix in cls_tokens_and_patches]
        cls = self.eva.forward_head(self.eva.forward_features(x))
        return F.normalize(cls, dim=-1), hidden


def load_eva_clip(
    path: str | os.PathLike, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> EvaClipVision:
    """Builds the vision tower from an EVA-CLIP checkpoint (both towers or `visual.*` only)."""
    import timm.models.eva as timm_eva

    path = Path(path)
    raw = load_state_dict(path, what="EVA02-CLIP-L-14-336", source=EVA_SOURCE)
    sd = eva_clip_to_timm(raw)
    if "patch_embed.proj.weight" not in sd or "head.weight" not in sd:
        raise MultiIDError(
            f"{path} is not an EVA-CLIP checkpoint (no visual.patch_embed / visual.head tensors). "
            f"Download {EVA_SOURCE}."
        )
    arch = _architecture(sd)
    if arch["depth"] <= max(EvaClipVision.HIDDEN_INPUT_BLOCKS):
        raise MultiIDError(f"{path} has only {arch['depth']} transformer blocks; download {EVA_SOURCE}.")
    eva = timm_eva.Eva(**arch, device="meta")
    check_floats(sd, "EVA02-CLIP-L-14-336 vision tower", path, EVA_SOURCE)  # before torch's gradient error
    missing, unexpected = eva.load_state_dict(sd, strict=False, assign=True)
    missing = [k for k in missing if "rope" not in k]
    if missing or unexpected:
        raise MultiIDError(
            f"{path} does not match the EVA02-CLIP-L-14-336 vision tower: {len(missing)} missing tensors "
            f"(e.g. {missing[:3]}) and {len(unexpected)} unexpected (e.g. {unexpected[:3]}). "
            f"Download {EVA_SOURCE}."
        )
    check_finite(sd, "EVA02-CLIP-L-14-336 vision tower", path, EVA_SOURCE)
    # Rotary tables: from a one-block twin built on the CPU (meta buffers hold no values). The
    # authors' loader uses the tables stored in the checkpoint (at its precision), so we do too.
    eva.rope = timm_eva.Eva(**{**arch, "depth": 1}).rope
    if "visual.rope.freqs_cos" in raw:
        stored = torch.cat([raw["visual.rope.freqs_sin"], raw["visual.rope.freqs_cos"]], dim=-1).float()
        if stored.shape != eva.rope.pos_embed.shape:
            raise MultiIDError(f"{path} has rotary tables of an unexpected shape; download {EVA_SOURCE}.")
        eva.rope.pos_embed = stored
    return EvaClipVision(eva).to(device=device, dtype=dtype).eval()
