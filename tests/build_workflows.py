"""The workflows in workflows/, described once. `python tests/build_workflows.py` rewrites the files from a
live ComfyUI's /object_info; tests/server/test_workflows.py checks the files still equal this output.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))

from workflow_builder import Graph  # noqa: E402

from multiid_core.catalog import (  # noqa: E402
    CONCAT_ID_COGVIDEOX_FILES,
    CONCAT_ID_FACE_FILES,
    CONCAT_ID_WAN_ADALN_FILE,
    CONCAT_ID_WAN_MODEL_FILES,
    CONSISID_MODEL_FILES,
    FACE_FILES,
    INGREDIENTS_FACE_FILES,
    INGREDIENTS_MODEL_FILES,
    PHANTOM_WAN_1_3B,
    PHANTOM_WAN_14B,
    WAN21_T2V_14B,
    WAN22_T2V_HIGH_NOISE,
    WAN22_T2V_LOW_NOISE,
    ModelFile,
)
from multiid_core.families import STAND_IN_WAN21, STAND_IN_WAN22  # noqa: E402
from multiid_core.stand_in.files import WAN21 as STAND_IN_WAN21_ADAPTER  # noqa: E402
from multiid_core.stand_in.files import WAN22_HIGH as STAND_IN_WAN22_HIGH  # noqa: E402
from multiid_core.stand_in.files import WAN22_LOW as STAND_IN_WAN22_LOW  # noqa: E402

STAND_IN_WAN21_FILES = STAND_IN_WAN21.files
STAND_IN_WAN22_FILES = STAND_IN_WAN22.files
WORKFLOWS_DIR = Path(__file__).resolve().parents[1] / "workflows"
FACES = "ConsisID-preview/face_encoder"


# Extensions ComfyUI's model list (/experiment/models, what the editor's missing-model check reads) shows. Other
# files (the .onnx face models, configs, the tokenizer) would always look missing there, so the workflow's
# note points to `python multiid.py models check`, which covers every file.
LISTED_EXTENSIONS = (".safetensors", ".sft", ".ckpt", ".pt", ".pt2", ".pth", ".bin", ".pkl")
SETUP_NOTE = (
    "**Model files.** From the MultiID pack folder (ComfyUI/custom_nodes/comfyui-multiid), "
    "`python multiid.py models check` lists every file this needs, where it goes and where to get it; "
    "`python multiid.py models download` fetches the missing ones. **Help:** select a node and click the "
    "(i) button above it for its help page; hover an input for its tooltip."
)


def model_entries(files: tuple[ModelFile, ...]) -> list[dict]:
    """The `models` list the frontend reads to offer downloads of missing files: every weight file it can see."""
    return [{"name": f.path, "url": f.url, "directory": f.folder} for f in files if f.path.endswith(LISTED_EXTENSIONS)]


def concat_id_face_extractor(graph: Graph, row: int = 0):
    """Concat-ID needs detection and parsing only: antelopev2 and BiSeNet where most users have them, no EVA."""
    return graph.add(
        "MultiID_LoadFaceExtractor",
        "insightface/models/antelopev2",
        "none (enough for Concat-ID)",
        "facexlib/parsing_bisenet.pth",
        "auto",
        "auto",
        column=0,
        row=row,
    )


def face_extractor(graph: Graph, row: int = 0, snapshot: str = "ConsisID-preview"):
    faces = f"{snapshot}/face_encoder"
    return graph.add(
        "MultiID_LoadFaceExtractor",
        f"{faces}/models/antelopev2",
        f"{faces}/EVA02_CLIP_L_336_psz14_s6B.pt",
        f"{faces}/parsing_bisenet.pth",
        "auto",
        "auto",
        column=0,
        row=row,
    )


def face_identity_preview() -> tuple[Graph, list[dict], str]:
    graph = Graph()
    extractor = face_extractor(graph)
    photo = graph.add("LoadImage", "portrait.png", "image", column=0, row=1)
    identity = graph.add(
        "MultiID_EncodeIdentity", "largest", 0, "", column=1, row=0,
        face_extractor=(extractor, "face_extractor"), photos=(photo, "IMAGE"),
    )  # fmt: skip
    graph.add("PreviewImage", column=2, row=0, title="Aligned face", images=(identity, "aligned_faces"))
    graph.add("PreviewImage", column=2, row=1, title="Detections", images=(identity, "detections"))
    return graph, model_entries(FACE_FILES), "Check which face each photo gives: detections and the aligned face."


CONSISID_PROMPT = (
    "The video shows a person standing on a quiet city street in the late afternoon, facing the camera. Warm "
    "sunlight falls across their face from the left, and the background is softly blurred with passing cars and "
    "shop windows. They smile slightly, turn their head a little towards the light and then look back at the "
    "camera. The shot is a steady medium close-up with shallow depth of field, natural colours and fine detail "
    "in the skin, hair and clothing."
)


def text_encoders(
    graph: Graph, prompt: str, column: int = 0, row: int = 2, snapshot: str = "ConsisID-preview", folder="text_encoder"
):
    """The T5 loader and the two prompt encoders every CogVideoX-family workflow uses."""
    clip = graph.add("MultiID_LoadTextEncoder", f"{snapshot}/{folder}", "auto", "default", column=column, row=row)
    positive = graph.add("MultiID_TextEncode", prompt, column=column + 1, row=row, title="Prompt", clip=(clip, "clip"))
    negative = graph.add(
        "MultiID_TextEncode", "", column=column + 1, row=row + 1, title="Negative prompt", clip=(clip, "clip")
    )
    return positive, negative


def video_output(graph: Graph, loader, latent: tuple, prefix: str, fps: float, column: int):
    """Decode with the loader's VAE, assemble at the family's frame rate and save as mp4."""
    frames = graph.add("MultiID_Decode", True, column=column, row=0, vae=(loader, "vae"), latent=latent)
    video = graph.add("CreateVideo", fps, column=column, row=1, images=(frames, "frames"))
    graph.add("SaveVideo", prefix, "mp4", "h264", column=column + 1, row=0, video=(video, "VIDEO"))
    return frames


def identity_scores(graph: Graph, frames, identities, extractor, column: int, row: int = 0) -> None:
    """How well the video keeps each person: per-identity ArcFace curves and a summary on the node (place it
    right of Save Video, whose player grows after a run)."""
    graph.add(
        "MultiID_IdentitySimilarity", 0, column=column, row=row, title="Identity scores",
        frames=(frames, "frames"), identities=identities, face_extractor=(extractor, "face_extractor"),
    )  # fmt: skip


def routing_map_output(graph: Graph, sampler, prefix: str, fps: float, column: int):
    """The sampler's routing map, saved as a video beside the result."""
    video = graph.add("CreateVideo", fps, column=column, row=2, images=(sampler, "routing_map"))
    graph.add("SaveVideo", prefix, "mp4", "h264", column=column + 1, row=2, title="Routing map", video=(video, "VIDEO"))


