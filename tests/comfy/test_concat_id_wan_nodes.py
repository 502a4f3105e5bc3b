"""Concat-ID-Wan inside ComfyUI: the nodes, native sampling against the release's loop, caches, UMT5 and VAE.

References: the release's sampling loop (concat_id_wan_release.release_sample) on the very model ComfyUI
samples, transformers' UMT5EncoderModel for the text encoder. The model itself: test_concat_id_wan_model.py.
"""

import math
import sys
from types import SimpleNamespace

import pytest
import torch
from concat_id_wan_release import release_sample
from tensors import rel_err

from multiid_core.concat_id_wan.checkpoint import ConcatIDWanConfig
from multiid_core.concat_id_wan.references import reference_image
from multiid_tools.tiny_models.teacache import keep_slow_timestep_frequencies
from multiid_tools.tiny_models.wan import TINY_UMT5, tiny_concat_id_wan_state_dict, wan_vae_shapes

NODES = (
    "MultiID_LoadUMT5TextEncoder",
    "MultiID_LoadConcatIDWan",
    "MultiID_ConcatIDWanReference",
    "MultiID_WanTeaCache",
)
FILES = {"first": "Concat-ID-Wan/first_stage.pt", "adaln": "Concat-ID-Wan/second_stage_adaln.pt"}
UMT5 = "umt5_xxl_fp8_e4m3fn_scaled.safetensors"
LINEAR_TIME = "multiid_linear_time"
SIZE = dict(width=64, height=48, length=9)  # 3 latent frames of 6x8 latents (3x4 tokens)


@pytest.fixture(scope="module")
def comfy(node_classes):
    import comfy.latent_formats
    import comfy.ldm.wan.model
    import comfy.model_patcher
    import comfy.ops
    import comfy.sd
    import comfy_extras.nodes_custom_sampler

    import nodes

    return SimpleNamespace(
        nodes=nodes,
        wan=comfy.ldm.wan.model,
        ops=comfy.ops,
        sd=comfy.sd,
        latent=comfy.latent_formats.Wan21(),
        model_patcher=comfy.model_patcher,
        custom=comfy_extras.nodes_custom_sampler,
    )


def execute(node_classes, node_id, *args):
    return node_classes[node_id].execute(*args).result


@pytest.fixture(scope="module")
def clip(node_classes):
    return execute(node_classes, "MultiID_LoadUMT5TextEncoder", UMT5, "default")[0]


@pytest.fixture(scope="module")
def prompts(comfy, clip):
    encode = comfy.nodes.CLIPTextEncode().encode
    return encode(clip, "a woman smiling in a garden")[0], encode(clip, "...")[0]


@pytest.fixture(scope="module")
def models(node_classes):
    return {name: execute(node_classes, "MultiID_LoadConcatIDWan", path, "default")[0] for name, path in FILES.items()}


def face(seed: int = 0) -> SimpleNamespace:
    g = torch.Generator().manual_seed(seed)
    image = torch.zeros(448, 448, 3)
    image[80:380, 100:350] = torch.rand(300, 250, 3, generator=g)
    return SimpleNamespace(primary=SimpleNamespace(face_on_black=image), label="")


def reference(node_classes, prompts, wan_vae, identity, references="one (as released)", regional=True, **size):
    size = {**SIZE, **size}
    return execute(
        node_classes, "MultiID_ConcatIDWanReference", *prompts, wan_vae, identity,
        size["width"], size["height"], size["length"], 1, references, regional,
    )  # fmt: skip


@pytest.mark.parametrize("node_id", NODES)
def test_schema_has_tooltips_and_a_multiid_category(node_classes, node_id):
    cls = node_classes[node_id]
    schema = cls.GET_SCHEMA()
    info = cls.GET_NODE_INFO_V1()
    assert info["category"].startswith("MultiID/") and info["description"] and schema.node_id == node_id
    for section in ("required", "optional"):
        for name, spec in info["input"].get(section, {}).items():
            assert spec[1].get("tooltip"), f"{node_id}.{name} has no tooltip"


# ------------------------------------------------------------------------------------------------------ loader


