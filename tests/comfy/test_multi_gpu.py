"""MultiID Multi-GPU on CPU ranks (Ray actors over gloo): the latents (and Ingredients' routing) of one process, to
1e-5 in fp32, for every model family and the three ways a call is spread: guidance parallel (2 ranks), Ulysses
(2 ranks, guidance off) and both (4 ranks).

The tests run plan by plan (a module-scoped parameter): each plan's ranks start once and load one model after
another, as they do for a user switching models. The single-process runs are made once and kept.
"""

import gc
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from cogvideox_runs import load, prompts, sample, write_concat_id_with, write_with
from comfy_env import pack_error
from tensors import rel_err

from multiid_tools.tiny_models.cogvideox import write_tiny_consisid_snapshot, write_tiny_ingredients_snapshot
from multiid_tools.tiny_models.identities import random_identity

HEADS = dict(num_attention_heads=4, attention_head_dim=48, LFE_output_dim=128)  # 4 heads: Ulysses up to 4
PLANS = {  # the node's world_size, guidance_parallel, ring_degree (Ulysses degree automatic)
    "guidance 2": (2, True, 1),
    "ulysses 2": (2, False, 1),
    "guidance 2 x ulysses 2": (4, True, 1),
}
RING_PLANS = {"ring 2": (2, False, 2), "guidance 2 x ring 2": (4, True, 2)}
STEPS = 3
SMALL = dict(width=160, height=128, frames=5)  # 2 x 8 x 10 tokens: 160 per branch
UNEVEN = dict(width=144, height=112, frames=9)  # 3 x 7 x 9 = 189 video tokens: 95 + 94 over 2 ranks
WAN_SIZE = dict(width=64, height=48, length=9)  # 3 x 3 x 4 video tokens and 12 per reference
WAN_PLACED = dict(width=80, height=48, length=9)  # 45 video tokens and 2 x 15 of references: 38 + 37 over 2 ranks
LINEAR_TIME = "multiid_linear_time"
KSAMPLERS = {"guidance 2": "cogvideox_dpm", "ulysses 2": "cogvideox_ddim", "guidance 2 x ulysses 2": "cogvideox_dpm"}

SINGLE: dict[str, tuple] = {}  # case -> the one-process result, made by the first plan that needs it
ERRORS: dict[str, float] = {}  # "case / plan" -> rel_err, printed at the end


@pytest.fixture(scope="module", params=list(PLANS))
def plan(request) -> str:
    return request.param


def ulysses(plan: str) -> int:
    world, guidance, ring = (PLANS | RING_PLANS)[plan]
    return world // (2 if guidance else 1) // ring


class Groups:
    """One parallel MODEL at a time. The ranks of a plan stay for the next model with that plan (which they load in
    place of the last), so each plan starts its Ray actors once."""

    def __init__(self, node_classes) -> None:
        self.node = node_classes["MultiID_MultiGPU"]
        self.runtime = sys.modules[self.node.__module__.rsplit(".", 1)[0] + ".engine"].RUNTIME
        self.key, self.model = None, None
        self.started: list[tuple[str, float]] = []

    def get(self, name: str, model, plan: str):
        if self.key != (name, plan):
            world, guidance, ring = (PLANS | RING_PLANS)[plan]
            before = self.runtime.pool.actors if self.runtime.pool else []
            start = time.monotonic()
            parallel = self.node.execute(
                model=model, world_size=world, guidance_parallel=guidance, ulysses_degree=0, ray_address="",
                devices="cpu", ring_degree=ring,
            ).result[0]  # fmt: skip
            self.started.append((f"{name} / {plan}", time.monotonic() - start))
            pool = self.runtime.pool
            assert (len(pool.actors), pool.plan.ulysses, pool.plan.ring) == (world, ulysses(plan), ring)
            assert pool.holds(parallel.model.diffusion_model.parallel)
            if self.key is not None and self.key[1] == plan:
                assert pool.actors == before  # the same plan's ranks served the next model
            self.key, self.model = (name, plan), parallel
        return self.model

    def drop(self) -> None:
        """Lets go of the last parallel MODEL: garbage collection ends the ranks (and Ray, started here)."""
        self.key, self.model = None, None
        gc.collect()


