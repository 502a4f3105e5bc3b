"""BiSeNet face parsing (19 CelebAMask-HQ classes), the parser ConsisID uses to blank the background.

Same network and state-dict keys as facexlib's `BiSeNet(num_class=19)` (`parsing_bisenet.pth`,
facexlib release v0.2.0), written against an `operations` namespace so ComfyUI can pass its own layers.
The "spatial path" of the paper is facexlib's ResNet18 1/8 feature; the two auxiliary heads are kept
only so the released file loads strictly, and are not run.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import MultiIDError
from ..loading import check_finite, check_keys, load_state_dict

PARSER_SOURCE = (
    "parsing_bisenet.pth from the face_encoder/ folder of "
    "https://huggingface.co/BestWishYsh/ConsisID-preview (or facexlib release v0.2.0)"
)
NUM_CLASSES = 19
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Labels ConsisID paints white: background, cloth, hat, ears, earring, neck, necklace.
CONSISID_BACKGROUND_LABELS = (0, 16, 18, 7, 8, 9, 14, 15)
# Labels painted black for Concat-ID: background, earring, necklace, cloth, hat. Concat-ID parses with the
# SegFormer jonathandinu/face-parsing and drops its labels [0, 14, 15, 16, 18] = background, hat, ear_r,
# neck_l, cloth (the neck, 17 there, stays); these are the same classes in BiSeNet's numbering, our
# documented substitute for that parser.
CONCAT_ID_BACKGROUND_LABELS = (0, 9, 15, 16, 18)

# A namespace of layer classes (`Conv2d`, `BatchNorm2d`): `torch.nn` or ComfyUI's casting ops.
Operations = Any


class ConvBNReLU(nn.Module):
    """Bias-free conv, batch norm, ReLU: the unit every BiSeNet head is made of."""

    def __init__(self, ops: Operations, in_ch: int, out_ch: int, kernel: int = 3):
        super().__init__()
        self.conv = ops.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, bias=False)
        self.bn = ops.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class BasicBlock(nn.Module):
    """ResNet basic block; a 1x1 projection shortcut where width or stride changes."""

    def __init__(self, ops: Operations, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.conv1 = ops.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = ops.BatchNorm2d(out_ch)
        self.conv2 = ops.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = ops.BatchNorm2d(out_ch)
        self.downsample = None
        if in_ch != out_ch or stride != 1:
            self.downsample = nn.Sequential(
                ops.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), ops.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(shortcut + residual)


def _stage(ops: Operations, in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    """Two basic blocks, the first one changing width/stride."""
    return nn.Sequential(BasicBlock(ops, in_ch, out_ch, stride), BasicBlock(ops, out_ch, out_ch))


class ResNet18(nn.Module):
    """ResNet18 trunk returning the 1/8, 1/16 and 1/32 features."""

    def __init__(self, ops: Operations):
        super().__init__()
        self.conv1 = ops.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = ops.BatchNorm2d(64)
        self.layer1 = _stage(ops, 64, 64, 1)
        self.layer2 = _stage(ops, 64, 128, 2)
        self.layer3 = _stage(ops, 128, 256, 2)
        self.layer4 = _stage(ops, 256, 512, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), kernel_size=3, stride=2, padding=1)
        feat8 = self.layer2(self.layer1(x))
        feat16 = self.layer3(feat8)
        return feat8, feat16, self.layer4(feat16)


def _global_pool(x: torch.Tensor) -> torch.Tensor:
    """Global average pool written as facexlib writes it, so results match it bit for bit."""
    return F.avg_pool2d(x, x.shape[2:])


class AttentionRefinement(nn.Module):
    """Reweights channels by a sigmoid of their global average."""

    def __init__(self, ops: Operations, in_ch: int, out_ch: int):
        super().__init__()
        self.conv = ConvBNReLU(ops, in_ch, out_ch)
        self.conv_atten = ops.Conv2d(out_ch, out_ch, 1, bias=False)
        self.bn_atten = ops.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x)
        return feat * torch.sigmoid(self.bn_atten(self.conv_atten(_global_pool(feat))))


class ContextPath(nn.Module):
    """ResNet18 plus the top-down refinement that brings global context to 1/8 resolution."""

    def __init__(self, ops: Operations):
        super().__init__()
        self.resnet = ResNet18(ops)
        self.arm16 = AttentionRefinement(ops, 256, 128)
        self.arm32 = AttentionRefinement(ops, 512, 128)
        self.conv_head32 = ConvBNReLU(ops, 128, 128)
        self.conv_head16 = ConvBNReLU(ops, 128, 128)
        self.conv_avg = ConvBNReLU(ops, 512, 128, kernel=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the 1/8 trunk feature and the refined 1/8 context feature."""
        feat8, feat16, feat32 = self.resnet(x)
        context = self.arm32(feat32) + self.conv_avg(_global_pool(feat32))
        up32 = self.conv_head32(F.interpolate(context, feat16.shape[2:], mode="nearest"))
        up16 = F.interpolate(self.arm16(feat16) + up32, feat8.shape[2:], mode="nearest")
        return feat8, self.conv_head16(up16)


