"""Ingredients' routing, mask routing, the shared first frame, and Ingredients' loading quirks.

Sampling several people on the native MODEL: tests/comfy/test_cogvideox_routing.py.
"""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from tensors import rel_err

from multiid_core.canvas import canvas_for_faces, row_boxes
from multiid_core.cogvideox.checkpoint import load_snapshot
from multiid_core.cogvideox.transformer import CogVideoXConfig, CogVideoXTransformer
from multiid_core.errors import MultiIDError
from multiid_core.families import INGREDIENTS
from multiid_core.routing import (
    IdentityInjection,
    RoutingRecorder,
    TokenGrid,
    assign_tokens,
    coverage_matrix,
    latent_frame_ranges,
    mask_coverage,
    routing_map,
)
from multiid_tools.tiny_models.cogvideox import TINY_TRANSFORMER, write_tiny_ingredients_snapshot

CONFIG = CogVideoXConfig.from_dict({**TINY_TRANSFORMER, "num_layers": 4, "num_routers": 2})


@pytest.fixture(scope="module")
def transformer():
    torch.manual_seed(0)
    model = CogVideoXTransformer(CONFIG).eval()
    with torch.no_grad():  # sharpen the router so identities really differ in weight
        for router in model.router:
            router.to_q.weight.mul_(8)
    return model


def inputs(n: int = 2, batch: int = 2, tokens: int = 60, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    faces = torch.randn(n, CONFIG.LFE_num_querie, CONFIG.cross_attn_kv_dim, generator=g)
    video = torch.randn(batch, tokens, CONFIG.inner_dim, generator=g)
    return faces, video


def released_residual(model, k, faces, video, scale):
    """Ingredients' transformer loop, as released: route and mix on batch item 0 only, broadcast."""
    logits = model.router[k](faces, video[:1])  # [1, L, N]
    sub_img = video[0].repeat(faces.shape[0], 1, 1)  # one copy of the tokens per identity
    id_feat = model.perceiver_cross_attention[k](faces, sub_img)  # [N, L, C]
    weights = torch.softmax(logits.float(), dim=-1).to(logits.dtype)
    mixed = (weights.transpose(1, 0) @ id_feat.transpose(1, 0)).transpose(1, 0)  # [1, L, C]
    return scale * mixed


@torch.no_grad()
def test_learned_routing_matches_the_release(transformer):
    """Batch [uncond, cond]: both rows get the residual routed and mixed on the unconditional row."""
    faces, video = inputs()
    injection = IdentityInjection(faces, scale=0.7, sources=[0, 0])
    for k in range(CONFIG.num_cross_attn):
        ours = injection.residual(transformer, k, video)
        released = released_residual(transformer, k, faces, video, 0.7)
        assert rel_err(ours[0:1], released) < 1e-5 and torch.equal(ours[0], ours[1])


@torch.no_grad()
def test_per_branch_routing_routes_each_branch(transformer):
    faces, video = inputs()
    ours = IdentityInjection(faces, scale=1.0).residual(transformer, 0, video)
    for b in range(2):
        expected = released_residual(transformer, 0, faces, video[b : b + 1], 1.0)
        assert rel_err(ours[b : b + 1], expected) < 1e-5
    assert rel_err(ours[0], ours[1]) > 1e-3


@torch.no_grad()
def test_guidance_in_two_calls_reuses_the_unconditional_residual(transformer):
    """ComfyUI short of memory: the unconditional call keeps its residuals, the conditional one adds them."""
    faces, video = inputs()
    kept, recorder = {}, RoutingRecorder(active=True)
    batched = IdentityInjection(faces, 0.7, sources=[0, 0]).residual(transformer, 1, video)
    uncond = IdentityInjection(faces, 0.7, sources=[0], recorder=recorder, kept=kept, keep=True)
    assert torch.equal(uncond.residual(transformer, 1, video[:1]), batched[:1]) and 1 in kept
    cond = IdentityInjection(faces, 0.7, recorder=recorder, kept=kept, reuse=True)
    assert torch.equal(cond.residual(transformer, 1, video[1:]), batched[1:]) and not kept
    assert recorder.count == 1  # the routing recorded once, from the unconditional row


@torch.no_grad()
def test_routing_weights_are_a_softmax_over_identities(transformer):
    faces, video = inputs(n=3)
    weights = IdentityInjection(faces, scale=1.0).weights(transformer, 0, video)
    assert weights.shape == (2, 60, 3)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 60), atol=1e-5)
    assert (weights.max(-1).values < 0.999).any()  # soft, not top-1: identities are blended per token


@torch.no_grad()
def test_single_identity_is_consisids_plain_cross_attention(transformer):
    faces, video = inputs(n=1)
    ours = IdentityInjection(faces, scale=0.5).residual(transformer, 1, video)
    assert torch.equal(ours, 0.5 * transformer.perceiver_cross_attention[1](faces, video))


