"""One real ComfyUI server (main.py --cpu, loopback) with the pack and tiny models, shared by a session."""

import pytest
from build_workflows import write_example_lora
from comfy_env import ComfyServer, make_base_dir


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    base = make_base_dir(tmp_path_factory.mktemp("server_base"))
    write_example_lora(base)  # the LoRA consisid_ksampler_lora.json names
    with ComfyServer(base) as running:
        yield running


@pytest.fixture(scope="session")
def object_info(server):
    return server.get("/object_info")
