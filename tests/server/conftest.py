"""One real ComfyUI server (main.py --cpu, loopback) with the pack and tiny models, shared by a session."""

import pytest
from comfy_env import ComfyServer, make_base_dir


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    with ComfyServer(make_base_dir(tmp_path_factory.mktemp("server_base"))) as running:
        yield running


@pytest.fixture(scope="session")
def object_info(server):
    return server.get("/object_info")
