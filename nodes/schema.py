"""Inputs several nodes share, so their limits, options and wording are the same everywhere."""

from __future__ import annotations

from comfy_api.latest import io

from ..multiid_core.errors import MultiIDError
from ..multiid_core.families import SamplingDefaults
from .memory import PRECISIONS

MAX_RESOLUTION = 4096  # pixels, either side: the one limit of every size input
MAX_FRAMES = 1025
DEVICES = ("default", "cpu")  # where a text encoder runs


def size_inputs(paper: SamplingDefaults, frames_name: str, limit: str) -> list[io.Int.Input]:
    """width, height and the frame count (named `frames_name`), defaulting to the paper's; `limit` says how the
    paper's values bind, e.g. "at most what the model was trained at" or "as released"."""
    return [
        io.Int.Input("width", default=paper.width, min=16, max=MAX_RESOLUTION, step=16, tooltip=(
            f"Video width in pixels; a multiple of 16, {limit} ({paper.width})."
        )),
        io.Int.Input("height", default=paper.height, min=16, max=MAX_RESOLUTION, step=16, tooltip=(
            f"Video height in pixels; a multiple of 16, {limit} ({paper.height})."
        )),
        io.Int.Input(frames_name, default=paper.frames, min=1, max=MAX_FRAMES, step=4, tooltip=(
            f"Number of frames, 4k+1, {limit} ({paper.frames} = {paper.frames // paper.fps:.0f} s at "
            f"{paper.fps:g} fps)."
        )),
    ]  # fmt: skip


def check_video_size(width: int, height: int, frames: int, frames_name: str) -> None:
    """The size inputs' grid (multiples of 16, 4k+1 frames). The editor keeps to it, an API prompt need not, and the
    VAE would floor an off-grid value without a word."""
    for name, value in (("width", width), ("height", height)):
        if value % 16:
            raise MultiIDError(
                f"{name} must be a multiple of 16 (got {value}): use {max(16, value // 16 * 16)} or "
                f"{(value // 16 + 1) * 16}."
            )
    if (frames - 1) % 4:
        below = (frames - 1) // 4 * 4 + 1
        raise MultiIDError(
            f"{frames_name} must be 4k+1 frames (1, 5, 9, ..., 81), as the VAE packs 4 frames into one after the "
            f"first: got {frames}; use {below} or {below + 4}."
        )


def precision_input(tooltip: str) -> io.Combo.Input:
    return io.Combo.Input("precision", options=list(PRECISIONS), default="auto", tooltip=tooltip)


def device_input(saves: str) -> io.Combo.Input:
    """Where a text encoder runs; `saves` says how much VRAM the CPU saves."""
    return io.Combo.Input(
        "device",
        options=list(DEVICES),
        default="default",
        tooltip=f"default: ComfyUI's text-encoder device (the GPU, offloaded when idle). cpu: keep the encoder on the "
        f"CPU (slower; saves {saves} of VRAM).",
    )
