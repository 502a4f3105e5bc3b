"""MultiID Placed References on ComfyUI's own Phantom (Load Diffusion Model on the tiny Phantom-Wan file, native
WanPhantomSubjectToVideo conditioning): unchanged without masks, the placed path equal to native Phantom where the
masks allow everything, really regional where they do not, and refusals that say what to do."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from tensors import rel_err

from multiid_core.routing import IdentitySet
from multiid_tools.tiny_models.identities import random_identity
from multiid_tools.tiny_models.wan import tiny_concat_id_wan_state_dict

PHANTOM = "Phantom-Wan-1_3B_fp32.safetensors"
PHANTOM_14B = "Phantom-Wan-14B_fp16.safetensors"
W, H, LENGTH = 96, 64, 9  # latents [1, 16, 3, 8, 12]


@pytest.fixture(scope="module")
def comfy(node_classes):
    import comfy.sd
    import comfy_extras.nodes_easycache
    import comfy_extras.nodes_wan

    import nodes

    return SimpleNamespace(nodes=nodes, sd=comfy.sd, wan=comfy_extras.nodes_wan, easycache=comfy_extras.nodes_easycache)


def phantom(comfy, name: str = PHANTOM, weight_dtype: str = "default"):
    return comfy.nodes.UNETLoader().load_unet(name, weight_dtype)[0]


def images(seed: int, count: int) -> torch.Tensor:
    return torch.rand(count, 80, 80, 3, generator=torch.Generator().manual_seed(seed))


def conditioning(comfy, wan_vae, reference_images, seed: int = 0):
    """Native WanPhantomSubjectToVideo: (positive, negative_text, negative_img_text, latent)."""
    g = torch.Generator().manual_seed(seed)
    positive, negative = [[torch.randn(1, 512, 4096, generator=g), {}]], [[torch.randn(1, 512, 4096, generator=g), {}]]
    return comfy.wan.WanPhantomSubjectToVideo.execute(
        positive, negative, wan_vae, W, H, LENGTH, 1, reference_images
    ).result


def place(node_classes, model, people, frames_per_person: str = ""):
    return node_classes["MultiID_PlacedReferencesPhantom"].execute(model, people, frames_per_person).result[0]


def halves():
    left, right = torch.zeros(1, H, W), torch.zeros(1, H, W)
    left[:, :, : W // 2], right[:, :, W // 2 :] = 1.0, 1.0
    return left, right


def ksampler(comfy, model, positive, negative, latent, steps: int = 3):
    return comfy.nodes.common_ksampler(model, 5, steps, 5.0, "euler", "simple", positive, negative, latent)[0][
        "samples"
    ]


def test_without_masks_the_model_is_native_phantom(comfy, node_classes, wan_vae):
    model = phantom(comfy)
    positive, negative, _, latent = conditioning(comfy, wan_vae, images(1, 2))
    people = IdentitySet([random_identity(1), random_identity(2)], [None, None])
    placed = place(node_classes, model, people)
    assert torch.equal(
        ksampler(comfy, placed, positive, negative, latent), ksampler(comfy, model, positive, negative, latent)
    )


def test_the_placed_path_is_native_phantom_where_the_masks_allow_everything(comfy, node_classes, wan_vae):
    """One person, two reference images, a mask over the whole frame: every token sees both images, as natively,
    but through the pack's regional path: KSampler with the three-branch conditioning equals native Phantom."""
    model = phantom(comfy)
    positive, negative_text, negative_img_text, latent = conditioning(comfy, wan_vae, images(2, 2))
    people = IdentitySet([random_identity(3)], [torch.ones(1, H, W)], mode="masks")
    placed = place(node_classes, model, people, "2")
    dit = placed.model.diffusion_model
    for negative in (negative_text, negative_img_text):
        native = ksampler(comfy, model, positive, negative, latent)
        calls = []
        hook = dit.patch_embedding.register_forward_hook(
            lambda m, args, out, calls=calls: calls.append(args[0].shape[2])
        )
        ours = ksampler(comfy, placed, positive, negative, latent)
        hook.remove()
        assert rel_err(ours, native) < 1e-5
        assert set(calls) == {3, 2}  # the pack's path: the video's 3 frames and the 2 references embedded apart


