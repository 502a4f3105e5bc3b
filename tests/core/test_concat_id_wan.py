"""Concat-ID-Wan core (plain PyTorch): strict loading, reference positions, preprocessing, regions.

The model itself is ComfyUI's WanModel: its Concat-ID forward is checked in tests/comfy/test_concat_id_wan_model.py,
the native samplers in tests/comfy/test_concat_id_wan_nodes.py.
"""

import pytest
import torch
import torch.nn.functional as F
from tensors import rel_err

from multiid_core.concat_id_wan.checkpoint import read_checkpoint
from multiid_core.concat_id_wan.references import reference_image, token_positions
from multiid_core.errors import MultiIDError
from multiid_core.families import CONCAT_ID_WAN, CONCAT_ID_WAN_ADALN
from multiid_core.wan.reference_tokens import AttentionGroups, latent_frames, token_regions
from multiid_tools.tiny_models.wan import write_tiny_concat_id_wan

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
    assert (config.dim, config.num_heads, config.num_layers, config.text_dim) == (256, 2, 2, 4096)
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


def test_output_length_follows_the_requested_frames():
    assert [latent_frames(n) for n in (1, 5, 49, 81)] == [1, 2, 13, 21]


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