GRID = TokenGrid(frames=2, rows=3, cols=10)  # 60 tokens


def left_right_masks():
    left, right = torch.zeros(1, 48, 160), torch.zeros(1, 48, 160)
    left[..., :64] = 1
    right[..., 96:] = 1
    return [left, right]


@torch.no_grad()
def test_masks_give_each_token_exactly_its_identity(transformer):
    faces, video = inputs(n=2)
    coverage = coverage_matrix(left_right_masks(), GRID, video_frames=5, labels=["a", "b"])
    ours = IdentityInjection(faces, scale=1.0, mode="masks", coverage=coverage).residual(transformer, 0, video)
    owner = assign_tokens(coverage)
    only = [transformer.perceiver_cross_attention[0](faces[n : n + 1], video[:1]) for n in range(2)]
    columns = torch.arange(60) % 10
    assert (owner[columns < 4, 0] == 1).all() and (owner[columns >= 6, 1] == 1).all()
    assert torch.equal(ours[0, owner[:, 0] == 1], only[0][0, owner[:, 0] == 1])
    assert torch.equal(ours[0, owner[:, 1] == 1], only[1][0, owner[:, 1] == 1])
    nobody = owner.sum(1) == 0
    assert nobody.any() and (ours[0, nobody] == 0).all()


@torch.no_grad()
def test_mask_prior_moves_learned_routing_towards_the_masks(transformer):
    faces, video = inputs(n=2)
    coverage = coverage_matrix(left_right_masks(), GRID, video_frames=5, labels=["a", "b"])
    learned = IdentityInjection(faces, 1.0).weights(transformer, 0, video)
    neutral = IdentityInjection(faces, 1.0, mode="learned + masks", coverage=coverage, prior_strength=0.0)
    assert torch.allclose(neutral.weights(transformer, 0, video), learned)
    strong = IdentityInjection(faces, 1.0, mode="learned + masks", coverage=coverage, prior_strength=20.0)
    weights = strong.weights(transformer, 0, video)[0]
    inside = assign_tokens(coverage)
    assert (weights[inside[:, 0] == 1, 0] > 0.99).all() and (weights[inside[:, 1] == 1, 1] > 0.99).all()
    untouched = coverage.sum(1) == 0
    assert torch.allclose(weights[untouched], learned[0, untouched], atol=1e-6)


def test_mask_coverage_resizes_and_follows_time():
    grid = TokenGrid(frames=3, rows=2, cols=2)
    moving = torch.zeros(9, 20, 20)
    moving[0, :10, :10] = 1  # frame 0 -> latent frame 0
    moving[1:5, :10, 10:] = 1  # frames 1-4 -> latent frame 1
    moving[5:9, 10:, 10:] = 1  # frames 5-8 -> latent frame 2
    coverage = mask_coverage(moving, grid, video_frames=9, name="x").reshape(3, 2, 2)
    assert coverage[0, 0, 0] == 1 and coverage[1, 0, 1] == 1 and coverage[2, 1, 1] == 1
    assert coverage.sum() == 3
    half = torch.zeros(1, 20, 20)
    half[:, :, :5] = 1
    assert mask_coverage(half, grid, 9, "x").reshape(3, 2, 2)[0, 0, 0] == 0.5
    assert latent_frame_ranges(49, 13)[:3] == [(0, 1), (1, 5), (5, 9)] and latent_frame_ranges(49, 13)[-1] == (45, 49)


def test_overlapping_masks_go_to_the_larger_cover_then_the_earlier_identity():
    coverage = torch.tensor([[0.6, 0.9], [0.7, 0.7], [0.4, 0.3], [1.0, 0.0]])
    owner = assign_tokens(coverage)
    assert owner.tolist() == [[0, 1], [1, 0], [0, 0], [1, 0]]


@pytest.mark.parametrize(
    "masks, message",
    [
        ([torch.zeros(1, 8, 8), torch.ones(1, 8, 8)], "mask for a is empty"),
        ([torch.ones(7, 8, 8), torch.ones(1, 8, 8)], "has 7 frames; give 1.*49.*13"),
        ([torch.ones(1, 8, 8), None], "not for b: give every identity a mask"),
        ([torch.ones(2, 2, 8, 8), torch.ones(1, 8, 8)], r"must be \[frames, height, width\]"),
    ],
)
def test_bad_masks_are_explained(masks, message):
    with pytest.raises(MultiIDError, match=message):
        coverage_matrix(masks, TokenGrid(13, 30, 45), video_frames=49, labels=["a", "b"])


