"""The pack's socket types. The strings are the compatibility contract with saved workflows."""

from comfy_api.latest import io

FaceExtractor = io.Custom("MULTIID_FACE_EXTRACTOR")
Identity = io.Custom("MULTIID_IDENTITY")
Identities = io.Custom("MULTIID_IDENTITIES")
MultiIDModel = io.Custom("MULTIID_MODEL")

CATEGORY = "MultiID"
SpeedOptions = io.Custom("MULTIID_SPEED")

# The node whose output each type is, named in the message for a plain value sent where a link belongs.
MADE_BY = {
    FaceExtractor.io_type: "Load Face Extractor",
    Identity.io_type: "Encode Identity",
    Identities.io_type: "ID Router",
    MultiIDModel.io_type: "Load MultiID Video Model",
    SpeedOptions.io_type: "MultiID Speed & Memory",
}