@pytest.fixture(scope="module")
def groups(node_classes):
    import ray

    ours = not ray.is_initialized()
    groups = Groups(node_classes)
    yield groups
    groups.drop()
    print("\ngroup starts:", ", ".join(f"{name} {seconds:.1f} s" for name, seconds in groups.started))
    print("rel_err:", "\n  ".join(["", *(f"{case}: {error:.2e}" for case, error in ERRORS.items())]))
    if ours:
        assert not ray.is_initialized()  # dropping the last parallel MODEL ended its ranks and the Ray started here


def multiid_folder() -> Path:
    import folder_paths

    return Path(folder_paths.get_folder_paths("multiid")[0])


@pytest.fixture(scope="module")
def consisid(node_classes):
    write_with(write_tiny_consisid_snapshot, multiid_folder() / "ConsisID-4heads", **HEADS)
    return load(node_classes, "ConsisID-4heads")


@pytest.fixture(scope="module")
def ingredients(node_classes):
    write_with(write_tiny_ingredients_snapshot, multiid_folder() / "Ingredients-4heads", **HEADS)
    loaded = load(node_classes, "Ingredients-4heads")
    assert loaded[0].model.diffusion_model.config.num_attention_heads == 4
    return loaded


@pytest.fixture(scope="module")
def concat_id(node_classes):
    folder = multiid_folder()
    checkpoint = write_concat_id_with(folder / "Concat-ID-4heads", folder / "Concat-ID" / "vae" / "3d-vae.pt", **HEADS)
    loaded = load(node_classes, f"Concat-ID-4heads/{checkpoint.name}")
    assert loaded[0].model.diffusion_model.config.num_attention_heads == 4
    return loaded


@pytest.fixture(scope="module")
def wan(node_classes):
    import nodes

    model = node_classes["MultiID_LoadConcatIDWan"].execute("Concat-ID-Wan/second_stage_adaln.pt", "default").result[0]
    vae = nodes.VAELoader().load_vae("wan_2.1_vae.safetensors")[0]
    return model, vae


def once(case: str, run):
    if case not in SINGLE:
        SINGLE[case] = run()
    return SINGLE[case]


def compare(case: str, plan: str, got: torch.Tensor, expected: torch.Tensor) -> None:
    error = rel_err(got, expected)
    ERRORS[f"{case} / {plan}"] = error
    assert got.shape == expected.shape
    assert error < 1e-5, f"{case} / {plan}: rel_err {error:.2e}"


@contextmanager
def on_the_ranks(model):
    """Fails a run in which the local diffusion model computes anything: the parallel MODEL's calls go to the
    ranks (the single-process reference runs outside)."""

    def refuse(*args, **kwargs):
        raise AssertionError("the local model ran: the parallel MODEL did not send this call to the ranks")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(model.model.diffusion_model), "forward", refuse)
        yield


def two_people(pack, per_branch: bool = False):
    return pack.routing.IdentitySet([random_identity(1), random_identity(2)], [None, None], per_branch=per_branch)


def single_and_parallel(groups, plan: str, case: str, name: str, model, run) -> tuple:
    """`run` on the MODEL in this process (once per case) and on the parallel MODEL of `name` for `plan`."""
    single = once(case, lambda: run(model))
    parallel = groups.get(name, model, plan)
    with on_the_ranks(model):
        return single, run(parallel)


# --------------------------------------------------------------------------------------------- CogVideoX family


def test_consisid(pack, groups, consisid, plan):
    def run(model):
        return sample(pack, (model, consisid[1]), random_identity(1), prompts(), steps=STEPS, size=SMALL)

    single, parallel = single_and_parallel(groups, plan, "consisid", "consisid", consisid[0], run)
    compare("consisid", plan, parallel[0], single[0])


def test_consisid_through_identity_conditioning_and_ksampler(node_classes, groups, consisid, plan):
    sampler = KSAMPLERS[plan]
    conditioning = node_classes["MultiID_IdentityConditioning"]
    positive, negative, latent = conditioning.execute(
        *consisid, *prompts(1), random_identity(3), SMALL["width"], SMALL["height"], SMALL["frames"], 1.0, 4
    ).result

    def run(model):
        return node_classes["KSampler"]().sample(
            model, 11, STEPS, 6.0, sampler, "multiid_trailing", positive, negative, latent
        )[0]["samples"]

    case = f"consisid ksampler {sampler}"
    single, parallel = single_and_parallel(groups, plan, case, "consisid", consisid[0], run)
    compare(case, plan, parallel, single)


