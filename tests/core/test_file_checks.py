"""Model files and configs that cannot make a real video are refused at load with the file named and what to do:
integer weights where floats belong, NaN or infinite weights in the modules checked at load, JSON configs that
are no object, lack a key or hold the wrong kind of value, and photos too thin to hold a face once shrunk."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from multiid_core.cogvideox.checkpoint import load_transformer, load_vae
from multiid_core.errors import MultiIDError
from multiid_core.faces.eva_clip import load_eva_clip
from multiid_core.faces.extractor import encode_photo, limit_long_edge
from multiid_core.faces.parsing import load_face_parser
from multiid_core.loading import check_finite, check_keys, load_sharded_folder, read_json_config
from multiid_tools.tiny_models import write_tiny_eva_clip
from multiid_tools.tiny_models.cogvideox import tiny_vae, write_tiny_consisid_snapshot
from multiid_tools.tiny_models.parsing import write_random_face_parser


def rewritten(source: Path, dest: Path, change) -> Path:
    torch.save({k: change(k, v) for k, v in torch.load(source, weights_only=True).items()}, dest)
    return dest


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("files")
    write_random_face_parser(folder / "parsing_bisenet.pth")
    write_tiny_eva_clip(folder / "eva.pt")
    return folder


def test_integer_weights_are_named_with_the_file_not_torchs_gradient_error(files):
    path = rewritten(files / "parsing_bisenet.pth", files / "int_parser.pth", lambda k, v: v.long())
    with pytest.raises(MultiIDError) as refused:
        load_face_parser(path)
    message = str(refused.value)
    assert message.startswith(f"{path} holds 160 tensors of integers or booleans where the face parser")
    assert "needs floating-point weights (e.g. " in message and ": torch.int64)" in message
    assert "num_batches_tracked" not in message and "Download parsing_bisenet.pth" in message  # counters are ints

    bools = rewritten(files / "eva.pt", files / "bool_eva.pt", lambda k, v: v > 0 if k.endswith("head.weight") else v)
    with pytest.raises(MultiIDError, match=r"holds 1 tensors .* EVA02-CLIP-L-14-336 vision tower .*torch\.bool"):
        load_eva_clip(bools)


def test_check_keys_refuses_integer_weights_but_not_batchnorm_counters():
    expected = {"w": torch.Size([2]), "bn.num_batches_tracked": torch.Size([])}
    check_keys(expected, {"w": torch.zeros(2), "bn.num_batches_tracked": torch.tensor(3)}, "m", "f", "src")
    integers = {"w": torch.zeros(2, dtype=torch.int32), "bn.num_batches_tracked": torch.tensor(3)}
    refusal = r"^f holds 1 tensors of integers .* the m needs floating-point weights \(e\.g\. w: torch\.int32\)"
    with pytest.raises(MultiIDError, match=refusal):
        check_keys(expected, integers, "m", "f", "src")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_weights_are_found_at_load(files, bad):
    def poison(key: str, value: torch.Tensor) -> torch.Tensor:
        return value.index_fill(0, torch.tensor([0]), bad) if key == "conv_out.conv_out.weight" else value

    path = rewritten(files / "parsing_bisenet.pth", files / "nan_parser.pth", poison)
    with pytest.raises(MultiIDError) as refused:
        load_face_parser(path)
    assert str(refused.value).startswith(
        f"{path} is damaged: 1 tensors of the face parser (facexlib's BiSeNet) hold NaN or infinite values (e.g. "
        "conv_out.conv_out.weight), which would make every result NaN. Download it again from "
    )
    eva = rewritten(files / "eva.pt", files / "nan_eva.pt", lambda k, v: torch.full_like(v, bad))
    with pytest.raises(MultiIDError, match=r"nan_eva\.pt is damaged: \d+ tensors of the EVA02-CLIP-L-14-336 vision"):
        load_eva_clip(eva)


def test_finite_weights_pass_in_every_float_dtype():
    """Summed in float64: large finite fp16/bf16/fp8 values never overflow into a false alarm."""
    big = {str(dtype): torch.full((100_000,), 60000.0).to(dtype) for dtype in (torch.float16, torch.bfloat16)}
    big["fp8"] = torch.full((1000,), 448.0).to(torch.float8_e4m3fn)
    check_finite(big, "module", "file", "source")


def test_a_nan_vae_is_refused_before_it_decodes_a_black_video(tmp_path):
    vae = tmp_path / "vae"
    vae.mkdir()
    model = tiny_vae()
    (vae / "config.json").write_text(json.dumps(dict(model.config)))
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    sd["decoder.conv_out.conv.bias"] = torch.full_like(sd["decoder.conv_out.conv.bias"], float("nan"))
    save_file(sd, str(vae / "diffusion_pytorch_model.safetensors"))
    with pytest.raises(MultiIDError, match=r"vae is damaged: 1 tensors of the CogVideoX VAE .*conv_out\.conv\.bias"):
        load_vae(vae, torch.float32)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ([{"d_model": 8}], r"holds a list, not the object of settings the T5 config is"),
        ("8", r"holds a string, not the object"),
        ({"d_kv": 8}, r"lacks d_model, which the T5 needs"),
        ({"d_model": "8", "d_kv": 8}, r'sets d_model to "8"; it must be a whole number'),
        ({"d_model": True, "d_kv": 8}, r"sets d_model to true; it must be a whole number"),
        ({"d_model": 8.5, "d_kv": 8}, r"sets d_model to 8.5; it must be a whole number"),
        ({"d_model": 8, "d_kv": 8, "eps": "1e-6"}, r'sets eps to "1e-6"; it must be a number'),
        ({"d_model": 8, "d_kv": 8, "name": 3}, r"sets name to 3; it must be a string or null"),
    ],
)
def test_configs_of_the_wrong_shape_are_named(tmp_path, content, says):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(content))
    typed = {"eps": float, "name": (str, type(None))}
    with pytest.raises(MultiIDError, match=rf"{path} {says}.*Download it again from the hub"):
        read_json_config(path, "T5", "the hub", required={"d_model": int}, typed=typed)


def test_a_config_of_the_right_shape_is_read(tmp_path):
    path = tmp_path / "config.json"
    config = {"d_model": 8, "eps": 1, "name": None, "other": [1]}  # a whole number is a fine float; others pass
    path.write_text(json.dumps(config))
    typed = {"eps": float, "name": (str, type(None)), "absent": int}
    assert read_json_config(path, "T5", "the hub", required={"d_model": int}, typed=typed) == config


@pytest.mark.parametrize("index", [[], {"weight_map": []}, {"weight_map": {"a": 1}}, {}])
def test_a_broken_shard_index_is_named(tmp_path, index):
    save_file({"a": torch.zeros(1)}, str(tmp_path / "model.safetensors"))
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(MultiIDError, match=r"model\.safetensors\.index\.json (holds|lacks|sets|is damaged).*Download"):
        load_sharded_folder(tmp_path, "test model", "the hub")


def photo(width: int, height: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize(("width", "height"), [(100000, 64), (64, 100000), (1025, 64)])
def test_photos_too_thin_once_shrunk_are_refused_with_their_size(width, height):
    with pytest.raises(MultiIDError) as refused:
        encode_photo(None, photo(width, height))  # refused before the extractor is reached
    message = str(refused.value)
    assert message.startswith(f"the photo is {width}x{height} pixels, a strip too long for its width")
    assert "too thin to find a face. Crop the photo around the face (at most 16 times longer than wide)." in message


def test_the_thinnest_photo_accepted_shrinks_to_64_pixels():
    assert limit_long_edge(photo(1024, 64)).shape == (64, 1024, 3)
    assert limit_long_edge(photo(64, 1024)).shape == (1024, 64, 3)
    assert limit_long_edge(photo(2048, 128)).shape == (64, 1024, 3)


def test_a_transformer_config_of_another_layout_is_named_with_the_file(tmp_path):
    write_tiny_consisid_snapshot(tmp_path)
    config = tmp_path / "transformer" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "patch_size_t": 2}))  # CogVideoX 1.5
    refusal = r"/transformer: transformer config patch_size_t=2 is not supported.*Download the ConsisID"
    with pytest.raises(MultiIDError, match=refusal):
        load_transformer(tmp_path / "transformer", torch.float32)
