"""Stand-In on ComfyUI's own Wan MODEL (Load Diffusion Model on the tiny Wan 14B-layout files), against the
authors' equations (stand_in_release.py): the forward with one and two faces, kept reference keys, KSampler and
the Wan2.2 experts' two KSamplerAdvanced, placed faces, LoRAs in either order, fp8 files, caches, refusals."""

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from stand_in_release import release_forward, release_sample
from tensors import rel_err

from multiid_core.routing import IdentitySet
from multiid_core.wan.checkpoint import WanConfig
from multiid_tools.tiny_models.identities import random_identity
from multiid_tools.tiny_models.stand_in import tiny_adapter_state_dict
from multiid_tools.tiny_models.wan import tiny_concat_id_wan_state_dict

ADAPTER = "Stand-In/Stand-In_wan2.1_T2V_14B_ver1.0.ckpt"
HIGH, LOW = "Stand-In/Stand-In_wan2.2_T2V_A14B_high.ckpt", "Stand-In/Stand-In_wan2.2_T2V_A14B_low.ckpt"
BF16 = "wan2.1_t2v_14B_bf16.safetensors"
FP8 = "wan2.1_t2v_14B_fp8_e4m3fn.safetensors"
EXPERTS = "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors", "wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors"
LINEAR_TIME = "multiid_linear_time"  # the authors' sigmas at any step count (`simple` only when it divides 1000)


@pytest.fixture(scope="module")
def comfy(node_classes):
    import comfy.model_management
    import comfy.samplers
    import comfy_extras.nodes_easycache

    import nodes

    return SimpleNamespace(nodes=nodes, samplers=comfy.samplers, easycache=comfy_extras.nodes_easycache)


@pytest.fixture(scope="module")
def stand_in(node_classes):
    root = node_classes["MultiID_ApplyStandIn"].__module__.rsplit(".nodes.", 1)[0]
    return sys.modules[f"{root}.nodes.stand_in.model"]


def unet(comfy, name: str = BF16, weight_dtype: str = "default"):
    return comfy.nodes.UNETLoader().load_unet(name, weight_dtype)[0]


def apply(node_classes, model, wan_vae, identity, adapter: str = ADAPTER, regional: bool = True):
    return node_classes["MultiID_ApplyStandIn"].execute(model, adapter, wan_vae, identity, regional).result


def adapter_weights(comfy_base, name: str = ADAPTER) -> dict:
    return torch.load(comfy_base / "models" / "multiid" / name, weights_only=True)


def faces_of(stand_in, model):
    return model.model_options["transformer_options"][stand_in.STAND_IN]


def prompts(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(1, 512, 4096, generator=g), {}]], [[torch.randn(1, 512, 4096, generator=g), {}]]


def face_list(latents: torch.Tensor) -> list[torch.Tensor]:
    return [latents[:, :, k : k + 1] for k in range(latents.shape[2])]


@pytest.mark.parametrize("people", [1, 2])
def test_the_forward_follows_the_authors_equations_and_later_calls_reuse_the_faces(
    comfy, node_classes, stand_in, wan_vae, comfy_base, people
):
    identity = random_identity(1) if people == 1 else IdentitySet([random_identity(1), random_identity(2)], [None] * 2)
    model = apply(node_classes, unet(comfy), wan_vae, identity)[0]
    faces = faces_of(stand_in, model)
    dit = model.model.diffusion_model
    lora = adapter_weights(comfy_base)
    g = torch.Generator().manual_seed(5)
    x, x2 = torch.randn(2, 16, 3, 8, 12, generator=g), torch.randn(2, 16, 3, 8, 12, generator=g)
    context = torch.randn(2, 512, 4096, generator=g)
    t, t2 = torch.tensor([875.0, 875.0]), torch.tensor([420.0, 420.0])
    embedded = []
    hook = dit.patch_embedding.register_forward_hook(lambda m, args, out: embedded.append(args[0].shape[2]))
    with torch.no_grad():
        options = {stand_in.STAND_IN: faces, stand_in.STREAMS: {}}
        first = dit(x, t, context, transformer_options=dict(options))
        later = dit(x2, t2, context, transformer_options=dict(options))
        plain = dit(x2, t2, context)
        hook.remove()
        reference = [
            release_forward(dit, lora, x_, t_, context, face_list(faces.latents)) for x_, t_ in ((x, t), (x2, t2))
        ]
    assert rel_err(first, reference[0]) < 1e-5 and rel_err(later, reference[1]) < 1e-5
    assert rel_err(later, plain) > 1e-3  # the faces change the prediction
    assert embedded == [3, people, 3, 3]  # the faces are embedded by the first call only


