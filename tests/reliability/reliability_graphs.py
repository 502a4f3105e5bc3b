"""API prompts for the reliability tests, built node by node (what the frontend sends to POST /prompt)."""

from __future__ import annotations

import copy
import itertools
import re
import time

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
CLIENT_ID = "multiid-reliability"
_seeds = itertools.count(1000)


def fresh_seed() -> int:
    """A seed no earlier prompt used, so the sampler runs again instead of coming from ComfyUI's cache."""
    return next(_seeds)


def video_prompt(
    seed: int | None = None,
    model: str = "ConsisID-preview",
    photo: str = "portrait.png",
    antelopev2: str | None = None,
    prefix: str = "reliability",
    encode: dict | None = None,
    **sampler,
) -> dict:
    """ConsisID with one identity, small: face extractor, photo, identity, T5 prompts, model, sampler, decode, save."""
    extractor = {**EXTRACTOR, **({"antelopev2": antelopev2} if antelopev2 else {})}
    snapshot = "Ingredients" if model.startswith("Ingredients") else "ConsisID-preview"
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
                **(encode or {}),
            },
        },
        "t5": {
            "class_type": "MultiID_LoadTextEncoder",
            "inputs": {"source": f"{snapshot}/text_encoder", "precision": "auto", "device": "default"},
        },
        "positive": {"class_type": "MultiID_TextEncode", "inputs": {"clip": ["t5", 0], "text": "a person smiling"}},
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
                "vae": ["model", 1],
                "positive": ["positive", 0],
                "negative": ["negative", 0],
                "identity": ["identity", 0],
                **SMALL,
                "cfg": 6.0,
                "dynamic_cfg": False,
                "scheduler": "CogVideoX DPM",
                "seed": fresh_seed() if seed is None else seed,
                "identity_strength": 1.0,
                "routing_map_steps": "all steps",
                **sampler,
            },
        },
        "decode": {
            "class_type": "MultiID_Decode",
            "inputs": {"vae": ["model", 1], "latent": ["sampler", 0], "tiled": False},
        },
        "save": {"class_type": "SaveImage", "inputs": {"images": ["decode", 0], "filename_prefix": prefix}},
    }


def with_router(prompt: dict, people: int, masks: list, routing: str = "masks") -> dict:
    """People 1..N (all from the same photo) through an ID Router; mask_i from a node, (node, slot) or None."""
    prompt = copy.deepcopy(prompt)
    router = {"routing": routing, "prior_strength": 1.0, "cfg_routing": "as released (unconditional branch)"}
    for i in range(1, people + 1):
        router[f"identity_{i}"] = ["identity", 0]
    for i, mask in enumerate(masks, 1):
        if mask is not None:
            node, slot = mask if isinstance(mask, tuple) else (mask, 0)
            prompt[f"mask_{i}"] = node
            router[f"mask_{i}"] = [f"mask_{i}", slot]
    prompt["router"] = {"class_type": "MultiID_IDRouter", "inputs": router}
    prompt["sampler"]["inputs"]["identity"] = ["router", 0]
    return prompt


def with_ksampler(prompt: dict, sampler_name: str = "cogvideox_dpm", scheduler: str = "multiid_trailing") -> dict:
    """The same video through ComfyUI's own sampling: MultiID Identity Conditioning, then KSampler (node "sampler")."""
    prompt = copy.deepcopy(prompt)
    given = prompt["sampler"]["inputs"]
    prompt["conditioning"] = {
        "class_type": "MultiID_IdentityConditioning",
        "inputs": {
            name: given[name]
            for name in ("model", "vae", "positive", "negative", "identity", "width", "height", "frames")
        }
        | {"identity_strength": given["identity_strength"], "vae_seed": given["seed"]},
    }
    prompt["sampler"] = {
        "class_type": "KSampler",
        "inputs": {
            "model": given["model"],
            "positive": ["conditioning", 0],
            "negative": ["conditioning", 1],
            "latent_image": ["conditioning", 2],
            "seed": given["seed"],
            "steps": given["steps"],
            "cfg": given["cfg"],
            "sampler_name": sampler_name,
            "scheduler": scheduler,
            "denoise": 1.0,
        },
    }
    return prompt