def test_a_token_outside_person_1s_mask_is_untouched_by_person_1s_images(comfy, node_classes, wan_vae):
    """One block (with more, video tokens pass what they saw on to each other): a token in the right half (person
    2's) does not change when person 1's image changes, a token in the left half does; unplaced, both change."""
    sd = {k: v for k, v in tiny_concat_id_wan_state_dict(adaln=False, seed=6).items() if not k.startswith("blocks.1.")}
    model = comfy.sd.load_diffusion_model_state_dict(sd)
    left, right = halves()
    people = IdentitySet([random_identity(1), random_identity(2)], [left, right], mode="masks")
    placed = place(node_classes, model, people)
    g = torch.Generator().manual_seed(9)
    x, t = torch.randn(1, 16, 3, 8, 12, generator=g), torch.tensor([600.0])
    second = images(4, 1)

    def predict(m, first_seed: int) -> torch.Tensor:
        positive = conditioning(comfy, wan_vae, torch.cat([images(first_seed, 1), second]))[0]
        refs = m.model.process_latent_in(positive[0][1]["time_dim_concat"])
        options = m.model_options["transformer_options"]
        with torch.no_grad():
            return m.model.diffusion_model(x, t, positive[0][0], time_dim_concat=refs, transformer_options=options)

    a, b = predict(placed, 10), predict(placed, 11)
    assert (a - b)[..., 6:].abs().max() == 0 and (a - b)[..., :6].abs().max() > 1e-4
    c, d = predict(model, 10), predict(model, 11)
    assert (c - d)[..., 6:].abs().max() > 1e-4


def tiny_wan_lora(name: str) -> str:
    import folder_paths
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(3)
    lora = {}
    for i in range(2):
        for module in ("self_attn.k", "cross_attn.q", "ffn.0"):
            out_dim = 512 if module == "ffn.0" else 256
            lora[f"diffusion_model.blocks.{i}.{module}.lora_A.weight"] = torch.randn(4, 256, generator=g) * 0.05
            lora[f"diffusion_model.blocks.{i}.{module}.lora_B.weight"] = torch.randn(out_dim, 4, generator=g) * 0.05
    folder = Path(folder_paths.get_folder_paths("loras")[0])
    folder.mkdir(parents=True, exist_ok=True)
    save_file(lora, str(folder / name))
    return name


