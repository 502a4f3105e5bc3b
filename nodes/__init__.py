"""The pack's V3 extension: registers model folders, the release schedulers and samplers, and lists the nodes."""

from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from .cogvideox_lora import register_lora_support
from .cogvideox_samplers import DynamicCFG, register_samplers
from .evaluate_nodes import IdentitySimilarity
from .face_nodes import EncodeIdentity, LoadFaceExtractor
from .identity_conditioning import MultiIDIdentityConditioning
from .model_folders import register_model_folders
from .model_nodes import LoadMultiIDModel
from .multi_gpu_nodes import MultiGPU
from .router_nodes import IDRouter
from .sampler_nodes import MultiIDDecode, MultiIDSampler
from .schedulers import register_schedulers
from .teacache_nodes import CogVideoXTeaCache, WanTeaCache
from .text_nodes import LoadTextEncoder, TextEncode
from .wan_nodes import ConcatIDWanReference, LoadConcatIDWan, LoadUMT5TextEncoder

register_model_folders()
register_schedulers()
register_samplers()
register_lora_support()


class MultiIDExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [
            LoadFaceExtractor,
            EncodeIdentity,
            IDRouter,
            LoadTextEncoder,
            TextEncode,
            LoadMultiIDModel,
            MultiIDIdentityConditioning,
            MultiIDSampler,
            DynamicCFG,
            MultiGPU,
            CogVideoXTeaCache,
            MultiIDDecode,
            IdentitySimilarity,
            LoadUMT5TextEncoder,
            LoadConcatIDWan,
            ConcatIDWanReference,
            WanTeaCache,
        ]


async def comfy_entrypoint() -> MultiIDExtension:
    return MultiIDExtension()
