"""workflows/consisid_multi_gpu.json in a real ComfyUI server (--cpu: two CPU ranks, Ray actors over gloo)
samples the latents of the same graph without MultiID Multi-GPU.

The graph is the shipped one, shrunk for CPU time as the other workflow tests do, with a Save Latent on the
sampler's output, and the loader's precision set to fp32 in both runs: in bf16 the two runs round differently
(each rank computes one guidance branch of batch 1 where one process batches both), so their latents differ
by bf16's own rounding (measured: 1.1e-2 relative, less than bf16's 2.4e-2 from fp32 on the same graph), which
hides nothing a 1e-5 comparison in fp32 would show. The browser test runs the workflow as shipped (bf16).
"""

import copy
import time
from pathlib import Path

import psutil
import pytest
import torch
from comfy_env import error_message
from safetensors.torch import load_file
from test_workflows import saved_videos, shrunk_prompt, video_frames

pytest.importorskip("ray")
pytestmark = pytest.mark.server

NAME = "consisid_multi_gpu"


def nodes_of(prompt: dict, class_type: str) -> list[str]:
    return [key for key, node in prompt.items() if node["class_type"] == class_type]


def ray_processes(server) -> list[str]:
    names = []
    for process in psutil.Process(server.process.pid).children(recursive=True):
        try:
            name = " ".join(process.cmdline()) or process.name()
        except psutil.Error:
            continue
        if "ray" in name:
            names.append(name[:60])
    return names


def run_and_load_latent(server, prompt: dict, prefix: str) -> tuple[dict, torch.Tensor]:
    (sampler,) = nodes_of(prompt, "MultiID_Sampler")
    prompt["latent_out"] = {"class_type": "SaveLatent", "inputs": {"samples": [sampler, 0], "filename_prefix": prefix}}
    start = time.monotonic()
    entry = server.run(prompt)
    assert error_message(entry) is None, f"{prefix} failed: {error_message(entry)}\n{server.log()}"
    print(f"\n{prefix}: {time.monotonic() - start:.1f} s")
    (saved,) = entry["outputs"]["latent_out"]["latents"]
    path = Path(server.base) / saved["type"] / saved["subfolder"] / saved["filename"]
    return entry, load_file(str(path))["latent_tensor"]


def test_consisid_multi_gpu_samples_the_latents_of_one_process(server, object_info):
    parallel = shrunk_prompt(object_info, NAME)
    (loader,) = nodes_of(parallel, "MultiID_LoadModel")
    (multi_gpu,) = nodes_of(parallel, "MultiID_MultiGPU")
    (sampler,) = nodes_of(parallel, "MultiID_Sampler")
    settings = parallel[multi_gpu]["inputs"]
    assert (settings["world_size"], settings["guidance_parallel"], settings["ulysses_degree"]) == (2, True, 0)
    assert parallel[sampler]["inputs"]["model"] == [multi_gpu, 0]
    assert parallel[loader]["inputs"]["precision"] == "bf16"
    parallel[loader]["inputs"]["precision"] = "fp32"
    single = copy.deepcopy(parallel)
    single[sampler]["inputs"]["model"] = single[multi_gpu]["inputs"]["model"]  # the loader's MODEL directly
    del single[multi_gpu]

    entry, on_ranks = run_and_load_latent(server, parallel, "multi_gpu/ranks")
    (video,) = saved_videos(server, entry)
    frames = video_frames(video)
    assert len(frames) == 9 and set(frames) == {(352, 240, 8.0)}
    _, in_process = run_and_load_latent(server, single, "multi_gpu/one_process")

    assert on_ranks.shape == in_process.shape == (1, 16, 3, 30, 44)  # 9 frames of 352x240 in CogVideoX's latent
    assert in_process.abs().max() > 0.1  # a real sample, not zeros
    error = ((on_ranks - in_process).norm() / in_process.norm()).item()
    print(f"relative difference of the latents, 2 ranks vs one process: {error:.2e}")
    assert error < 1e-5
    # The second graph has no Multi-GPU node: ComfyUI dropped its MODEL, which ended the ranks and the Ray
    # this server started.
    deadline = time.monotonic() + 30
    while ray_processes(server) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray_processes(server) == []