def test_14b_fp8_loras_easycache_and_offloading(comfy, node_classes, wan_vae):
    """The 14B file in fp16 and fp8: placed where the masks allow everything it samples as native; a LoRA before
    or after the node gives the same video; EasyCache runs; ComfyUI's partial loading (lowvram: weights cast and
    LoRA-patched per layer as they are used) predicts what the fully loaded model does."""
    positive, negative, _, latent = conditioning(comfy, wan_vae, images(7, 2))
    everywhere = IdentitySet([random_identity(3)], [torch.ones(1, H, W)], mode="masks")
    for weight_dtype, bound in (("default", 1e-3), ("fp8_e4m3fn", 1e-2)):
        model = phantom(comfy, PHANTOM_14B, weight_dtype)
        placed = place(node_classes, model, everywhere, "2")
        native = ksampler(comfy, model, positive, negative, latent)
        assert rel_err(ksampler(comfy, placed, positive, negative, latent), native) < bound, weight_dtype

    name = tiny_wan_lora("phantom_tiny_test_lora.safetensors")
    loader = comfy.nodes.LoraLoaderModelOnly()
    left, right = halves()
    people = IdentitySet([random_identity(1), random_identity(2)], [left, right], mode="masks")
    before = place(node_classes, loader.load_lora_model_only(phantom(comfy), name, 1.0)[0], people)
    after = loader.load_lora_model_only(place(node_classes, phantom(comfy), people), name, 1.0)[0]
    plain = place(node_classes, phantom(comfy), people)
    runs = [ksampler(comfy, m, positive, negative, latent) for m in (before, after, plain)]
    assert rel_err(runs[0], runs[1]) < 1e-5 and rel_err(runs[0], runs[2]) > 1e-3

    easy = comfy.easycache.EasyCacheNode.execute(after, 1.0, 0.15, 0.95, False)[0]  # reuses some steps
    cached = ksampler(comfy, easy, positive, negative, latent, steps=6)
    assert torch.isfinite(cached).all()
    assert 0 < rel_err(cached, ksampler(comfy, after, positive, negative, latent, 6)) < 0.5  # steps were skipped

    g = torch.Generator().manual_seed(4)
    x, t = torch.randn(1, 16, 3, 8, 12, generator=g), torch.tensor([500.0])
    refs = after.model.process_latent_in(positive[0][1]["time_dim_concat"])
    options = after.model_options["transformer_options"]

    def predict() -> torch.Tensor:
        with torch.no_grad():
            return after.model.diffusion_model(x, t, positive[0][0], time_dim_concat=refs, transformer_options=options)

    after.load(torch.device("cpu"), lowvram_model_memory=0, full_load=True)
    full = predict()
    after.unpatch_model()
    after.load(torch.device("cpu"), lowvram_model_memory=1, full_load=False)
    assert any(getattr(m, "comfy_cast_weights", False) for m in after.model.diffusion_model.modules())
    partial = predict()
    after.unpatch_model()
    assert rel_err(partial, full) < 1e-5


def test_bad_input_is_refused_with_what_to_do(comfy, node_classes, wan_vae, MultiIDError):
    left, right = halves()
    people = IdentitySet([random_identity(1), random_identity(2)], [left, right], mode="masks")
    concat_id = node_classes["MultiID_LoadConcatIDWan"].execute("Concat-ID-Wan/first_stage.pt", "default").result[0]
    with pytest.raises(MultiIDError, match="takes the MODEL of a Phantom model from Load Diffusion Model"):
        place(node_classes, concat_id, people)
    overlapping = IdentitySet([random_identity(1), random_identity(2)], [left, torch.ones(1, H, W)], mode="masks")
    with pytest.raises(MultiIDError, match=r"overlap in \d+ pixels \(x 0-47, y 0-63\).*faces blend"):
        place(node_classes, phantom(comfy), overlapping)
    with pytest.raises(MultiIDError, match="gives 3 count.*for 2 people"):
        place(node_classes, phantom(comfy), people, "1,1,1")
    with pytest.raises(MultiIDError, match="each at least 1 .*no reference image"):
        place(node_classes, phantom(comfy), people, "2,0")
    with pytest.raises(MultiIDError, match="not a list of whole numbers"):
        place(node_classes, phantom(comfy), people, "one, two")
    placed = place(node_classes, phantom(comfy), people)
    positive, negative, _, latent = conditioning(comfy, wan_vae, images(5, 3))
    with pytest.raises(MultiIDError, match=r"encoded 3 reference image\(s\), but .* assigns 2"):
        ksampler(comfy, placed, positive, negative, latent, steps=1)
    plain = conditioning(comfy, wan_vae, None)
    with pytest.raises(MultiIDError, match="this conditioning has none"):
        ksampler(comfy, placed, plain[0], plain[1], plain[3], steps=1)
    with pytest.raises(MultiIDError, match="already has people placed"):
        place(node_classes, placed, people)
    square = IdentitySet([random_identity(1), random_identity(2)], [torch.ones(1, 64, 64), None], mode="masks")
    positive, negative, _, latent = conditioning(comfy, wan_vae, images(5, 2))
    with pytest.raises(MultiIDError, match=r"mask for identity 1 is 64x64 and the video 96x64.*video's size"):
        ksampler(comfy, place(node_classes, phantom(comfy), square), positive, negative, latent, steps=1)
