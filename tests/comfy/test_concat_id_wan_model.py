"""Concat-ID-Wan's model: ComfyUI's own WanModel, loaded by ComfyUI, with the release's equations for references.

References: ComfyUI's WanModel built by hand with the same weights (the plain Wan parts), the release's
equations (concat_id_wan_release.release_forward), Wan's per-axis RoPE tables, the release's schedule.
"""

from types import SimpleNamespace

import pytest
import torch
from concat_id_wan_release import flow_match_sigmas, release_forward
from tensors import rel_err

from multiid_core.concat_id_wan.checkpoint import ConcatIDWanConfig, expected_shapes, read_checkpoint
from multiid_core.wan.checkpoint import WanConfig
from multiid_tools.tiny_models.wan import tiny_concat_id_wan_state_dict

FILES = {"first": "Concat-ID-Wan/first_stage.pt", "adaln": "Concat-ID-Wan/second_stage_adaln.pt"}


@pytest.fixture(scope="module")
def comfy(node_classes):
    import comfy.ldm.wan.model
    import comfy.model_base
    import comfy.ops
    import comfy_extras.nodes_rope

    return SimpleNamespace(wan=comfy.ldm.wan.model, ops=comfy.ops, base=comfy.model_base, rope=comfy_extras.nodes_rope)


def load(pack, sd: dict, weight_dtype: str = "fp32"):
    return pack.concat_id_wan.concat_id_model_patcher(dict(sd), ConcatIDWanConfig.from_state_dict(sd), weight_dtype)


@pytest.fixture(scope="module")
def released(comfy_base):
    return {name: read_checkpoint(comfy_base / "models" / "multiid" / path)[0] for name, path in FILES.items()}


@pytest.fixture(scope="module")
def models(pack, released):
    return {name: load(pack, sd) for name, sd in released.items()}


def comfy_wan(comfy, sd: dict) -> torch.nn.Module:
    """ComfyUI's WanModel (t2v) built by hand with the plain Wan tensors of a Concat-ID file."""
    config = ConcatIDWanConfig.from_state_dict(sd)
    model = comfy.wan.WanModel(
        model_type="t2v", dim=config.dim, ffn_dim=config.ffn_dim, num_heads=config.num_heads,
        num_layers=config.num_layers, text_dim=config.text_dim, operations=comfy.ops.disable_weight_init,
    )  # fmt: skip
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in sd.items()}, strict=False)
    assert not missing and all("_ref" in k for k in unexpected)
    return model.float().eval()


