"""The CogVideoX family as a native MODEL: KSampler, SamplerCustomAdvanced and MultiID Sampler against diffusers'
ConsisIDPipeline on the same tiny random snapshot (fp32, CPU)."""

import pytest
import torch
from cogvideox_runs import PARITY_SIZE, SCALE, pipeline_latents
from cogvideox_runs import prompts as random_prompts
from comfy_env import photo_tensor
from tensors import rel_err

SIZE = PARITY_SIZE


@pytest.fixture(scope="module")
def loaded(parity_model):
    return parity_model


@pytest.fixture(scope="module")
def pipeline(parity_pipeline):
    return parity_pipeline


@pytest.fixture(scope="module")
def identity(node_classes, extractor):
    return node_classes["MultiID_EncodeIdentity"].execute(extractor, photo_tensor(), "largest", 0).result[0]


@pytest.fixture(scope="module")
def prompts():
    return random_prompts(3)


reference = pipeline_latents


@pytest.mark.parametrize("steps", [4])
def test_multiid_sampler_gives_the_pipeline_latents(node_classes, loaded, pipeline, identity, prompts, steps):
    model, vae = loaded
    latent, _ = node_classes["MultiID_Sampler"].execute(
        model, vae, prompts[0], prompts[1], identity, SIZE["width"], SIZE["height"], SIZE["frames"], steps, 6.0,
        False, "CogVideoX DPM", 7, 1.0, "all steps",
    ).result  # fmt: skip
    expected = reference(pipeline, identity, prompts, steps, 6.0, 7)
    print(rel_err(latent["samples"] * SCALE, expected))
    assert rel_err(latent["samples"] * SCALE, expected) < 1e-5


def conditioned(node_classes, loaded, identity, prompts, seed):
    model, vae = loaded
    return (
        node_classes["MultiID_IdentityConditioning"]
        .execute(model, vae, prompts[0], prompts[1], identity, SIZE["width"], SIZE["height"], SIZE["frames"], 1.0, seed)
        .result
    )


def custom_sampler_nodes():
    import comfy_extras.nodes_custom_sampler

    return comfy_extras.nodes_custom_sampler


def comfy_noise(latent, seed):
    import comfy.sample

    return comfy.sample.prepare_noise(latent["samples"], seed).movedim(1, 2)  # the pipeline's layout


@pytest.mark.parametrize(("steps", "scheduler"), [(4, "multiid_trailing"), (30, "multiid_trailing"), (50, "simple")])
def test_ksampler_with_cogvideox_ddim_gives_the_pipeline_latents(
    node_classes, loaded, pipeline, identity, prompts, steps, scheduler
):
    positive, negative, latent = conditioned(node_classes, loaded, identity, prompts, seed=5)
    (out,) = node_classes["KSampler"]().sample(
        loaded[0], 11, steps, 6.0, "cogvideox_ddim", scheduler, positive, negative, latent
    )
    expected = reference(
        pipeline, identity, prompts, steps, 6.0, 5, scheduler="CogVideoXDDIMScheduler", latents=comfy_noise(latent, 11)
    )
    assert rel_err(out["samples"] * SCALE, expected) < 1e-5


@pytest.mark.parametrize(("sampler", "scheduler", "dynamic"), [
    ("cogvideox_dpm", None, False), ("cogvideox_dpm", None, True), ("cogvideox_ddim", "CogVideoXDDIMScheduler", True),
])  # fmt: skip
def test_sampler_custom_advanced_with_the_authors_samplers_and_dynamic_cfg(
    node_classes, loaded, pipeline, identity, prompts, sampler, scheduler, dynamic
):
    steps = 30
    positive, negative, latent = conditioned(node_classes, loaded, identity, prompts, seed=5)
    custom = custom_sampler_nodes()
    guider_node = node_classes["MultiID_DynamicCFGGuider"] if dynamic else custom.CFGGuider
    guider = guider_node.execute(loaded[0], positive, negative, 6.0)[0]
    noise = custom.RandomNoise.execute(13)[0]
    chosen = custom.KSamplerSelect.execute(sampler)[0]
    sigmas = custom.BasicScheduler.execute(loaded[0], "multiid_trailing", steps, 1.0)[0]
    out = custom.SamplerCustomAdvanced.execute(noise, guider, chosen, sigmas, latent)[0]
    expected = reference(
        pipeline, identity, prompts, steps, 6.0, 5, scheduler=scheduler, latents=comfy_noise(latent, 13),
        step_seed=13 if sampler == "cogvideox_dpm" else None, use_dynamic_cfg=dynamic,
    )  # fmt: skip
    assert rel_err(out["samples"] * SCALE, expected) < 1e-5