def test_ksampler_samples_the_authors_loop(comfy, node_classes, stand_in, wan_vae, comfy_base):
    model = apply(node_classes, unet(comfy), wan_vae, random_identity(3))[0]
    dit, faces, lora = model.model.diffusion_model, faces_of(stand_in, model), adapter_weights(comfy_base)
    positive, negative = prompts()
    latent = {"samples": torch.zeros(1, 16, 3, 8, 12)}
    with torch.no_grad():
        ours = comfy.nodes.common_ksampler(model, 7, 8, 5.0, "euler", LINEAR_TIME, positive, negative, latent)[0]
        noise = torch.randn(latent["samples"].shape, generator=torch.manual_seed(7))

        def forward(x, t, conditioning):
            return release_forward(dit, lora, x, t, conditioning[0][0], face_list(faces.latents))

        theirs = release_sample([forward], noise, positive, negative, steps=8, cfg=5.0)
    assert rel_err(model.model.process_latent_in(ours["samples"]), theirs) < 1e-5


def test_wan22_experts_in_two_ksampler_advanced_switch_where_the_authors_do(
    comfy, node_classes, stand_in, wan_vae, comfy_base
):
    identity = random_identity(4)
    high = apply(node_classes, unet(comfy, EXPERTS[0]), wan_vae, identity, HIGH)[0]
    low = apply(node_classes, unet(comfy, EXPERTS[1]), wan_vae, identity, LOW)[0]
    positive, negative = prompts(1)
    latent = {"samples": torch.zeros(1, 16, 3, 8, 12)}
    steps, sampler = 8, comfy.nodes.KSamplerAdvanced()
    sigmas = comfy.samplers.calculate_sigmas(high.get_model_object("model_sampling"), LINEAR_TIME, steps)
    switch = int((sigmas[:-1] * 1000 >= 875).sum())
    assert switch == 4  # shift 5: t >= 875 for the first 4 of 8 steps (for the authors' 20: 9) on the high expert
    with torch.no_grad():
        common = dict(
            steps=steps, cfg=5.0, sampler_name="euler", scheduler="simple", positive=positive, negative=negative
        )
        mid = sampler.sample(high, "enable", 3, latent_image=latent, start_at_step=0, end_at_step=switch,
                             return_with_leftover_noise="enable", **common)[0]  # fmt: skip
        ours = sampler.sample(low, "disable", 3, latent_image=mid, start_at_step=switch, end_at_step=10000,
                              return_with_leftover_noise="disable", **common)[0]  # fmt: skip
        noise = torch.randn(latent["samples"].shape, generator=torch.manual_seed(3))
        experts = []
        for model, adapter in ((high, HIGH), (low, LOW)):
            dit, faces, lora = (
                model.model.diffusion_model,
                faces_of(stand_in, model),
                adapter_weights(comfy_base, adapter),
            )
            experts.append(
                lambda x, t, c, dit=dit, faces=faces, lora=lora: release_forward(
                    dit, lora, x, t, c[0][0], face_list(faces.latents)
                )
            )
        theirs = release_sample(experts, noise, positive, negative, steps=steps, cfg=5.0)
    assert rel_err(high.model.process_latent_in(ours["samples"]), theirs) < 1e-5


def one_block_model(comfy_base):
    """The tiny Wan with its first block only, and an adapter of one block (saved beside the others): one block, so
    what a token reads is what its attention allows (with more, video tokens pass faces on to each other)."""
    import comfy.sd

    sd = tiny_concat_id_wan_state_dict(adaln=False, seed=3)
    one = {k: v for k, v in sd.items() if not k.startswith("blocks.1.")}
    torch.save(tiny_adapter_state_dict(sizes=WanConfig(dim=256, ffn_dim=512, num_heads=2, num_layers=1)),
               comfy_base / "models" / "multiid" / "Stand-In" / "one_block.ckpt")  # fmt: skip
    return comfy.sd.load_diffusion_model_state_dict(one)


