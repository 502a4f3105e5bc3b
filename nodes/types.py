"""The pack's socket types. The strings are the compatibility contract with saved workflows."""

from comfy_api.latest import io

FaceExtractor = io.Custom("MULTIID_FACE_EXTRACTOR")
Identity = io.Custom("MULTIID_IDENTITY")
Identities = io.Custom("MULTIID_IDENTITIES")
MultiIDModel = io.Custom("MULTIID_MODEL")

CATEGORY = "MultiID"
SpeedOptions = io.Custom("MULTIID_SPEED")