def two_people(graph: Graph, extractor):
    """Two Encode Identity nodes, one photo each (person_1.png, person_2.png)."""
    return two_photos_and_people(graph, extractor)[1]


def two_photos_and_people(graph: Graph, extractor) -> tuple[list, list]:
    """The two photos (LoadImage nodes) and their Encode Identity nodes."""
    photos, people = [], []
    for i in (1, 2):
        photo = graph.add("LoadImage", f"person_{i}.png", "image", column=0, row=i, title=f"Person {i}")
        photos.append(photo)
        people.append(
            graph.add(
                "MultiID_EncodeIdentity",
                "largest",
                0,
                f"person {i}",
                column=1,
                row=i - 1,
                title=f"Person {i}",
                face_extractor=(extractor, "face_extractor"),
                photos=(photo, "IMAGE"),
            )  # fmt: skip
        )
    return photos, people


def half_frame_masks(graph: Graph, width: int = 720, height: int = 480):
    """Left half for person 1, right half for person 2, built from native mask nodes (easy to repaint)."""
    masks = []
    for i in (0, 1):
        empty = graph.add("SolidMask", 0.0, width, height, column=2, row=3 + 2 * i, title=f"Frame {i + 1}")
        half = graph.add("SolidMask", 1.0, width // 2, height, column=2, row=4 + 2 * i, title=f"Half {i + 1}")
        masks.append(
            graph.add(
                "MaskComposite",
                i * width // 2,
                0,
                "add",
                column=3,
                row=3 + 2 * i,
                title=f"Mask person {i + 1}",
                destination=(empty, "MASK"),
                source=(half, "MASK"),
            )  # fmt: skip
        )
    return masks


def consisid_person(graph: Graph) -> tuple:
    """(extractor, identity, positive, negative, loader) of the ConsisID workflows: one person from
    portrait.png, the prompt, and ConsisID-preview."""
    extractor = face_extractor(graph)
    photo = graph.add("LoadImage", "portrait.png", "image", column=0, row=1)
    identity = graph.add(
        "MultiID_EncodeIdentity", "largest", 0, "", column=1, row=0,
        face_extractor=(extractor, "face_extractor"), photos=(photo, "IMAGE"),
    )  # fmt: skip
    positive, negative = text_encoders(graph, CONSISID_PROMPT)
    loader = graph.add(
        "MultiID_LoadModel", "ConsisID-preview", "from model folder", "bf16", "same as precision", column=1, row=4
    )
    return extractor, identity, positive, negative, loader


def consisid_sampled(graph: Graph, person: tuple, model: tuple, folder: str) -> None:
    """The authors' sampling of one ConsisID person (`consisid_person`) on `model`, to a video and its scores."""
    extractor, identity, positive, negative, loader = person
    latent = graph.add(
        "MultiID_Sampler", 720, 480, 49, 50, 6.0, False, "CogVideoX DPM", 42, "fixed", 1.0, "all steps",
        column=2, row=0,
        model=model, vae=(loader, "vae"), positive=(positive, "conditioning"),
        negative=(negative, "conditioning"), identity=(identity, "identity"),
    )  # fmt: skip
    frames = video_output(graph, loader, (latent, "latent"), folder, 8.0, column=3)
    identity_scores(graph, frames, (identity, "identity"), extractor, column=5)


def consisid_single_id() -> tuple[Graph, list[dict], str]:
    graph = Graph()
    person = consisid_person(graph)
    consisid_sampled(graph, person, (person[-1], "model"), "MultiID/consisid")
    description = (
        "ConsisID: one person from one photo and a detailed prompt, 49 frames at 720x480, 8 fps (the authors' "
        "settings). Put the whole BestWishYsh/ConsisID-preview snapshot in models/multiid/ConsisID-preview."
    )
    return graph, model_entries(FACE_FILES + CONSISID_MODEL_FILES), description


def consisid_multi_gpu() -> tuple[Graph, list[dict], str]:
    graph = Graph()
    person = consisid_person(graph)
    # world size 2, guidance parallel, Ulysses degree 0 (automatic), a Ray of this machine, any GPUs, no ring
    model = graph.add("MultiID_MultiGPU", 2, True, 0, "", "", 1, column=2, row=4, model=(person[-1], "model"))
    consisid_sampled(graph, person, (model, "MODEL"), "MultiID/consisid_multi_gpu")
    description = (
        "ConsisID on two GPUs: MultiID Multi-GPU between the loader and the sampler puts the prompt and the "
        "negative branch on one GPU each (guidance parallel), for the video one GPU gives with the same seed. "
        "Each GPU holds a copy of the model. 49 frames at 720x480, 8 fps, 50 steps. Needs Ray (pip install "
        "'comfyui-multiid[multigpu]'); with 4 GPUs set the world size to 4 (guidance 2 x Ulysses 2), for a Ray "
        "cluster give its head's address. Put the ConsisID-preview snapshot in models/multiid/ConsisID-preview."
    )
    return graph, model_entries(FACE_FILES + CONSISID_MODEL_FILES), description


TWO_PEOPLE_PROMPT = (
    "The video shows two people sitting side by side at a wooden table in a bright cafe, both facing the camera. "
    "The person on the left laughs and turns towards the person on the right, who smiles and raises a cup of "
    "coffee. Soft daylight comes through a large window behind them, the background is gently blurred, and the "
    "shot is a steady medium shot with natural colours and fine detail in their faces, hair and clothes."
)


def multi_id_sampler(graph: Graph, model, positive, negative, router, column: int = 4):
    return graph.add(
        "MultiID_Sampler", 720, 480, 49, 50, 6.0, False, "CogVideoX DPM", 42, "fixed", 1.0, "all steps",
        column=column, row=0, model=(model, "model"), vae=(model, "vae"), positive=(positive, "conditioning"),
        negative=(negative, "conditioning"), identity=(router, "identities"),
    )  # fmt: skip


def ingredients_two_ids() -> tuple[Graph, list[dict], str]:
    graph = Graph()
    extractor = face_extractor(graph, snapshot="Ingredients")
    first, second = two_people(graph, extractor)
    router = graph.add(
        "MultiID_IDRouter", "learned", 1.0, "as released (unconditional branch)", column=2, row=0,
        identity_1=(first, "identity"), identity_2=(second, "identity"),
    )  # fmt: skip
    positive, negative = text_encoders(graph, TWO_PEOPLE_PROMPT, row=3, snapshot="Ingredients")
    model = graph.add(  # row 2: the ID Router above it is taller than one row
        "MultiID_LoadModel", "Ingredients", "from model folder", "bf16", "same as precision", column=2, row=2
    )
    sampler = multi_id_sampler(graph, model, positive, negative, router)
    frames = video_output(graph, model, (sampler, "latent"), "MultiID/ingredients", 8.0, column=5)
    identity_scores(graph, frames, (router, "identities"), extractor, column=7)
    routing_map_output(graph, sampler, "MultiID/ingredients_routing", 8.0, column=5)
    description = (
        "Ingredients: two people, each keeping their own face, routed per video token by the released learned "
        "router. 49 frames at 720x480, 8 fps. Put the feizhengcong/Ingredients snapshot in models/multiid/Ingredients."
    )
    return graph, model_entries(INGREDIENTS_FACE_FILES + INGREDIENTS_MODEL_FILES), description


def consisid_placed_two_ids() -> tuple[Graph, list[dict], str]:
    graph = Graph()
    extractor = face_extractor(graph)
    first, second = two_people(graph, extractor)
    left, right = half_frame_masks(graph)
    router = graph.add(
        "MultiID_IDRouter", "masks", 1.0, "as released (unconditional branch)", column=3, row=0,
        identity_1=(first, "identity"), identity_2=(second, "identity"), mask_1=(left, "MASK"), mask_2=(right, "MASK"),
    )  # fmt: skip
    positive, negative = text_encoders(graph, TWO_PEOPLE_PROMPT, row=7)
    model = graph.add(
        "MultiID_LoadModel", "ConsisID-preview", "from model folder", "bf16", "same as precision", column=3, row=2
    )
    sampler = multi_id_sampler(graph, model, positive, negative, router)
    frames = video_output(graph, model, (sampler, "latent"), "MultiID/consisid_placed", 8.0, column=5)
    identity_scores(graph, frames, (router, "identities"), extractor, column=7)
    routing_map_output(graph, sampler, "MultiID/consisid_placed_routing", 8.0, column=5)
    description = (
        "ConsisID with two painted masks: two people from a single-identity model, each where you paint them "
        "(left and right halves here; repaint the masks to move them). Uses the ConsisID-preview snapshot."
    )
    return graph, model_entries(FACE_FILES + CONSISID_MODEL_FILES), description


def concat_id_cogvideox_two_ids() -> tuple[Graph, list[dict], str]:
    graph = Graph()
    extractor = concat_id_face_extractor(graph)
    first, second = two_people(graph, extractor)
    people = graph.add(
        "MultiID_IDRouter", "learned", 1.0, "as released (unconditional branch)", column=2, row=0,
        identity_1=(first, "identity"), identity_2=(second, "identity"),
    )  # fmt: skip
    positive, negative = text_encoders(graph, TWO_PEOPLE_PROMPT, row=3, snapshot="Concat-ID", folder="t5-v1_1-xxl")
    model = graph.add(
        "MultiID_LoadModel", "Concat-ID/two-identities", "from model folder", "bf16", "same as precision",
        column=2, row=2,
    )  # fmt: skip
    sampler = multi_id_sampler(graph, model, positive, negative, people)
    video_output(graph, model, (sampler, "latent"), "MultiID/concat_id_cogvideox", 8.0, column=5)
    description = (
        "Concat-ID (CogVideoX-5B): two people, each photo's face appended as a clean reference frame after the "
        "video; 49 frames at 720x480, 8 fps. Put the ModelScope yongzhong/Concat-ID download in "
        "models/multiid/Concat-ID, antelopev2 in models/insightface/models and parsing_bisenet.pth in models/facexlib."
    )
    return graph, model_entries(CONCAT_ID_FACE_FILES + CONCAT_ID_COGVIDEOX_FILES), description


EXAMPLE_LORA = "consisid_example_lora.safetensors"


def write_example_lora(base: Path) -> Path:
    """A tiny LoRA named as consisid_ksampler_lora.json's, in ComfyUI/models/loras of base: diffusers-style keys
    (`transformer.` + the released module names) for the tiny ConsisID's first attention query (the same layout
    as the release's, at a width of heads x head_dim)."""
    import torch
    from safetensors.torch import save_file

    from multiid_tools.tiny_models.cogvideox import TINY_TRANSFORMER

    width = TINY_TRANSFORMER["num_attention_heads"] * TINY_TRANSFORMER["attention_head_dim"]
    rank = 4
    generator = torch.Generator().manual_seed(0)
    module = "transformer.transformer_blocks.0.attn1.to_q"
    path = Path(base) / "models" / "loras" / EXAMPLE_LORA
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {
            f"{module}.lora_A.weight": torch.randn(rank, width, generator=generator) * 0.3,
            f"{module}.lora_B.weight": torch.randn(width, rank, generator=generator) * 0.3,
        },
        str(path),
    )
    return path


