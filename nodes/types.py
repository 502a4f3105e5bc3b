"""The pack's socket types. The strings are the compatibility contract with saved workflows."""

from comfy_api.latest import io

from ..multiid_core.families import Loader

FaceExtractor = io.Custom("MULTIID_FACE_EXTRACTOR")
Identity = io.Custom("MULTIID_IDENTITY")
Identities = io.Custom("MULTIID_IDENTITIES")
VideoVAE = io.Custom("MULTIID_VIDEO_VAE")

CATEGORY = "MultiID"

# The node whose output each type is, named in the message for a plain value sent where a link belongs.
MADE_BY = {
    FaceExtractor.io_type: "Load Face Extractor",
    Identity.io_type: "Encode Identity",
    Identities.io_type: "ID Router",
    VideoVAE.io_type: Loader.VIDEO_MODEL.value,
    "MODEL": f"{Loader.VIDEO_MODEL.value} or {Loader.CONCAT_ID_WAN.value} (Stand-In and Phantom: ComfyUI's Load "
    "Diffusion Model)",
}