def test_placed_faces_reach_only_the_video_tokens_inside_their_masks(
    comfy, node_classes, stand_in, wan_vae, comfy_base
):
    """Person 1 left, person 2 right: a token on the right is untouched when person 1's face changes, a token on
    the left changes; without placement both change (every token sees every face); with it, the authors'
    equations with the masks' attention rule."""
    left, right = torch.zeros(1, 64, 96), torch.zeros(1, 64, 96)
    left[:, :, :48], right[:, :, 48:] = 1.0, 1.0
    model = one_block_model(comfy_base)
    g = torch.Generator().manual_seed(8)
    x, context = torch.randn(1, 16, 3, 8, 12, generator=g), torch.randn(1, 512, 4096, generator=g)
    t = torch.tensor([700.0])

    def applied(first_seed: int, placed: bool):
        people = IdentitySet([random_identity(first_seed), random_identity(20)], [left, right], mode="masks")
        return apply(node_classes, model, wan_vae, people, "Stand-In/one_block.ckpt", regional=placed)[0]

    def predict(first_seed: int, placed: bool) -> torch.Tensor:
        m = applied(first_seed, placed)
        with torch.no_grad():
            return m.model.diffusion_model(x, t, context, transformer_options=m.model_options["transformer_options"])

    a, b = predict(11, True), predict(12, True)
    assert (a - b)[..., 6:].abs().max() == 0 and (a - b)[..., :6].abs().max() > 1e-4
    c, d = predict(11, False), predict(12, False)
    assert (c - d)[..., 6:].abs().max() > 1e-4
    placed = applied(11, True)
    faces = faces_of(stand_in, placed)
    inside = faces.regions(x)[0].reshape(2, -1) > 0.5
    lora = torch.load(comfy_base / "models" / "multiid" / "Stand-In" / "one_block.ckpt", weights_only=True)
    with torch.no_grad():
        theirs = release_forward(placed.model.diffusion_model, lora, x, t, context, face_list(faces.latents), inside)
    assert rel_err(a, theirs) < 1e-5


def test_loras_stack_in_either_order_and_reach_the_faces(comfy, node_classes, wan_vae, tmp_path):
    """A Wan LoRA from ComfyUI's loader before or after Apply Stand-In gives the same video."""
    import folder_paths
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(2)
    lora = {}
    for i in range(2):
        for name in ("self_attn.q", "cross_attn.v", "ffn.0"):
            out_dim = 512 if name == "ffn.0" else 256
            lora[f"diffusion_model.blocks.{i}.{name}.lora_A.weight"] = torch.randn(4, 256, generator=g) * 0.05
            lora[f"diffusion_model.blocks.{i}.{name}.lora_B.weight"] = torch.randn(out_dim, 4, generator=g) * 0.05
    folder = Path(folder_paths.get_folder_paths("loras")[0])
    folder.mkdir(parents=True, exist_ok=True)
    save_file(lora, str(folder / "wan_tiny_test_lora.safetensors"))
    loader = comfy.nodes.LoraLoaderModelOnly()
    identity = random_identity(6)
    name = "wan_tiny_test_lora.safetensors"
    before = apply(node_classes, loader.load_lora_model_only(unet(comfy), name, 1.0)[0], wan_vae, identity)[0]
    after = loader.load_lora_model_only(apply(node_classes, unet(comfy), wan_vae, identity)[0], name, 1.0)[0]
    plain = apply(node_classes, unet(comfy), wan_vae, identity)[0]
    positive, negative = prompts(2)
    latent = {"samples": torch.zeros(1, 16, 3, 8, 12)}
    runs = [comfy.nodes.common_ksampler(m, 1, 3, 5.0, "euler", "simple", positive, negative, latent)[0]["samples"]
            for m in (before, after, plain)]  # fmt: skip
    assert rel_err(runs[0], runs[1]) < 1e-5 and rel_err(runs[0], runs[2]) > 1e-3


