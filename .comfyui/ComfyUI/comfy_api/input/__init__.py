# This file only exists for backwards compatibility.
from comfy_api.latest._input import (
    ImageInput,
    AudioInput,
    MaskInput,
    LatentInput,
    VideoInput,
)

__all__ = [
    "ImageInput",
    "AudioInput",
    "MaskInput",
    "LatentInput",
    "VideoInput",
]