def identity_conditioning_widgets() -> tuple:
    """width, height, frames, identity_strength, vae_seed (the authors' settings)."""
    return 720, 480, 49, 1.0, 42


def consisid_ksampler_lora() -> tuple[Graph, list[dict], str]:
    graph = Graph()
    extractor, identity, positive, negative, loader = consisid_person(graph)
    lora = graph.add("LoraLoaderModelOnly", EXAMPLE_LORA, 1.0, column=2, row=4, model=(loader, "model"))
    conditioning = graph.add(
        "MultiID_IdentityConditioning", *identity_conditioning_widgets(), column=2, row=0,
        model=(lora, "MODEL"), vae=(loader, "vae"), positive=(positive, "conditioning"),
        negative=(negative, "conditioning"), identity=(identity, "identity"),
    )  # fmt: skip
    latent = graph.add(
        "KSampler", 42, "fixed", 50, 6.0, "cogvideox_dpm", "multiid_trailing", 1.0, column=3, row=0,
        model=(lora, "MODEL"), positive=(conditioning, "positive"), negative=(conditioning, "negative"),
        latent_image=(conditioning, "latent"),
    )  # fmt: skip
    frames = video_output(graph, loader, (latent, "LATENT"), "MultiID/consisid_lora", 8.0, column=4)
    identity_scores(graph, frames, (identity, "identity"), extractor, column=6)
    description = (
        "ConsisID with a LoRA, through ComfyUI's own sampling: Load LoRA on the MODEL, MultiID Identity "
        "Conditioning on both prompts, and KSampler with the pack's cogvideox_dpm sampler and multiid_trailing "
        "scheduler (50 steps, cfg 6: the authors' settings; 49 frames at 720x480, 8 fps). Put your CogVideoX "
        f"LoRA in models/loras and choose it in place of {EXAMPLE_LORA}; the ConsisID-preview snapshot goes in "
        "models/multiid/ConsisID-preview."
    )
    return graph, model_entries(FACE_FILES + CONSISID_MODEL_FILES), description