def released_canvas(faces_rgb: list[np.ndarray]) -> np.ndarray:
    """Ingredients' `process_face_embeddings_split` canvas + infer.py's round trip, step by step."""
    canvas = Image.new("RGB", (720, 480), color=(255, 255, 255))
    for i, face in enumerate(faces_rgb):
        bgr = face[:, :, ::-1].copy()  # facexlib's crop is BGR ...
        img = Image.fromarray(bgr, "RGB").resize((360, 360))  # ... handed to PIL as if RGB
        canvas.paste(img, (360 * i, 60))
    array = np.array(canvas)
    as_tensor = torch.from_numpy(array[:, :, ::-1].copy()).float() / 255.0  # img2tensor(bgr2rgb=True) / 255
    return (as_tensor.numpy() * 255).astype(np.uint8)  # infer.py: * 255, astype(uint8)


def test_two_face_canvas_is_the_releases_pixel_for_pixel():
    g = torch.Generator().manual_seed(0)
    faces = [torch.randint(0, 256, (512, 512, 3), generator=g).to(torch.uint8) for _ in range(2)]
    ours = np.asarray(canvas_for_faces([f.float() / 255 for f in faces], 720, 480))
    np.testing.assert_array_equal(ours, released_canvas([f.numpy() for f in faces]))
    assert (ours[:60] == 255).all() and (ours[420:] == 255).all()


def test_canvas_layouts_for_more_people_and_for_masks():
    assert row_boxes(2, 720, 480) == [(0, 60, 360), (360, 60, 360)]
    assert row_boxes(3, 720, 480) == [(0, 120, 240), (240, 120, 240), (480, 120, 240)]
    assert row_boxes(1, 720, 480) == [(180, 60, 360)]
    red = torch.zeros(512, 512, 3)
    red[..., 0] = 1
    mask = torch.zeros(1, 480, 720)
    mask[:, 100:300, 400:600] = 1
    canvas = np.asarray(canvas_for_faces([red], 720, 480, masks=[mask]))
    assert (canvas[200, 500] == [255, 0, 0]).all()  # inside the painted box
    assert (canvas[200, 200] == 255).all()  # elsewhere white


def test_routing_map_colours_tokens_and_repeats_latent_frames():
    grid = TokenGrid(frames=2, rows=1, cols=2)
    weights = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.5, 0.5]])
    image = routing_map(weights, grid, width=32, height=16, video_frames=5)
    assert image.shape == (5, 16, 32, 3)
    assert torch.allclose(image[0, 0, 0], torch.tensor([1.0, 0.55, 0.1]))  # identity 1: orange
    assert torch.allclose(image[0, 0, 31], torch.tensor([0.15, 0.45, 1.0]))  # identity 2: blue
    assert torch.equal(image[1, :, :16], torch.zeros(16, 16, 3)) and torch.equal(image[1], image[4])


@pytest.fixture(scope="module")
def ingredients_snapshot(tmp_path_factory):
    folder = tmp_path_factory.mktemp("snapshots") / "Ingredients"
    write_tiny_ingredients_snapshot(folder)
    return folder


def test_released_ingredients_layout_loads(ingredients_snapshot):
    index = json.loads(
        (ingredients_snapshot / "transformer" / "diffusion_pytorch_model.safetensors.index.json").read_text()
    )
    assert not any(k.startswith("router.") for k in index["weight_map"])  # stale index
    assert json.loads((ingredients_snapshot / "transformer" / "config.json").read_text())["LFE_output_dim"] == 768
    model = load_snapshot(ingredients_snapshot, torch.float32)
    assert model.family is INGREDIENTS
    assert model.transformer.config.LFE_output_dim == model.transformer.config.cross_attn_kv_dim == 32
    assert len(model.transformer.router) == model.transformer.config.num_cross_attn


def test_ingredients_without_routers_is_a_clear_error(ingredients_snapshot, tmp_path):
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "Ingredients-copy"
    import shutil

    shutil.copytree(ingredients_snapshot, broken)
    shard = broken / "transformer" / "diffusion_pytorch_model-00002-of-00002.safetensors"
    save_file({k: v for k, v in load_file(str(shard)).items() if not k.startswith("router.")}, str(shard))
    with pytest.raises(MultiIDError, match="no router.* tensors.*feizhengcong/Ingredients"):
        load_snapshot(broken, torch.float32)


def test_partial_routers_are_listed(tmp_path):
    write_tiny_ingredients_snapshot(tmp_path / "Ingredients", seed=1)
    from safetensors.torch import load_file, save_file

    shard = tmp_path / "Ingredients" / "transformer" / "diffusion_pytorch_model-00002-of-00002.safetensors"
    tensors = load_file(str(shard))
    save_file({k: v for k, v in tensors.items() if k != "router.0.to_kv.weight"}, str(shard))
    with pytest.raises(MultiIDError, match="1 missing tensors.*router.0.to_kv.weight"):
        load_snapshot(tmp_path / "Ingredients", torch.float32)