def test_fp8_files_and_comfyuis_caches_run(comfy, node_classes, stand_in, wan_vae, MultiIDError):
    identity = random_identity(7)
    positive, negative = prompts(3)
    latent = {"samples": torch.zeros(1, 16, 3, 8, 12)}
    fp8 = apply(node_classes, unet(comfy, FP8, "fp8_e4m3fn"), wan_vae, identity)[0]
    assert fp8.model.diffusion_model.blocks[0].self_attn.q.weight.dtype == torch.float8_e4m3fn
    runs = {"fp8": comfy.nodes.common_ksampler(fp8, 1, 6, 5.0, "euler", "simple", positive, negative, latent)[0]}
    teacache = node_classes["MultiID_WanTeaCache"].execute(fp8, "0.14").result[0]
    runs["teacache"] = comfy.nodes.common_ksampler(teacache, 1, 6, 5.0, "euler", "simple", positive, negative, latent)[
        0
    ]
    easy = comfy.easycache.EasyCacheNode.execute(fp8, 0.2, 0.15, 0.95, False)[0]
    runs["easycache"] = comfy.nodes.common_ksampler(easy, 1, 6, 5.0, "euler", "simple", positive, negative, latent)[0]
    lazy = comfy.easycache.LazyCacheNode.execute(fp8, 1.0, 0.15, 0.95, False)[0]
    runs["lazycache"] = comfy.nodes.common_ksampler(lazy, 1, 6, 5.0, "euler", "simple", positive, negative, latent)[0]
    for name, run in runs.items():
        assert torch.isfinite(run["samples"]).all(), name
    assert 0 < rel_err(runs["teacache"]["samples"], runs["fp8"]["samples"]) < 0.5
    assert 0 < rel_err(runs["lazycache"]["samples"], runs["fp8"]["samples"]) < 0.5  # LazyCache reused steps
    import comfy.model_patcher

    other = comfy.model_patcher.ModelPatcher(torch.nn.Linear(2, 2), "cpu", "cpu")
    with pytest.raises(MultiIDError, match="works on the MODEL of Load Concat-ID Wan Model or Apply Stand-In"):
        node_classes["MultiID_WanTeaCache"].execute(other, "0.14")


def test_bad_input_is_refused_with_what_to_do(comfy, node_classes, wan_vae, comfy_base, tmp_path, MultiIDError):
    identity = random_identity(9)
    concat_id = node_classes["MultiID_LoadConcatIDWan"].execute("Concat-ID-Wan/first_stage.pt", "default").result[0]
    with pytest.raises(MultiIDError, match="takes a Wan text-to-video MODEL from Load Diffusion Model"):
        apply(node_classes, concat_id, wan_vae, identity)
    applied = apply(node_classes, unet(comfy), wan_vae, identity)[0]
    with pytest.raises(MultiIDError, match="already has Stand-In applied"):
        apply(node_classes, applied, wan_vae, identity)
    folder = comfy_base / "models" / "multiid" / "Stand-In"
    narrow = {k: v[:, :128] if k.endswith("down.weight") else v[:128] for k, v in adapter_weights(comfy_base).items()}
    torch.save(narrow, folder / "narrow_adapter.ckpt")
    with pytest.raises(MultiIDError, match=r"width 128 with 2 blocks .* this MODEL has width 256"):
        apply(node_classes, unet(comfy), wan_vae, identity, "Stand-In/narrow_adapter.ckpt")
    (folder / "truncated.ckpt").write_bytes((folder / "Stand-In_wan2.1_T2V_14B_ver1.0.ckpt").read_bytes()[:5000])
    with pytest.raises(MultiIDError, match="truncated.ckpt .*download it again"):
        apply(node_classes, unet(comfy), wan_vae, identity, "Stand-In/truncated.ckpt")
    torch.save({"blocks.0.self_attn.q.lora_A.weight": torch.zeros(4, 256)}, folder / "a_lora.ckpt")
    with pytest.raises(MultiIDError, match="not a Stand-In adapter .*ordinary LoRA"):
        apply(node_classes, unet(comfy), wan_vae, identity, "Stand-In/a_lora.ckpt")
    with pytest.raises(MultiIDError, match="was not found.*BowenXue/Stand-In"):
        apply(node_classes, unet(comfy), wan_vae, identity, "Stand-In/missing.ckpt")
    image_vae = SimpleNamespace(encode=lambda pixels: torch.zeros(1, 4, 1, 64, 64))
    with pytest.raises(MultiIDError, match="needs the Wan 2.1 VAE"):
        apply(node_classes, unet(comfy), image_vae, identity)
