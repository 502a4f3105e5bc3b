"""Our CogVideoX / ConsisID transformer against diffusers' on tiny random weights: tensors compared."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from diffusers.models.transformers.cogvideox_transformer_3d import CogVideoXTransformer3DModel
from diffusers.models.transformers.consisid_transformer_3d import ConsisIDTransformer3DModel
from diffusers.pipelines.consisid.pipeline_consisid import ConsisIDPipeline
from tensors import rel_err
from torch import nn

from multiid_core.cogvideox.identity_modules import IdentityRouter
from multiid_core.cogvideox.transformer import CogVideoXConfig, CogVideoXTransformer, cogvideox_rope
from multiid_core.routing import IdentityInjection

TEXT_LEN = 7
BASE = dict(
    num_attention_heads=2,
    attention_head_dim=16,
    time_embed_dim=32,
    text_embed_dim=24,
    num_layers=4,
    sample_height=8,
    sample_width=12,
    sample_frames=9,  # 3 latent frames
    max_text_seq_length=TEXT_LEN,
)
I2V = dict(BASE, in_channels=8, out_channels=4, use_rotary_positional_embeddings=True)
CONSISID = dict(
    I2V,
    use_learned_positional_embeddings=True,
    is_train_face=True,
    cross_attn_interval=2,
    cross_attn_dim_head=8,
    cross_attn_num_heads=2,
    LFE_id_dim=20,
    LFE_vit_dim=32,
    LFE_depth=10,
    LFE_dim_head=8,
    LFE_num_heads=4,
    LFE_num_id_token=2,
    LFE_num_querie=4,
    LFE_output_dim=int(32 / 3 * 2),  # cross_attn_kv_dim of the 32-wide model
    LFE_ff_mult=2,
    LFE_num_scale=5,
)
COGVIDEOX = {
    "i2v_learned": dict(I2V, use_learned_positional_embeddings=True),  # CogVideoX-5B-I2V 1.0
    "t2v_rope": dict(BASE, in_channels=4, out_channels=4, use_rotary_positional_embeddings=True),  # 5B T2V
    "t2v_sincos": dict(BASE, in_channels=4, out_channels=4),  # 2B: fixed sincos positions, no RoPE
}


def randomized(model: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Perturb every tensor (norms and the learned position table too) so no term is trivially 0 or 1."""
    gen = torch.Generator().manual_seed(seed)
    state = {k: v + 0.1 * torch.randn(v.shape, generator=gen) for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    return state


def reference(cls: type, cfg: dict, seed: int = 0) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    torch.manual_seed(seed)
    model = cls(**cfg).eval()
    return model, randomized(model, seed + 1)


def ours_from(cfg: dict, state: dict[str, torch.Tensor]) -> CogVideoXTransformer:
    model = CogVideoXTransformer(CogVideoXConfig.from_dict(cfg)).eval()
    model.load_state_dict(state, strict=True)
    return model


def diffusers_rope(cfg: dict, frames: int, latent_h: int, latent_w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ConsisID pipeline's own method, run on a stand-in holding only what it reads."""
    config = SimpleNamespace(
        patch_size=2,
        patch_size_t=None,
        **{k: cfg[k] for k in ("sample_height", "sample_width", "attention_head_dim")},
    )
    pipe = SimpleNamespace(vae_scale_factor_spatial=8, transformer=SimpleNamespace(config=config))
    return ConsisIDPipeline._prepare_rotary_positional_embeddings(pipe, latent_h * 8, latent_w * 8, frames, "cpu")


def inputs(cfg: dict, frames: int = 3, h: int = 8, w: int = 12, seed: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    latents = torch.randn(2, frames, cfg["in_channels"], h, w, generator=gen)
    text = torch.randn(2, TEXT_LEN, cfg["text_embed_dim"], generator=gen)
    return latents, text


def face_inputs(cfg: dict, seed: int = 3) -> tuple[torch.Tensor, list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    id_cond = torch.randn(1, cfg["LFE_id_dim"], generator=gen)
    vit = [torch.randn(1, 9, cfg["LFE_vit_dim"], generator=gen) for _ in range(cfg["LFE_num_scale"])]
    return id_cond, vit


@pytest.fixture(scope="module")
def consisid() -> tuple[nn.Module, CogVideoXTransformer, dict[str, torch.Tensor]]:
    ref, state = reference(ConsisIDTransformer3DModel, CONSISID)
    return ref, ours_from(CONSISID, state), state


@torch.no_grad()
def test_consisid_forward_matches_diffusers_with_cfg_broadcast_faces(consisid):
    ref, ours, _ = consisid
    latents, text = inputs(CONSISID)
    id_cond, vit = face_inputs(CONSISID)
    rope_ref = diffusers_rope(CONSISID, 3, 8, 12)
    rope = cogvideox_rope(ours.config, 3, 8, 12)
    face_tokens = ours.encode_faces(id_cond, vit)
    assert face_tokens.shape == (1, 4, ours.config.cross_attn_kv_dim)
    assert rel_err(face_tokens, ref.local_facial_extractor(id_cond, vit)) < 1e-5
    for t in ([999.0, 999.0], [500.0, 500.0], [1.0, 730.0]):
        timestep = torch.tensor(t)
        expected = ref(
            latents,
            text,
            timestep,
            image_rotary_emb=rope_ref,
            id_cond=id_cond,
            id_vit_hidden=vit,
            return_dict=False,
        )[0]
        got = ours(latents, text, timestep, rope, identity=IdentityInjection(face_tokens, scale=1.0))
        assert got.shape == expected.shape == (2, 3, 4, 8, 12)
        assert rel_err(got, expected) < 1e-5, t
    # Without faces the same weights run as plain CogVideoX; the identity signal is not negligible.
    assert rel_err(ours(latents, text, timestep, rope), expected) > 1e-3


@torch.no_grad()
def test_face_scale_matches_diffusers_local_face_scale(consisid):
    ref, ours, _ = consisid
    latents, text = inputs(CONSISID)
    id_cond, vit = face_inputs(CONSISID)
    rope = cogvideox_rope(ours.config, 3, 8, 12)
    timestep = torch.tensor([400.0, 400.0])
    ref.local_face_scale = 0.6
    try:
        expected = ref(
            latents,
            text,
            timestep,
            image_rotary_emb=rope,
            id_cond=id_cond,
            id_vit_hidden=vit,
            return_dict=False,
        )[0]
    finally:
        ref.local_face_scale = 1.0
    got = ours(latents, text, timestep, rope, identity=IdentityInjection(ours.encode_faces(id_cond, vit), scale=0.6))
    assert rel_err(got, expected) < 1e-5


@pytest.mark.parametrize("name", sorted(COGVIDEOX))
@torch.no_grad()
def test_cogvideox_forward_matches_diffusers(name):
    cfg = COGVIDEOX[name]
    ref, state = reference(CogVideoXTransformer3DModel, cfg)
    ours = ours_from(cfg, state)
    rope_on = cfg.get("use_rotary_positional_embeddings", False)
    # The sincos model also runs off its trained grid, where diffusers rebuilds its table.
    grids = [(3, 8, 12)] + ([] if cfg.get("use_learned_positional_embeddings") else [(2, 6, 10)])
    for frames, h, w in grids:
        latents, text = inputs(cfg, frames, h, w)
        rope = cogvideox_rope(ours.config, frames, h, w) if rope_on else None
        rope_ref = diffusers_rope(cfg, frames, h, w) if rope_on else None
        for t in (999.0, 250.0):
            timestep = torch.tensor([t, t])
            expected = ref(latents, text, timestep, image_rotary_emb=rope_ref, return_dict=False)[0]
            assert rel_err(ours(latents, text, timestep, rope), expected) < 1e-5, (frames, h, w, t)


@pytest.mark.parametrize(
    ("head_dim", "sample", "grid"),
    [
        (16, (8, 12), (3, 8, 12)),
        (16, (8, 12), (2, 8, 8)),
        (16, (8, 12), (3, 6, 12)),
        (16, (8, 12), (1, 12, 10)),
        (64, (60, 90), (13, 60, 90)),
        (64, (60, 90), (13, 48, 84)),
        (64, (60, 90), (7, 90, 60)),
    ],
)
def test_rope_equals_pipeline(head_dim, sample, grid):
    cfg = dict(BASE, attention_head_dim=head_dim, sample_height=sample[0], sample_width=sample[1])
    cos, sin = cogvideox_rope(CogVideoXConfig.from_dict(cfg), *grid)
    ref_cos, ref_sin = diffusers_rope(cfg, *grid)
    assert cos.shape == ref_cos.shape == (grid[0] * grid[1] * grid[2] // 4, head_dim)
    assert cos.dtype == sin.dtype == torch.float32
    assert torch.equal(cos, ref_cos) and torch.equal(sin, ref_sin)


@pytest.mark.parametrize(
    ("cls", "cfg"),
    [(ConsisIDTransformer3DModel, CONSISID)] + [(CogVideoXTransformer3DModel, c) for c in COGVIDEOX.values()],
)
def test_state_dict_keys_and_shapes_equal_diffusers(cls, cfg):
    ref = cls(**cfg).state_dict()
    ours = CogVideoXTransformer(CogVideoXConfig.from_dict(cfg), device="meta").state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in ref.items()}


RELEASED_5B = dict(
    num_attention_heads=48,
    num_layers=42,
    in_channels=32,
    use_rotary_positional_embeddings=True,
    use_learned_positional_embeddings=True,
    is_train_face=True,
)


def test_full_size_consisid_keys_without_allocating():
    """The released 5B layout (meta tensors): 21 injection points and 2048-wide face tokens."""
    with torch.device("meta"):
        ref = ConsisIDTransformer3DModel(**RELEASED_5B).state_dict()
    cfg = CogVideoXConfig.from_dict({"_class_name": "ConsisIDTransformer3DModel", **RELEASED_5B})
    ours = CogVideoXTransformer(cfg, device="meta").state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in ref.items()}
    assert ours["patch_embed.pos_embedding"].shape == (1, 226 + 13 * 30 * 45, 3072)
    assert ours["perceiver_cross_attention.20.to_kv.weight"].shape == (4096, 2048)


def test_config_from_dict():
    released = {
        "_class_name": "ConsisIDTransformer3DModel",
        "_diffusers_version": "0.32.0",
        "num_attention_heads": 48,
        "num_layers": 42,
        "is_train_face": True,
        "is_kps": False,
        "some_future_key": 1,
    }
    cfg = CogVideoXConfig.from_dict(released)
    assert (cfg.inner_dim, cfg.num_cross_attn, cfg.cross_attn_kv_dim, cfg.latent_grid) == (
        3072,
        21,
        2048,
        (13, 30, 45),
    )
    assert cfg.LFE_output_dim == 2048 and cfg.num_routers == 0
    assert CogVideoXConfig.from_dict(dict(released, LFE_output_dim=64)).LFE_output_dim == 64
    with pytest.raises(ValueError, match="patch_size_t"):
        CogVideoXConfig.from_dict(dict(released, patch_size_t=2))


@torch.no_grad()
def test_from_state_dict_is_strict_and_casts(consisid):
    _, ours, state = consisid
    loaded = CogVideoXTransformer.from_state_dict(ours.config, state)
    assert all(t.device.type == "cpu" for t in loaded.state_dict().values())
    latents, text = inputs(CONSISID)
    rope = cogvideox_rope(ours.config, 3, 8, 12)
    faces = ours.encode_faces(*face_inputs(CONSISID))
    t = torch.tensor([10.0, 10.0])
    injection = IdentityInjection(faces, scale=1.0)
    assert torch.equal(loaded(latents, text, t, rope, injection), ours(latents, text, t, rope, injection))
    half = CogVideoXTransformer.from_state_dict(ours.config, state, dtype=torch.bfloat16)
    assert {p.dtype for p in half.parameters()} == {torch.bfloat16}
    with pytest.raises(RuntimeError, match="Unexpected key"):
        CogVideoXTransformer.from_state_dict(ours.config, dict(state, extra=torch.zeros(1)))
    missing = {k: v for k, v in state.items() if k != "proj_out.bias"}
    with pytest.raises(RuntimeError, match="Missing key"):
        CogVideoXTransformer.from_state_dict(ours.config, missing)


def test_every_layer_comes_from_operations():
    made = []

    def tracked(base: type) -> type:
        class Tracked(base):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                made.append(self)

        return Tracked

    ops = SimpleNamespace(Linear=tracked(nn.Linear), LayerNorm=tracked(nn.LayerNorm), Conv2d=tracked(nn.Conv2d))
    model = CogVideoXTransformer(CogVideoXConfig.from_dict(dict(CONSISID, num_routers=2)), ops, device="meta")
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.LayerNorm, nn.Conv2d))]
    assert layers and all(any(m is x for x in made) for m in layers)


