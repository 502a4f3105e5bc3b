"""Property tests (hypothesis) for the pure functions bad input meets first.

Canvas layout, mask-to-token coverage, routing assignment, latent frame ranges, frame/size validation
and face selection: for any input, either a correct result or a MultiIDError, never another exception.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from multiid_core.canvas import box_in_mask, row_boxes
from multiid_core.cogvideox.inputs import VideoSize, validate
from multiid_core.errors import MultiIDError
from multiid_core.faces.detection import DetectedFace
from multiid_core.faces.extractor import FACE_CHOICES, choose_face, encode_photo, photo_frames, to_uint8_rgb
from multiid_core.routing import (
    INSIDE,
    TokenGrid,
    assign_tokens,
    check_placed,
    latent_frame_ranges,
    mask_coverage,
    prior_log,
)

PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
sizes16 = st.integers(1, 128).map(lambda k: 16 * k)  # 16..2048 in steps of 16
small16 = st.integers(1, 32).map(lambda k: 16 * k)  # 16..512


# ---------------------------------------------------------------------------------------------- canvas layout


@PROPERTY
@given(count=st.integers(1, 6), width=sizes16, height=sizes16)
def test_row_boxes_are_equal_squares_in_a_row_inside_the_frame(count, width, height):
    boxes = row_boxes(count, width, height)
    assert len(boxes) == count
    sides = {side for _, _, side in boxes}
    assert len(sides) == 1
    side = sides.pop()
    assert side == int(min(width / count, 0.75 * height)) and side >= 1
    for x, y, _ in boxes:
        assert 0 <= x and x + side <= width and 0 <= y and y + side <= height
        assert abs((y + side / 2) - height / 2) <= 1  # vertically centred
    for (x1, _, _), (x2, _, _) in zip(boxes, boxes[1:]):
        assert x1 + side <= x2  # left to right, not overlapping


def test_row_boxes_are_the_releases_for_two_faces_at_720x480():
    assert row_boxes(2, 720, 480) == [(0, 60, 360), (360, 60, 360)]


@st.composite
def painted_rectangles(draw):
    mask_h, mask_w = draw(st.integers(4, 160)), draw(st.integers(4, 160))
    top, left = draw(st.integers(0, mask_h - 1)), draw(st.integers(0, mask_w - 1))
    bottom, right = draw(st.integers(top + 1, mask_h)), draw(st.integers(left + 1, mask_w))
    mask = torch.zeros(mask_h, mask_w)
    mask[top:bottom, left:right] = 1
    return mask, (top, bottom, left, right)


@PROPERTY
@given(
    painted=painted_rectangles(),
    width=st.integers(1, 32).map(lambda k: 16 * k),
    height=sizes16.filter(lambda h: h <= 512),
)
def test_box_in_mask_is_a_square_inside_the_painted_rectangle(painted, width, height):
    mask, (top, bottom, left, right) = painted
    x, y, side = box_in_mask(mask, width, height)
    assert side >= 1 and 0 <= x and x + side <= width and 0 <= y and y + side <= height
    sx, sy = width / mask.shape[1], height / mask.shape[0]
    slack = 1 + max(sx, sy)  # bilinear stretching blurs an edge by up to one mask pixel
    assert x >= left * sx - slack and x + side <= right * sx + slack
    assert y >= top * sy - slack and y + side <= bottom * sy + slack
    wide, tall = (right - left) * sx, (bottom - top) * sy
    assert side >= min(wide, tall) - 2 * slack  # the largest square the rectangle holds


@PROPERTY
@given(painted=painted_rectangles(), empty_before=st.integers(0, 4), width=small16)
def test_box_in_mask_uses_the_first_painted_frame(painted, empty_before, width):
    mask, _ = painted
    frames = torch.cat([torch.zeros(empty_before, *mask.shape), mask[None], torch.ones(2, *mask.shape)])
    assert box_in_mask(frames, width, 256) == box_in_mask(mask, width, 256)


def test_box_in_mask_refuses_an_empty_mask():
    with pytest.raises(MultiIDError, match="empty"):
        box_in_mask(torch.zeros(3, 64, 64), 64, 64)


# --------------------------------------------------------------------------------- masks, tokens and routing


@PROPERTY
@given(latent=st.integers(1, 13))
def test_latent_frame_ranges_partition_the_video(latent):
    video = 4 * (latent - 1) + 1
    ranges = latent_frame_ranges(video, latent)
    assert len(ranges) == latent and ranges[0] == (0, 1)
    assert all(b - a == 4 for a, b in ranges[1:])
    assert [a for a, _ in ranges[1:]] == [b for _, b in ranges[:-1]] and ranges[-1][1] == video


@st.composite
def grids(draw):
    latent = draw(st.integers(1, 4))
    return TokenGrid(latent, draw(st.integers(1, 8)), draw(st.integers(1, 8))), 4 * (latent - 1) + 1


@PROPERTY
@given(grid_frames=grids(), scale=st.integers(1, 4), data=st.data())
def test_mask_coverage_of_a_cell_aligned_rectangle_is_exact(grid_frames, scale, data):
    grid, video_frames = grid_frames
    top = data.draw(st.integers(0, grid.rows - 1))
    left = data.draw(st.integers(0, grid.cols - 1))
    bottom = data.draw(st.integers(top + 1, grid.rows))
    right = data.draw(st.integers(left + 1, grid.cols))
    cells = torch.zeros(grid.rows, grid.cols)
    cells[top:bottom, left:right] = 1
    mask = cells.repeat_interleave(scale, 0).repeat_interleave(scale, 1)  # each token: scale x scale pixels
    coverage = mask_coverage(mask, grid, video_frames, "person 1")
    assert coverage.shape == (grid.tokens,)
    assert torch.equal(coverage, cells.expand(grid.frames, -1, -1).reshape(-1))


@PROPERTY
@given(grid_frames=grids(), height=st.integers(1, 40), width=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_mask_coverage_is_a_fraction_or_a_clear_error(grid_frames, height, width, seed):
    grid, video_frames = grid_frames
    mask = torch.rand(height, width, generator=torch.Generator().manual_seed(seed)) * 2 - 0.5  # also out of 0..1
    try:
        coverage = mask_coverage(mask, grid, video_frames, "person 1")
    except MultiIDError as err:
        assert "empty" in str(err) and mask.max() <= 0
        return
    assert coverage.shape == (grid.tokens,) and coverage.min() >= 0 and coverage.max() <= 1


@PROPERTY
@given(grid_frames=grids(), painted=st.lists(st.booleans(), min_size=1, max_size=13))
def test_per_frame_masks_follow_the_video_over_time(grid_frames, painted):
    grid, video_frames = grid_frames
    painted = (painted * video_frames)[:video_frames]
    assume(any(painted))
    mask = torch.tensor(painted, dtype=torch.float32)[:, None, None].expand(-1, 8, 8)
    coverage = mask_coverage(mask, grid, video_frames, "person 1").reshape(grid.frames, -1)
    for f, (a, b) in enumerate(latent_frame_ranges(video_frames, grid.frames)):
        assert torch.allclose(coverage[f], torch.tensor(sum(painted[a:b]) / (b - a)))


@PROPERTY
@given(grid_frames=grids(), count=st.integers(0, 20))
def test_mask_frame_counts_other_than_1_video_or_latent_are_refused(grid_frames, count):
    grid, video_frames = grid_frames
    mask = torch.ones(count, 4, 4)
    if count in (1, video_frames, grid.frames):
        mask_coverage(mask, grid, video_frames, "person 1")
    else:
        with pytest.raises(MultiIDError, match=rf"has {count} frames; give 1 .* {video_frames} .* {grid.frames}"):
            mask_coverage(mask, grid, video_frames, "person 1")


fractions = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]) | st.floats(0, 1)  # ties and the 0.5 edge often


@st.composite
def coverages(draw) -> torch.Tensor:
    """[tokens, people] mask coverage."""
    tokens, people = draw(st.integers(1, 40)), draw(st.integers(1, 4))
    values = draw(st.lists(fractions, min_size=tokens * people, max_size=tokens * people))
    return torch.tensor(values).reshape(tokens, people)


@PROPERTY
@given(coverage=coverages())
def test_assign_tokens_gives_each_token_to_its_best_covering_person_or_nobody(coverage):
    owners = assign_tokens(coverage)
    assert owners.shape == coverage.shape and set(owners.unique().tolist()) <= {0.0, 1.0}
    for row, assigned in zip(coverage, owners):
        if row.max() < INSIDE:
            assert assigned.sum() == 0
        else:
            first_best = int(torch.nonzero(row == row.max())[0])  # ties: the earlier person
            assert assigned.sum() == 1 and assigned[first_best] == 1


@PROPERTY
@given(coverage=coverages())
def test_check_placed_refuses_exactly_when_someone_owns_no_token(coverage):
    labels = [f"person {i + 1}" for i in range(coverage.shape[1])]
    lost = [label for label, owned in zip(labels, assign_tokens(coverage).sum(0).tolist()) if owned == 0]
    if lost:
        with pytest.raises(MultiIDError, match=" and ".join(lost) + " would appear nowhere"):
            check_placed(coverage, labels)
    else:
        check_placed(coverage, labels)


@PROPERTY
@given(coverage=coverages())
def test_prior_is_a_finite_log_distribution(coverage):
    prior = prior_log(coverage)
    assert torch.isfinite(prior).all()
    assert torch.allclose(prior.exp().sum(1), torch.ones(coverage.shape[0]), atol=1e-5)


# ------------------------------------------------------------------------------------ frame and size checks


def stub_model(learned: bool = True, patch: int = 2, spatial: int = 8, temporal: int = 4) -> SimpleNamespace:
    """What `validate` reads of a loaded model: the family's name, the transformer config, the VAE's scale."""
    config = SimpleNamespace(
        patch_size=patch,
        use_learned_positional_embeddings=learned,
        sample_frames=49,
        sample_height=60,
        sample_width=90,
    )
    levels = spatial.bit_length()  # a diffusers VAE halves the size between its blocks: 2 ** (blocks - 1)
    vae = SimpleNamespace(config=SimpleNamespace(block_out_channels=[8] * levels, temporal_compression_ratio=temporal))
    return SimpleNamespace(family=SimpleNamespace(name="ConsisID"), config=config, vae=vae, scale=(spatial, temporal))


def allowed(model, s: VideoSize) -> bool:
    spatial, temporal = model.scale
    multiple = spatial * model.config.patch_size
    ok = s.frames >= 1 and (s.frames - 1) % temporal == 0
    ok = ok and all(v >= multiple and v % multiple == 0 for v in (s.width, s.height))
    if model.config.use_learned_positional_embeddings:
        ok = ok and s.frames <= 49 and s.width <= 720 and s.height <= 480
    return ok


@PROPERTY
@given(
    frames=st.integers(-3, 120),
    width=st.integers(-16, 1100),
    height=st.integers(-16, 800),
    learned=st.booleans(),
)
def test_validate_accepts_exactly_what_the_model_can_do(frames, width, height, learned):
    model = stub_model(learned)
    s = VideoSize(width=width, height=height, frames=frames)
    if allowed(model, s):
        validate(model.family, model.config, model.vae, s)
        return
    with pytest.raises(MultiIDError) as refused:
        validate(model.family, model.config, model.vae, s)
    message = str(refused.value)
    suggested = [int(n) for n in re.findall(r"Use (\d+)(?: or (\d+))?", message)[0] if n] if "Use " in message else []
    if message.startswith("frames must be"):  # the suggested frame counts are 4k+1
        assert suggested and all((n - 1) % 4 == 0 and n >= 1 for n in suggested)
    elif "must be a multiple of 16" in message:  # the suggested size is a multiple of 16
        assert len(suggested) == 1 and suggested[0] % 16 == 0 and suggested[0] >= 16


# ------------------------------------------------------------------------------------------ face selection


@st.composite
def detected_faces(draw, max_size: int = 8):
    faces = []
    for _ in range(draw(st.integers(0, max_size))):
        x1, y1 = draw(st.floats(0, 900)), draw(st.floats(0, 900))
        x2, y2 = x1 + draw(st.floats(1, 100)), y1 + draw(st.floats(1, 100))
        faces.append(DetectedFace(bbox=np.array([x1, y1, x2, y2]), kps=np.zeros((5, 2)), score=0.9))
    return faces


def centre(face: DetectedFace) -> tuple[float, float]:
    return (face.bbox[0] + face.bbox[2]) / 2, (face.bbox[1] + face.bbox[3]) / 2


@PROPERTY
@given(faces=detected_faces(), choice=st.sampled_from(FACE_CHOICES), index=st.integers(0, 10))
def test_choose_face_picks_the_face_asked_for_or_says_why_not(faces, choice, index):
    size = (1000, 1000)
    if not faces:
        with pytest.raises(MultiIDError, match="No face found in the photo"):
            choose_face(faces, size, choice, index, "the photo")
        return
    if choice == "index" and index >= len(faces):
        with pytest.raises(MultiIDError, match=rf"face_index {index} is out of range .* {len(faces)} face\(s\)"):
            choose_face(faces, size, choice, index, "the photo")
        return
    face = choose_face(faces, size, choice, index, "the photo")
    assert any(face is f for f in faces)
    if choice == "largest":
        assert face.area == max(f.area for f in faces)
    elif choice == "central":
        distance = [(centre(f)[0] - 500) ** 2 + (centre(f)[1] - 500) ** 2 for f in faces]
        assert (centre(face)[0] - 500) ** 2 + (centre(face)[1] - 500) ** 2 == min(distance)
    else:
        assert sorted(centre(f)[0] for f in faces)[index] == centre(face)[0]


@given(faces=detected_faces(), choice=st.text(min_size=1).filter(lambda c: c not in FACE_CHOICES))
def test_choose_face_refuses_unknown_choices(faces, choice):
    with pytest.raises(MultiIDError, match="Unknown face choice"):
        choose_face(faces, (100, 100), choice, 0, "the photo")


# ---------------------------------------------------------------------------------------------- photo input


@PROPERTY
@given(channels=st.integers(1, 4), height=st.integers(1, 20), width=st.integers(1, 20), seed=st.integers(0, 999))
def test_photos_of_any_channel_count_become_rgb(channels, height, width, seed):
    image = torch.rand(height, width, channels, generator=torch.Generator().manual_seed(seed))
    rgb = to_uint8_rgb(image)
    assert rgb.shape == (height, width, 3) and rgb.dtype == np.uint8
    expected = image[..., :1].expand(-1, -1, 3) if channels < 3 else image[..., :3]
    assert np.array_equal(rgb, np.rint(expected.numpy() * 255).astype(np.uint8))


@PROPERTY
@given(shapes=st.lists(st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9)), min_size=1, max_size=4))
def test_photo_batches_of_different_sizes_keep_every_photo(shapes):
    batches = [torch.zeros(n, h, w, 3) for n, h, w in shapes]
    frames = photo_frames(batches)
    assert [tuple(f.shape) for f in frames] == [(h, w, 3) for n, h, w in shapes for _ in range(n)]


@PROPERTY
@given(value=st.integers(0, 255), spread=st.integers(0, 7), height=st.integers(64, 96), width=st.integers(64, 96))
def test_blank_photos_are_refused_before_detection(value, spread, height, width):
    image = np.full((height, width, 3), min(value, 255 - spread), np.uint8)
    image[0, 0] += spread
    with pytest.raises(MultiIDError, match=r"the photo is blank: every pixel has about the same colour"):
        encode_photo(None, image)  # the extractor is never reached
