"""Concat-ID's CogVideoX-5B release: SAT conversion, loading, the references' positions and pixels, the layers.

What sampling does with the references (on the native MODEL): tests/comfy/test_concat_id_cogvideox_sampling.py.
"""

import pickle
import shutil

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange
from tensors import rel_err

from multiid_core.canvas import letterbox
from multiid_core.cogvideox.checkpoint import load_concat_id_cogvideox
from multiid_core.cogvideox.sat_conversion import sat_transformer_to_diffusers, sat_vae_to_diffusers
from multiid_core.cogvideox.transformer import CogVideoXConfig, CogVideoXTransformer, cogvideox_rope
from multiid_core.errors import MultiIDError
from multiid_core.families import CONCAT_ID_COGVIDEOX
from multiid_tools.tiny_models.cogvideox import TINY_TEXT_DIM, TINY_VAE
from multiid_tools.tiny_models.concat_id import (
    TINY_T2V,
    diffusers_to_sat_transformer,
    diffusers_to_sat_vae,
    write_tiny_concat_id_snapshot,
)


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "Concat-ID"
    write_tiny_concat_id_snapshot(folder)
    return folder


def test_transformer_conversion_round_trips_and_splits_adaln_as_diffusers():
    model = CogVideoXTransformer(CogVideoXConfig.from_dict(TINY_T2V))
    ours = model.state_dict()
    sat = diffusers_to_sat_transformer(ours)
    assert "model.diffusion_model.transformer.layers.0.attention.query_key_value.weight" in sat
    back = sat_transformer_to_diffusers(sat)
    assert back.keys() == ours.keys() and all(torch.equal(back[k], ours[k]) for k in ours)
    # diffusers' script: of the 12 AdaLN chunks, 0-2 and 6-8 go to norm1, 3-5 and 9-11 to norm2.
    chunk = torch.arange(12.0).repeat_interleave(2)
    split = sat_transformer_to_diffusers({"model.diffusion_model.mixins.adaln_layer.adaLN_modulations.3.1.bias": chunk})
    assert split["transformer_blocks.3.norm1.linear.bias"][::2].tolist() == [0, 1, 2, 6, 7, 8]
    assert split["transformer_blocks.3.norm2.linear.bias"][::2].tolist() == [3, 4, 5, 9, 10, 11]


def test_vae_conversion_round_trips():
    from diffusers import AutoencoderKLCogVideoX

    vae = AutoencoderKLCogVideoX(**{**TINY_VAE, "norm_num_groups": 8})
    sat = diffusers_to_sat_vae(vae.state_dict())
    assert any(k.startswith("decoder.up.3.") for k in sat) and "encoder.mid.block_1.conv1.conv.weight" in sat
    back = sat_vae_to_diffusers({**sat, "loss.logvar": torch.zeros(1)})
    assert back.keys() == vae.state_dict().keys()


def test_release_layout_loads_as_concat_id(snapshot):
    model = load_concat_id_cogvideox(snapshot / "single-identity", torch.float32)
    assert model.family is CONCAT_ID_COGVIDEOX and model.identities_trained == 1
    assert model.transformer.config.in_channels == 16 and not model.transformer.config.is_train_face
    assert load_concat_id_cogvideox(snapshot / "two-identities", torch.float32).identities_trained == 2


def broken_copy(snapshot, tmp_path):
    copy = tmp_path / "Concat-ID"
    shutil.copytree(snapshot, copy)
    return copy / "single-identity", copy / "single-identity" / "1000" / "mp_rank_00_model_states.pt"