@torch.no_grad()
def test_learned_positions_slice_the_table_on_smaller_grids(consisid):
    _, ours, state = consisid
    table = state["patch_embed.pos_embedding"].float()  # diffusers keeps its sincos-initialised table in fp64
    video_table = table[0, TEXT_LEN:].view(3, 4, 6, -1)
    for frames, h, w in ((3, 4, 6), (2, 4, 6), (1, 3, 4)):
        text_rows, video_rows = ours.patch_embed.positions(TEXT_LEN, frames, h, w, torch.device("cpu"), torch.float32)
        assert torch.equal(text_rows, table[:, :TEXT_LEN])
        assert torch.equal(video_rows, video_table[:frames, :h, :w].reshape(1, -1, video_table.shape[-1]))

    # Same output as diffusers built for the smaller grid and given the corresponding slice as its table.
    cfg = dict(CONSISID, sample_frames=5, sample_height=6, sample_width=8)
    small = ConsisIDTransformer3DModel(**cfg).eval()
    sliced = video_table[:2, :3, :4].reshape(1, -1, video_table.shape[-1])
    small.load_state_dict(dict(state, **{"patch_embed.pos_embedding": torch.cat([table[:, :TEXT_LEN], sliced], 1)}))
    latents, text = inputs(CONSISID, frames=2, h=6, w=8)
    id_cond, vit = face_inputs(CONSISID)
    rope = cogvideox_rope(ours.config, 2, 6, 8)
    t = torch.tensor([600.0, 600.0])
    expected = small(latents, text, t, image_rotary_emb=rope, id_cond=id_cond, id_vit_hidden=vit, return_dict=False)[0]
    faces = IdentityInjection(ours.encode_faces(id_cond, vit), scale=1.0)
    assert rel_err(ours(latents, text, t, rope, faces), expected) < 1e-5

    for frames, h, w in ((4, 8, 12), (3, 10, 12), (3, 8, 14)):
        latents, text = inputs(CONSISID, frames, h, w)
        with pytest.raises(ValueError, match="learned positions cover 3 latent frames of 4x6"):
            ours(latents, text, t, cogvideox_rope(ours.config, frames, h, w))