@pytest.mark.parametrize("plan", [p for p in PLANS if ulysses(p) > 1], indirect=True)  # plans that split tokens
def test_consisid_with_tokens_the_ulysses_degree_does_not_divide(pack, groups, consisid, plan):
    assert 3 * 7 * 9 % ulysses(plan)  # the slices the ranks hold differ by one token

    def run(model):
        return sample(pack, (model, consisid[1]), random_identity(1), prompts(2), steps=2, size=UNEVEN)

    single, parallel = single_and_parallel(groups, plan, "consisid 189 tokens", "consisid", consisid[0], run)
    compare("consisid 189 tokens", plan, parallel[0], single[0])


def test_ingredients_two_people_with_the_released_routing(pack, groups, ingredients, plan):
    """The unconditional branch routes both: with guidance parallel its ranks send the identity residuals to
    the conditional ones (PeerResiduals). Routing each branch on its own rank would not give these latents."""
    people = two_people(pack)
    assert not people.per_branch and people.mode == "learned"

    def run(model, people=people):
        return sample(pack, (model, ingredients[1]), people, prompts(), steps=STEPS, size=SMALL)

    single, (latents, routing, grid) = single_and_parallel(
        groups, plan, "ingredients", "ingredients", ingredients[0], run
    )
    compare("ingredients", plan, latents, single[0])
    assert routing.shape == single[1].shape == (grid.tokens, 2)
    compare("ingredients routing", plan, routing, single[1])
    assert 0.05 < routing[:, 0].mean() < 0.95  # both people are routed somewhere: the maps carry information
    per_branch = once("ingredients per branch", lambda: run(ingredients[0], two_people(pack, per_branch=True)))
    assert rel_err(per_branch[0], single[0]) > 1e-4  # far outside the tolerance: the routing crossed ranks


def test_concat_id_two_people(pack, groups, concat_id, plan):
    """Two clean reference frames after the video (5 x 7 x 9 = 315 tokens: uneven over 2 ranks)."""

    def run(model):
        return sample(pack, (model, concat_id[1]), two_people(pack), prompts(), steps=STEPS, size=UNEVEN, seed=1)

    single, parallel = single_and_parallel(groups, plan, "concat-id", "concat-id", concat_id[0], run)
    compare("concat-id", plan, parallel[0], single[0])


# -------------------------------------------------------------------------------------------------- Concat-ID-Wan


def wan_prompts(seed: int = 0) -> tuple[list, list]:
    g = torch.Generator().manual_seed(seed)
    return tuple([[torch.randn(1, 512, 4096, generator=g), {}]] for _ in range(2))


def wan_reference(node_classes, vae, identity, size, references="one (as released)"):
    return (
        node_classes["MultiID_ConcatIDWanReference"]
        .execute(*wan_prompts(), vae, identity, size["width"], size["height"], size["length"], 1, references, True)
        .result
    )


def wan_ksampler(positive, negative, latent, steps=STEPS):
    import nodes

    def run(model):
        out = nodes.common_ksampler(model, 0, steps, 5.0, "euler", LINEAR_TIME, positive, negative, latent)
        return out[0]["samples"]

    return run


def test_concat_id_wan(node_classes, groups, wan, plan):
    """One reference (36 video + 12 reference tokens: with Ulysses the second rank holds both kinds)."""
    positive, negative, _, latent, _ = wan_reference(node_classes, wan[1], random_identity(4), WAN_SIZE)
    run = wan_ksampler(positive, negative, latent)
    single, parallel = single_and_parallel(groups, plan, "concat-id-wan", "wan", wan[0], run)
    compare("concat-id-wan", plan, parallel, single)