def test_missing_tensor_truncated_file_and_pickled_code_are_refused(snapshot, tmp_path):
    folder, checkpoint = broken_copy(snapshot, tmp_path)
    saved = torch.load(checkpoint, weights_only=False)
    del saved["module"]["model.diffusion_model.transformer.layers.1.attention.dense.weight"]
    torch.save(saved, checkpoint)
    with pytest.raises(MultiIDError, match="1 missing tensors.*transformer_blocks.1.attn1.to_out.0.weight"):
        load_concat_id_cogvideox(folder, torch.float32)

    checkpoint.write_bytes(checkpoint.read_bytes()[:5000])
    with pytest.raises(MultiIDError, match="truncated.*modelscope.cn/models/yongzhong/Concat-ID"):
        load_concat_id_cogvideox(folder, torch.float32)

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    checkpoint.write_bytes(pickle.dumps({"module": {"w": torch.zeros(1)}, "x": Payload()}))
    with pytest.raises(MultiIDError, match="Refused to load"):
        load_concat_id_cogvideox(folder, torch.float32)
    assert not marker.exists()

    (folder / "latest").unlink()
    with pytest.raises(MultiIDError, match="no 'latest' file"):
        load_concat_id_cogvideox(folder, torch.float32)


def test_missing_vae_names_where_it_was_looked_for_and_the_concat_id_release(snapshot, tmp_path):
    folder, _ = broken_copy(snapshot, tmp_path)
    looked_at = folder.parent / "vae" / "3d-vae.pt"
    looked_at.unlink()
    with pytest.raises(MultiIDError) as caught:
        load_concat_id_cogvideox(folder, torch.float32)
    message = str(caught.value)
    assert f"{looked_at} does not exist" in message
    assert "ModelScope repository yongzhong/Concat-ID" in message
    assert "https://modelscope.cn/models/yongzhong/Concat-ID/resolve/master/vae/3d-vae.pt" in message
    assert "ComfyUI/models/multiid/Concat-ID/vae/3d-vae.pt" in message
    assert "ConsisID" not in message and "huggingface" not in message