@torch.no_grad()
def test_router_matches_spec_equations():
    torch.manual_seed(0)
    router = IdentityRouter(dim=32, id_dim=21, id_tokens=4, inner_dim=12)
    randomized(router, 1)
    faces, video = torch.randn(3, 4, 21), torch.randn(2, 10, 32)
    logits = router(faces, video)
    assert logits.shape == (2, 10, 3)

    expected = torch.empty(2, 10, 3)
    for n in range(3):
        tokens = F.layer_norm(faces[n], (21,), router.norm1.weight, router.norm1.bias)
        pooled = (router.id_merge.weight[0][:, None] * tokens).sum(0)  # learned pooling of the 4 tokens
        key = router.to_kv.weight @ pooled
        for b in range(2):
            for token in range(10):
                x = F.layer_norm(video[b, token], (32,), router.norm2.weight, router.norm2.bias)
                expected[b, token, n] = (router.to_q.weight @ x) @ key
    assert rel_err(logits, expected) < 1e-5
    # Per-batch identities ([B, N, Q, D]) give the same logits when they are the same faces.
    assert rel_err(router(faces.expand(2, -1, -1, -1), video), expected) < 1e-5


def test_router_modules_in_transformer():
    cfg = CogVideoXConfig.from_dict(dict(CONSISID, num_routers=2))
    shapes = {
        k: tuple(v.shape)
        for k, v in CogVideoXTransformer(cfg, device="meta").state_dict().items()
        if k.startswith("router.")
    }
    kv = cfg.cross_attn_kv_dim
    assert shapes == {
        f"router.{i}.{k}": s
        for i in range(2)
        for k, s in {
            "norm1.weight": (kv,),
            "norm1.bias": (kv,),
            "norm2.weight": (32,),
            "norm2.bias": (32,),
            "id_merge.weight": (1, 4),
            "to_q.weight": (kv, 32),
            "to_kv.weight": (kv, kv),
        }.items()
    }


@torch.no_grad()
def test_forward_rejects_missing_or_mismatched_rope(consisid):
    _, ours, _ = consisid
    latents, text = inputs(CONSISID)
    t = torch.tensor([1.0, 1.0])
    for rope in (None, cogvideox_rope(ours.config, 2, 8, 12)):
        with pytest.raises(ValueError, match="needs cogvideox_rope"):
            ours(latents, text, t, rope)
