"""API prompts for the reliability tests, built node by node (what the frontend sends to POST /prompt)."""

from __future__ import annotations

import copy

from comfy_env import error_message

FACES = "ConsisID-preview/face_encoder"
EXTRACTOR = {
    "antelopev2": f"{FACES}/models/antelopev2",
    "eva_clip": f"{FACES}/EVA02_CLIP_L_336_psz14_s6B.pt",
    "face_parser": f"{FACES}/parsing_bisenet.pth",
    "onnx_provider": "CPU",
    "precision": "auto",
}
# Small enough for the CPU: 5 frames (2 latent frames) at 64x64, 2 steps.
SMALL = {"width": 64, "height": 64, "frames": 5, "steps": 2}


def face_prompt(photo: str = "portrait.png", antelopev2: str | None = None, **encode) -> dict:
    """Load Face Extractor -> Load Image -> Encode Identity -> previews."""
    extractor = {**EXTRACTOR, **({"antelopev2": antelopev2} if antelopev2 else {})}
    return {
        "face": {"class_type": "MultiID_LoadFaceExtractor", "inputs": extractor},
        "photo": {"class_type": "LoadImage", "inputs": {"image": photo}},
        "identity": {
            "class_type": "MultiID_EncodeIdentity",
            "inputs": {
                "face_extractor": ["face", 0],
                "photos": ["photo", 0],
                "face": "largest",
                "face_index": 0,
                "label": "",
                **encode,
            },
        },
        "aligned": {"class_type": "PreviewImage", "inputs": {"images": ["identity", 1]}},
    }


def video_prompt(seed: int = 1, model: str = "ConsisID-preview", prefix: str = "reliability", **sampler) -> dict:
    """The ConsisID single-identity graph, small: identity, T5 prompts, model, sampler, decode, SaveImage."""
    prompt = face_prompt()
    del prompt["aligned"]
    snapshot = "Ingredients" if model.startswith("Ingredients") else "ConsisID-preview"
    prompt.update(
        {
            "t5": {
                "class_type": "MultiID_LoadTextEncoder",
                "inputs": {"source": f"{snapshot}/text_encoder", "precision": "auto", "device": "default"},
            },
            "positive": {"class_type": "MultiID_TextEncode", "inputs": {"clip": ["t5", 0], "text": "a person"}},
            "negative": {"class_type": "MultiID_TextEncode", "inputs": {"clip": ["t5", 0], "text": ""}},
            "model": {
                "class_type": "MultiID_LoadModel",
                "inputs": {
                    "model": model,
                    "vae": "from model folder",
                    "precision": "fp32",
                    "weight_storage": "same as precision",
                },
            },
            "sampler": {
                "class_type": "MultiID_Sampler",
                "inputs": {
                    "model": ["model", 0],
                    "positive": ["positive", 0],
                    "negative": ["negative", 0],
                    "identity": ["identity", 0],
                    **SMALL,
                    "cfg": 6.0,
                    "dynamic_cfg": False,
                    "scheduler": "CogVideoX DPM",
                    "seed": seed,
                    "identity_strength": 1.0,
                    "routing_map_steps": "all steps",
                    **sampler,
                },
            },
            "decode": {
                "class_type": "MultiID_Decode",
                "inputs": {"model": ["model", 0], "latent": ["sampler", 0], "tiled": False},
            },
            "save": {"class_type": "SaveImage", "inputs": {"images": ["decode", 0], "filename_prefix": prefix}},
        }
    )
    return prompt


def add_router(prompt: dict, people: int, masks: list[dict | None], routing: str = "masks") -> dict:
    """Adds people 2..N (same photo) and an ID Router with the given mask nodes in front of the sampler."""
    prompt = copy.deepcopy(prompt)
    router = {"routing": routing, "prior_strength": 1.0, "cfg_routing": "as released (unconditional branch)"}
    for i in range(1, people + 1):
        router[f"identity_{i}"] = ["identity", 0]
    for i, mask in enumerate(masks, 1):
        if mask is not None:
            prompt[f"mask_{i}"] = mask
            router[f"mask_{i}"] = [f"mask_{i}", 0]
    prompt["router"] = {"class_type": "MultiID_IDRouter", "inputs": router}
    prompt["sampler"]["inputs"]["identity"] = ["router", 0]
    return prompt


def solid_mask(value: float, width: int, height: int) -> dict:
    return {"class_type": "SolidMask", "inputs": {"value": value, "width": width, "height": height}}


def failure(server, prompt: dict) -> str:
    """The error a prompt gives: ComfyUI's validation answer to POST /prompt, or the node's execution error."""
    status, body = server.post("/prompt", {"prompt": prompt, "client_id": "multiid-reliability"})
    if status != 200:
        details = [body.get("error", {}).get("message", "")]
        for node in body.get("node_errors", {}).values():
            details += [f"{e.get('message')}: {e.get('details')}" for e in node.get("errors", [])]
        return "validation: " + " | ".join(details)
    entry = server.wait(body["prompt_id"], timeout=300)
    message = error_message(entry)
    assert message is not None, f"the prompt succeeded but should have failed: {entry.get('outputs')}"
    return message
