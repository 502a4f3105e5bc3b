"""Concat-ID-Wan core (plain PyTorch): strict loading, the released mechanism, preprocessing, regions, sampling.

The DiT against ComfyUI's WanModel and the native samplers is in tests/comfy/test_concat_id_wan_nodes.py.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from tensors import rel_err

from multiid_core.dit.wan import AttentionGroups, ConcatIDWan, rope_tables, token_positions
from multiid_core.errors import MultiIDError
from multiid_core.families import CONCAT_ID_WAN, CONCAT_ID_WAN_ADALN
from multiid_core.pipelines.concat_id_wan import (
    flow_match_sigmas,
    latent_frames,
    read_checkpoint,
    reference_image,
    sample,
    token_regions,
)
from multiid_tools.tiny_models.wan import TINY_WAN, tiny_concat_id_wan_state_dict, write_tiny_concat_id_wan


def tiny_dit(adaln: bool, layers: int = 2, seed: int = 0) -> ConcatIDWan:
    sd = tiny_concat_id_wan_state_dict(adaln, seed)
    if layers != TINY_WAN.num_layers:
        sd = {k: v for k, v in sd.items() if not k.startswith("blocks.") or int(k.split(".")[1]) < layers}
    return ConcatIDWan.from_state_dict(sd, round_timestep_to_bf16=False).eval()


def inputs(seed: int = 0, refs: int = 1, frames: int = 3, h: int = 6, w: int = 8):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 16, frames, h, w, generator=g)
    references = torch.randn(1, 16, refs, h, w, generator=g)
    context = torch.randn(1, 7, TINY_WAN.text_dim, generator=g)
    return x, references, context, torch.tensor([870.0])


# ------------------------------------------------------------------------------------------------------ loading


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    return dict(zip(("first", "adaln"), write_tiny_concat_id_wan(tmp_path_factory.mktemp("Concat-ID-Wan"))))


def test_both_releases_load_strictly_and_the_variant_comes_from_the_keys(released, tmp_path):
    sd, config, family = read_checkpoint(released["first"])
    assert family is CONCAT_ID_WAN and not config.adaln_reference and "time_projection.1.weight" in sd
    sd, config, family = read_checkpoint(released["adaln"])
    assert family is CONCAT_ID_WAN_ADALN and config.adaln_reference
    assert "time_projection_ref.1.weight" in sd and "blocks.1.modulation_ref" in sd
    assert (config.dim, config.num_heads, config.num_layers, config.text_dim) == (256, 2, 2, 32)
    # the file name does not decide: the AdaLN weights under the first-stage name still load as AdaLN
    renamed = tmp_path / "first_stage.pt"
    renamed.write_bytes(released["adaln"].read_bytes())
    assert read_checkpoint(renamed)[2] is CONCAT_ID_WAN_ADALN


def test_wrapped_and_prefixed_checkpoints_load(released, tmp_path):
    sd = torch.load(released["adaln"], weights_only=True)
    torch.save({"module": {f"model.diffusion_model.{k}": v for k, v in sd.items()}}, tmp_path / "wrapped.pt")
    loaded, _, family = read_checkpoint(tmp_path / "wrapped.pt")
    assert family is CONCAT_ID_WAN_ADALN and set(loaded) == set(sd)


def save(tmp_path, sd, name="broken.pt"):
    torch.save(sd, tmp_path / name)
    return tmp_path / name


def test_a_missing_reference_branch_tensor_is_named(released, tmp_path):
    sd = torch.load(released["adaln"], weights_only=True)
    del sd["blocks.1.modulation_ref"]
    with pytest.raises(
        MultiIDError, match=r"Concat-ID-Wan-AdaLN DiT: 1 missing tensors \(e.g. blocks.1.modulation_ref"
    ):
        read_checkpoint(save(tmp_path, sd))


def test_a_first_stage_file_with_stray_adaln_tensors_is_refused(released, tmp_path):
    sd = torch.load(released["first"], weights_only=True)
    sd["blocks.0.modulation_ref"] = sd["blocks.0.modulation"].clone()
    with pytest.raises(MultiIDError, match=r"1 unexpected tensors \(e.g. blocks.0.modulation_ref"):
        read_checkpoint(save(tmp_path, sd))


def test_missing_blocks_and_wrong_shapes_are_named(released, tmp_path):
    sd = torch.load(released["first"], weights_only=True)
    del sd["blocks.1.cross_attn.k.weight"]
    sd["head.head.bias"] = torch.zeros(3)
    with pytest.raises(MultiIDError, match=r"missing tensors \(e.g. blocks.1.cross_attn.k.weight.*wrong shape"):
        read_checkpoint(save(tmp_path, sd))


def test_a_truncated_download_is_reported(released, tmp_path):
    data = released["adaln"].read_bytes()
    (tmp_path / "second_stage_adaln.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(MultiIDError, match="truncated or not a model file"):
        read_checkpoint(tmp_path / "second_stage_adaln.pt")


@pytest.mark.parametrize(
    "keys, message",
    [
        ({"transformer_blocks.0.attn1.to_q.weight": (4, 4)}, "CogVideoX-family transformer"),
        ({"condition_embedder.time_proj.weight": (4, 4), "blocks.0.attn1.to_q.weight": (4, 4)}, "diffusers' layout"),
        ({"down_blocks.0.weight": (4, 4)}, "not a Wan2.1 DiT"),
    ],
)
def test_other_model_families_are_refused(tmp_path, keys, message):
    with pytest.raises(MultiIDError, match=message):
        read_checkpoint(save(tmp_path, {k: torch.zeros(s) for k, s in keys.items()}))


def test_an_image_to_video_wan_is_refused(released, tmp_path):
    sd = torch.load(released["first"], weights_only=True)
    sd["img_emb.proj.0.weight"] = torch.zeros(4)
    with pytest.raises(MultiIDError, match="image-to-video"):
        read_checkpoint(save(tmp_path, sd))


def test_code_in_a_pickle_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"head.modulation": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(MultiIDError, match="could run code"):
        read_checkpoint(tmp_path / "evil.pt")


# ---------------------------------------------------------------------------------------------------- mechanism


def test_reference_rope_indices_are_the_next_frame_shifted_one_frame_width():
    frames, h, w = 3, 2, 4
    positions = token_positions(frames, h, w, references=1).reshape(frames + 1, h, w, 3)
    video, reference = positions[:frames], positions[frames]
    assert torch.equal(video[2, 1, 3], torch.tensor([2, 1, 3]))
    assert (reference[..., 0] == frames).all()
    assert torch.equal(reference[..., 1], torch.arange(h)[:, None].expand(h, w))
    assert torch.equal(reference[..., 2], torch.arange(w, 2 * w)[None].expand(h, w))
    # experimental second reference: the frame after, same width shift
    second = token_positions(frames, h, w, references=2).reshape(frames + 2, h, w, 3)[frames + 1]
    assert (second[..., 0] == frames + 1).all() and (second[..., 2] == torch.arange(w, 2 * w)).all()


def test_rope_tables_equal_the_released_per_axis_tables():
    """The release's freqs_ref: freqs[0][f-1], freqs[1][0:h], freqs[2][w:2w] of Wan's 1024-row tables."""
    head_dim, frames, h, w = 128, 3, 2, 4

    def table(dim: int) -> torch.Tensor:  # Wan's precompute_freqs_cis, as angles
        return torch.outer(
            torch.arange(1024).double(), 1.0 / 10000 ** (torch.arange(0, dim, 2)[: dim // 2].double() / dim)
        )

    t_dim = head_dim - 2 * (head_dim // 3)
    tables = table(t_dim), table(head_dim // 3), table(head_dim // 3)
    ref_angles = torch.cat(
        [
            tables[0][frames : frames + 1].view(1, 1, -1).expand(h, w, -1),
            tables[1][0:h].view(h, 1, -1).expand(h, w, -1),
            tables[2][w : 2 * w].view(1, w, -1).expand(h, w, -1),
        ],
        dim=-1,
    ).reshape(h * w, -1)
    cos, sin = rope_tables(token_positions(frames, h, w, 1), head_dim)
    assert torch.allclose(cos[-h * w :], ref_angles.cos().float(), atol=1e-7)
    assert torch.allclose(sin[-h * w :], ref_angles.sin().float(), atol=1e-7)


def capture_cross_attention_queries(dit: ConcatIDWan) -> list[int]:
    lengths = []
    for block in dit.blocks:
        block.cross_attn.q.register_forward_hook(lambda module, args, out: lengths.append(args[0].shape[1]))
    return lengths


@pytest.mark.parametrize("adaln", [False, True])
def test_reference_tokens_get_no_text_cross_attention(adaln):
    dit = tiny_dit(adaln, layers=1)
    x, references, context, t = inputs()
    lengths = capture_cross_attention_queries(dit)
    with torch.no_grad():
        dit(x, t, context, references)
    assert lengths == [3 * 3 * 4]  # the video tokens only (3 frames of 3x4 patches), not the 12 reference tokens

    # after one block, the reference tokens do not depend on the text at all (the video tokens do)
    def tokens_after_block(ctx: torch.Tensor) -> torch.Tensor:
        captured = {}
        dit.blocks[0].register_forward_hook(lambda m, a, out: captured.setdefault("x", out))
        with torch.no_grad():
            dit(x, t, ctx, references)
        dit.blocks[0]._forward_hooks.clear()
        return captured["x"]

    a, b = tokens_after_block(context), tokens_after_block(torch.randn_like(context))
    assert torch.equal(a[:, 36:], b[:, 36:])
    assert not torch.allclose(a[:, :36], b[:, :36])


def test_adaln_reference_ffn_uses_the_attention_shift_and_scale_as_released():
    """Entries 3, 4 of modulation_ref (shift/scale_mlp_ref) are never read; entry 5 (gate_mlp_ref) is."""
    dit = tiny_dit(adaln=True)
    x, references, context, t = inputs()
    with torch.no_grad():
        base = dit(x, t, context, references)
        for block in dit.blocks:
            block.modulation_ref.data[:, 3:5] += 1.0
        assert torch.equal(dit(x, t, context, references), base)
        for block in dit.blocks:
            block.modulation_ref.data[:, 5] += 1.0
        assert rel_err(dit(x, t, context, references), base) > 1e-3


def test_adaln_block_matches_the_released_equations():
    """One AdaLN block written out as Concat-ID's `forward_adaln` computes it."""
    dit = tiny_dit(adaln=True, layers=1)
    block = dit.blocks[0]
    x, references, context, t = inputs()
    captured = {}
    block.register_forward_hook(lambda m, args, out: captured.update(x=args[0], inputs=args[1], out=out))
    with torch.no_grad():
        dit(x, t, context, references)
        inp, h = captured["inputs"], captured["x"]
        n = 12  # reference tokens
        mod = (block.modulation + inp.e).chunk(6, dim=1)
        ref = (block.modulation_ref + inp.e_ref).chunk(6, dim=1)
        norm_x = block.norm1(h)
        attn = block.self_attn.self_attention(
            torch.cat([norm_x[:, :-n] * (1 + mod[1]) + mod[0], norm_x[:, -n:] * (1 + ref[1]) + ref[0]], 1),
            inp.rope,
            inp.attention,
            None,
        )
        h = torch.cat([h[:, :-n] + mod[2] * attn[:, :-n], h[:, -n:] + ref[2] * attn[:, -n:]], 1)
        cross = h[:, :-n] + block.cross_attn.cross_attention(block.norm3(h[:, :-n]), inp.context, inp.attention)
        h = torch.cat([cross, h[:, -n:]], 1)
        norm_x = block.norm2(h)
        ffn = block.ffn(torch.cat([norm_x[:, :-n] * (1 + mod[4]) + mod[3], norm_x[:, -n:] * (1 + ref[1]) + ref[0]], 1))
        expected = torch.cat([h[:, :-n] + mod[5] * ffn[:, :-n], h[:, -n:] + ref[5] * ffn[:, -n:]], 1)
    assert rel_err(captured["out"], expected) < 1e-6


