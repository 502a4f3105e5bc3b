"""One real ComfyUI server for the reliability tests: the tiny models plus the bad files and photos users send."""

from __future__ import annotations

import os

import pytest
from build_workflows import write_example_lora
from comfy_env import ComfyServer, make_base_dir
from reliability_files import write_fault_models, write_photos

# glibc returns freed blocks to the system at once, so the server's RSS follows its live memory. With the
# defaults it keeps freed blocks by its own heuristics and RSS wanders within a ~200 MiB band run to run.
EXACT_RSS = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    base = make_base_dir(tmp_path_factory.mktemp("reliability_base"))
    write_fault_models(base)
    write_example_lora(base)
    write_photos(base)
    saved = {name: os.environ.get(name) for name in EXACT_RSS}
    os.environ.update(EXACT_RSS)  # the server process inherits them
    try:
        running = ComfyServer(base).__enter__()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name)
            else:
                os.environ[name] = value
    try:
        yield running
    finally:
        running.__exit__(None, None, None)


@pytest.fixture(scope="session")
def object_info(server):
    return server.get("/object_info")