def test_concat_id_wan_with_placed_references(node_classes, groups, wan, plan):
    """Two references, each attended to by one half of the video (regions); 75 tokens: uneven over 2 ranks."""
    left, right = torch.zeros(1, 48, 80), torch.zeros(1, 48, 80)
    left[..., :40], right[..., 40:] = 1.0, 1.0
    placed = SimpleNamespace(identities=[random_identity(5), random_identity(6)], masks=[left, right])
    positive, negative, _, latent, _ = wan_reference(
        node_classes, wan[1], placed, WAN_PLACED, "all identities (experimental)"
    )
    assert positive[0][1]["concat_id_regions"].shape == (1, 2, 3, 3, 5)
    run = wan_ksampler(positive, negative, latent, steps=2)
    single, parallel = single_and_parallel(groups, plan, "concat-id-wan placed", "wan", wan[0], run)
    compare("concat-id-wan placed", plan, parallel, single)


# ------------------------------------------------------------------------------ ComfyUI's own Phantom, placed


@pytest.fixture(scope="module")
def phantom(node_classes):
    """Phantom-Wan from ComfyUI's Load Diffusion Model: no reload factory in 0.3.75, the ranks find its file."""
    import nodes

    model = nodes.UNETLoader().load_unet("Phantom-Wan-1_3B_fp32.safetensors", "default")[0]
    return model, nodes.VAELoader().load_vae("wan_2.1_vae.safetensors")[0]


def phantom_ksampler(node_classes, phantom, size, masks, steps=2):
    """Placed References (a mask each, or none: native Phantom) on the MODEL, then KSampler on native
    WanPhantomSubjectToVideo's conditioning with two reference images."""
    import comfy_extras.nodes_wan

    from multiid_core.routing import IdentitySet

    people = IdentitySet([random_identity(7), random_identity(8)], masks, mode="masks")
    placed = node_classes["MultiID_PlacedReferencesPhantom"].execute(phantom[0], people, "").result[0]
    images = torch.rand(2, 64, 64, 3, generator=torch.Generator().manual_seed(5))
    positive, negative, _, latent = comfy_extras.nodes_wan.WanPhantomSubjectToVideo.execute(
        *wan_prompts(3), phantom[1], size["width"], size["height"], size["length"], 1, images
    ).result
    return placed, wan_ksampler(positive, negative, latent, steps=steps)


def test_phantom_native_and_placed(node_classes, groups, phantom, plan):
    """Native Phantom (no masks: 36 video + 2 x 12 reference tokens) and two people placed (left and right halves:
    45 + 2 x 15, uneven over 2 ranks), each equal to the one-process run."""
    placed, run = phantom_ksampler(node_classes, phantom, WAN_SIZE, [None, None])
    single, parallel = single_and_parallel(groups, plan, "phantom", "phantom", placed, run)
    compare("phantom", plan, parallel, single)
    left, right = torch.zeros(1, 48, 80), torch.zeros(1, 48, 80)
    left[..., :40], right[..., 40:] = 1.0, 1.0
    placed, run = phantom_ksampler(node_classes, phantom, WAN_PLACED, [left, right])
    single, parallel = single_and_parallel(groups, plan, "phantom placed", "phantom placed", placed, run)
    compare("phantom placed", plan, parallel, single)


# -------------------------------------------------------------------------------------- Stand-In on Wan 14B


@pytest.fixture(scope="module")
def stand_in(node_classes):
    """Wan2.1-T2V-14B's tiny bf16 file from ComfyUI's Load Diffusion Model, and the Wan VAE."""
    import nodes

    model = nodes.UNETLoader().load_unet("wan2.1_t2v_14B_bf16.safetensors", "default")[0]
    return model, nodes.VAELoader().load_vae("wan_2.1_vae.safetensors")[0]