def ingredients_sampler_custom_advanced() -> tuple[Graph, list[dict], str]:
    graph = Graph()
    extractor = face_extractor(graph, snapshot="Ingredients")
    first, second = two_people(graph, extractor)
    router = graph.add(
        "MultiID_IDRouter", "learned", 1.0, "as released (unconditional branch)", column=2, row=0,
        identity_1=(first, "identity"), identity_2=(second, "identity"),
    )  # fmt: skip
    positive, negative = text_encoders(graph, TWO_PEOPLE_PROMPT, row=3, snapshot="Ingredients")
    loader = graph.add(
        "MultiID_LoadModel", "Ingredients", "from model folder", "bf16", "same as precision", column=2, row=2
    )
    conditioning = graph.add(
        "MultiID_IdentityConditioning", *identity_conditioning_widgets(), column=3, row=0,
        model=(loader, "model"), vae=(loader, "vae"), positive=(positive, "conditioning"),
        negative=(negative, "conditioning"), identity=(router, "identities"),
    )  # fmt: skip
    guider = graph.add(
        "CFGGuider", 6.0, column=4, row=1, model=(loader, "model"), positive=(conditioning, "positive"),
        negative=(conditioning, "negative"),
    )  # fmt: skip
    noise = graph.add("RandomNoise", 42, "fixed", column=4, row=2)
    sampler = graph.add("KSamplerSelect", "cogvideox_dpm", column=4, row=3)
    sigmas = graph.add("BasicScheduler", "multiid_trailing", 50, 1.0, column=4, row=4, model=(loader, "model"))
    latent = graph.add(
        "SamplerCustomAdvanced", column=5, row=0, noise=(noise, "NOISE"), guider=(guider, "GUIDER"),
        sampler=(sampler, "SAMPLER"), sigmas=(sigmas, "SIGMAS"), latent_image=(conditioning, "latent"),
    )  # fmt: skip
    frames = video_output(graph, loader, (latent, "output"), "MultiID/ingredients_custom", 8.0, column=6)
    identity_scores(graph, frames, (router, "identities"), extractor, column=8)
    description = (
        "Ingredients (two people, the released learned router) through SamplerCustomAdvanced: MultiID Identity "
        "Conditioning, CFGGuider at cfg 6, KSamplerSelect with cogvideox_dpm and BasicScheduler with "
        "multiid_trailing at 50 steps (the authors' settings; 49 frames at 720x480, 8 fps). Swap in MultiID "
        "Dynamic CFG Guider or another sampler to experiment. Put the feizhengcong/Ingredients snapshot in "
        "models/multiid/Ingredients."
    )
    return graph, model_entries(INGREDIENTS_FACE_FILES + INGREDIENTS_MODEL_FILES), description


