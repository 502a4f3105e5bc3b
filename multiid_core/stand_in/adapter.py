"""Stand-In's adapter as a module: per block, a rank-128 LoRA on q, k and v, computed in fp32 and added to the
reference tokens' projections only (`models/wan_video_dit.py` `LoRALinearLayer`, scale 1)."""

from __future__ import annotations

import torch

from .checkpoint import AdapterSizes


class LoRA(torch.nn.Module):
    def __init__(self, dim: int, rank: int):
        super().__init__()
        self.down = torch.nn.Linear(dim, rank, bias=False, dtype=torch.float32, device="meta")
        self.up = torch.nn.Linear(rank, dim, bias=False, dtype=torch.float32, device="meta")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(x.to(self.down.weight.dtype))).to(x.dtype)


class StandInAdapter(torch.nn.Module):
    """`blocks.{i}.self_attn.{q,k,v}_loras.{down,up}.weight`, as released, kept in fp32 as the authors keep them."""

    def __init__(self, sd: dict[str, torch.Tensor], sizes: AdapterSizes):
        super().__init__()
        self.sizes = sizes
        self.blocks = torch.nn.ModuleList(
            torch.nn.ModuleDict(
                {"self_attn": torch.nn.ModuleDict({f"{p}_loras": LoRA(sizes.dim, sizes.rank) for p in "qkv"})}
            )
            for _ in range(sizes.layers)
        )
        self.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True, assign=True)

    def delta(self, index: int, projection: str, x: torch.Tensor) -> torch.Tensor:
        """What the adapter adds to block `index`'s `projection` ("q", "k", "v") of the tokens x."""
        return self.blocks[index]["self_attn"][f"{projection}_loras"](x)
