"""Nodes inside a real ComfyUI, imported in this process (CPU, tiny models)."""

import sys
from types import SimpleNamespace

import pytest
from comfy_env import load_in_process, make_base_dir


@pytest.fixture(scope="session")
def comfy_base(tmp_path_factory):
    return make_base_dir(tmp_path_factory.mktemp("comfy_base"))


@pytest.fixture(scope="session")
def node_classes(comfy_base):
    return load_in_process(comfy_base)


@pytest.fixture(scope="session")
def pack(node_classes):
    """The pack's Concat-ID-Wan modules as ComfyUI imported them (under the pack's folder name)."""
    root = node_classes["MultiID_LoadConcatIDWan"].__module__.rsplit(".nodes.", 1)[0]
    return SimpleNamespace(
        wan_model=sys.modules[f"{root}.nodes.wan_model"],
        dit=sys.modules[f"{root}.nodes.concat_id_wan"],
        schedulers=sys.modules[f"{root}.nodes.schedulers"],
        step_cache=sys.modules[f"{root}.multiid_core.step_cache"],
    )


@pytest.fixture(scope="module")
def extractor_inputs():
    """LoadFaceExtractor's inputs for the tiny ConsisID-preview face models."""
    snapshot = "ConsisID-preview/face_encoder"
    return dict(
        antelopev2=f"{snapshot}/models/antelopev2",
        eva_clip=f"{snapshot}/EVA02_CLIP_L_336_psz14_s6B.pt",
        face_parser=f"{snapshot}/parsing_bisenet.pth",
        onnx_provider="CPU",
        precision="auto",
    )


@pytest.fixture(scope="module")
def extractor(node_classes, extractor_inputs):
    return node_classes["MultiID_LoadFaceExtractor"].execute(**extractor_inputs).result[0]