CONCAT_ID_WAN_PROMPT = (
    "A man with short grey hair and a warm, easy smile walks slowly along a sunlit seaside promenade, turning his "
    "head towards the camera as a light breeze moves his shirt. The late afternoon sun casts soft golden light "
    "across his face, gulls drift over the calm water behind him, and the shot is a steady medium close-up with "
    "a gently blurred background."
)


def wan_text_and_models(graph: Graph, prompt: str, row: int = 2):
    """UMT5 (Wan's text encoder), the two prompts (the release's negative is '...'), the Wan 2.1 VAE, the DiT."""
    clip = graph.add(
        "MultiID_LoadUMT5TextEncoder", "umt5_xxl_fp8_e4m3fn_scaled.safetensors", "default", column=0, row=row
    )
    positive = graph.add("CLIPTextEncode", prompt, column=1, row=row, title="Prompt", clip=(clip, "clip"))
    negative = graph.add("CLIPTextEncode", "...", column=1, row=row + 1, title="Negative prompt", clip=(clip, "clip"))
    vae = graph.add("VAELoader", "wan_2.1_vae.safetensors", column=0, row=row + 1)
    model = graph.add("MultiID_LoadConcatIDWan", CONCAT_ID_WAN_ADALN_FILE.path, "default", column=2, row=row + 1)
    return positive, negative, vae, model


def wan_video_output(graph: Graph, vae, latent, prefix: str, column: int):
    frames = graph.add("VAEDecode", column=column, row=0, samples=latent, vae=(vae, "VAE"))
    video = graph.add("CreateVideo", 16.0, column=column, row=1, images=(frames, "IMAGE"))
    graph.add("SaveVideo", prefix, "mp4", "h264", column=column + 1, row=0, video=(video, "VIDEO"))
    return frames


def wan_identity_scores(graph: Graph, frames, identities, extractor, column: int) -> None:
    graph.add(
        "MultiID_IdentitySimilarity", 0, column=column, row=1, title="Identity scores",
        frames=(frames, "IMAGE"), identities=identities, face_extractor=(extractor, "face_extractor"),
    )  # fmt: skip


def concat_id_wan() -> tuple[Graph, list[dict], str]:
    graph = Graph()
    extractor = concat_id_face_extractor(graph)
    photo = graph.add("LoadImage", "portrait.png", "image", column=0, row=1)
    identity = graph.add(
        "MultiID_EncodeIdentity", "largest", 0, "", column=1, row=0,
        face_extractor=(extractor, "face_extractor"), photos=(photo, "IMAGE"),
    )  # fmt: skip
    positive, negative, vae, model = wan_text_and_models(graph, CONCAT_ID_WAN_PROMPT)
    conditioning = graph.add(
        "MultiID_ConcatIDWanReference", 832, 480, 81, 1, "one (as released)", True, column=2, row=0,
        positive=(positive, "CONDITIONING"), negative=(negative, "CONDITIONING"), vae=(vae, "VAE"),
        identity=(identity, "identity"),
    )  # fmt: skip
    graph.add("PreviewImage", column=2, row=1, title="Reference frame", images=(conditioning, "reference"))
    latent = graph.add(
        "KSampler", 0, "fixed", 50, 5.0, "euler", "multiid_linear_time", 1.0, column=3, row=0,
        model=(model, "model"), positive=(conditioning, "positive"), negative=(conditioning, "negative"),
        latent_image=(conditioning, "latent"),
    )  # fmt: skip
    frames = wan_video_output(graph, vae, (latent, "LATENT"), "MultiID/concat_id_wan", column=4)
    wan_identity_scores(graph, frames, (identity, "identity"), extractor, column=5)
    description = (
        "Concat-ID-Wan-AdaLN (Wan2.1-T2V-1.3B): one person from one photo, 81 frames at 832x480, 16 fps, 50 steps, "
        "shift 5, cfg 5, seed 0, negative prompt '...' (the authors' settings). KSampler with euler and the pack's "
        "multiid_linear_time scheduler takes the release's steps at any step count. second_stage_adaln.pt goes in "
        "models/multiid/Concat-ID-Wan, the Wan 2.1 VAE and UMT5 where ComfyUI's Wan templates keep them."
    )
    return (
        graph,
        model_entries(CONCAT_ID_FACE_FILES + (CONCAT_ID_WAN_ADALN_FILE,) + CONCAT_ID_WAN_MODEL_FILES),
        description,
    )