def test_the_timestep_is_embedded_as_the_release_rounds_it_to_bf16():
    dit = tiny_dit(adaln=True)
    t = torch.tensor([871.3])
    dit.round_timestep_to_bf16 = True
    rounded = dit.embed_time(t, torch.float32)
    dit.round_timestep_to_bf16 = False
    assert all(torch.equal(a, b) for a, b in zip(rounded, dit.embed_time(torch.tensor([872.0]), torch.float32)))


def test_without_references_the_adaln_model_is_plain_wan():
    sd = tiny_concat_id_wan_state_dict(adaln=True)
    adaln = ConcatIDWan.from_state_dict(sd, round_timestep_to_bf16=False)
    plain = {k: v for k, v in sd.items() if "_ref" not in k}
    first = ConcatIDWan.from_state_dict(plain, round_timestep_to_bf16=False)
    x, _, context, t = inputs()
    with torch.no_grad():
        assert torch.equal(adaln(x, t, context), first(x, t, context))


# -------------------------------------------------------------------------------------------------- sampling


def test_sigmas_are_the_released_flow_match_schedule():
    sigmas = flow_match_sigmas(50, 5.0)
    raw = torch.linspace(1, 0, 51)[:-1]
    assert torch.allclose(sigmas[:-1], 5 * raw / (1 + 4 * raw)) and sigmas[-1] == 0 and len(sigmas) == 51


