"""Our timm-based EVA02-CLIP-L-14-336 loader against the authors' EVA-CLIP code (consisid-eva-clip)."""

import pytest
import torch
import torchvision.transforms.functional as TF
from tensors import rel_err

from multiid_core.errors import MultiIDError
from multiid_core.faces.eva_clip import CLIP_MEAN, CLIP_STD, load_eva_clip, timm_to_eva_clip
from multiid_tools.tiny_models import write_tiny_eva_clip


@pytest.fixture(scope="module")
def full_size_reference(tmp_path_factory):
    """The authors' EVA02-CLIP-L-14-336 with random weights, and the same weights saved as released."""
    consisid_eva_clip = pytest.importorskip("consisid_eva_clip")
    torch.manual_seed(0)
    model, _, _ = consisid_eva_clip.create_model_and_transforms(
        "EVA02-CLIP-L-14-336", pretrained=None, force_custom_clip=True
    )
    visual = model.visual.eval()
    state = {k: v.half() for k, v in model.state_dict().items()}
    path = tmp_path_factory.mktemp("eva") / "EVA02_CLIP_L_336_psz14_s6B.pt"
    torch.save(state, path)
    visual.load_state_dict({k.removeprefix("visual."): v.float() for k, v in state.items() if k.startswith("visual.")})
    return visual, path


def test_full_size_parity_with_authors_code(full_size_reference):
    reference, path = full_size_reference
    ours = load_eva_clip(path, dtype=torch.float32)
    face = torch.rand(1, 3, 512, 512, generator=torch.Generator().manual_seed(1))

    # The reference pipeline's own transform: torchvision bicubic resize then CLIP normalisation.
    ref_input = TF.normalize(TF.resize(face, 336, TF.InterpolationMode.BICUBIC), CLIP_MEAN, CLIP_STD)
    assert rel_err(ours.preprocess(face), ref_input) < 1e-6

    with torch.inference_mode():
        ref_cls, ref_hidden = reference(ref_input, return_all_features=False, return_hidden=True, shuffle=False)
        cls, hidden = ours(face)
    ref_cls = ref_cls / ref_cls.norm(dim=1, keepdim=True)
    assert cls.shape == (1, 768)
    assert rel_err(cls, ref_cls) < 1e-5
    assert len(hidden) == len(ref_hidden) == 5
    for ours_h, ref_h in zip(hidden, ref_hidden):
        assert ours_h.shape == (1, 577, 1024)
        assert rel_err(ours_h, ref_h) < 1e-5


def test_tiny_checkpoint_uses_released_key_format(tmp_path):
    path = write_tiny_eva_clip(tmp_path / "EVA02_CLIP_L_336_psz14_s6B.pt")
    keys = set(torch.load(path, weights_only=True))
    assert "visual.blocks.0.attn.q_bias" in keys and "visual.blocks.0.mlp.w3.weight" in keys
    eva = load_eva_clip(path)
    cls, hidden = eva(torch.rand(2, 3, 512, 512))
    assert cls.shape[0] == 2 and torch.allclose(cls.norm(dim=1), torch.ones(2))
    assert len(hidden) == 5 and hidden[0].shape[:2] == (2, 577)


def test_renames_round_trip():
    sd = {"blocks.3.attn.q_proj.bias": torch.zeros(1), "blocks.3.mlp.fc1_g.weight": torch.zeros(1)}
    assert set(timm_to_eva_clip(sd)) == {"visual.blocks.3.attn.q_bias", "visual.blocks.3.mlp.w1.weight"}


def test_bad_files_get_clear_errors(tmp_path):
    missing = tmp_path / "nope.pt"
    with pytest.raises(MultiIDError, match="does not exist.*ConsisID-preview"):
        load_eva_clip(missing)

    truncated = tmp_path / "truncated.pt"
    good = write_tiny_eva_clip(tmp_path / "good.pt")
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(MultiIDError, match="truncated.*download it again"):
        load_eva_clip(truncated)

    foreign = tmp_path / "foreign.pt"
    torch.save({"visual.something": torch.zeros(3)}, foreign)
    with pytest.raises(MultiIDError, match="not an EVA-CLIP checkpoint"):
        load_eva_clip(foreign)
