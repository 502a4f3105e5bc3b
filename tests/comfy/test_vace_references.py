"""MultiID VACE References on ComfyUI's own VACE (Load Diffusion Model on the tiny VACE file): several reference
images in VACE's order and preparation, native WanVaceToVideo's conditioning for one, the people placed (regional
in both the main and the VACE blocks), and refusals."""

from types import SimpleNamespace

import pytest
import torch
from tensors import rel_err

from multiid_core.routing import IdentitySet
from multiid_core.wan.checkpoint import WanConfig
from multiid_tools.tiny_models.identities import random_identity
from multiid_tools.tiny_models.wan import tiny_vace_state_dict

VACE = "wan2.1_vace_14B_fp16.safetensors"
W, H, LENGTH = 96, 64, 9  # latents [1, 16, 3, 8, 12], plus the reference frames


@pytest.fixture(scope="module")
def comfy(node_classes):
    import comfy.latent_formats
    import comfy.sd
    import comfy_extras.nodes_wan

    import nodes

    return SimpleNamespace(nodes=nodes, sd=comfy.sd, wan=comfy_extras.nodes_wan, formats=comfy.latent_formats)


def prompts(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(1, 512, 4096, generator=g), {}]], [[torch.randn(1, 512, 4096, generator=g), {}]]


def references(node_classes, model, wan_vae, images, people=None, frames_per_person=""):
    positive, negative = prompts()
    node = node_classes["MultiID_VaceReferences"]
    return node.execute(model, positive, negative, wan_vae, W, H, LENGTH, 1, 1.0, images, None, None, people,
                        frames_per_person).result  # fmt: skip