def sat_rotary_tables(head_dim: int, frames: int, height: int, width: int):
    """Concat-ID's Rotary3DPositionEmbeddingMixin: integer grids, frequencies repeated in pairs."""
    dims = (head_dim // 4, head_dim // 8 * 3, head_dim // 8 * 3)
    grids = (torch.arange(frames).float(), torch.arange(height).float(), torch.arange(width).float())
    parts = []
    for dim, grid in zip(dims, grids):
        freqs = 1.0 / (10000 ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
        parts.append(torch.outer(grid, freqs).repeat_interleave(2, dim=-1))
    t, h, w = parts
    table = torch.cat(
        [t[:, None, None].expand(-1, height, width, -1), h[None, :, None].expand(frames, -1, width, -1),
         w[None, None].expand(frames, height, -1, -1)], dim=-1,
    ).reshape(-1, head_dim)  # fmt: skip
    return table.cos(), table.sin()


def test_references_take_the_next_time_indices_of_the_release_rope():
    config = CogVideoXConfig.from_dict({**TINY_T2V, "attention_head_dim": 64})
    for references in (1, 2, 3):
        ours = cogvideox_rope(config, 13 + references, 60, 90)
        sat = sat_rotary_tables(64, 13 + 5, 30, 45)  # the release builds 13 + 5 frames and slices
        length = (13 + references) * 30 * 45
        assert torch.allclose(ours[0], sat[0][:length], atol=1e-5)
        assert torch.allclose(ours[1], sat[1][:length], atol=1e-5)


def sat_output_layers(transformer, x, temb, grid, final_norm_eps):
    """The release's layers after its blocks, as its code builds them, on the video tokens x [B, L, C].

    SAT's BaseTransformer.final_layernorm takes eps=layernorm_epsilon, which the configs leave at SAT's 1e-5
    default (that keyword overrides the eps=1e-6 of dit_video_concat's `layernorm` partial, as in the blocks);
    FinalLayerMixin builds its norm_final with eps=1e-6, then modulates, projects and unpatchifies.
    """
    dim, p = x.shape[-1], transformer.config.patch_size
    final_layernorm, final_layer = transformer.norm_final, transformer.norm_out
    x = F.layer_norm(x, (dim,), final_layernorm.weight, final_layernorm.bias, 1e-5)
    shift, scale = final_layer.linear(F.silu(temb)).chunk(2, dim=1)
    x = F.layer_norm(x, (dim,), final_layer.norm.weight, final_layer.norm.bias, final_norm_eps)
    x = transformer.proj_out(x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1))
    frames, height, width = grid
    return rearrange(x, "b (t h w) (c p q) -> b t c (h p) (w q)", t=frames, h=height, w=width, p=p, q=p)


def test_layer_norms_have_the_release_eps_and_the_output_is_the_release_final_layer(snapshot):
    transformer = load_concat_id_cogvideox(snapshot / "single-identity", torch.float32).transformer
    blocks = transformer.transformer_blocks
    assert transformer.norm_out.norm.eps == 1e-6  # FinalLayerMixin.norm_final
    assert transformer.norm_final.eps == 1e-5  # BaseTransformer.final_layernorm
    assert all(b.norm1.norm.eps == b.norm2.norm.eps == 1e-5 for b in blocks)  # input/post_attention_layernorm
    assert all(b.attn1.norm_q.eps == b.attn1.norm_k.eps == 1e-6 for b in blocks)  # AdaLNMixin q/k LayerNorms
    assert CogVideoXTransformer(CogVideoXConfig.from_dict(TINY_T2V)).norm_out.norm.eps == 1e-5  # diffusers layouts

    with torch.no_grad():  # final-norm input of variance ~1e-4, where eps 1e-6 and 1e-5 differ measurably
        transformer.norm_final.weight.fill_(1e-2)
    seen = {}
    transformer.norm_final.register_forward_pre_hook(lambda module, args: seen.update(x=args[0].clone()))
    transformer.norm_out.register_forward_pre_hook(lambda module, args: seen.update(temb=args[1].clone()))
    g = torch.Generator().manual_seed(0)
    latents, text = torch.randn(1, 3, 16, 8, 10, generator=g), torch.randn(1, 7, TINY_TEXT_DIM, generator=g)
    with torch.no_grad():
        out = transformer(latents, text, torch.tensor([500.0]), cogvideox_rope(transformer.config, 3, 8, 10))
        release = sat_output_layers(transformer, seen["x"], seen["temb"], (3, 4, 5), final_norm_eps=1e-6)
        diffusers_eps = sat_output_layers(transformer, seen["x"], seen["temb"], (3, 4, 5), final_norm_eps=1e-5)
    assert rel_err(out, release) < 1e-5
    assert rel_err(diffusers_eps, release) > 1e-3  # the test tells the two eps apart


def resize_pad_crop(arr, size):
    """Concat-ID's sample_video.resize_pad_crop, step by step ([1, 3, H, W] in 0..1)."""
    import torchvision.transforms.functional as TF

    if arr.shape[2] / arr.shape[3] >= size[0] / size[1]:
        arr = TF.resize(arr, [size[0], int(arr.shape[3] * size[0] / arr.shape[2])], TF.InterpolationMode.BICUBIC)
    else:
        arr = TF.resize(arr, [int(arr.shape[2] * size[1] / arr.shape[3]), size[1]], TF.InterpolationMode.BICUBIC)
    delta_h, delta_w = max(size[0] - arr.shape[2], 0), max(size[1] - arr.shape[3], 0)
    top, left = delta_h // 2, delta_w // 2
    arr = torch.nn.functional.pad(arr, (left, delta_w - left, top, delta_h - top), mode="constant", value=0.0)
    delta_h, delta_w = max(0, arr.shape[2] - size[0]), max(0, arr.shape[3] - size[1])
    return TF.crop(arr, top=delta_h // 2, left=delta_w // 2, height=size[0], width=size[1])


@pytest.mark.parametrize("shape", [(448, 448), (200, 448), (448, 200), (300, 448)])
def test_letterbox_matches_resize_pad_crop(shape):
    face = torch.rand(*shape, 3)
    ours = (letterbox(face, width=720, height=480) * 2 - 1).clamp(-1, 1)  # as reference_latents feeds the VAE
    reference = (resize_pad_crop(face.permute(2, 0, 1)[None], (480, 720)) * 2.0 - 1.0).clip(-1, 1)
    assert ours.shape == (1, 3, 480, 720)
    assert torch.equal(ours, reference)