def dit_inputs(seed: int = 0, h: int = 6, w: int = 8, refs: int = 1, frames: int = 3, t: float = 912.0):
    """Two batch items (cond, uncond), a clean reference; 912 is a bf16 value (see the rounding test)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 16, frames, h, w, generator=g)
    ref = torch.randn(1, 16, refs, h, w, generator=g)
    return x, ref, torch.randn(2, 9, 4096, generator=g), torch.tensor([t, t])


def predict(pack, model, x, t, context, ref=None, regions=None, options=None) -> torch.Tensor:
    kwargs = {} if ref is None else {pack.concat_id_wan.REFERENCES: ref}
    if regions is not None:
        kwargs[pack.concat_id_wan.REGIONS] = regions
    with torch.no_grad():
        return model.model.diffusion_model(x, t, context, transformer_options=options or {}, **kwargs)


# ------------------------------------------------------------------------------------------------- the model


def test_the_model_is_comfyuis_wan_model_loaded_by_comfyui(comfy, pack, models, released):
    for name, patcher in models.items():
        assert isinstance(patcher.model, comfy.base.WAN21)
        assert isinstance(patcher.model.diffusion_model, comfy.wan.WanModel)
        assert float(patcher.get_model_object("model_sampling").shift) == 5.0  # the release's shift, not Wan's 8
        state = patcher.model_state_dict()
        assert all(torch.equal(state[f"diffusion_model.{k}"].float(), v.float()) for k, v in released[name].items())


@pytest.mark.parametrize("adaln", [False, True])
def test_the_released_layout_is_comfyuis_wan_layout(comfy, adaln):
    config = ConcatIDWanConfig(dim=256, ffn_dim=512, num_heads=2, num_layers=3, adaln_reference=adaln)
    with torch.device("meta"):
        model = comfy.wan.WanModel(
            model_type="t2v", dim=256, ffn_dim=512, num_heads=2, num_layers=3,
            operations=comfy.ops.disable_weight_init,
        )  # fmt: skip
    comfys = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    ours = expected_shapes(config)
    assert {k: v for k, v in ours.items() if "_ref" not in k} == comfys
    assert len(ours) - len(comfys) == (2 + 3 if adaln else 0)  # time_projection_ref.1.{weight,bias}, 3 modulation_ref


@pytest.mark.parametrize("variant, size", [("first", (6, 8)), ("adaln", (6, 8)), ("first", (5, 7))])
def test_without_references_the_forward_is_wan_models_own(comfy, pack, models, released, variant, size):
    x, _, context, t = dit_inputs(0, *size)  # (5, 7): odd latent sizes are padded as ComfyUI pads them
    with torch.no_grad():
        expected = comfy_wan(comfy, released[variant])(x, t, context)
    assert torch.equal(predict(pack, models[variant], x, t, context), expected)


@pytest.mark.parametrize("variant", list(FILES))
def test_with_a_reference_the_forward_follows_the_released_equations(comfy, pack, models, released, variant):
    x, ref, context, t = dit_inputs()
    got = predict(pack, models[variant], x, t, context, ref)
    with torch.no_grad():
        expected = release_forward(comfy_wan(comfy, released[variant]), released[variant], x, t, context,
                                   ref.expand(2, -1, -1, -1, -1))  # fmt: skip
    error = rel_err(got, expected)
    assert error < 1e-5, error
    assert rel_err(predict(pack, models[variant], x, t, context), expected) > 1e-3  # the reference matters


def test_the_timestep_is_rounded_to_bf16_as_the_release_does(pack, models):
    x, ref, context, _ = dit_inputs()
    model = models["adaln"]
    at = {t: predict(pack, model, x, torch.tensor([t, t]), context, ref) for t in (913.7, 912.0, 916.0)}
    assert torch.equal(at[913.7], at[912.0]) and not torch.equal(at[912.0], at[916.0])


def tokens_after_block(pack, model, x, t, context, ref) -> torch.Tensor:
    """The joint token sequence after block 0, captured by a ComfyUI block-replace patch."""
    captured = {}

    def patch(args, extra):
        out = extra["original_block"](args)
        captured["tokens"] = out["img"]
        return out

    predict(pack, model, x, t, context, ref, options={"patches_replace": {"dit": {("double_block", 0): patch}}})
    return captured["tokens"]


@pytest.mark.parametrize("variant", list(FILES))
def test_reference_tokens_get_no_text_cross_attention(pack, models, variant):
    model = models[variant]
    x, ref, context, t = dit_inputs()
    lengths = []
    hook = model.model.diffusion_model.blocks[0].cross_attn.q.register_forward_hook(
        lambda module, args, out: lengths.append(args[0].shape[1])
    )
    try:
        a = tokens_after_block(pack, model, x, t, context, ref)
    finally:
        hook.remove()
    assert lengths == [3 * 3 * 4]  # the video tokens only (3 frames of 3x4 patches), not the 12 reference tokens
    b = tokens_after_block(pack, model, x, t, torch.randn_like(context), ref)
    assert a.shape[1] == 4 * 12 and torch.equal(a[:, 36:], b[:, 36:]) and not torch.allclose(a[:, :36], b[:, :36])


def test_adaln_reference_ffn_uses_the_attention_shift_and_scale_as_released(pack, released):
    """Entries 3, 4 of modulation_ref (shift/scale_mlp_ref) are never read; entry 5 (gate_mlp_ref) is."""
    model = load(pack, released["adaln"])
    x, ref, context, t = dit_inputs()
    base = predict(pack, model, x, t, context, ref)
    blocks = model.model.diffusion_model.blocks
    with torch.no_grad():
        for block in blocks:
            block.modulation_ref[:, 3:5] += 1.0
    assert torch.equal(predict(pack, model, x, t, context, ref), base)
    with torch.no_grad():
        for block in blocks:
            block.modulation_ref[:, 5] += 1.0
    assert rel_err(predict(pack, model, x, t, context, ref), base) > 1e-3


def test_without_references_the_adaln_model_is_its_plain_wan(pack, models, released):
    plain = load(pack, {k: v for k, v in released["adaln"].items() if "_ref" not in k})
    x, _, context, t = dit_inputs()
    assert torch.equal(predict(pack, models["adaln"], x, t, context), predict(pack, plain, x, t, context))


def test_reference_rope_is_the_released_per_axis_tables(models):
    """The release's freqs_ref: freqs[0][f], freqs[1][0:h], freqs[2][w:2w] of Wan's 1024-row tables."""
    head_dim, frames, h, w = 128, 3, 2, 4

    def table(dim: int) -> torch.Tensor:  # Wan's precompute_freqs_cis, as angles
        return torch.outer(torch.arange(1024).double(), 1.0 / 10000 ** (torch.arange(0, dim, 2).double() / dim))

    t_dim = head_dim - 2 * (head_dim // 3)
    tables = table(t_dim), table(head_dim // 3), table(head_dim // 3)
    angles = torch.cat(
        [
            tables[0][frames : frames + 1].view(1, 1, -1).expand(h, w, -1),
            tables[1][0:h].view(h, 1, -1).expand(h, w, -1),
            tables[2][w : 2 * w].view(1, w, -1).expand(h, w, -1),
        ],
        dim=-1,
    ).reshape(h * w, -1)
    freqs = models["first"].model.diffusion_model.rope((frames, h, w), (1, h, w), {}, torch.device("cpu"))
    rotation = freqs[0, -h * w :, 0]  # [tokens, head_dim / 2, 2, 2]: ((cos, -sin), (sin, cos))
    assert torch.allclose(rotation[..., 0, 0], angles.cos().float(), atol=1e-6)
    assert torch.allclose(rotation[..., 1, 0], angles.sin().float(), atol=1e-6)


def test_scale_rope_reaches_the_model_with_and_without_references(comfy, pack, models):
    x, ref, context, t = dit_inputs()
    model = models["adaln"]
    scaled = comfy.rope.ScaleROPE.execute(model, 0.5, 0.0, 1.0, 0.0, 1.0, 0.0).result[0]
    options = scaled.model_options["transformer_options"]
    for reference in (None, ref):
        assert rel_err(predict(pack, model, x, t, context, reference, options=options),
                       predict(pack, model, x, t, context, reference)) > 1e-4  # fmt: skip
    neutral = comfy.rope.ScaleROPE.execute(model, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0).result[0]
    same = predict(pack, model, x, t, context, ref, options=neutral.model_options["transformer_options"])
    assert torch.equal(same, predict(pack, model, x, t, context, ref))


@pytest.mark.parametrize("weight_dtype", ["fp8_e4m3fn", "fp8_e5m2", "bf16"])
def test_the_weight_dtype_is_honoured_and_the_model_runs(pack, released, weight_dtype):
    model = load(pack, released["adaln"], weight_dtype)
    dtype = {"fp8_e4m3fn": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2, "bf16": torch.bfloat16}[weight_dtype]
    dit = model.model.diffusion_model
    assert dit.blocks[0].self_attn.q.weight.dtype == dtype
    assert dit.time_projection_ref[1].weight.dtype == dit.blocks[0].modulation_ref.dtype == dtype
    assert model.model.get_dtype() == dtype
    x, ref, context, t = dit_inputs()
    out = predict(pack, model, x, t, context, ref)
    assert torch.isfinite(out).all() and out.shape == x.shape


def test_video_tokens_in_one_mask_are_untouched_by_the_other_reference(pack, released):
    """One block: a token inside mask k reads only reference k (and video tokens), so moving reference j
    changes exactly the tokens of region j (and, symmetrically, no token of region k)."""
    sd = {k: v for k, v in released["adaln"].items() if not k.startswith("blocks.1.")}
    model = load(pack, sd)
    x, references, context, t = dit_inputs(refs=2, frames=2, h=4, w=4)
    regions = torch.zeros(2, 2, 2, 2, 2)
    regions[:, 0, :, :, 0] = 1  # identity 1: left token column
    regions[:, 1, :, :, 1] = 1  # identity 2: right token column
    changed = references.clone()
    changed[:, :, 1] += 1.0
    a = predict(pack, model, x, t, context, references, regions)
    b = predict(pack, model, x, t, context, changed, regions)
    free = predict(pack, model, x, t, context, changed)  # without regions every token sees both references
    # [frame, token row, token column]: each token covers 2x2 latent pixels
    diff = (a - b).abs().amax(dim=1)[0].reshape(2, 2, 2, 2, 2).amax(dim=(2, 4))
    assert (diff[..., 0] == 0).all() and (diff[..., 1] > 0).all()
    assert ((a - free).abs().amax(dim=1)[0].reshape(2, 2, 2, 2, 2).amax(dim=(2, 4))[..., 0] > 0).all()


# ---------------------------------------------------------------------------------------------- the schedule


@pytest.mark.parametrize("steps", [8, 30, 35, 50])
def test_the_linear_time_scheduler_is_the_releases_schedule(pack, models, steps):
    import comfy.samplers

    sampling = models["first"].get_model_object("model_sampling")
    ours = comfy.samplers.calculate_sigmas(sampling, pack.schedulers.LINEAR_TIME, steps)
    assert torch.allclose(ours, flow_match_sigmas(steps), rtol=1e-6, atol=1e-7)
    simple = comfy.samplers.calculate_sigmas(sampling, "simple", steps)
    assert torch.allclose(simple, ours, atol=1e-6) == (1000 % steps == 0)  # simple is exact only then


def test_the_scheduler_is_offered_by_ksampler(node_classes, pack):
    import nodes

    assert pack.schedulers.LINEAR_TIME in nodes.KSampler.INPUT_TYPES()["required"]["scheduler"][0]


def test_a_state_dict_with_a_different_sized_model_still_loads(pack):
    sd = tiny_concat_id_wan_state_dict(adaln=True, sizes=WanConfig(dim=384, ffn_dim=256, num_layers=1))
    model = load(pack, sd)
    assert model.model.diffusion_model.num_heads == 3 and model.model.diffusion_model.dim == 384


def test_the_loader_leaves_a_reload_factory_for_comfyuis_multi_gpu_copies(node_classes, released):
    """Newer ComfyUI rebuilds a MODEL through `cached_patcher_init` (MultiGPU CFG Split, dynamic VRAM clones)."""
    patcher = node_classes["MultiID_LoadConcatIDWan"].execute(FILES["adaln"], "fp32").result[0]
    factory, args = patcher.cached_patcher_init
    copy = factory(*args)
    assert copy is not patcher and copy.model.diffusion_model.adaln_reference
    weights = copy.model_state_dict()
    assert all(torch.equal(weights[f"diffusion_model.{k}"], v.float()) for k, v in released["adaln"].items())