def concat_id_wan_two_ids_placed() -> tuple[Graph, list[dict], str]:
    graph = Graph()
    extractor = concat_id_face_extractor(graph)
    first, second = two_people(graph, extractor)
    left, right = half_frame_masks(graph, 832, 480)
    people = graph.add(
        "MultiID_IDRouter", "masks", 1.0, "as released (unconditional branch)", column=3, row=0,
        identity_1=(first, "identity"), identity_2=(second, "identity"), mask_1=(left, "MASK"), mask_2=(right, "MASK"),
    )  # fmt: skip
    positive, negative, vae, model = wan_text_and_models(graph, TWO_PEOPLE_PROMPT, row=7)
    conditioning = graph.add(
        "MultiID_ConcatIDWanReference", 832, 480, 81, 1, "all identities (experimental)", True, column=4, row=0,
        positive=(positive, "CONDITIONING"), negative=(negative, "CONDITIONING"), vae=(vae, "VAE"),
        identity=(people, "identities"),
    )  # fmt: skip
    graph.add("PreviewImage", column=4, row=1, title="Reference frames", images=(conditioning, "reference"))
    guider = graph.add(
        "DualCFGGuider", 5.0, 1.5, "regular", column=5, row=1, title="Text 5 + image guidance 1.5",
        model=(model, "model"), cond1=(conditioning, "positive"), cond2=(conditioning, "negative"),
        negative=(conditioning, "negative_no_reference"),
    )  # fmt: skip
    noise = graph.add("RandomNoise", 0, "fixed", column=5, row=2)
    sampler = graph.add("KSamplerSelect", "euler", column=5, row=3)
    sigmas = graph.add("BasicScheduler", "multiid_linear_time", 50, 1.0, column=5, row=4, model=(model, "model"))
    latent = graph.add(
        "SamplerCustomAdvanced", column=6, row=0, noise=(noise, "NOISE"), guider=(guider, "GUIDER"),
        sampler=(sampler, "SAMPLER"), sigmas=(sigmas, "SIGMAS"), latent_image=(conditioning, "latent"),
    )  # fmt: skip
    frames = wan_video_output(graph, vae, (latent, "output"), "MultiID/concat_id_wan_placed", column=7)
    wan_identity_scores(graph, frames, (people, "identities"), extractor, column=8)
    description = (
        "Concat-ID-Wan, experimental: two people, one appended reference frame each, each placed by its mask "
        "(regional reference attention: tokens in the left half see only person 1's reference), with image "
        "guidance (DualCFGGuider, a third branch with the references zeroed). The released Wan weights were "
        "trained with one reference; expect weaker identities than the single-person workflow."
    )
    return (
        graph,
        model_entries(CONCAT_ID_FACE_FILES + (CONCAT_ID_WAN_ADALN_FILE,) + CONCAT_ID_WAN_MODEL_FILES),
        description,
    )


STAND_IN_PROMPT = (
    "A woman stands in a sunlit park in the early morning, facing the camera. She smiles and tucks a strand of hair "
    "behind her ear while leaves drift down behind her; soft golden light falls across her face, the background is "
    "gently blurred, and the shot is a steady medium close-up."
)
# The authors' negative prompt (Stand-In infer.py, Wan's own), kept in its original Chinese.
STAND_IN_NEGATIVE = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，丑陋的，"
    "残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，"
    "三条腿，背景人很多，倒着走"
)


def stand_in_text_and_vae(graph: Graph, prompt: str, row: int = 2):
    """UMT5, the prompt and the authors' negative prompt, the Wan 2.1 VAE, an empty 81x480x832 video latent."""
    clip = graph.add(
        "MultiID_LoadUMT5TextEncoder", "umt5_xxl_fp8_e4m3fn_scaled.safetensors", "default", column=0, row=row
    )
    positive = graph.add("CLIPTextEncode", prompt, column=1, row=row, title="Prompt", clip=(clip, "clip"))
    negative = graph.add(
        "CLIPTextEncode", STAND_IN_NEGATIVE, column=1, row=row + 1, title="Negative prompt (the authors')",
        clip=(clip, "clip"),
    )  # fmt: skip
    vae = graph.add("VAELoader", "wan_2.1_vae.safetensors", column=0, row=row + 1)
    latent = graph.add("EmptyHunyuanLatentVideo", 832, 480, 81, 1, column=1, row=row + 2, title="Video size")
    return positive, negative, vae, latent


def stand_in_applied(graph: Graph, unet: str, adapter: ModelFile, vae, identity, column: int, row: int):
    model = graph.add("UNETLoader", unet, "default", column=column, row=row + 1)
    return graph.add(
        "MultiID_ApplyStandIn", adapter.path, True, column=column + 1, row=row,
        model=(model, "MODEL"), vae=(vae, "VAE"), identity=identity,
    )  # fmt: skip


def stand_in_wan21_14b() -> tuple[Graph, list[dict], str]:
    graph = Graph()
    extractor = concat_id_face_extractor(graph)
    photo = graph.add("LoadImage", "portrait.png", "image", column=0, row=1)
    identity = graph.add(
        "MultiID_EncodeIdentity", "largest", 0, "", column=1, row=0,
        face_extractor=(extractor, "face_extractor"), photos=(photo, "IMAGE"),
    )  # fmt: skip
    positive, negative, vae, latent = stand_in_text_and_vae(graph, STAND_IN_PROMPT)
    applied = stand_in_applied(graph, WAN21_T2V_14B.path, STAND_IN_WAN21_ADAPTER, vae, (identity, "identity"), 2, 0)
    graph.add("PreviewImage", column=3, row=1, title="Face (as encoded)", images=(applied, "faces"))
    sampled = graph.add(
        "KSampler", 0, "fixed", 20, 5.0, "euler", "simple", 1.0, column=4, row=0, model=(applied, "model"),
        positive=(positive, "CONDITIONING"), negative=(negative, "CONDITIONING"), latent_image=(latent, "LATENT"),
    )  # fmt: skip
    frames = wan_video_output(graph, vae, (sampled, "LATENT"), "MultiID/stand_in", column=5)
    wan_identity_scores(graph, frames, (identity, "identity"), extractor, column=7)
    description = (
        "Stand-In on Wan2.1-T2V-14B from ComfyUI's own Load Diffusion Model: one person from one photo, 81 frames "
        "at 832x480, 20 steps, cfg 5, euler/simple, flow shift 5 (set by Apply Stand-In), the authors' negative "
        "prompt: their infer.py settings. LoRA loaders may go between Load Diffusion Model and Apply Stand-In, or "
        "after it. Frontal, mid-to-close faces work best."
    )
    return graph, model_entries(STAND_IN_WAN21_FILES), description