@pytest.fixture(scope="module")
def ingredients(node_classes):
    return (
        node_classes["MultiID_LoadModel"]
        .execute("Ingredients", "from model folder", "fp32", "same as precision")
        .result
    )


def two_people(node_classes, extractor, cfg_routing="as released (unconditional branch)"):
    encode = node_classes["MultiID_EncodeIdentity"]
    people = [encode.execute(extractor, photo, "largest", 0, name).result[0] for photo, name in (
        (photo_tensor(), "a"), (photo_tensor().flip(2), "b"),
    )]  # fmt: skip
    router = node_classes["MultiID_IDRouter"]
    return router.execute("learned", 1.0, cfg_routing, identity_1=people[0], identity_2=people[1]).result[0]


def ingredients_ksampler(
    node_classes, ingredients, extractor, prompts, cfg_routing="as released (unconditional branch)"
):
    model, vae = ingredients
    positive, negative, latent = (
        node_classes["MultiID_IdentityConditioning"]
        .execute(
            model, vae, prompts[0], prompts[1], two_people(node_classes, extractor, cfg_routing), 160, 128, 9, 1.0, 5
        )
        .result
    )
    return node_classes["KSampler"]().sample(
        model, 3, 4, 6.0, "cogvideox_dpm", "multiid_trailing", positive, negative, latent
    )[0]


def test_ingredients_routes_both_branches_from_the_unconditional_one_however_comfyui_batches_them(
    node_classes, ingredients, extractor, prompts, monkeypatch
):
    batched = ingredients_ksampler(node_classes, ingredients, extractor, prompts)
    calls = []
    inner = ingredients[0].model
    forward = type(inner.diffusion_model)._forward
    monkeypatch.setattr(
        type(inner), "memory_required", lambda self, shape, cond_shapes=None: 10**15
    )  # too big to batch
    monkeypatch.setattr(
        type(inner.diffusion_model), "_forward",
        lambda self, x, *a, **kw: calls.append(a[2]["cond_or_uncond"]) or forward(self, x, *a, **kw),
    )  # fmt: skip
    split = ingredients_ksampler(node_classes, ingredients, extractor, prompts)
    assert calls[:2] == [[1], [0]]  # ComfyUI ran the unconditional branch first, then the conditional one
    assert rel_err(split["samples"], batched["samples"]) < 1e-5
    monkeypatch.undo()
    per_branch = ingredients_ksampler(node_classes, ingredients, extractor, prompts, "per branch")
    assert rel_err(per_branch["samples"], batched["samples"]) > 1e-4  # 5e-4 here: 50x the tolerance above


@torch.no_grad()
def test_ingredients_branch_order_in_one_call_does_not_matter(node_classes, ingredients, extractor, prompts):
    """The released routing comes from the unconditional row wherever ComfyUI puts it in the batch."""
    model, vae = ingredients
    positive, negative, latent = (
        node_classes["MultiID_IdentityConditioning"]
        .execute(model, vae, prompts[0], prompts[1], two_people(node_classes, extractor), 160, 128, 9, 1.0, 5)
        .result
    )
    inner = model.model
    rows = {}
    for branch, conditioning in ((0, positive), (1, negative)):
        conds = inner.extra_conds(**{"cross_attn": conditioning[0][0], **conditioning[0][1]})
        rows[branch] = {key: cond.process_cond(batch_size=1, area=None).cond for key, cond in conds.items()}
    x = torch.randn(1, *latent["samples"].shape[1:], generator=torch.Generator().manual_seed(0)).expand(
        2, -1, -1, -1, -1
    )
    sigma = inner.model_sampling.sigmas[[700]].expand(2)
    outputs = {}
    for order in ([1, 0], [0, 1]):
        kwargs = {key: torch.cat([rows[b][key] for b in order]) for key in ("c_crossattn", "c_concat")}
        options = {"cond_or_uncond": order, "sigmas": sigma[:1]}
        out = inner.apply_model(
            x, sigma, **kwargs, multiid_identity=rows[0]["multiid_identity"], transformer_options=options
        )
        outputs[tuple(order)] = {branch: out[i] for i, branch in enumerate(order)}
    for branch in (0, 1):
        assert rel_err(outputs[(1, 0)][branch], outputs[(0, 1)][branch]) < 1e-5
    assert rel_err(outputs[(1, 0)][0], outputs[(1, 0)][1]) > 1e-3  # the prompts differ, the branches too