def with_model_patch(prompt: dict, name: str, node: dict) -> dict:
    """`node` (its "model" input linked to the MODEL the samplers took) between that MODEL and every node using it."""
    prompt = copy.deepcopy(prompt)
    source = prompt["sampler"]["inputs"]["model"]
    for other in prompt.values():
        if other["inputs"].get("model") == source:
            other["inputs"]["model"] = [name, 0]
    prompt[name] = {**node, "inputs": {**node["inputs"], "model": source}}
    return prompt


def lora(name: str, strength: float = 1.0) -> dict:
    return {"class_type": "LoraLoaderModelOnly", "inputs": {"lora_name": name, "strength_model": strength}}


def with_sampler_custom_advanced(prompt: dict, guider: dict, sampler_name: str = "cogvideox_dpm") -> dict:
    """with_ksampler's graph with SamplerCustomAdvanced (node "sampler") and `guider` (linked to the conditioning)."""
    prompt = with_ksampler(prompt)
    given = prompt["sampler"]["inputs"]
    links = {"model": given["model"], "positive": ["conditioning", 0], "negative": ["conditioning", 1]}
    prompt["guider"] = {**guider, "inputs": {**links, **guider["inputs"]}}
    prompt["noise"] = {"class_type": "RandomNoise", "inputs": {"noise_seed": given["seed"]}}
    prompt["sampler_select"] = {"class_type": "KSamplerSelect", "inputs": {"sampler_name": sampler_name}}
    prompt["sigmas"] = {
        "class_type": "BasicScheduler",
        "inputs": {"model": given["model"], "scheduler": "multiid_trailing", "steps": given["steps"], "denoise": 1.0},
    }
    prompt["sampler"] = {
        "class_type": "SamplerCustomAdvanced",
        "inputs": {
            "noise": ["noise", 0],
            "guider": ["guider", 0],
            "sampler": ["sampler_select", 0],
            "sigmas": ["sigmas", 0],
            "latent_image": ["conditioning", 2],
        },
    }
    return prompt


def solid_mask(value: float, width: int = 64, height: int = 64) -> dict:
    return {"class_type": "SolidMask", "inputs": {"value": value, "width": width, "height": height}}


def animated_mask(name: str) -> tuple[dict, int]:
    """Load Image's MASK output (1 - alpha, one mask per frame of an animated PNG)."""
    return {"class_type": "LoadImage", "inputs": {"image": name}}, 1


def outcome(server, prompt: dict, timeout: float = 300) -> tuple[str | None, dict]:
    """(error, /history entry): the error is ComfyUI's validation answer or the node's execution error, or None."""
    status, body = server.post("/prompt", {"prompt": prompt, "client_id": CLIENT_ID})
    if status != 200:
        details = [body.get("error", {}).get("message", "")]
        for node in body.get("node_errors", {}).values():
            details += [f"{e.get('message')}: {e.get('details')}" for e in node.get("errors", [])]
        return "validation: " + " | ".join(details), {}
    entry = finished(server, body["prompt_id"], timeout)
    return error_message(entry), entry


def finished(server, prompt_id: str, timeout: float = 300) -> dict:
    """The /history entry once the prompt is done (ComfyServer.wait, polling every 20 ms instead of 500)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = server.get(f"/history/{prompt_id}").get(prompt_id)
        if entry and entry.get("status", {}).get("status_str") in ("success", "error"):
            return entry
        assert server.process.poll() is None, f"ComfyUI died:\n{server.log()}"
        time.sleep(0.02)
    raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout} s:\n{server.log()}")


def assert_clear(message: str | None, *patterns: str) -> None:
    """Our MultiIDError or ComfyUI's validation message, saying what was wrong and what to do (the patterns)."""
    assert message is not None, "the prompt ran, but it should have been refused"
    assert message.startswith("validation: ") or "MultiIDError" in message.split(":")[0], message
    for pattern in patterns:
        assert re.search(pattern, message, re.IGNORECASE | re.DOTALL), f"{pattern!r} not in: {message}"


def succeed(server, prompt: dict) -> dict:
    error, entry = outcome(server, prompt)
    assert error is None, f"{error}\n{server.log()[-4000:]}"
    return entry


def node_images(entry: dict, node: str) -> list[dict]:
    return entry.get("outputs", {}).get(node, {}).get("images", [])