def stand_in_two_people_placed() -> tuple[Graph, list[dict], str]:
    graph = Graph()
    extractor = concat_id_face_extractor(graph)
    first, second = two_people(graph, extractor)
    left, right = half_frame_masks(graph, 832, 480)
    people = graph.add(
        "MultiID_IDRouter", "masks", 1.0, "as released (unconditional branch)", column=3, row=0,
        identity_1=(first, "identity"), identity_2=(second, "identity"), mask_1=(left, "MASK"), mask_2=(right, "MASK"),
    )  # fmt: skip
    positive, negative, vae, latent = stand_in_text_and_vae(graph, TWO_PEOPLE_PROMPT, row=7)
    applied = stand_in_applied(graph, WAN21_T2V_14B.path, STAND_IN_WAN21_ADAPTER, vae, (people, "identities"), 4, 7)
    graph.add("PreviewImage", column=5, row=8, title="Faces (as encoded)", images=(applied, "faces"))
    sampled = graph.add(
        "KSampler", 0, "fixed", 20, 5.0, "euler", "simple", 1.0, column=6, row=0, model=(applied, "model"),
        positive=(positive, "CONDITIONING"), negative=(negative, "CONDITIONING"), latent_image=(latent, "LATENT"),
    )  # fmt: skip
    frames = wan_video_output(graph, vae, (sampled, "LATENT"), "MultiID/stand_in_placed", column=7)
    wan_identity_scores(graph, frames, (people, "identities"), extractor, column=9)
    description = (
        "Stand-In, two people placed where their masks are (beyond the release): each face is its own reference "
        "block, as on the authors' dev/multi branch, and the video tokens inside person k's mask see only person "
        "k's face (outside both masks: none). Paint the masks where each person should stand; the identity scores "
        "show who landed where. The adapter was trained with one face: expect weaker likeness than with one person."
    )
    return graph, model_entries(STAND_IN_WAN21_FILES), description


def stand_in_wan22_a14b() -> tuple[Graph, list[dict], str]:
    graph = Graph()
    extractor = concat_id_face_extractor(graph)
    photo = graph.add("LoadImage", "portrait.png", "image", column=0, row=1)
    identity = graph.add(
        "MultiID_EncodeIdentity", "largest", 0, "", column=1, row=0,
        face_extractor=(extractor, "face_extractor"), photos=(photo, "IMAGE"),
    )  # fmt: skip
    positive, negative, vae, latent = stand_in_text_and_vae(graph, STAND_IN_PROMPT)
    high = stand_in_applied(graph, WAN22_T2V_HIGH_NOISE.path, STAND_IN_WAN22_HIGH, vae, (identity, "identity"), 2, 0)
    low = stand_in_applied(graph, WAN22_T2V_LOW_NOISE.path, STAND_IN_WAN22_LOW, vae, (identity, "identity"), 2, 3)
    first = graph.add(
        "KSamplerAdvanced", "enable", 0, "fixed", 20, 5.0, "euler", "simple", 0, 9, "enable", column=4, row=0,
        title="High-noise expert: steps 0-8", model=(high, "model"), positive=(positive, "CONDITIONING"),
        negative=(negative, "CONDITIONING"), latent_image=(latent, "LATENT"),
    )  # fmt: skip
    second = graph.add(
        "KSamplerAdvanced", "disable", 0, "fixed", 20, 5.0, "euler", "simple", 9, 10000, "disable", column=5, row=0,
        title="Low-noise expert: steps 9-19", model=(low, "model"), positive=(positive, "CONDITIONING"),
        negative=(negative, "CONDITIONING"), latent_image=(first, "LATENT"),
    )  # fmt: skip
    frames = wan_video_output(graph, vae, (second, "LATENT"), "MultiID/stand_in_wan22", column=6)
    wan_identity_scores(graph, frames, (identity, "identity"), extractor, column=8)
    description = (
        "Stand-In on Wan2.2-T2V-A14B: the _high adapter on the high-noise expert, the _low one on the low-noise "
        "expert, sampled the way ComfyUI runs the two experts (two KSamplerAdvanced). The authors switch experts "
        "when the timestep falls below 875: at 20 steps and shift 5, after step 9. 20 steps, cfg 5 for both, the "
        "authors' infer.py settings (not Wan2.2's own)."
    )
    return graph, model_entries(STAND_IN_WAN22_FILES), description


PHANTOM_NEGATIVE = STAND_IN_NEGATIVE  # Wan's own negative prompt, as Phantom's generate.py uses it


