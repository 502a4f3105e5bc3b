"""Every file a user downloads, where it goes, and where it comes from.

Paths are relative to a ComfyUI model folder kind ("multiid" is ComfyUI/models/multiid, "insightface"
is ComfyUI/models/insightface, ...). Error messages and the model check use this one catalog.
"""

from __future__ import annotations

from dataclasses import dataclass

CONSISID_REPO = "BestWishYsh/ConsisID-preview"


@dataclass(frozen=True)
class ModelFile:
    folder: str  # ComfyUI model folder kind
    path: str  # relative to that folder
    repo: str  # Hugging Face repository
    repo_path: str  # file inside the repository
    purpose: str

    @property
    def url(self) -> str:
        if not self.repo_path:
            return f"https://huggingface.co/{self.repo}"
        return f"https://huggingface.co/{self.repo}/resolve/main/{self.repo_path}"

    @property
    def where(self) -> str:
        return f"ComfyUI/models/{self.folder}/{self.path}"


def _consisid_file(repo_path: str, purpose: str) -> ModelFile:
    return ModelFile("multiid", f"ConsisID-preview/{repo_path}", CONSISID_REPO, repo_path, purpose)


ANTELOPEV2_DETECTOR = _consisid_file(
    "face_encoder/models/antelopev2/scrfd_10g_bnkps.onnx", "face detection (insightface antelopev2 SCRFD)"
)
ANTELOPEV2_RECOGNIZER = _consisid_file(
    "face_encoder/models/antelopev2/glintr100.onnx", "face embedding (insightface antelopev2 ArcFace R100)"
)
EVA_CLIP = _consisid_file("face_encoder/EVA02_CLIP_L_336_psz14_s6B.pt", "face features (EVA02-CLIP-L-14-336)")
FACE_PARSER = _consisid_file("face_encoder/parsing_bisenet.pth", "face parsing (BiSeNet)")

FACE_FILES = (ANTELOPEV2_DETECTOR, ANTELOPEV2_RECOGNIZER, EVA_CLIP, FACE_PARSER)

CONSISID_SNAPSHOT = ModelFile(
    "multiid", "ConsisID-preview", CONSISID_REPO, "", "ConsisID video model (transformer/, vae/, scheduler/)"
)

# The large files of the snapshot (the small config/tokenizer files come with any snapshot download).
CONSISID_MODEL_FILES = tuple(
    _consisid_file(path, purpose)
    for path, purpose in (
        ("transformer/diffusion_pytorch_model-00001-of-00002.safetensors", "ConsisID transformer, shard 1"),
        ("transformer/diffusion_pytorch_model-00002-of-00002.safetensors", "ConsisID transformer, shard 2"),
        ("vae/diffusion_pytorch_model.safetensors", "CogVideoX VAE"),
        ("text_encoder/model-00001-of-00002.safetensors", "T5-v1.1-XXL text encoder, shard 1"),
        ("text_encoder/model-00002-of-00002.safetensors", "T5-v1.1-XXL text encoder, shard 2"),
    )
)
