"""MultiID Multi-GPU on CPU ranks (Ray actors over gloo): the latents of one process, to 1e-5 in fp32."""

import pytest
from cogvideox_runs import load, prompts, sample, write_with
from tensors import rel_err

from multiid_tools.tiny_models.cogvideox import write_tiny_consisid_snapshot
from multiid_tools.tiny_models.identities import random_identity

pytest.importorskip("ray")

HEADS = dict(num_attention_heads=4, attention_head_dim=48, LFE_output_dim=128)  # 4 heads: Ulysses up to 4


@pytest.fixture(scope="module")
def consisid(node_classes):
    from pathlib import Path

    import folder_paths

    write_with(
        write_tiny_consisid_snapshot, Path(folder_paths.get_folder_paths("multiid")[0]) / "ConsisID-4heads", **HEADS
    )
    return load(node_classes, "ConsisID-4heads")


def parallel(node_classes, model, world, guidance, ulysses=0):
    node = node_classes["MultiID_MultiGPU"]
    return node.execute(model, world, guidance, ulysses, "", "cpu").result[0]


@pytest.mark.parametrize("world,guidance", [(2, True), (2, False), (4, True)])
def test_consisid(node_classes, pack, consisid, world, guidance):
    identity = random_identity(1)
    single, _, _ = sample(pack, consisid, identity, prompts(), steps=3)
    model = parallel(node_classes, consisid[0], world, guidance)
    out, _, _ = sample(pack, (model, consisid[1]), identity, prompts(), steps=3)
    print(rel_err(out, single))
    assert rel_err(out, single) < 1e-5
