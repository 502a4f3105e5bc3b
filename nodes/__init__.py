"""The pack's V3 extension: registers model folders, the release schedulers and samplers, and lists the nodes.

Each room (a family, or a feature every family shares) ends with its own node list; this is the one place that
collects them.
"""

from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from . import cogvideox, concat_id_wan, identity, multi_gpu, phantom, stand_in, teacache, text, vace
from .cogvideox.lora import register_lora_support
from .cogvideox.samplers import register_samplers
from .model_folders import register_model_folders
from .schedulers import register_schedulers

register_model_folders()
register_schedulers()
register_samplers()
register_lora_support()

NODES: list[type[io.ComfyNode]] = [
    *identity.NODES,
    *text.NODES,
    *cogvideox.NODES,
    *concat_id_wan.NODES,
    *stand_in.NODES,
    *phantom.NODES,
    *vace.NODES,
    *teacache.NODES,
    *multi_gpu.NODES,
]


class MultiIDExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return NODES


async def comfy_entrypoint() -> MultiIDExtension:
    return MultiIDExtension()
