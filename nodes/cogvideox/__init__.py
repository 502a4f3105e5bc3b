"""The CogVideoX family (ConsisID, Ingredients, Concat-ID CogVideoX) as a native ComfyUI MODEL: its model,
loader, identity conditioning, the authors' samplers and guider, LoRA keys, and the one-node sampler."""

from .conditioning import MultiIDIdentityConditioning
from .loader import LoadMultiIDModel
from .sampler import MultiIDDecode, MultiIDSampler
from .samplers import DynamicCFG

NODES = [LoadMultiIDModel, MultiIDIdentityConditioning, MultiIDSampler, DynamicCFG, MultiIDDecode]