def test_loader_detects_the_variant_and_builds_a_native_wan_model(node_classes, models, pack):
    for name, patcher in models.items():
        model = patcher.model
        assert isinstance(model, pack.concat_id_wan.ConcatIDWanModel) and "WAN21" in {
            c.__name__ for c in type(model).__mro__
        }
        assert model.diffusion_model.adaln_reference == (name == "adaln")
        assert float(patcher.get_model_object("model_sampling").shift) == 5.0
        assert model.latent_format.latent_channels == 16
        assert "diffusion_model.blocks.0.self_attn.q.weight" in patcher.model_state_dict()
    text = node_classes["MultiID_LoadConcatIDWan"].execute(FILES["adaln"], "default").ui.as_dict()["text"][0]
    assert text.startswith("Concat-ID-Wan-AdaLN (second_stage_adaln.pt)")


def test_loader_names_the_missing_file_and_where_to_get_it(node_classes, MultiIDError):
    with pytest.raises(MultiIDError, match=r"models/multiid/Concat-ID-Wan/.*huggingface.co/yongzhong/Concat-ID-Wan"):
        node_classes["MultiID_LoadConcatIDWan"].execute("Concat-ID-Wan/nothing.pt", "default")


def test_fp8_weight_storage_loads(node_classes):
    patcher = execute(node_classes, "MultiID_LoadConcatIDWan", FILES["first"], "fp8_e4m3fn")[0]
    assert patcher.model.diffusion_model.blocks[0].self_attn.q.weight.dtype == torch.float8_e4m3fn


# ------------------------------------------------------------------------------------------ reference and sampling


def test_reference_node_encodes_the_letterboxed_face_and_a_zero_reference(comfy, node_classes, prompts, wan_vae):
    identity = face()
    positive, negative, no_reference, latent, images = reference(node_classes, prompts, wan_vae, identity)
    expected = reference_image(identity.primary.face_on_black, SIZE["height"], SIZE["width"])
    assert torch.equal(images[0], expected)
    encoded = wan_vae.encode(expected[None])
    for conditioning in (positive, negative):
        assert torch.equal(conditioning[0][1]["concat_id_references"], encoded)
    zero = comfy.latent.process_in(no_reference[0][1]["concat_id_references"])
    assert zero.abs().max() < 1e-6 and zero.shape == encoded.shape == (1, 16, 1, 6, 8)
    assert torch.equal(no_reference[0][0], negative[0][0])  # negative text in the image-guidance branch
    assert latent["samples"].shape == (1, 16, 3, 6, 8)
    assert "concat_id_regions" not in positive[0][1]


def test_several_identities_need_the_experimental_setting(node_classes, prompts, wan_vae, MultiIDError):
    two = SimpleNamespace(identities=[face(0), face(1)], masks=[None, None])
    with pytest.raises(MultiIDError, match="take one reference"):
        reference(node_classes, prompts, wan_vae, two)
    positive = reference(node_classes, prompts, wan_vae, two, "all identities (experimental)")[0]
    assert positive[0][1]["concat_id_references"].shape == (1, 16, 2, 6, 8)


def core_sample(patcher, positive, negative, steps, cfg, image_cfg=1.0, seed=0, teacache=0.0):
    """The release's loop on the very model and conditioning ComfyUI samples (TeaCache4Wan2.1 if > 0)."""
    latent_format = patcher.model.latent_format
    references = latent_format.process_in(positive[0][1]["concat_id_references"])
    regions = positive[0][1].get("concat_id_regions")
    noise = torch.randn(1, 16, 3, 6, 8, generator=torch.Generator().manual_seed(seed))
    dit = patcher.model.diffusion_model
    root = type(dit).__module__.rsplit(".nodes.", 1)[0]
    options = {}
    if teacache:
        teacache_module = sys.modules[root + ".multiid_core.teacache"]
        options[sys.modules[root + ".nodes.options"].TEACACHE] = teacache_module.TeaCache(
            teacache, teacache_module.COEFFICIENTS["wan2.1-t2v-1.3b"], steps
        )

    def forward(x, t, context, refs, step_options, branch):
        return dit.reference_forward(x, t, context, refs, regions, step_options, [branch])

    with torch.no_grad():
        out = release_sample(
            forward, noise, positive[0][0], negative[0][0], references, steps, cfg, image_cfg, options=options
        )
    return latent_format.process_out(out)


