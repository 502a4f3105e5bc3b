"""MultiID Multi-GPU's refusals before any rank starts: each says what was wrong and what to do."""

import shutil
import socket
import sys
import time
from pathlib import Path

import pytest
from cogvideox_runs import load
from comfy_env import pack_error

from multiid_tools.tiny_models.identities import random_identity


@pytest.fixture(scope="module")
def consisid(node_classes):
    """The stock tiny ConsisID: 1 attention head."""
    return load(node_classes, "ConsisID-preview")


def multi_gpu(node_classes, model, world=2, guidance=True, ulysses=0, address="", devices="cpu", ring=1):
    return node_classes["MultiID_MultiGPU"].execute(model, world, guidance, ulysses, address, devices, ring)


@pytest.mark.parametrize(
    "settings,message",
    [
        (dict(world=3), r"World size 3 is not 2 \(guidance parallel on\) x 1 \(ring degree\) x 1 \(Ulysses"),
        (dict(world=4, ulysses=3), r"World size 4 is not 2 .* x 3 \(Ulysses degree\)"),
        (dict(world=2, guidance=False), r"1 attention head, which Ulysses degree 2 does not divide"),
    ],
)
def test_bad_settings_are_refused_before_ranks_start(node_classes, consisid, settings, message):
    with pytest.raises(pack_error(node_classes), match=message):
        multi_gpu(node_classes, consisid[0], **settings)


def test_only_the_packs_models(node_classes, consisid):
    import comfy.model_patcher
    import torch

    class Plain(torch.nn.Module):
        pass

    other = comfy.model_patcher.ModelPatcher(Plain(), torch.device("cpu"), torch.device("cpu"))
    with pytest.raises(pack_error(node_classes), match="takes the MODEL of Load MultiID Video Model"):
        multi_gpu(node_classes, other)


def test_teacache_before_it_is_refused(node_classes, consisid):
    cached = node_classes["MultiID_CogVideoXTeaCache"].execute(consisid[0], "0.1").result[0]
    with pytest.raises(pack_error(node_classes), match="connect it before TeaCache"):
        multi_gpu(node_classes, cached)