def test_stand_in_one_face_and_two_people_placed(node_classes, groups, stand_in, plan):
    """Apply Stand-In's MODEL: one face (36 video + 1024 face tokens), then two faces placed by masks (45 + 2 x 1024);
    the ranks compute the faces' keys at every call, the one process keeps them after the first."""
    left, right = torch.zeros(1, 48, 80), torch.zeros(1, 48, 80)
    left[..., :40], right[..., 40:] = 1.0, 1.0
    cases = {
        "stand-in": (random_identity(9), (3, 3, 4)),
        "stand-in placed": (SimpleNamespace(identities=[random_identity(5), random_identity(6)], masks=[left, right]),
                            (3, 3, 5)),
    }  # fmt: skip
    for case, (people, grid) in cases.items():
        applied = (
            node_classes["MultiID_ApplyStandIn"]
            .execute(stand_in[0], "Stand-In/Stand-In_wan2.1_T2V_14B_ver1.0.ckpt", stand_in[1], people, True)
            .result[0]
        )
        latent = {"samples": torch.zeros(1, 16, *grid[:1], grid[1] * 2, grid[2] * 2)}
        run = wan_ksampler(*wan_prompts(4), latent, steps=2)
        single, parallel = single_and_parallel(groups, plan, case, case, applied, run)
        compare(case, plan, parallel, single)


def test_stand_in_wan22_experts_take_turns_on_the_ranks(node_classes, groups):
    """Wan2.2's two experts, each with its Stand-In adapter and its own Multi-GPU node, in two KSamplerAdvanced: the
    ranks load the high expert, then the low one (the same ranks), as the single process switches at step 2 of 4."""
    import nodes

    identity, latent = random_identity(7), {"samples": torch.zeros(1, 16, 3, 6, 8)}
    positive, negative = wan_prompts(5)
    experts = []
    for file, adapter in (("high_noise", "high"), ("low_noise", "low")):
        model = nodes.UNETLoader().load_unet(f"wan2.2_t2v_{file}_14B_fp8_scaled.safetensors", "default")[0]
        vae = nodes.VAELoader().load_vae("wan_2.1_vae.safetensors")[0]
        experts.append(
            node_classes["MultiID_ApplyStandIn"]
            .execute(model, f"Stand-In/Stand-In_wan2.2_T2V_A14B_{adapter}.ckpt", vae, identity, True)
            .result[0]
        )

    def run(high, low):
        sampler = nodes.KSamplerAdvanced()
        common = dict(steps=4, cfg=5.0, sampler_name="euler", scheduler=LINEAR_TIME, positive=positive,
                      negative=negative)  # fmt: skip
        mid = sampler.sample(high, "enable", 3, latent_image=latent, start_at_step=0, end_at_step=2,
                             return_with_leftover_noise="enable", **common)[0]  # fmt: skip
        return sampler.sample(low, "disable", 3, latent_image=mid, start_at_step=2, end_at_step=10000,
                              return_with_leftover_noise="disable", **common)[0]["samples"]  # fmt: skip

    single = run(*experts)
    high = groups.get("stand-in wan2.2 high", experts[0], "guidance 2")
    low = groups.node.execute(
        model=experts[1], world_size=2, guidance_parallel=True, ulysses_degree=0, ray_address="", devices="cpu",
        ring_degree=1,
    ).result[0]  # fmt: skip
    pool = groups.runtime.pool
    with on_the_ranks(experts[0]), on_the_ranks(experts[1]):
        parallel = run(high, low)
    assert pool is groups.runtime.pool and pool.holds(low.model.diffusion_model.parallel)
    compare("stand-in wan2.2 experts", "guidance 2", parallel, single)


# ------------------------------------------------------------------------------------- ring attention, LoRAs


@pytest.fixture(scope="module", params=list(RING_PLANS))
def ring_plan(request) -> str:
    return request.param


def test_ring_attention(pack, groups, consisid, ingredients, ring_plan):
    """Keys and values around a ring of 2 (160 tokens: 80 each), alone and beside guidance parallel."""

    def run_consisid(model):
        return sample(pack, (model, consisid[1]), random_identity(1), prompts(), steps=STEPS, size=SMALL)

    def run_ingredients(model):
        return sample(pack, (model, ingredients[1]), two_people(pack), prompts(), steps=STEPS)

    single, parallel = single_and_parallel(groups, ring_plan, "consisid", "consisid", consisid[0], run_consisid)
    compare("consisid", ring_plan, parallel[0], single[0])
    single, parallel = single_and_parallel(
        groups, ring_plan, "ingredients", "ingredients", ingredients[0], run_ingredients
    )
    compare("ingredients", ring_plan, parallel[0], single[0])
    compare("ingredients routing", ring_plan, parallel[1], single[1])