@pytest.mark.parametrize(
    "name, steps, scheduler",
    [("adaln", 8, LINEAR_TIME), ("first", 30, LINEAR_TIME), ("adaln", 35, LINEAR_TIME), ("adaln", 50, LINEAR_TIME),
     ("first", 50, "simple")],
)  # fmt: skip
def test_ksampler_takes_the_released_sampling_steps(
    comfy, node_classes, prompts, wan_vae, models, name, steps, scheduler
):
    """KSampler (euler, shift 5) = the release's flow-match loop, text CFG, reference in both branches: with
    the pack's linear-time scheduler at any step count, with ComfyUI's simple when the count divides 1000."""
    positive, negative, _, latent, _ = reference(node_classes, prompts, wan_vae, face())
    ksampler = comfy.nodes.common_ksampler
    native = ksampler(models[name], 0, steps, 5.0, "euler", scheduler, positive, negative, latent)[0]
    assert native["samples"].shape == latent["samples"].shape  # the reference slot never reaches the sampler
    error = rel_err(native["samples"], core_sample(models[name], positive, negative, steps, 5.0))
    assert error < 1e-5, error


def test_simple_at_a_count_that_does_not_divide_1000_is_not_the_release(comfy, node_classes, prompts, wan_vae, models):
    positive, negative, _, latent, _ = reference(node_classes, prompts, wan_vae, face())
    native = comfy.nodes.common_ksampler(models["first"], 0, 30, 5.0, "euler", "simple", positive, negative, latent)
    assert rel_err(native[0]["samples"], core_sample(models["first"], positive, negative, 30, 5.0)) > 1e-5


def test_dual_cfg_guider_gives_image_guidance(comfy, node_classes, prompts, wan_vae, models):
    """DualCFGGuider(positive, negative, negative_no_reference) = Phantom-style text + image guidance."""
    positive, negative, no_reference, latent, _ = reference(node_classes, prompts, wan_vae, face())
    custom = comfy.custom
    guider = custom.DualCFGGuider.execute(models["adaln"], positive, negative, no_reference, 5.0, 2.0, "regular")[0]
    sigmas = custom.BasicScheduler.execute(models["adaln"], "simple", 4, 1.0)[0]  # 4 divides 1000, as 50 does
    native = custom.SamplerCustomAdvanced.execute(
        custom.RandomNoise.execute(0)[0], guider, custom.KSamplerSelect.execute("euler")[0], sigmas, latent
    )[0]
    expected = core_sample(models["adaln"], positive, negative, 4, 5.0, image_cfg=2.0)
    error = rel_err(native["samples"], expected)
    assert error < 1e-5, error
    plain = core_sample(models["adaln"], positive, negative, 4, 5.0)
    assert rel_err(plain, expected) > 1e-3


def test_regions_from_id_router_masks_reach_the_model(comfy, node_classes, prompts, wan_vae, models):
    left, right = torch.zeros(1, 48, 64), torch.zeros(1, 48, 64)
    left[..., :32], right[..., 32:] = 1.0, 1.0
    placed = SimpleNamespace(identities=[face(0), face(1)], masks=[left, right])
    positive, negative, no_reference, latent, _ = reference(
        node_classes, prompts, wan_vae, placed, "all identities (experimental)"
    )
    regions = positive[0][1]["concat_id_regions"]
    assert regions.shape == (1, 2, 3, 3, 4) and regions[0, 0, :, :, :2].all() and not regions[0, 0, :, :, 2:].any()
    assert torch.equal(no_reference[0][1]["concat_id_regions"], regions)
    native = comfy.nodes.common_ksampler(models["adaln"], 0, 2, 5.0, "euler", "simple", positive, negative, latent)[0]
    assert rel_err(native["samples"], core_sample(models["adaln"], positive, negative, 2, 5.0)) < 1e-5
    free = reference(node_classes, prompts, wan_vae, placed, "all identities (experimental)", regional=False)
    assert "concat_id_regions" not in free[0][0][1]
    unplaced = comfy.nodes.common_ksampler(models["adaln"], 0, 2, 5.0, "euler", "simple", free[0], free[1], latent)
    assert rel_err(unplaced[0]["samples"], native["samples"]) > 1e-4