class FeatureFusion(nn.Module):
    """Fuses trunk and context features with a squeeze-excitation residual."""

    def __init__(self, ops: Operations, in_ch: int, out_ch: int):
        super().__init__()
        self.convblk = ConvBNReLU(ops, in_ch, out_ch, kernel=1)
        self.conv1 = ops.Conv2d(out_ch, out_ch // 4, 1, bias=False)
        self.conv2 = ops.Conv2d(out_ch // 4, out_ch, 1, bias=False)

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        feat = self.convblk(torch.cat([spatial, context], dim=1))
        atten = torch.sigmoid(self.conv2(F.relu(self.conv1(_global_pool(feat)))))
        return feat * atten + feat


class OutputHead(nn.Module):
    """3x3 ConvBNReLU then a 1x1 classifier."""

    def __init__(self, ops: Operations, in_ch: int, mid_ch: int, num_classes: int):
        super().__init__()
        self.conv = ConvBNReLU(ops, in_ch, mid_ch)
        self.conv_out = ops.Conv2d(mid_ch, num_classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    """Face parser with facexlib's key names; `forward` returns only the main logits at input size."""

    def __init__(self, num_classes: int = NUM_CLASSES, operations: Operations = nn):
        super().__init__()
        self.cp = ContextPath(operations)
        self.ffm = FeatureFusion(operations, 256, 256)
        self.conv_out = OutputHead(operations, 256, 256, num_classes)
        # Training-time auxiliary heads: unused at inference, present so released files load strictly.
        self.conv_out16 = OutputHead(operations, 128, 64, num_classes)
        self.conv_out32 = OutputHead(operations, 128, 64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: normalised [B,3,H,W] -> logits [B,classes,H,W] (facexlib's `out`, its output [0])."""
        feat8, context8 = self.cp(x)
        logits = self.conv_out(self.ffm(feat8, context8))
        return F.interpolate(logits, x.shape[2:], mode="bilinear", align_corners=True)


def load_face_parser(
    path: str | os.PathLike, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> BiSeNet:
    """Builds BiSeNet from `parsing_bisenet.pth` (or a .safetensors copy), strictly, in eval mode."""
    sd = load_state_dict(path, "face parser (BiSeNet)", PARSER_SOURCE)
    with torch.device("meta"):
        net = BiSeNet()
    expected = {k: v.shape for k, v in net.state_dict().items()}
    check_keys(expected, sd, "face parser (facexlib's BiSeNet)", path, PARSER_SOURCE, optional=("num_batches_tracked",))
    check_finite(sd, "face parser (facexlib's BiSeNet)", path, PARSER_SOURCE)
    net.load_state_dict(sd, strict=False, assign=True)  # strict check done above; BatchNorm counters may be absent
    return net.to(device=device, dtype=dtype).eval()


def parse_face(
    net: BiSeNet, face_rgb: torch.Tensor, mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD
) -> torch.Tensor:
    """face_rgb: [B,3,H,W] RGB in 0..1 (the aligned face) -> CelebAMask-HQ labels [B,H,W] int64.

    Normalised in fp32 as the method does (ImageNet statistics: ConsisID with torchvision's `normalize`; Stand-In
    uses 0.5, 0.5), then cast to the net.
    """
    if face_rgb.ndim != 4 or face_rgb.shape[1] != 3:
        raise MultiIDError(f"Face parsing needs an RGB batch [B,3,H,W], got shape {tuple(face_rgb.shape)}.")
    param = next(net.parameters())
    with torch.inference_mode():
        x = face_rgb.to(device=param.device, dtype=torch.float32)
        shift = torch.tensor(mean, device=x.device).view(-1, 1, 1)
        scale = torch.tensor(std, device=x.device).view(-1, 1, 1)
        return net((x - shift).div(scale).to(param.dtype)).argmax(dim=1)


def background_mask(labels: torch.Tensor, background_labels: tuple[int, ...]) -> torch.Tensor:
    """True where a label map holds one of `background_labels` (the pixels a method paints over)."""
    wanted = torch.tensor(background_labels, dtype=labels.dtype, device=labels.device)
    return torch.isin(labels, wanted)
