"""ComfyUI-MultiID: videos of specific, real people from a prompt and reference photos."""

from .nodes import comfy_entrypoint

WEB_DIRECTORY = "./web"

__all__ = ["comfy_entrypoint", "WEB_DIRECTORY"]