def test_placed_people_sampled_on_a_latent_of_another_length_are_refused(
    comfy, node_classes, prompts, wan_vae, models, MultiIDError
):
    """The regions fit the Reference node's video; a latent of another length must not meet them as a shape error."""
    left, right = torch.zeros(1, 48, 64), torch.zeros(1, 48, 64)
    left[..., :32], right[..., 32:] = 1.0, 1.0
    placed = SimpleNamespace(identities=[face(0), face(1)], masks=[left, right])
    positive, negative, _, _, _ = reference(node_classes, prompts, wan_vae, placed, "all identities (experimental)")
    longer = {"samples": torch.zeros(1, 16, 5, 6, 8)}
    message = "placed for a video of 9 frames at 64x48 pixels, but the latent sampled here is 17 frames at 64x48"
    with pytest.raises(MultiIDError, match=message):
        comfy.nodes.common_ksampler(models["adaln"], 0, 2, 5.0, "euler", "simple", positive, negative, longer)


def test_teacache_node_gives_the_released_teacache_in_ksampler(
    comfy, node_classes, prompts, wan_vae, MultiIDError, pack
):
    """KSampler on the TeaCache node's MODEL = TeaCache4Wan2.1 in the release's loop; the input MODEL is untouched."""
    sd = tiny_concat_id_wan_state_dict(adaln=True)
    sd["time_embedding.0.weight"] = keep_slow_timestep_frequencies(sd["time_embedding.0.weight"])
    model = pack.concat_id_wan.concat_id_model_patcher(sd, ConcatIDWanConfig.from_state_dict(sd), "fp32")
    cached_model = execute(node_classes, "MultiID_WanTeaCache", model, "0.08")[0]
    positive, negative, _, latent, _ = reference(node_classes, prompts, wan_vae, face())

    def ksampler(m):
        return comfy.nodes.common_ksampler(m, 0, 25, 5.0, "euler", "simple", positive, negative, latent)[0]["samples"]

    cached, exact = ksampler(cached_model), ksampler(model)
    assert rel_err(cached, core_sample(cached_model, positive, negative, 25, 5.0, teacache=0.08)) < 1e-5
    assert rel_err(exact, core_sample(model, positive, negative, 25, 5.0)) < 1e-5
    assert 1e-4 < rel_err(cached, exact) < 0.1
    other = comfy.model_patcher.ModelPatcher(torch.nn.Linear(2, 2), "cpu", "cpu")  # any MODEL not Concat-ID Wan
    with pytest.raises(MultiIDError, match="Load Concat-ID Wan Model"):
        execute(node_classes, "MultiID_WanTeaCache", other, "0.05")


@pytest.mark.parametrize("node", ["EasyCacheNode", "LazyCacheNode"])
def test_comfyuis_easycache_and_lazycache_run_on_the_model(comfy, node_classes, prompts, wan_vae, models, node):
    """ComfyUI's own caches wrap this MODEL like any Wan: fewer model calls, a finite video, the input MODEL
    untouched (random tiny weights change too fast between steps for a closeness bound to mean anything)."""
    import comfy_extras.nodes_easycache

    positive, negative, _, latent, _ = reference(node_classes, prompts, wan_vae, face())
    cached_model = getattr(comfy_extras.nodes_easycache, node).execute(models["adaln"], 1.0, 0.15, 0.95, False)[0]
    calls = []
    hook = models["adaln"].model.diffusion_model.head.register_forward_hook(lambda *_: calls.append(1))
    try:
        runs = {}
        for name, model in (("exact", models["adaln"]), ("cached", cached_model)):
            calls.clear()
            runs[name] = comfy.nodes.common_ksampler(
                model, 0, 12, 5.0, "euler", LINEAR_TIME, positive, negative, latent
            )[0]["samples"]
            runs[f"{name} calls"] = len(calls)
    finally:
        hook.remove()
    assert runs["exact calls"] == 12 and runs["cached calls"] < 12
    assert torch.isfinite(runs["cached"]).all() and runs["cached"].shape == runs["exact"].shape
    assert "wrappers" not in models["adaln"].model_options["transformer_options"] or not any(
        models["adaln"].model_options["transformer_options"]["wrappers"].values()
    )


