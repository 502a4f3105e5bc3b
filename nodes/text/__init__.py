"""Prompt encoders as ComfyUI CLIPs: T5-v1.1-XXL for the CogVideoX family (t5.py), UMT5-XXL for Wan (umt5.py)."""

from .t5 import LoadTextEncoder, TextEncode
from .umt5 import LoadUMT5TextEncoder

NODES = [LoadTextEncoder, TextEncode, LoadUMT5TextEncoder]