def halves():
    left, right = torch.zeros(1, H, W), torch.zeros(1, H, W)
    left[:, :, : W // 2], right[:, :, W // 2 :] = 1.0, 1.0
    return left, right


def sample(comfy, model, positive, negative, latent, steps: int = 2, cfg: float = 1.0):
    out = comfy.nodes.common_ksampler(model, 3, steps, cfg, "euler", "simple", positive, negative, latent)
    return out[0]["samples"]


def test_several_references_in_vaces_order_fitted_on_white(comfy, node_classes, wan_vae):
    model = comfy.nodes.UNETLoader().load_unet(VACE, "default")[0]
    images = torch.rand(2, 40, 60, 3, generator=torch.Generator().manual_seed(1))
    _, positive, negative, latent, trim = references(node_classes, model, wan_vae, images)
    frames, mask = positive[0][1]["vace_frames"][-1], positive[0][1]["vace_mask"][-1]
    assert trim == 2 and latent["samples"].shape == (1, 16, 3 + 2, 8, 12)
    assert frames.shape[2] == 3 + 2 and mask.shape[2] == 3 + 2 and (mask[:, :, :2] == 0).all()
    for k in range(2):  # fitted whole (60x40 -> 96x64: no bars here), encoded one by one, zeros as the reactive half
        canvas = torch.ones(1, 3, H, W)
        canvas[:, :, :, :] = torch.nn.functional.interpolate(images[k : k + 1].permute(0, 3, 1, 2), size=(64, 96),
                                                             mode="bilinear", align_corners=False)  # fmt: skip
        encoded = wan_vae.encode(canvas.permute(0, 2, 3, 1))
        assert torch.equal(frames[:, :16, k : k + 1], encoded.to(frames))
        assert torch.equal(frames[:, 16:, k : k + 1], comfy.formats.Wan21().process_out(torch.zeros_like(encoded)))
    tall = torch.rand(1, 64, 32, 3)  # narrower than the frame: white bars left and right, as VACE pads
    _, positive, _, _, _ = references(node_classes, model, wan_vae, tall)
    assert positive[0][1]["vace_frames"][-1].shape[2] == 4


def test_one_reference_at_the_videos_size_is_native_wan_vace_to_video(comfy, node_classes, wan_vae):
    model = comfy.nodes.UNETLoader().load_unet(VACE, "default")[0]
    image = torch.rand(1, H, W, 3, generator=torch.Generator().manual_seed(2))
    placed_model, positive, negative, latent, trim = references(node_classes, model, wan_vae, image)
    native = comfy.wan.WanVaceToVideo.execute(*prompts(), wan_vae, W, H, LENGTH, 1, 1.0, None, None, image).result
    assert placed_model is model and trim == native[3] == 1
    assert torch.equal(positive[0][1]["vace_frames"][-1], native[0][0][1]["vace_frames"][-1])
    assert torch.equal(positive[0][1]["vace_mask"][-1], native[0][0][1]["vace_mask"][-1])
    assert latent["samples"].shape == native[2]["samples"].shape


def test_placed_people_where_the_masks_allow_everything_sample_as_native(comfy, node_classes, wan_vae, monkeypatch):
    """One person, two images, a mask over the whole frame: the regional path through both the main and the VACE
    blocks equals native VACE sampling."""
    import sys

    placement = sys.modules[node_classes["MultiID_VaceReferences"].__module__.rsplit(".", 1)[0] + ".model"]
    restricted = []
    original = placement.regional_attention
    monkeypatch.setattr(placement, "regional_attention", lambda *a, **k: restricted.append(1) or original(*a, **k))
    model = comfy.nodes.UNETLoader().load_unet(VACE, "default")[0]
    images = torch.rand(2, H, W, 3, generator=torch.Generator().manual_seed(3))
    people = IdentitySet([random_identity(1)], [torch.ones(1, H, W)], mode="masks")
    placed, positive, negative, latent, _ = references(node_classes, model, wan_vae, images, people, "2")
    assert placed is not model
    native = sample(comfy, model, positive, negative, latent, cfg=5.0)
    assert restricted == []
    ours = sample(comfy, placed, positive, negative, latent, cfg=5.0)
    assert rel_err(ours, native) < 1e-5
    assert len(restricted) >= 2 * 2 * 2  # every attention call of the two steps (main and VACE blocks, 2 branches)


def test_a_token_outside_person_1s_mask_is_untouched_by_person_1s_image(comfy, node_classes, wan_vae):
    """One main and one VACE block: the right half (person 2) does not change when person 1's image does."""
    sd = tiny_vace_state_dict(seed=8, sizes=WanConfig(dim=256, ffn_dim=512, num_heads=2, num_layers=1))
    model = comfy.sd.load_diffusion_model_state_dict(sd)
    left, right = halves()
    people = IdentitySet([random_identity(1), random_identity(2)], [left, right], mode="masks")
    g = torch.Generator().manual_seed(4)
    second = torch.rand(1, H, W, 3, generator=g)

    def run(first_seed: int, placed_people) -> torch.Tensor:
        first = torch.rand(1, H, W, 3, generator=torch.Generator().manual_seed(first_seed))
        m, positive, negative, latent, trim = references(node_classes, model, wan_vae, torch.cat([first, second]),
                                                         placed_people)  # fmt: skip
        return sample(comfy, m, positive, negative, latent, steps=1)[:, :, trim:]

    a, b = run(10, people), run(11, people)
    assert (a - b)[..., 6:].abs().max() == 0 and (a - b)[..., :6].abs().max() > 1e-4
    c, d = run(10, None), run(11, None)
    assert (c - d)[..., 6:].abs().max() > 1e-4


def test_bad_input_is_refused_with_what_to_do(comfy, node_classes, wan_vae, MultiIDError):
    left, right = halves()
    people = IdentitySet([random_identity(1), random_identity(2)], [left, right], mode="masks")
    images = torch.rand(2, H, W, 3)
    plain_wan = comfy.nodes.UNETLoader().load_unet("wan2.1_t2v_14B_bf16.safetensors", "default")[0]
    with pytest.raises(MultiIDError, match="places people on a Wan VACE model .* this MODEL is WanModel"):
        references(node_classes, plain_wan, wan_vae, images, people)
    vace = comfy.nodes.UNETLoader().load_unet(VACE, "default")[0]
    with pytest.raises(MultiIDError, match=r"2 reference image\(s\) came, and frames_per_person gives 3"):
        references(node_classes, vace, wan_vae, images, people, "1,2")
    overlapping = IdentitySet([random_identity(1), random_identity(2)], [left, torch.ones(1, H, W)], mode="masks")
    with pytest.raises(MultiIDError, match="overlap in .* pixels"):
        references(node_classes, vace, wan_vae, images, overlapping)
    positive, negative = prompts()
    with pytest.raises(MultiIDError, match="length must be 4k\\+1 frames .* got 10; use 9 or 13"):
        node_classes["MultiID_VaceReferences"].execute(vace, positive, negative, wan_vae, W, H, 10, 1, 1.0, images,
                                                       None, None, people, "")  # fmt: skip