def test_phantom_conditioning_mixed_with_a_reference_is_refused_with_advice(
    comfy, node_classes, models, prompts, wan_vae, MultiIDError
):
    positive, negative, _, latent, _ = reference(node_classes, prompts, wan_vae, face())
    phantom = [[positive[0][0], {**positive[0][1], "time_dim_concat": torch.zeros(1, 16, 1, 6, 8)}]]
    with pytest.raises(MultiIDError, match="WanPhantomSubjectToVideo"):
        comfy.nodes.common_ksampler(models["first"], 0, 1, 1.0, "euler", "simple", phantom, negative, latent)
    # without Concat-ID's reference the MODEL is a plain Wan 2.1 and Phantom's conditioning runs as on any Wan
    plain = [[prompts[0][0][0], {"time_dim_concat": torch.zeros(1, 16, 1, 6, 8)}]]
    out = comfy.nodes.common_ksampler(models["first"], 0, 1, 1.0, "euler", "simple", plain, prompts[1], latent)
    assert out[0]["samples"].shape == latent["samples"].shape


def test_decoded_video_has_the_requested_frames(comfy, node_classes, prompts, wan_vae, models):
    positive, negative, _, latent, _ = reference(node_classes, prompts, wan_vae, face(), length=13)
    samples = comfy.nodes.common_ksampler(models["first"], 1, 1, 5.0, "euler", "simple", positive, negative, latent)
    frames = comfy.nodes.VAEDecode().decode(wan_vae, samples[0])[0]
    assert frames.shape == (13, 48, 64, 3)


# -------------------------------------------------------------------------------------------- UMT5 and VAE


def test_umt5_encoding_matches_transformers(comfy_base, prompts):
    """CLIP Text Encode on the CLIP ComfyUI's loader builds from our scaled-fp8 UMT5 file = UMT5EncoderModel on
    the same (dequantised) weights, pads zeroed: the scales are applied, not lost."""
    import sentencepiece
    from safetensors.torch import load_file
    from transformers import UMT5Config, UMT5EncoderModel

    raw = load_file(comfy_base / "models" / "text_encoders" / UMT5)
    sd = {}
    for name, tensor in raw.items():
        if name.endswith(".weight") and tensor.dtype == torch.float8_e4m3fn:
            sd[name] = tensor.float() * raw[name[: -len("weight")] + "scale_weight"].float()
        elif tensor.is_floating_point() and tensor.numel() > 1:
            sd[name] = tensor.float()
    config = UMT5Config(**TINY_UMT5, feed_forward_proj="gated-gelu", dropout_rate=0.0, is_encoder_decoder=False)
    model = UMT5EncoderModel(config).eval()
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert set(missing) <= {"encoder.embed_tokens.weight"} and not unexpected
    tokenizer = sentencepiece.SentencePieceProcessor(model_proto=raw["spiece_model"].numpy().tobytes(), add_eos=True)
    for text, ours in zip(("a woman smiling in a garden", "..."), prompts):
        ids = tokenizer.encode(text)
        mask = torch.zeros(1, 512, dtype=torch.long)
        mask[0, : len(ids)] = 1
        with torch.no_grad():
            out = model(torch.tensor([ids + [0] * (512 - len(ids))]), attention_mask=mask).last_hidden_state
        out[:, len(ids) :] = 0
        assert ours[0][0].shape == (1, 512, TINY_UMT5["d_model"])
        assert rel_err(ours[0][0], out) < 3e-5  # measured 1.1e-5: 24 blocks of 4096-wide fp32 sums, two orders


def test_a_t5_v11_file_is_refused_by_the_umt5_loader(comfy_base, node_classes, MultiIDError):
    from multiid_tools.tiny_models.t5 import write_tiny_t5_file

    write_tiny_t5_file(comfy_base / "models" / "text_encoders" / "umt5_but_really_t5.safetensors")
    with pytest.raises(MultiIDError, match="T5-v1.1 .* not UMT5"):
        node_classes["MultiID_LoadUMT5TextEncoder"].execute("umt5_but_really_t5.safetensors", "default")


