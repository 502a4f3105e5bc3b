"""MultiID TeaCache (CogVideoX): TeaCache4ConsisID as a patch of the native MODEL, in KSampler and MultiID Sampler.

References: TeaCache4ConsisID's counter logic replayed on the time embeddings of the calls the sampler made
(`released_teacache_decisions`), and the same run without the patch.
"""

import logging

import numpy as np
import pytest
import torch
from cogvideox_runs import SMALL, load, prompts, sample
from comfy_env import pack_error
from tensors import rel_err

from multiid_core.teacache import COEFFICIENTS, CONSISID_THRESHOLDS
from multiid_tools.tiny_models.identities import random_identity
from multiid_tools.tiny_models.teacache import keep_slow_timestep_frequencies


def released_teacache_decisions(embs, steps, threshold):
    """TeaCache4ConsisID's counter logic, replayed: one decision per transformer call."""
    rescale = np.poly1d(COEFFICIENTS["consisid"])
    cnt, accumulated, previous, decisions = 0, 0.0, None, []
    for emb in embs:
        if cnt == 0 or cnt == steps - 1:
            compute, accumulated = True, 0.0
        else:
            accumulated += rescale(((emb - previous).abs().mean() / previous.abs().mean()).item())
            compute = accumulated >= threshold
            if compute:
                accumulated = 0.0
        previous = emb
        cnt += 1
        if cnt == steps - 1:
            cnt = 0
        decisions.append(compute)
    return decisions


@pytest.fixture
def calls(pack, monkeypatch):
    """[timestep, whether the blocks ran] of every transformer call."""
    seen = []
    forward, run_blocks = pack.cogvideox_transformer.forward, pack.cogvideox_transformer.run_blocks

    def spy_forward(self, latents, text, timestep, *rest):
        seen.append([timestep.reshape(-1)[:1].clone(), False])
        return forward(self, latents, text, timestep, *rest)

    def spy_blocks(self, *args):
        seen[-1][1] = True
        return run_blocks(self, *args)

    monkeypatch.setattr(pack.cogvideox_transformer, "forward", spy_forward)
    monkeypatch.setattr(pack.cogvideox_transformer, "run_blocks", spy_blocks)
    return seen


def teacache(node_classes, model, threshold: float):
    return node_classes["MultiID_CogVideoXTeaCache"].execute(model, str(threshold)).result[0]


@pytest.mark.parametrize("threshold", CONSISID_THRESHOLDS)
def test_teacache_in_ksampler_decides_as_released(node_classes, calls, threshold, caplog):
    steps = 50
    model, vae = load(node_classes, "ConsisID-preview")
    positive, negative, latent = (
        node_classes["MultiID_IdentityConditioning"]
        .execute(model, vae, *prompts(), random_identity(1), SMALL["width"], SMALL["height"], SMALL["frames"], 1.0, 0)
        .result
    )
    cached = teacache(node_classes, model, threshold)
    with caplog.at_level(logging.INFO):
        node_classes["KSampler"]().sample(
            cached, 0, steps, 6.0, "cogvideox_dpm", "multiid_trailing", positive, negative, latent
        )
    ours = [ran for _, ran in calls]
    with torch.no_grad():
        embs = [model.model.diffusion_model.embed_time(t, torch.float32) for t, _ in calls]
    assert ours == released_teacache_decisions(embs, steps, threshold)
    assert len(ours) == steps and ours[0] and ours[-1] and not all(ours)
    # one call per step holds both guidance branches, each deciding alike
    assert f"TeaCache {threshold}: the blocks ran {2 * sum(ours)} of {2 * steps} branch calls" in caplog.text


def test_teacache_skips_calls_and_stays_close(node_classes, pack, calls):
    """Skipped calls reuse their branch's last computed residual: close to the exact latents, farther from any
    wrong reuse.

    With the slow timestep frequencies (as trained weights) the blocks run at 12 of 20 steps, refreshing between
    the first and the last. Measured rel_err: 0.0057 here (0.0057-0.0075 over the prompts of seeds 1-5); with a
    wrong reuse 0.012 (the residual of the computed call before the last), 0.033 (the other guidance branch's
    residual), 0.050 (the first residual for every skip), 0.080 (the blocks' output, not output - input), 0.16
    (nothing added). The bound of 0.01 tells the right reuse from the nearest wrong one for these inputs.
    """
    steps = 20
    loaded = load(node_classes, "ConsisID-preview")
    with torch.no_grad():
        weight = loaded[0].model.diffusion_model.time_embedding.linear_1.weight
        weight.copy_(keep_slow_timestep_frequencies(weight))
    identity, conditioning = random_identity(1), prompts()
    cached = sample(pack, (teacache(node_classes, loaded[0], 0.2), loaded[1]), identity, conditioning, steps=steps)
    cached_ran = [ran for _, ran in calls]
    calls.clear()
    exact = sample(pack, loaded, identity, conditioning, steps=steps)  # the input MODEL is left unpatched
    assert len(calls) == steps and all(ran for _, ran in calls)
    assert len(cached_ran) == steps and 2 < sum(cached_ran) < steps  # refreshed between the first and last steps
    assert 0 < rel_err(cached[0], exact[0]) < 0.01


def test_teacache_refuses_other_models_naming_what_fits(node_classes):
    import comfy.model_patcher

    wan = node_classes["MultiID_LoadConcatIDWan"].execute("Concat-ID-Wan/first_stage.pt", "default").result[0]
    with pytest.raises(pack_error(node_classes), match=r"CogVideoX\) works on the MODEL of Load MultiID Video "
                       r"Model; this MODEL takes MultiID TeaCache \(Wan\)"):  # fmt: skip
        teacache(node_classes, wan, 0.1)
    other = comfy.model_patcher.ModelPatcher(torch.nn.Linear(2, 2), "cpu", "cpu")
    with pytest.raises(pack_error(node_classes), match="for other models use ComfyUI's EasyCache"):
        teacache(node_classes, other, 0.1)
