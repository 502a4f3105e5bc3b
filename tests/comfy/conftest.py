"""Nodes inside a real ComfyUI, imported in this process (CPU, tiny models)."""

import pytest
from comfy_env import load_in_process, make_base_dir


@pytest.fixture(scope="session")
def comfy_base(tmp_path_factory):
    return make_base_dir(tmp_path_factory.mktemp("comfy_base"))


@pytest.fixture(scope="session")
def node_classes(comfy_base):
    return load_in_process(comfy_base)