def test_ksampler_shows_latent_previews_fitted_to_the_vae(node_classes, loaded, identity, prompts, monkeypatch):
    """Latent2RGB previews (ComfyUI's 'auto') from factors fitted to the loaded VAE at load time."""
    import comfy.utils
    import latent_preview
    from comfy.cli_args import LatentPreviewMethod

    monkeypatch.setattr(latent_preview.args, "preview_method", LatentPreviewMethod.Auto)
    previews = []
    monkeypatch.setattr(
        comfy.utils, "PROGRESS_BAR_HOOK", lambda value, total, preview, node_id=None: previews.append(preview)
    )
    positive, negative, latent = conditioned(node_classes, loaded, identity, prompts, seed=5)
    node_classes["KSampler"]().sample(
        loaded[0], 1, 3, 6.0, "cogvideox_dpm", "multiid_trailing", positive, negative, latent
    )
    images = [p[1] for p in previews if p is not None]
    assert len(images) == 3  # one per step
    assert images[-1].size == (SIZE["width"] // 8, SIZE["height"] // 8)  # one pixel per latent pixel, first frame
    assert len({image.tobytes() for image in images}) == 3  # each step's estimate, not a placeholder


def test_fp8_weights_and_the_reload_factory(node_classes, loaded, identity, prompts):
    """fp8 storage computes in the chosen precision (close to fp32); the reload factory rebuilds equal weights."""
    fp8_model, _ = (
        node_classes["MultiID_LoadModel"].execute("ConsisID-parity", "from model folder", "fp32", "fp8_e4m3fn").result
    )
    assert fp8_model.model.diffusion_model.proj_out.weight.dtype == torch.float8_e4m3fn
    assert fp8_model.model.manual_cast_dtype == torch.float32
    positive, negative, latent = conditioned(node_classes, loaded, identity, prompts, seed=5)
    run = node_classes["KSampler"]().sample
    exact = run(loaded[0], 2, 3, 6.0, "cogvideox_ddim", "multiid_trailing", positive, negative, latent)[0]
    stored = run(fp8_model, 2, 3, 6.0, "cogvideox_ddim", "multiid_trailing", positive, negative, latent)[0]
    assert 0 < rel_err(stored["samples"], exact["samples"]) < 0.1
    factory, args = loaded[0].cached_patcher_init
    again = factory(*args, disable_dynamic=True)
    ours, theirs = loaded[0].model.state_dict(), again.model.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


@pytest.mark.parametrize("node", ["EasyCacheNode", "LazyCacheNode"])
def test_comfyuis_easycache_and_lazycache_run_on_the_model(node_classes, loaded, identity, prompts, node):
    """ComfyUI's own caches wrap this MODEL like any: fewer transformer calls, a finite video, the input MODEL
    untouched (random tiny weights change too fast between steps for a closeness bound to mean anything)."""
    import comfy_extras.nodes_easycache

    positive, negative, latent = conditioned(node_classes, loaded, identity, prompts, seed=5)
    model = loaded[0]
    cached_model = getattr(comfy_extras.nodes_easycache, node).execute(model, 1.0, 0.15, 0.95, False)[0]
    calls = []
    hook = model.model.diffusion_model.patch_embed.register_forward_hook(lambda *_: calls.append(1))
    runs = {}
    try:
        for name, m in (("exact", model), ("cached", cached_model)):
            calls.clear()
            runs[name] = node_classes["KSampler"]().sample(
                m, 0, 12, 6.0, "cogvideox_ddim", "multiid_trailing", positive, negative, latent
            )[0]["samples"]
            runs[f"{name} calls"] = len(calls)
    finally:
        hook.remove()
    assert runs["exact calls"] == 12 and runs["cached calls"] < 12
    assert torch.isfinite(runs["cached"]).all() and runs["cached"].shape == runs["exact"].shape
    assert not any(model.model_options["transformer_options"].get("wrappers", {}).values())


def test_interrupt_stops_sampling_within_a_step(node_classes, loaded, identity, prompts, monkeypatch):
    import comfy.model_management as mm

    positive, negative, latent = conditioned(node_classes, loaded, identity, prompts, seed=5)
    calls = []
    dit = loaded[0].model.diffusion_model

    def count_and_interrupt(*_) -> None:
        calls.append(1)
        if len(calls) == 2:  # the user presses Cancel during the second step
            mm.interrupt_current_processing()

    hook = dit.patch_embed.register_forward_hook(count_and_interrupt)
    try:
        with pytest.raises(mm.InterruptProcessingException):
            node_classes["KSampler"]().sample(
                loaded[0], 0, 20, 6.0, "cogvideox_dpm", "multiid_trailing", positive, negative, latent
            )
    finally:
        hook.remove()
        mm.interrupt_current_processing(False)
    assert len(calls) == 2  # stopped inside the second step: no third model call


def test_torch_compile_model_compiles_the_transformer(node_classes, loaded, identity, prompts):
    """What TorchCompileModel does (ComfyUI's set_torch_compile_wrapper), with the eager backend: dynamo traces
    the pack's transformer under ComfyUI's wrapper and the samples do not change."""
    import torch._dynamo
    from comfy_api.torch_helpers import set_torch_compile_wrapper

    positive, negative, latent = conditioned(node_classes, loaded, identity, prompts, seed=5)
    compiled = loaded[0].clone()
    set_torch_compile_wrapper(compiled, backend="eager")
    run = node_classes["KSampler"]().sample
    exact = run(loaded[0], 2, 2, 6.0, "cogvideox_ddim", "multiid_trailing", positive, negative, latent)[0]
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    traced = run(compiled, 2, 2, 6.0, "cogvideox_ddim", "multiid_trailing", positive, negative, latent)[0]
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0  # the transformer really went through dynamo
    assert rel_err(traced["samples"], exact["samples"]) < 1e-5


def test_on_the_cpu_attention_is_pytorchs_unless_a_kernel_was_asked_for(node_classes, loaded, identity, prompts):
    """ComfyUI falls back to its sub-quadratic kernel on the CPU; the pack attends with PyTorch's SDPA there (as
    diffusers does, twice as fast at CogVideoX widths), unless --use-quad-cross-attention asked for that kernel."""
    import comfy.ldm.modules.attention as kernels
    from comfy.cli_args import args

    assert kernels.optimized_attention is kernels.attention_sub_quad  # ComfyUI's choice in this CPU-only test run
    positive, negative, latent = conditioned(node_classes, loaded, identity, prompts, seed=6)
    calls = []

    def counted(name):
        kernel = getattr(kernels, name)
        return lambda *a, **kw: calls.append(name) or kernel(*a, **kw)

    def run():
        calls.clear()
        out = node_classes["KSampler"]().sample(
            loaded[0], 2, 2, 6.0, "cogvideox_ddim", "multiid_trailing", positive, negative, latent
        )[0]["samples"]
        return out, set(calls)

    with pytest.MonkeyPatch.context() as patch:
        for name in ("attention_pytorch", "attention_sub_quad"):
            patch.setattr(kernels, name, counted(name))
        patch.setattr(kernels, "optimized_attention", kernels.attention_sub_quad)
        pytorch, used = run()
        assert used == {"attention_pytorch"}
        patch.setattr(args, "use_quad_cross_attention", True)
        sub_quad, used = run()
        assert used == {"attention_sub_quad"}
    assert rel_err(pytorch, sub_quad) < 1e-5
