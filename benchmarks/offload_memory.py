"""VRAM budget for a CogVideoX-family transformer: ComfyUI's partial loading against block swapping.

    python benchmarks/offload_memory.py

The pack used to stream whole transformer blocks from system RAM (block swapping) outside ComfyUI's memory
accounting; the MODEL now leaves this to ComfyUI, which loads what fits the budget (`ModelPatcher.load` with
`lowvram_model_memory`, largest layers first) and casts each remaining layer to the GPU when it runs. For
budgets of a quarter, half and three quarters of the weights this prints, per model call: the bytes kept
resident and the bytes moved, measured for ComfyUI (a forward that counts every cast of an offloaded
layer; on the CPU the cast is a no-op, the count is what a GPU would copy), and computed for block swapping
as it worked (room for two streamed blocks kept free, whole blocks streamed in order, one ahead).
The ConsisID layout at reduced width (8 layers of width 512); the shares carry over to the 5B's 42 blocks.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from consisid_speed import import_comfyui_and_pack  # noqa: E402

SIZES = dict(num_attention_heads=8, attention_head_dim=64, num_layers=8, time_embed_dim=128)
GRID = (3, 16, 20)  # latent frames, height, width: one small call is enough to count the casts


def build(pack: str):
    import comfy.ops

    from multiid_tools.tiny_models.cogvideox import TINY_TRANSFORMER

    dit = sys.modules[f"{pack}.multiid_core.cogvideox.transformer"]
    config = dit.CogVideoXConfig.from_dict({**TINY_TRANSFORMER, **SIZES})
    torch.manual_seed(0)
    return dit, config, dit.CogVideoXTransformer(config, comfy.ops.disable_weight_init).eval()


def comfyui_row(pack: str, share: float) -> tuple[int, int, int]:
    """(weights, resident, moved per call) bytes under ComfyUI's partial loading at `share` of the weights."""
    import comfy.model_patcher
    import comfy.ops

    dit, config, transformer = build(pack)
    total = sum(p.numel() * p.element_size() for p in transformer.parameters())
    patcher = comfy.model_patcher.ModelPatcher(transformer, torch.device("cpu"), torch.device("cpu"))
    patcher.load(torch.device("cpu"), lowvram_model_memory=int(share * total))
    moved = 0
    cast = comfy.ops.cast_bias_weight

    def counting(s, *args, **kwargs):
        nonlocal moved
        moved += sum(t.numel() * t.element_size() for t in (s.weight, getattr(s, "bias", None)) if t is not None)
        return cast(s, *args, **kwargs)

    comfy.ops.cast_bias_weight = counting
    try:
        frames, height, width = GRID
        latents = torch.randn(1, frames, config.in_channels, height, width)
        text = torch.randn(1, config.max_text_seq_length, config.text_embed_dim)
        rope = dit.cogvideox_rope(config, frames, height, width, "cpu")
        with torch.no_grad():
            transformer(latents, text, torch.tensor([500]), rope)
    finally:
        comfy.ops.cast_bias_weight = cast
    return total, patcher.model.model_loaded_weight_memory, moved


def block_swap_row(transformer, total: int, share: float) -> tuple[int, int]:
    """(peak, moved per call) bytes of block swapping at the same budget: the blocks that do not fit are streamed
    whole at every call, into room for two kept free (peak: the resident weights plus that room)."""
    block = sum(p.numel() * p.element_size() for p in transformer.transformer_blocks[0].parameters())
    blocks = len(transformer.transformer_blocks)
    budget = share * total
    swapped = min(blocks, max(0, math.ceil((total - budget + 2 * block) / block)))
    return int(total - swapped * block + 2 * block), swapped * block


def main() -> None:
    pack = import_comfyui_and_pack(gpu=False)
    _, _, transformer = build(pack)
    rows = []
    for share in (0.25, 0.5, 0.75):
        total, resident, moved = comfyui_row(pack, share)
        swap_resident, swap_moved = block_swap_row(transformer, total, share)
        mib = 2**20
        rows.append([f"{share:.0%}", f"{total / mib:.1f}", f"{resident / mib:.1f}", f"{moved / mib:.1f}",
                     f"{swap_resident / mib:.1f}", f"{swap_moved / mib:.1f}"])  # fmt: skip
    header = ["budget", "weights MiB", "ComfyUI resident", "ComfyUI moved/call", "swap peak", "swap moved/call"]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
