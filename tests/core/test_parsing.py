"""Our BiSeNet face parser against facexlib's on the same random weights, plus its loader's errors."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from facexlib.parsing.bisenet import BiSeNet as FacexlibBiSeNet
from safetensors.torch import save_file
from tensors import rel_err
from torch import nn
from torchvision.transforms.functional import normalize

from multiid_core.errors import MultiIDError
from multiid_core.faces.parsing import (
    CONCAT_ID_BACKGROUND_LABELS,
    CONSISID_BACKGROUND_LABELS,
    BiSeNet,
    background_mask,
    load_face_parser,
    parse_face,
)
from multiid_tools.tiny_models.parsing import write_random_face_parser


@pytest.fixture(scope="module")
def parser_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("parsing") / "parsing_bisenet.pth"
    write_random_face_parser(path, seed=0)
    return path


@pytest.fixture(scope="module")
def reference(parser_file: Path) -> FacexlibBiSeNet:
    net = FacexlibBiSeNet(num_class=19)
    net.load_state_dict(torch.load(parser_file, map_location="cpu", weights_only=True), strict=True)
    return net.eval()


@pytest.fixture(scope="module")
def ours(parser_file: Path) -> BiSeNet:
    return load_face_parser(parser_file, "cpu", torch.float32)


@pytest.fixture(scope="module")
def face() -> torch.Tensor:
    return torch.rand(1, 3, 512, 512, generator=torch.Generator().manual_seed(1))


def test_state_dict_matches_facexlib_keys_and_shapes() -> None:
    with torch.device("meta"):
        ref = {k: (v.shape, v.dtype) for k, v in FacexlibBiSeNet(num_class=19).state_dict().items()}
        got = {k: (v.shape, v.dtype) for k, v in BiSeNet().state_dict().items()}
    assert list(got) == list(ref)
    assert got == ref


def test_random_fixture_is_deterministic_and_sane(parser_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "again.pth"
    write_random_face_parser(other, seed=0)
    a = torch.load(parser_file, weights_only=True)
    b = torch.load(other, weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all((v > 0).all() for k, v in a.items() if k.endswith("running_var"))


def test_main_output_matches_facexlib(ours: BiSeNet, reference: FacexlibBiSeNet) -> None:
    x = torch.randn(1, 3, 512, 512, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = reference(x)[0]
        got = ours(x)
    assert got.shape == expected.shape == (1, 19, 512, 512)
    assert rel_err(got, expected) < 1e-5


def test_parse_face_matches_facexlib_pipeline(ours: BiSeNet, reference: FacexlibBiSeNet, face: torch.Tensor) -> None:
    with torch.no_grad():
        expected = reference(normalize(face, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]))[0].argmax(dim=1)
    labels = parse_face(ours, face)
    assert labels.dtype == torch.int64 and labels.shape == (1, 512, 512)
    assert torch.equal(labels, expected)


def test_safetensors_copy_loads_the_same(parser_file: Path, ours: BiSeNet, face: torch.Tensor, tmp_path: Path) -> None:
    path = tmp_path / "parsing_bisenet.safetensors"
    save_file(torch.load(parser_file, weights_only=True), str(path))
    small = face[:, :, ::4, ::4]
    with torch.no_grad():
        assert torch.equal(load_face_parser(path, "cpu", torch.float32)(small), ours(small))


def test_loads_in_bfloat16(parser_file: Path, face: torch.Tensor) -> None:
    net = load_face_parser(parser_file, "cpu", torch.bfloat16)
    assert next(net.parameters()).dtype == torch.bfloat16 and not net.training
    labels = parse_face(net, face[:, :, ::4, ::4])
    assert labels.dtype == torch.int64 and labels.shape == (1, 128, 128)


def test_operations_namespace_is_used() -> None:
    class MyConv(nn.Conv2d):
        pass

    class MyNorm(nn.BatchNorm2d):
        pass

    with torch.device("meta"):
        net = BiSeNet(operations=SimpleNamespace(Conv2d=MyConv, BatchNorm2d=MyNorm))
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert convs and all(type(m) is MyConv for m in convs)
    assert norms and all(type(m) is MyNorm for m in norms)


def _truncated(src: Path, dst: Path) -> None:
    dst.write_bytes(src.read_bytes()[: src.stat().st_size // 2])


def _random_bytes(src: Path, dst: Path) -> None:
    dst.write_bytes(random.Random(0).randbytes(4096))


def _missing_key(src: Path, dst: Path) -> None:
    sd = torch.load(src, weights_only=True)
    del sd["ffm.conv1.weight"]
    torch.save(sd, dst)


def _wrong_shape(src: Path, dst: Path) -> None:
    sd = torch.load(src, weights_only=True)
    sd["conv_out.conv_out.weight"] = torch.zeros(5, 256, 1, 1)
    torch.save(sd, dst)


def _not_a_state_dict(src: Path, dst: Path) -> None:
    torch.save([torch.zeros(3)], dst)


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (_truncated, "truncated"),
        (_random_bytes, "corrupt or not a model file"),
        (_missing_key, "1 missing tensors (e.g. ffm.conv1.weight)"),
        (_wrong_shape, "conv_out.conv_out.weight: (5, 256, 1, 1) instead of (19, 256, 1, 1)"),
        (_not_a_state_dict, "is not a state dict"),
    ],
)
def test_bad_files_raise_multiid_error(make, what: str, parser_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "parsing_bisenet.pth"
    make(parser_file, bad)
    with pytest.raises(MultiIDError) as info:
        load_face_parser(bad, "cpu", torch.float32)
    message = str(info.value)
    assert str(bad) in message
    assert what in message
    assert "parsing_bisenet.pth from the face_encoder/ folder of" in message
    assert "https://huggingface.co/BestWishYsh/ConsisID-preview" in message
    assert "facexlib release v0.2.0" in message


def test_parse_face_rejects_non_rgb_batch(ours: BiSeNet) -> None:
    with pytest.raises(MultiIDError, match=r"\[B,3,H,W\]"):
        parse_face(ours, torch.rand(3, 64, 64))


def test_missing_file_raises_multiid_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "parsing_bisenet.pth"
    with pytest.raises(MultiIDError, match="does not exist") as info:
        load_face_parser(missing, "cpu", torch.float32)
    assert str(missing) in str(info.value) and "ConsisID-preview" in str(info.value)


def test_background_mask() -> None:
    labels = torch.tensor([[[0, 1, 7, 14], [16, 17, 18, 9], [15, 10, 8, 4]]])
    consisid = background_mask(labels, CONSISID_BACKGROUND_LABELS)
    concat_id = background_mask(labels, CONCAT_ID_BACKGROUND_LABELS)
    assert consisid.dtype == torch.bool and consisid.shape == labels.shape
    assert consisid.tolist() == [[[True, False, True, True], [True, False, True, True], [True, False, True, False]]]
    assert concat_id.tolist() == [[[True, False, False, False], [True, False, True, True], [True, False, False, False]]]