def test_without_ray_it_says_what_to_install(node_classes, consisid, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where Ray is not installed
    with pytest.raises(pack_error(node_classes), match=r"runs on Ray, which is not installed: pip install .*multigpu"):
        multi_gpu(node_classes, consisid[0])


def test_addresses_that_do_not_answer_fail_within_seconds(node_classes, consisid):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused = f"127.0.0.1:{closed.getsockname()[1]}"  # bound, not listening: refused
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts, never answers
    cases = {refused: "Connection refused", f"127.0.0.1:{silent.getsockname()[1]}": "timed out"}
    try:
        for address, reason in cases.items():
            start = time.monotonic()
            expected = f"No Ray cluster answered at {address} within 3 s \\({reason}\\)"
            with pytest.raises(pack_error(node_classes), match=expected):
                multi_gpu(node_classes, consisid[0], address=address)
            assert time.monotonic() - start < 5, address
        with pytest.raises(pack_error(node_classes), match="is not host:port"):
            multi_gpu(node_classes, consisid[0], address="my-cluster")
    finally:
        closed.close()
        silent.close()


def test_a_rank_out_of_memory_is_named_with_what_to_do(node_classes):
    """What a rank's CUDA OOM becomes (raised here by a Ray task on the CPU: the same exception travels back)."""
    import ray
    import torch

    engine = sys.modules[node_classes["MultiID_MultiGPU"].__module__.rsplit(".", 1)[0] + ".engine"]
    settings = engine.MultiGPUSettings(devices="cpu")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

    @ray.remote(num_cpus=0)
    def out_of_memory():
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    engine.RUNTIME.connect(settings)
    try:
        pool = engine.RankPool(settings)
        with pytest.raises(
            pack_error(node_classes), match=r"rank 0 ran out of GPU memory while sampling step 3 of 50\. "
        ):
            pool._wait([out_of_memory.remote()], "sampling step 3 of 50")
    finally:
        engine.RUNTIME.shutdown()
    assert not ray.is_initialized()


def test_a_world_size_larger_than_the_free_gpus_is_refused(node_classes, monkeypatch):
    """Ray told of one GPU (it schedules by what it is told; no GPU is touched): a world of 2 is refused at once."""
    import ray
    import torch

    engine = sys.modules[node_classes["MultiID_MultiGPU"].__module__.rsplit(".", 1)[0] + ".engine"]
    monkeypatch.setattr(engine.mm, "get_torch_device", lambda: torch.device("cuda", 0))  # a GPU server's answer
    settings = engine.MultiGPUSettings(world_size=2)
    assert not settings.on_cpu
    ray.init(num_cpus=1, num_gpus=1, include_dashboard=False, log_to_driver=False)
    try:
        expected = r"World size 2 needs 2 GPUs; this machine has 1 free \(devices: any\)\. Lower the world size"
        with pytest.raises(pack_error(node_classes), match=expected):
            engine.RankPool(settings).start(ray)
    finally:
        ray.shutdown()


def test_comfyuis_own_models_are_loaded_again_from_their_files(node_classes):
    """ComfyUI 0.3.75's Load Diffusion Model leaves no reload factory: the ranks' is found by the MODEL's weights,
    among files of the same architecture (and the bf16 and fp8 files of one model), and rebuilds them exactly."""
    import torch

    import nodes

    engine = sys.modules[node_classes["MultiID_MultiGPU"].__module__.rsplit(".", 1)[0] + ".engine"]
    loader = nodes.UNETLoader()
    cases = [
        ("Phantom-Wan-1_3B_fp32.safetensors", "default"),
        ("Phantom-Wan-14B_fp16.safetensors", "fp8_e4m3fn_fast"),
        ("wan2.1_t2v_14B_fp8_e4m3fn.safetensors", "default"),
        ("wan2.1_t2v_14B_bf16.safetensors", "default"),
        ("wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors", "default"),
    ]
    for name, weight_dtype in cases:
        model = loader.load_unet(name, weight_dtype)[0]
        with_lora = model.clone()
        with_lora.add_patches({"diffusion_model.patch_embedding.bias": ("diff", (torch.ones(256),))}, 1.0)
        with_lora.patch_model()  # a LoRA applied in place: the file is found by the weights it kept aside
        function, (path, options) = engine.reload_factory(with_lora)
        with_lora.unpatch_model()
        assert path.endswith(name), (name, path)
        rebuilt = function(path, options).model.diffusion_model
        layers = [(type(a), type(b)) for a, b in zip(model.model.diffusion_model.modules(), rebuilt.modules())]
        assert all(a.__qualname__ == b.__qualname__ for a, b in layers), name  # the same operations (scaled fp8...)
        again, held = rebuilt.state_dict(), model.model.diffusion_model.state_dict()
        assert held.keys() == again.keys()
        assert all(held[k].dtype == again[k].dtype and torch.equal(held[k], again[k]) for k in held), name


def test_a_comfyui_model_whose_file_is_gone_is_refused(node_classes, tmp_path):
    import folder_paths

    import nodes

    model = nodes.UNETLoader().load_unet("Phantom-Wan-1_3B_fp32.safetensors", "default")[0]
    placed = node_classes["MultiID_PlacedReferencesPhantom"].execute(model, random_identity(1), "").result[0]
    loaded_from = Path(folder_paths.get_full_path("diffusion_models", "Phantom-Wan-1_3B_fp32.safetensors"))
    moved = tmp_path / loaded_from.name
    shutil.move(loaded_from, moved)
    try:
        with pytest.raises(pack_error(node_classes), match="no file in the diffusion_models folders holds"):
            multi_gpu(node_classes, placed)
    finally:
        shutil.move(moved, loaded_from)