@pytest.mark.parametrize("image_cfg", [1.0, 2.5])
def test_the_reference_slot_never_reaches_the_scheduler(image_cfg):
    dit = tiny_dit(adaln=True)
    x, references, context, _ = inputs()
    shapes, forwards = [], []

    def recording_step(latents, flow, sigma, sigma_next):
        shapes.append((tuple(latents.shape), tuple(flow.shape)))
        return latents + flow * (sigma_next - sigma)

    dit.register_forward_hook(lambda m, args, out: forwards.append((args[3].abs().sum().item(), tuple(out.shape))))
    with torch.no_grad():
        out = sample(
            dit, x, context, torch.zeros_like(context), references, steps=3, image_cfg=image_cfg, step=recording_step
        )
    assert out.shape == x.shape
    assert shapes == [(tuple(x.shape), tuple(x.shape))] * 3
    assert all(shape == tuple(x.shape) for _, shape in forwards)
    # text CFG with the reference in both branches; image guidance adds a branch with a zeroed reference
    branches = [True, True] if image_cfg == 1.0 else [True, True, False]
    assert [ref_sum > 0 for ref_sum, _ in forwards] == branches * 3


def test_image_guidance_is_the_phantom_combination():
    dit = tiny_dit(adaln=True)
    x, references, context, _ = inputs()
    negative = torch.randn_like(context)
    with torch.no_grad():
        got = sample(dit, x, context, negative, references, steps=1, cfg=4.0, image_cfg=2.0)
        t = torch.tensor([1000.0])
        pos, neg = dit(x, t, context, references), dit(x, t, negative, references)
        none = dit(x, t, negative, torch.zeros_like(references))
        expected = x + (none + 2.0 * (neg - none) + 4.0 * (pos - neg)) * (0.0 - 1.0)
    assert rel_err(got, expected) < 1e-6


