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


def snapshot_file(snapshot: str, repo: str, repo_path: str, purpose: str) -> ModelFile:
    """A file of a Hugging Face snapshot kept whole under models/multiid/<snapshot>/."""
    return ModelFile("multiid", f"{snapshot}/{repo_path}", repo, repo_path, purpose)


def face_files(snapshot: str, repo: str) -> tuple[ModelFile, ...]:
    """The face_encoder/ files the face nodes read (ConsisID-preview and Ingredients ship the same ones)."""
    return tuple(
        snapshot_file(snapshot, repo, path, purpose)
        for path, purpose in (
            ("face_encoder/models/antelopev2/scrfd_10g_bnkps.onnx", "face detection (insightface antelopev2 SCRFD)"),
            ("face_encoder/models/antelopev2/glintr100.onnx", "face embedding (insightface antelopev2 ArcFace R100)"),
            ("face_encoder/EVA02_CLIP_L_336_psz14_s6B.pt", "face features (EVA02-CLIP-L-14-336)"),
            ("face_encoder/parsing_bisenet.pth", "face parsing (BiSeNet)"),
        )
    )


def cogvideox_model_files(snapshot: str, repo: str, name: str) -> tuple[ModelFile, ...]:
    """The large files of a CogVideoX-family snapshot (config/tokenizer files come with any download)."""
    return tuple(
        snapshot_file(snapshot, repo, path, purpose)
        for path, purpose in (
            ("transformer/diffusion_pytorch_model-00001-of-00002.safetensors", f"{name} transformer, shard 1"),
            ("transformer/diffusion_pytorch_model-00002-of-00002.safetensors", f"{name} transformer, shard 2"),
            ("vae/diffusion_pytorch_model.safetensors", "CogVideoX VAE"),
            ("text_encoder/model-00001-of-00002.safetensors", "T5-v1.1-XXL text encoder, shard 1"),
            ("text_encoder/model-00002-of-00002.safetensors", "T5-v1.1-XXL text encoder, shard 2"),
        )
    )


FACE_FILES = face_files("ConsisID-preview", CONSISID_REPO)
ANTELOPEV2_DETECTOR, ANTELOPEV2_RECOGNIZER, EVA_CLIP, FACE_PARSER = FACE_FILES

CONSISID_SNAPSHOT = ModelFile(
    "multiid", "ConsisID-preview", CONSISID_REPO, "", "ConsisID video model (transformer/, vae/, scheduler/)"
)
CONSISID_MODEL_FILES = cogvideox_model_files("ConsisID-preview", CONSISID_REPO, "ConsisID")

INGREDIENTS_REPO = "feizhengcong/Ingredients"
INGREDIENTS_SNAPSHOT = ModelFile(
    "multiid", "Ingredients", INGREDIENTS_REPO, "", "Ingredients video model (transformer/ with routers, vae/, ...)"
)
INGREDIENTS_FACE_FILES = face_files("Ingredients", INGREDIENTS_REPO)
INGREDIENTS_MODEL_FILES = cogvideox_model_files("Ingredients", INGREDIENTS_REPO, "Ingredients")


def cogvideox_config_files(snapshot: str, repo: str, name: str) -> tuple[ModelFile, ...]:
    """The small files of a CogVideoX-family snapshot the loaders read: configs, shard indexes, tokenizer."""
    return tuple(
        snapshot_file(snapshot, repo, path, purpose)
        for path, purpose in (
            ("transformer/config.json", f"{name} transformer config"),
            ("transformer/diffusion_pytorch_model.safetensors.index.json", f"{name} transformer shard index"),
            ("vae/config.json", "CogVideoX VAE config"),
            ("scheduler/scheduler_config.json", "CogVideoX DPM scheduler config"),
            ("text_encoder/config.json", "T5-v1.1-XXL config"),
            ("text_encoder/model.safetensors.index.json", "T5-v1.1-XXL shard index"),
            ("tokenizer/spiece.model", "T5 tokenizer vocabulary"),
            ("tokenizer/tokenizer_config.json", "T5 tokenizer config"),
            ("tokenizer/special_tokens_map.json", "T5 tokenizer special tokens"),
            ("tokenizer/added_tokens.json", "T5 tokenizer added tokens"),
        )
    )


CONSISID_CONFIG_FILES = cogvideox_config_files("ConsisID-preview", CONSISID_REPO, "ConsisID")
INGREDIENTS_CONFIG_FILES = cogvideox_config_files("Ingredients", INGREDIENTS_REPO, "Ingredients")

# Every file each model family needs, by the family names of families.py. `python -m multiid_core.models
# check` and `download` walk this registry: add a family here when its loader lands.
FAMILY_FILES: dict[str, tuple[ModelFile, ...]] = {
    "ConsisID": FACE_FILES + CONSISID_CONFIG_FILES + CONSISID_MODEL_FILES,
    "Ingredients": INGREDIENTS_FACE_FILES + INGREDIENTS_CONFIG_FILES + INGREDIENTS_MODEL_FILES,
}


if __name__ == "__main__":
    from .model_setup import main

    raise SystemExit(main())
