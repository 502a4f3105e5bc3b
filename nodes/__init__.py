"""The pack's V3 extension: registers model folders and the release scheduler, and lists the nodes."""

from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from .evaluate_nodes import IdentitySimilarity
from .face_nodes import EncodeIdentity, LoadFaceExtractor
from .model_folders import register_model_folders
from .model_nodes import LoadMultiIDModel
from .router_nodes import IDRouter
from .sampler_nodes import MultiIDDecode, MultiIDSampler
from .schedulers import register_schedulers
from .speed_nodes import SpeedAndMemory, WanTeaCache
from .text_nodes import LoadTextEncoder, TextEncode
from .wan_nodes import ConcatIDWanReference, LoadConcatIDWan, LoadUMT5TextEncoder

register_model_folders()
register_schedulers()


class MultiIDExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [
            LoadFaceExtractor,
            EncodeIdentity,
            IDRouter,
            LoadTextEncoder,
            TextEncode,
            LoadMultiIDModel,
            MultiIDSampler,
            SpeedAndMemory,
            MultiIDDecode,
            IdentitySimilarity,
            LoadUMT5TextEncoder,
            LoadConcatIDWan,
            ConcatIDWanReference,
            WanTeaCache,
        ]


async def comfy_entrypoint() -> MultiIDExtension:
    return MultiIDExtension()