def test_ring_attention_concat_id_wan(node_classes, groups, wan):
    """36 video + 12 reference tokens in two chunks of 24 (the second holds both kinds)."""
    positive, negative, _, latent, _ = wan_reference(node_classes, wan[1], random_identity(4), WAN_SIZE)
    run = wan_ksampler(positive, negative, latent)
    single, parallel = single_and_parallel(groups, "ring 2", "concat-id-wan", "wan", wan[0], run)
    compare("concat-id-wan", "ring 2", parallel, single)


def test_ring_attention_phantom(node_classes, groups, phantom):
    """Native Phantom: 36 video + 24 reference tokens in two chunks of 30 (regions need ring degree 1)."""
    placed, run = phantom_ksampler(node_classes, phantom, WAN_SIZE, [None, None])
    single, parallel = single_and_parallel(groups, "ring 2", "phantom", "phantom", placed, run)
    compare("phantom", "ring 2", parallel, single)


def test_ring_attention_is_refused_where_tokens_attend_only_to_some(node_classes, groups, stand_in):
    """Stand-In's faces attend only to themselves: a ring cannot restrict that, so the ranks refuse, and stay."""
    applied = (
        node_classes["MultiID_ApplyStandIn"]
        .execute(stand_in[0], "Stand-In/Stand-In_wan2.1_T2V_14B_ver1.0.ckpt", stand_in[1], random_identity(9), True)
        .result[0]
    )
    parallel = groups.get("stand-in", applied, "ring 2")
    actors = list(groups.runtime.pool.actors)
    run = wan_ksampler(*wan_prompts(4), {"samples": torch.zeros(1, 16, 3, 6, 8)}, steps=1)
    with pytest.raises(pack_error(node_classes), match="Stand-In here restricts which tokens attend to which"):
        run(parallel)
    assert groups.runtime.pool.actors == actors


def test_a_ring_that_does_not_cut_the_tokens_evenly_is_refused_and_the_ranks_stay(node_classes, pack, groups, consisid):
    parallel = groups.get("consisid", consisid[0], "ring 2")
    actors = list(groups.runtime.pool.actors)
    with pytest.raises(pack_error(node_classes), match="Ring degree 2 needs the 189 video tokens to split into 2"):
        sample(pack, (parallel, consisid[1]), random_identity(1), prompts(), steps=1, size=UNEVEN)
    assert groups.key == ("consisid", "ring 2")
    assert groups.runtime.pool.actors == actors  # every rank refused before any exchange: nobody restarts
    out, _, _ = sample(pack, (parallel, consisid[1]), random_identity(1), prompts(), steps=STEPS, size=SMALL)
    compare("consisid after a refusal", "ring 2", out, SINGLE["consisid"][0])


def test_loras_reach_every_rank(node_classes, pack, groups, consisid):
    """A LoRA loaded before the node is applied by each rank: the parallel run equals the single one with it, and
    differs from the run without it."""
    import folder_paths
    from safetensors.torch import save_file

    layers = ("transformer_blocks.0.attn1.to_q", "transformer_blocks.1.ff.net.2")
    weights = consisid[0].model.diffusion_model.state_dict()
    g = torch.Generator().manual_seed(0)
    tensors = {}
    for layer in layers:
        out_dim, in_dim = weights[f"{layer}.weight"].shape
        tensors[f"transformer.{layer}.lora_A.weight"] = torch.randn(2, in_dim, generator=g) * 0.3
        tensors[f"transformer.{layer}.lora_B.weight"] = torch.randn(out_dim, 2, generator=g) * 0.3
    folder = Path(folder_paths.get_folder_paths("loras")[0])
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, folder / "multi_gpu_test.safetensors")
    (with_lora,) = node_classes["LoraLoaderModelOnly"]().load_lora_model_only(
        consisid[0], "multi_gpu_test.safetensors", 1.0
    )

    def run(model):
        return sample(pack, (model, consisid[1]), random_identity(1), prompts(), steps=STEPS, size=SMALL)

    single, parallel = single_and_parallel(groups, "guidance 2", "consisid lora", "consisid lora", with_lora, run)
    compare("consisid lora", "guidance 2", parallel[0], single[0])
    assert rel_err(single[0], once("consisid", lambda: run(consisid[0]))[0]) > 1e-3  # the LoRA changes the video