def phantom_two_people_placed(dit: ModelFile, size_note: str) -> tuple[Graph, list[dict], str]:
    """Native Phantom (WanPhantomSubjectToVideo, DualCFGGuider with its three branches) with the two people placed."""
    graph = Graph()
    extractor = concat_id_face_extractor(graph)
    photos, (first, second) = two_photos_and_people(graph, extractor)
    left, right = half_frame_masks(graph, 832, 480)
    people = graph.add(
        "MultiID_IDRouter", "masks", 1.0, "as released (unconditional branch)", column=3, row=0,
        identity_1=(first, "identity"), identity_2=(second, "identity"), mask_1=(left, "MASK"), mask_2=(right, "MASK"),
    )  # fmt: skip
    references = graph.add(
        "ImageBatch", column=1, row=3, title="Reference images (person 1, then person 2)",
        image1=(photos[0], "IMAGE"), image2=(photos[1], "IMAGE"),
    )  # fmt: skip
    clip = graph.add(
        "MultiID_LoadUMT5TextEncoder", "umt5_xxl_fp8_e4m3fn_scaled.safetensors", "default", column=0, row=7
    )
    positive = graph.add("CLIPTextEncode", TWO_PEOPLE_PROMPT, column=1, row=7, title="Prompt", clip=(clip, "clip"))
    negative = graph.add(
        "CLIPTextEncode", PHANTOM_NEGATIVE, column=1, row=8, title="Negative prompt", clip=(clip, "clip")
    )
    vae = graph.add("VAELoader", "wan_2.1_vae.safetensors", column=0, row=8)
    phantom = graph.add(
        "WanPhantomSubjectToVideo", 832, 480, 81, 1, column=4, row=7, positive=(positive, "CONDITIONING"),
        negative=(negative, "CONDITIONING"), vae=(vae, "VAE"), images=(references, "IMAGE"),
    )  # fmt: skip
    unet = graph.add("UNETLoader", dit.path, "default", column=2, row=9)
    shifted = graph.add("ModelSamplingSD3", 5.0, column=3, row=9, model=(unet, "MODEL"))
    placed = graph.add(
        "MultiID_PlacedReferencesPhantom", "", column=4, row=0, model=(shifted, "MODEL"), people=(people, "identities"),
    )  # fmt: skip
    guider = graph.add(
        "DualCFGGuider", 7.5, 5.0, "regular", column=5, row=1, title="Text 7.5, image 5 (Phantom's settings)",
        model=(placed, "model"), cond1=(phantom, "positive"), cond2=(phantom, "negative_text"),
        negative=(phantom, "negative_img_text"),
    )  # fmt: skip
    noise = graph.add("RandomNoise", 0, "fixed", column=5, row=2)
    sampler = graph.add("KSamplerSelect", "uni_pc", column=5, row=3)
    sigmas = graph.add("BasicScheduler", "simple", 50, 1.0, column=5, row=4, model=(placed, "model"))
    latent = graph.add(
        "SamplerCustomAdvanced", column=6, row=0, noise=(noise, "NOISE"), guider=(guider, "GUIDER"),
        sampler=(sampler, "SAMPLER"), sigmas=(sigmas, "SIGMAS"), latent_image=(phantom, "latent"),
    )  # fmt: skip
    frames = wan_video_output(graph, vae, (latent, "output"), "MultiID/phantom_placed", column=7)
    wan_identity_scores(graph, frames, (people, "identities"), extractor, column=9)
    description = (
        f"Native Phantom ({size_note}) with two people placed by masks: WanPhantomSubjectToVideo as usual (the "
        "reference images in the people's order), and MultiID Placed References between the model and the sampler, "
        "so the video inside person 1's mask (left half) sees only person 1's image and the right half only person "
        "2's. Phantom's settings: 50 steps, UniPC, shift 5, text guidance 7.5 and image guidance 5 (DualCFGGuider "
        "with its three branches). Repaint the masks to move the people; the identity scores' first line says "
        "whether anyone landed in the other's place."
    )
    return graph, model_entries(CONCAT_ID_FACE_FILES + (dit,) + CONCAT_ID_WAN_MODEL_FILES), description


def phantom_two_people_placed_1_3b() -> tuple[Graph, list[dict], str]:
    return phantom_two_people_placed(PHANTOM_WAN_1_3B, "Phantom-Wan 1.3B, small cards")


def phantom_14b_two_people_placed() -> tuple[Graph, list[dict], str]:
    return phantom_two_people_placed(PHANTOM_WAN_14B, "Phantom-Wan 14B")


WORKFLOWS = {
    "face_identity_preview": face_identity_preview,
    "consisid_single_id": consisid_single_id,
    "ingredients_two_ids": ingredients_two_ids,
    "consisid_placed_two_ids": consisid_placed_two_ids,
    "concat_id_cogvideox_two_ids": concat_id_cogvideox_two_ids,
    "consisid_ksampler_lora": consisid_ksampler_lora,
    "ingredients_sampler_custom_advanced": ingredients_sampler_custom_advanced,
    "concat_id_wan": concat_id_wan,
    "concat_id_wan_two_ids_placed": concat_id_wan_two_ids_placed,
    "consisid_multi_gpu": consisid_multi_gpu,
    "stand_in_wan21_14b": stand_in_wan21_14b,
    "stand_in_two_people_placed": stand_in_two_people_placed,
    "stand_in_wan22_a14b": stand_in_wan22_a14b,
    "phantom_two_people_placed": phantom_two_people_placed_1_3b,
    "phantom_14b_two_people_placed": phantom_14b_two_people_placed,
}


def build(object_info: dict) -> dict[str, dict]:
    built = {}
    for name, describe in WORKFLOWS.items():
        graph, models, description = describe()
        built[name] = graph.to_ui(object_info, models, description, note=f"{description}\n\n{SETUP_NOTE}")
    return built


def dump(workflow: dict) -> str:
    return json.dumps(workflow, indent=2) + "\n"


def main() -> None:
    from comfy_env import ComfyServer, make_base_dir

    with tempfile.TemporaryDirectory() as base:
        write_example_lora(make_base_dir(Path(base)))
        with ComfyServer(Path(base)) as server:
            object_info = server.get("/object_info")
    WORKFLOWS_DIR.mkdir(exist_ok=True)
    for name, workflow in build(object_info).items():
        (WORKFLOWS_DIR / f"{name}.json").write_text(dump(workflow))
        print(WORKFLOWS_DIR / f"{name}.json")


if __name__ == "__main__":
    main()
