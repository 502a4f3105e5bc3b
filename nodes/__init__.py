"""The pack's V3 extension: registers model folders and lists the nodes."""

from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from .face_nodes import EncodeIdentity, LoadFaceExtractor
from .model_folders import register_model_folders
from .model_nodes import LoadMultiIDModel
from .sampler_nodes import MultiIDDecode, MultiIDSampler
from .text_nodes import LoadTextEncoder, TextEncode

register_model_folders()


class MultiIDExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [
            LoadFaceExtractor,
            EncodeIdentity,
            LoadTextEncoder,
            TextEncode,
            LoadMultiIDModel,
            MultiIDSampler,
            MultiIDDecode,
        ]


async def comfy_entrypoint() -> MultiIDExtension:
    return MultiIDExtension()