@pytest.mark.parametrize("dim", [8, 96])
def test_tiny_wan_vae_keys_are_comfyuis_and_load_natively(comfy, wan_vae, dim):
    import comfy.ldm.wan.vae

    reference_vae = comfy.ldm.wan.vae.WanVAE(
        dim=dim, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
        temperal_downsample=[False, True, True],
    )  # fmt: skip
    assert {k: tuple(v.shape) for k, v in reference_vae.state_dict().items()} == wan_vae_shapes(dim)
    assert wan_vae.latent_channels == 16 and wan_vae.first_stage_model.dim == 8
    assert math.prod(wan_vae.upscale_index_formula) == 4 * 8 * 8


def test_wan_loras_in_comfyuis_format_patch_the_model(models):
    import comfy.sd

    lora = {
        "diffusion_model.blocks.0.self_attn.q.lora_up.weight": torch.randn(256, 4),
        "diffusion_model.blocks.0.self_attn.q.lora_down.weight": torch.randn(4, 256),
    }
    patched, _ = comfy.sd.load_lora_for_models(models["first"], None, lora, 1.0, 0.0)
    assert list(patched.patches) == ["diffusion_model.blocks.0.self_attn.q.weight"]


def test_a_prediction_turning_nan_stops_ksampler_with_the_step(
    comfy, node_classes, prompts, wan_vae, models, MultiIDError
):
    """NaN weights (a damaged file, or fp16 overflow on a card) stop the run with a message, not a black video."""
    positive, negative, _, latent, _ = reference(node_classes, prompts, wan_vae, face())
    head = models["adaln"].model.diffusion_model.head.head
    saved = head.weight.detach().clone()
    try:
        with torch.no_grad():
            head.weight[0, 0] = float("nan")
        with pytest.raises(MultiIDError, match=r"became NaN or infinite at step 1 of 4.*nothing was saved"):
            comfy.nodes.common_ksampler(models["adaln"], 0, 4, 5.0, "euler", "simple", positive, negative, latent)
    finally:
        with torch.no_grad():
            head.weight.copy_(saved)


def test_a_cogvideox_prompt_is_refused_and_the_outputs_say_they_are_wan(node_classes, prompts, wan_vae, MultiIDError):
    cogvideox = [[prompts[0][0][0], {"multiid_family": "cogvideox"}]]
    with pytest.raises(MultiIDError, match="MultiID Text Encode.*Load UMT5 Text Encoder"):
        execute(node_classes, "MultiID_ConcatIDWanReference", cogvideox, prompts[1], wan_vae, face(),
                64, 48, 9, 1, "one (as released)", True)  # fmt: skip
    positive, negative, _, latent, _ = reference(node_classes, prompts, wan_vae, face())
    assert latent["multiid_family"] == positive[0][1]["multiid_family"] == "concat_id_wan"


def test_a_size_off_the_grid_is_refused_not_floored(node_classes, prompts, wan_vae, MultiIDError):
    """An API prompt may send any integer: 10 frames would become 9 and a width of 70 would become 64 silently."""
    for width, height, length, message in (
        (64, 48, 10, "length must be 4k\\+1 frames .* got 10; use 9 or 13"),
        (70, 48, 9, "width must be a multiple of 16 \\(got 70\\): use 64 or 80"),
    ):
        with pytest.raises(MultiIDError, match=message):
            execute(node_classes, "MultiID_ConcatIDWanReference", *prompts, wan_vae, face(),
                    width, height, length, 1, "one (as released)", True)  # fmt: skip


def test_a_video_too_big_for_the_memory_is_refused_before_allocating(
    node_classes, prompts, wan_vae, MultiIDError, monkeypatch
):
    wan_nodes = sys.modules[node_classes["MultiID_ConcatIDWanReference"].__module__]
    monkeypatch.setattr(wan_nodes.mm, "get_free_memory", lambda device=None: 16 * 2**30)
    # 64 videos of 1025 frames at 2048x2048: 64 x 16 x 257 x 256 x 256 fp32 latents, four copies while sampling
    with pytest.raises(MultiIDError, match=r"need at least 257\.0 GB .* 16\.0 GB are free\. Lower batch_size, length"):
        execute(node_classes, "MultiID_ConcatIDWanReference", *prompts, wan_vae, face(),
                2048, 2048, 1025, 64, "one (as released)", True)  # fmt: skip
    assert reference(node_classes, prompts, wan_vae, face())[3]["samples"].shape == (1, 16, 3, 6, 8)  # small still runs
