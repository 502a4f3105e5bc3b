"""Nodes inside a real ComfyUI, imported in this process (CPU, tiny models)."""

import sys
from types import SimpleNamespace

import pytest
from comfy_env import load_in_process, make_base_dir, pack_error


@pytest.fixture(scope="session")
def comfy_base(tmp_path_factory):
    return make_base_dir(tmp_path_factory.mktemp("comfy_base"))


@pytest.fixture(scope="session")
def node_classes(comfy_base):
    return load_in_process(comfy_base)


@pytest.fixture(scope="session")
def MultiIDError(node_classes):  # noqa: N802 - the pack's exception class, as ComfyUI imported the pack
    return pack_error(node_classes)


@pytest.fixture(scope="module")
def wan_vae(node_classes):
    """The tiny Wan 2.1 VAE through ComfyUI's VAE loader, as the Wan workflows load it."""
    import nodes

    return nodes.VAELoader().load_vae("wan_2.1_vae.safetensors")[0]


@pytest.fixture(scope="session")
def pack(node_classes):
    """The pack's modules as ComfyUI imported them (under the pack's folder name): Concat-ID-Wan's, and the
    CogVideoX family's whose classes the tests build inputs with or spy on."""
    root = node_classes["MultiID_LoadConcatIDWan"].__module__.rsplit(".nodes.", 1)[0]
    return SimpleNamespace(
        concat_id_wan=sys.modules[f"{root}.nodes.concat_id_wan.model"],
        options=sys.modules[f"{root}.nodes.options"],
        schedulers=sys.modules[f"{root}.nodes.schedulers"],
        teacache=sys.modules[f"{root}.multiid_core.teacache"],
        cogvideox_sampler=sys.modules[f"{root}.nodes.cogvideox.sampler"],
        cogvideox_transformer=sys.modules[f"{root}.multiid_core.cogvideox.transformer"].CogVideoXTransformer,
        cogvideox_inputs=sys.modules[f"{root}.multiid_core.cogvideox.inputs"],
        routing=sys.modules[f"{root}.multiid_core.routing"],
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


@pytest.fixture(scope="session")
def parity_snapshot(node_classes):
    """The tiny ConsisID snapshot with a trained grid diffusers' pipeline samples quickly, in models/multiid."""
    from pathlib import Path

    import folder_paths
    from cogvideox_runs import write_parity_snapshot

    return write_parity_snapshot(Path(folder_paths.get_folder_paths("multiid")[0]) / "ConsisID-parity")


@pytest.fixture(scope="session")
def parity_model(node_classes, parity_snapshot):
    """(MODEL, VAE) of the parity snapshot, fp32 (tests must not change its weights)."""
    from cogvideox_runs import load

    return load(node_classes, parity_snapshot.name)


@pytest.fixture(scope="session")
def parity_pipeline(parity_snapshot):
    from cogvideox_runs import consisid_pipeline

    return consisid_pipeline(parity_snapshot)
