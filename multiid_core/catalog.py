"""Every file a user downloads, where it goes, and where it comes from.

Paths are relative to a ComfyUI model folder kind ("multiid" is ComfyUI/models/multiid, "insightface"
is ComfyUI/models/insightface, ...). Error messages, the model check and the families (families.py) use this
one catalog.
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
    host: str = "huggingface"  # or "modelscope"
    size_gb: float = 0.0  # about how much it is to download (for the model check's summary); 0: a small file

    @property
    def url(self) -> str:
        if self.host == "modelscope":
            base = f"https://modelscope.cn/models/{self.repo}"
            return f"{base}/resolve/master/{self.repo_path}" if self.repo_path else base
        if not self.repo_path:
            return f"https://huggingface.co/{self.repo}"
        return f"https://huggingface.co/{self.repo}/resolve/main/{self.repo_path}"

    @property
    def where(self) -> str:
        return f"ComfyUI/models/{self.folder}/{self.path}"


@dataclass(frozen=True)
class OtherPlace:
    """Somewhere else a snapshot's file may already be, where another pack or an older download put it.

    Files whose path in the snapshot starts with `prefix` are also looked for in the ComfyUI folder kind
    `kind` at the glob `pattern` ({name}: the file's name, {repo_path}: its path in the snapshot). `offered` is
    the folder a loader offers instead of the file itself (antelopev2 is loaded as a folder), if any.
    """

    prefix: str
    kind: str
    pattern: str
    offered: str = ""


# The one table of other places, read by `models check` (multiid_tools/model_files.py) and the loaders' choice
# lists (nodes/model_folders.py). The face models of any snapshot serve every family.
OTHER_PLACES = (
    OtherPlace("face_encoder/", "multiid", "*/{repo_path}"),
    OtherPlace("face_encoder/models/antelopev2/", "insightface", "models/antelopev2/{name}", "models/antelopev2"),
    # the zip unpacked one level too deep: the detector uses the inner folder and says how to fix it
    OtherPlace(
        "face_encoder/models/antelopev2/", "insightface", "models/antelopev2/antelopev2/{name}", "models/antelopev2"
    ),
    OtherPlace("face_encoder/EVA02_CLIP_L_336_psz14_s6B.pt", "clip_vision", "EVA02_CLIP_L_336*"),
    OtherPlace("face_encoder/parsing_bisenet.pth", "facexlib", "parsing_bisenet.pth"),
    OtherPlace("text_encoder/", "text_encoders", "t5xxl*.safetensors"),
    OtherPlace("tokenizer/", "text_encoders", "t5xxl*.safetensors"),
)


def other_places(file: ModelFile) -> list[tuple[OtherPlace, str]]:
    """The other places of a file, each with its glob pattern filled in."""
    name = file.path.rsplit("/", 1)[-1]
    return [
        (place, place.pattern.format(name=name, repo_path=file.repo_path))
        for place in OTHER_PLACES
        if file.repo_path.startswith(place.prefix)
    ]


def snapshot_file(snapshot: str, repo: str, repo_path: str, purpose: str, size_gb: float = 0.0) -> ModelFile:
    """A file of a Hugging Face snapshot kept whole under models/multiid/<snapshot>/."""
    return ModelFile("multiid", f"{snapshot}/{repo_path}", repo, repo_path, purpose, size_gb=size_gb)


def face_files(snapshot: str, repo: str) -> tuple[ModelFile, ...]:
    """The face_encoder/ files the face nodes read (ConsisID-preview and Ingredients ship the same ones)."""
    return tuple(
        snapshot_file(snapshot, repo, path, purpose, size)
        for path, purpose, size in (
            ("face_encoder/models/antelopev2/scrfd_10g_bnkps.onnx", "face detection (insightface antelopev2 SCRFD)",
             0.02),
            ("face_encoder/models/antelopev2/glintr100.onnx", "face embedding (insightface antelopev2 ArcFace R100)",
             0.26),
            ("face_encoder/EVA02_CLIP_L_336_psz14_s6B.pt", "face features (EVA02-CLIP-L-14-336)", 0.86),
            ("face_encoder/parsing_bisenet.pth", "face parsing (BiSeNet)", 0.05),
        )
    )  # fmt: skip


def cogvideox_model_files(snapshot: str, repo: str, name: str) -> tuple[ModelFile, ...]:
    """The large files of a CogVideoX-family snapshot (config/tokenizer files come with any download)."""
    return tuple(
        snapshot_file(snapshot, repo, path, purpose, size)
        for path, purpose, size in (
            ("transformer/diffusion_pytorch_model-00001-of-00002.safetensors", f"{name} transformer, shard 1", 10.0),
            ("transformer/diffusion_pytorch_model-00002-of-00002.safetensors", f"{name} transformer, shard 2", 2.0),
            ("vae/diffusion_pytorch_model.safetensors", "CogVideoX VAE", 0.86),
            ("text_encoder/model-00001-of-00002.safetensors", "T5-v1.1-XXL text encoder, shard 1", 5.0),
            ("text_encoder/model-00002-of-00002.safetensors", "T5-v1.1-XXL text encoder, shard 2", 4.5),
        )
    )


FACE_FILES = face_files("ConsisID-preview", CONSISID_REPO)
ANTELOPEV2_DETECTOR, ANTELOPEV2_RECOGNIZER, EVA_CLIP, FACE_PARSER = FACE_FILES

CONSISID_SNAPSHOT = ModelFile(
    "multiid", "ConsisID-preview", CONSISID_REPO, "", "ConsisID video model (transformer/, vae/, scheduler/)"
)
CONSISID_MODEL_FILES = cogvideox_model_files("ConsisID-preview", CONSISID_REPO, "ConsisID")

INGREDIENTS_REPO = "feizhengcong/Ingredients"
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

CONCAT_ID_WAN_REPO = "yongzhong/Concat-ID-Wan"
WAN_REPACKAGED_REPO = "Comfy-Org/Wan_2.1_ComfyUI_repackaged"

# Concat-ID on Wan2.1-T2V-1.3B: the DiT from the authors' repository (kept as downloaded under
# models/multiid/Concat-ID-Wan/), the VAE and text encoder as ComfyUI's own Wan workflows use them.
CONCAT_ID_WAN_ADALN_FILE = snapshot_file(
    "Concat-ID-Wan", CONCAT_ID_WAN_REPO, "second_stage_adaln.pt", "Concat-ID-Wan-AdaLN DiT (Wan2.1-T2V-1.3B)", 5.7
)
CONCAT_ID_WAN_FIRST_STAGE_FILE = snapshot_file(
    "Concat-ID-Wan", CONCAT_ID_WAN_REPO, "first_stage.pt", "Concat-ID-Wan first-stage DiT (Wan2.1-T2V-1.3B)", 5.7
)
WAN21_VAE = ModelFile(
    "vae",
    "wan_2.1_vae.safetensors",
    WAN_REPACKAGED_REPO,
    "split_files/vae/wan_2.1_vae.safetensors",
    "Wan 2.1 VAE",
    size_gb=0.25,
)
UMT5_XXL = ModelFile(
    "text_encoders",
    "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
    WAN_REPACKAGED_REPO,
    "split_files/text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors",
    "UMT5-XXL text encoder (Wan)",
    size_gb=6.7,
)
CONCAT_ID_WAN_MODEL_FILES = (WAN21_VAE, UMT5_XXL)

# Wan 14B DiTs as ComfyUI's own Wan workflows load them (Load Diffusion Model), for the methods that apply to them.
WAN22_REPACKAGED_REPO = "Comfy-Org/Wan_2.2_ComfyUI_Repackaged"
WAN21_T2V_14B = ModelFile(
    "diffusion_models",
    "wan2.1_t2v_14B_fp8_e4m3fn.safetensors",
    WAN_REPACKAGED_REPO,
    "split_files/diffusion_models/wan2.1_t2v_14B_fp8_e4m3fn.safetensors",
    "Wan2.1-T2V-14B DiT (fp8; the _bf16 / _fp16 files of the same repository work too)",
    size_gb=14.3,
)
WAN22_T2V_HIGH_NOISE = ModelFile(
    "diffusion_models",
    "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors",
    WAN22_REPACKAGED_REPO,
    "split_files/diffusion_models/wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors",
    "Wan2.2-T2V-A14B high-noise expert (fp8)",
    size_gb=14.3,
)
WAN21_VACE_14B = ModelFile(
    "diffusion_models",
    "wan2.1_vace_14B_fp16.safetensors",
    WAN_REPACKAGED_REPO,
    "split_files/diffusion_models/wan2.1_vace_14B_fp16.safetensors",
    "Wan2.1-VACE-14B DiT (ComfyUI's native VACE loads it)",
    size_gb=34.7,
)
KIJAI_WAN_REPO = "Kijai/WanVideo_comfy"
PHANTOM_WAN_1_3B = ModelFile(
    "diffusion_models",
    "Phantom-Wan-1_3B_fp32.safetensors",
    KIJAI_WAN_REPO,
    "Phantom-Wan-1_3B_fp32.safetensors",
    "Phantom-Wan 1.3B DiT (ComfyUI's native Phantom loads it)",
    size_gb=5.7,
)
PHANTOM_WAN_14B = ModelFile(
    "diffusion_models",
    "Phantom-Wan-14B_fp16.safetensors",
    KIJAI_WAN_REPO,
    "Phantom-Wan-14B_fp16.safetensors",
    "Phantom-Wan 14B DiT (ComfyUI's native Phantom loads it)",
    size_gb=28.6,
)
WAN22_T2V_LOW_NOISE = ModelFile(
    "diffusion_models",
    "wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors",
    WAN22_REPACKAGED_REPO,
    "split_files/diffusion_models/wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors",
    "Wan2.2-T2V-A14B low-noise expert (fp8)",
    size_gb=14.3,
)

CONCAT_ID_REPO = "yongzhong/Concat-ID"


def _concat_id(repo_path: str, purpose: str, size_gb: float) -> ModelFile:
    return ModelFile(
        "multiid", f"Concat-ID/{repo_path}", CONCAT_ID_REPO, repo_path, purpose, host="modelscope", size_gb=size_gb
    )


# Concat-ID needs face detection and parsing only (no EVA-CLIP): antelopev2 and BiSeNet where InstantID/PuLID
# and facexlib users keep them.
CONCAT_ID_FACE_FILES = (
    ModelFile(
        "insightface", "models/antelopev2/scrfd_10g_bnkps.onnx", CONSISID_REPO,
        "face_encoder/models/antelopev2/scrfd_10g_bnkps.onnx", "face detection (insightface antelopev2 SCRFD)",
        size_gb=0.02,
    ),
    ModelFile(
        "insightface", "models/antelopev2/glintr100.onnx", CONSISID_REPO,
        "face_encoder/models/antelopev2/glintr100.onnx", "face embedding (insightface antelopev2 ArcFace R100)",
        size_gb=0.26,
    ),
    ModelFile(
        "facexlib", "parsing_bisenet.pth", CONSISID_REPO, "face_encoder/parsing_bisenet.pth", "face parsing",
        size_gb=0.05,
    ),
)  # fmt: skip

# Concat-ID's CogVideoX release (SAT format, ModelScope): checkpoint folders, not single files.
CONCAT_ID_COGVIDEOX_FILES = (
    _concat_id("single-identity", "Concat-ID CogVideoX-5B, one identity (SAT checkpoint folder)", 11.0),
    _concat_id("two-identities", "Concat-ID CogVideoX-5B, two identities (SAT checkpoint folder)", 11.0),
    _concat_id("vae/3d-vae.pt", "CogVideoX VAE (SAT format)", 0.4),
    _concat_id("t5-v1_1-xxl", "T5-v1.1-XXL text encoder and tokenizer", 9.5),
)