def test_output_length_follows_the_requested_frames():
    assert [latent_frames(n) for n in (1, 5, 49, 81)] == [1, 2, 13, 21]
    dit = tiny_dit(adaln=False, layers=1)
    x, references, context, t = inputs(frames=latent_frames(17))
    with torch.no_grad():
        assert dit(x, t, context, references).shape == x.shape == (1, 16, 5, 6, 8)


# ---------------------------------------------------------------------------------------------- preprocessing


def release_resize_pad_crop(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """inference_wan.py's ImageProcessor.resize_pad_crop with torchvision, clamped before the 8-bit cast."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    arr = image.permute(2, 0, 1)[None]
    if arr.shape[2] / arr.shape[3] >= height / width:
        size = [height, int(arr.shape[3] * height / arr.shape[2])]
    else:
        size = [int(arr.shape[2] * width / arr.shape[3]), width]
    arr = TF.resize(arr, size=size, interpolation=InterpolationMode.BICUBIC)
    dh, dw = max(height - arr.shape[2], 0), max(width - arr.shape[3], 0)
    arr = F.pad(arr, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2), mode="constant", value=0.0)
    top, left = max(0, arr.shape[2] - height) // 2, max(0, arr.shape[3] - width) // 2
    arr = TF.crop(arr, top=top, left=left, height=height, width=width)
    return arr[0].clamp(0, 1).mul(255).byte().permute(1, 2, 0).float() / 255


@pytest.mark.parametrize("size", [(480, 832), (832, 480), (240, 416), (448, 448), (96, 64)])
def test_reference_image_is_the_released_resize_pad_crop(size):
    pytest.importorskip("torchvision")
    g = torch.Generator().manual_seed(0)
    face = torch.zeros(448, 448, 3)
    face[100:350, 120:330] = torch.rand(250, 210, 3, generator=g)  # a face on black, hard edges: bicubic overshoot
    ours = reference_image(face, *size)
    assert ours.shape == (*size, 3)
    assert torch.equal(ours, release_resize_pad_crop(face, *size))
    if size == (480, 832):  # the face fills the height, black bars left and right
        assert ours[:, :176].max() == 0 and ours[:, 176 + 480 :].max() == 0


# ------------------------------------------------------------------------------------------ regional attention


def test_token_regions_follow_the_masks():
    frames, height, width = 9, 32, 64  # 3 latent frames of 2x4 tokens
    left = torch.zeros(1, height, width)
    left[:, :, :32] = 1.0
    moving = torch.zeros(frames, height, width)
    moving[:5, :, 32:] = 1.0  # right half in frames 0-4 only
    regions = token_regions([left, None, moving], frames, height, width)
    assert regions.shape == (3, 3, 2, 4)
    assert (regions[0, :, :, :2] == 1).all() and (regions[0, :, :, 2:] == 0).all()
    assert (regions[1] == 1).all()
    assert (regions[2, :2, :, 2:] == 1).all() and (regions[2, 2] == 0).all() and (regions[2, :, :, :2] == 0).all()
    assert token_regions([None, None], frames, height, width) is None


def test_grouped_attention_equals_dense_masked_attention():
    g = torch.Generator().manual_seed(0)
    n_video, ref_tokens, heads = 24, 4, 2
    regions = torch.zeros(2, n_video, dtype=torch.bool)
    regions[0, :10] = True
    regions[1, 8:18] = True  # overlap 8, 9; tokens 18.. see no reference
    groups = AttentionGroups.from_regions(regions, ref_tokens)
    n = n_video + 2 * ref_tokens
    allowed = groups.allowed(n)
    ref0, ref1 = slice(n_video, n_video + ref_tokens), slice(n_video + ref_tokens, n)
    assert not allowed[:8, ref1].any() and allowed[:8, ref0].all()  # inside mask 0 only: no weight on reference 1
    assert not allowed[10:18, ref0].any() and allowed[10:18, ref1].all()
    assert allowed[8:10, n_video:].all() and not allowed[18:n_video, n_video:].any()
    assert not allowed[ref0, ref1].any() and not allowed[ref0, 10:n_video].any() and allowed[ref0, :10].all()
    assert allowed[:n_video, :n_video].all()
    q, k, v = (torch.randn(1, n, heads * 8, generator=g) for _ in range(3))

    def sdpa(q, k, v, h, mask=None):
        split = [t.view(1, t.shape[1], h, -1).transpose(1, 2) for t in (q, k, v)]
        return F.scaled_dot_product_attention(*split, attn_mask=mask).transpose(1, 2).reshape(1, q.shape[1], -1)

    assert rel_err(groups.attend(q, k, v, heads, sdpa), sdpa(q, k, v, heads, allowed)) < 1e-6


def test_video_tokens_in_one_mask_are_untouched_by_the_other_reference():
    """One block: a token inside mask k reads only reference k (and video tokens), so moving reference j
    changes exactly the tokens of region j (and, symmetrically, no token of region k)."""
    dit = tiny_dit(adaln=True, layers=1)
    x, references, context, t = inputs(refs=2, frames=2, h=4, w=4)
    regions = torch.zeros(1, 2, 2, 2, 2)
    regions[:, 0, :, :, 0] = 1  # identity 1: left token column
    regions[:, 1, :, :, 1] = 1  # identity 2: right token column
    changed = references.clone()
    changed[:, :, 1] += 1.0
    with torch.no_grad():
        a = dit(x, t, context, references, regions)
        b = dit(x, t, context, changed, regions)
        free = dit(x, t, context, changed)  # without regions every token sees both references
    # [frame, token row, token column]: each token covers 2x2 latent pixels
    diff = (a - b).abs().amax(dim=1)[0].reshape(2, 2, 2, 2, 2).amax(dim=(2, 4))
    assert (diff[..., 0] == 0).all() and (diff[..., 1] > 0).all()
    assert ((a - free).abs().amax(dim=1)[0].reshape(2, 2, 2, 2, 2).amax(dim=(2, 4))[..., 0] > 0).all()
    assert math.isfinite(a.abs().max().item())
