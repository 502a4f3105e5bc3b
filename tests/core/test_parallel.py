"""multiid_core.parallel on 2 and 3 real processes over gloo (CPU), against the same computation in one process.

Each world size is started once (spawned processes, a file rendezvous: no port to race for); every rank runs
every check below and saves what it computed, and the tests compare those tensors with the whole computed
here. A check failing on one rank ends the run within the collectives' timeout; the processes are always reaped.
"""

from __future__ import annotations

import datetime
import multiprocessing
import time
import traceback
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F  # noqa: N812
from tensors import rel_err

from multiid_core.parallel import PeerResiduals, SequenceShard, UlyssesAttention, token_splits

WORLDS = (2, 3)
HEADS, HEAD_DIM = 6, 8  # 6 heads split over 2 and 3 ranks
FRONT = 5  # replicated tokens before the sharded ones (CogVideoX's text)
COLLECTIVE_TIMEOUT = datetime.timedelta(seconds=30)  # a rank whose peer failed gives up after this
RUN_TIMEOUT = 120.0  # seconds for a whole world to start, check and exit


def tokens_of(world: int) -> dict[str, int]:
    """Sequence lengths of the checks: uneven over `world` ranks, and one shorter than the world (an empty slice)."""
    return {"uneven": 7 if world == 3 else 9, "short": world - 1, "ring": 4 * world}


def full(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def qkv(seed: int, tokens: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[2, HEADS, tokens, HEAD_DIM] each."""
    return tuple(full(seed + i, 2, HEADS, tokens, HEAD_DIM) for i in range(3))


def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v)


def residual(k: int) -> torch.Tensor:
    return full(100 + k, 2, 5, 16)


# ------------------------------------------------------------------------------------------- what each rank runs


def check_round_trip(shard: SequenceShard, world: int) -> dict:
    out = {}
    for name in ("uneven", "short"):
        tokens = tokens_of(world)[name]
        spread = shard.heads_for_tokens(shard.take(full(1, 2, HEADS, tokens, HEAD_DIM), 2), tokens)
        out[name] = (spread, shard.tokens_for_heads(spread))
    return out


def check_ulysses(shard: SequenceShard, world: int) -> dict:
    tokens = tokens_of(world)["uneven"]
    q, k, v = qkv(10, FRONT + tokens)
    attention = UlyssesAttention(shard, sdpa, tokens, front=FRONT)
    with_front = attention(*(torch.cat([x[:, :, :FRONT], shard.take(x[:, :, FRONT:], 2)], dim=2) for x in (q, k, v)))
    plain = UlyssesAttention(shard, sdpa, tokens)(*(shard.take(x[:, :, FRONT:], 2) for x in (q, k, v)))
    return {"front": with_front, "plain": plain}


def check_ring(world: int) -> dict:
    """Ring degree `world`, Ulysses 1: each rank one equal chunk, keys and values passed around the ring."""
    tokens = tokens_of(world)["ring"]
    ring = dist.new_group(list(range(world)))
    singles = [dist.new_group([r]) for r in range(world)]  # every rank creates every group
    rank = dist.get_rank()
    shard = SequenceShard(rank, world, ring, ring=world, ulysses_group=singles[rank], ring_group=ring)
    q, k, v = qkv(20, FRONT + tokens)
    attention = UlyssesAttention(shard, sdpa, tokens, front=FRONT)
    with_front = attention(*(torch.cat([x[:, :, :FRONT], shard.take(x[:, :, FRONT:], 2)], dim=2) for x in (q, k, v)))
    plain = UlyssesAttention(shard, sdpa, tokens)(*(shard.take(x[:, :, FRONT:], 2) for x in (q, k, v)))
    return {"front": with_front, "plain": plain}


def check_gather(shard: SequenceShard, world: int) -> dict:
    tokens = tokens_of(world)["uneven"]
    x = full(30, 2, tokens, 3)
    video = tokens - 2  # the last two tokens are references, which are not gathered
    local = shard.take(x, 1)
    held = shard.sizes_within(tokens, video)[shard.rank]
    return {
        "all": shard.gather(local, 1, shard.sizes(tokens)),
        "video": shard.gather(local[:, :held], 1, shard.sizes_within(tokens, video)),
        "dim 2": shard.gather(local.movedim(1, 2), 2, shard.sizes(tokens)),
    }


def check_peers(world: int) -> dict:
    """The last rank sends three residuals to rank 0, the pair (with 3 ranks, rank 1 is in neither)."""
    pair = dist.new_group([0, world - 1])
    rank = dist.get_rank()
    residuals = PeerResiduals(pair, world - 1, torch.empty(2, 5, 16))
    if rank == world - 1:
        for k in range(3):
            residuals[k] = residual(k)
        return {}
    if rank == 0:
        assert all(k in residuals for k in range(3))
        return {k: residuals.pop(k) for k in range(3)}
    return {}


def rank_main(rank: int, world: int, store: str, folder: str) -> None:
    torch.set_num_threads(1)
    out = Path(folder)
    try:
        dist.init_process_group(
            "gloo", init_method=f"file://{store}", rank=rank, world_size=world, timeout=COLLECTIVE_TIMEOUT
        )
        shard = SequenceShard(rank, world, dist.new_group(list(range(world))))
        results = {
            "round trip": check_round_trip(shard, world),
            "ulysses": check_ulysses(shard, world),
            "gather": check_gather(shard, world),
            "peers": check_peers(world),
            "ring": check_ring(world),
        }
        torch.save(results, out / f"rank{rank}.pt")
    except BaseException:
        (out / f"rank{rank}.error").write_text(traceback.format_exc())
        raise
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


# ----------------------------------------------------------------------------------------------- the driver


def run_world(world: int, folder: Path) -> list[dict]:
    """Every rank's results; fails with the first rank's traceback. Every process is joined or killed."""
    context = multiprocessing.get_context("spawn")
    store = folder / "store"
    processes = [context.Process(target=rank_main, args=(r, world, str(store), str(folder))) for r in range(world)]
    for process in processes:
        process.start()
    deadline = time.monotonic() + RUN_TIMEOUT
    try:
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
    finally:
        late = [p for p in processes if p.is_alive()]
        for process in late:
            process.kill()
            process.join(10)
    errors = sorted(folder.glob("rank*.error"))
    assert not errors, errors[0].read_text()
    assert not late, f"{len(late)} of {world} ranks did not finish within {RUN_TIMEOUT:.0f} s"
    assert [p.exitcode for p in processes] == [0] * world
    return [torch.load(folder / f"rank{r}.pt") for r in range(world)]


@pytest.fixture(scope="module", params=WORLDS, ids=lambda world: f"{world} ranks")
def ranks(request, tmp_path_factory) -> list[dict]:
    return run_world(request.param, tmp_path_factory.mktemp(f"world{request.param}"))


# -------------------------------------------------------------------------------------------------- the tests


def test_token_splits_are_contiguous_and_the_first_ones_larger():
    assert token_splits(189, 2) == [95, 94]
    assert token_splits(189, 4) == [48, 47, 47, 47]
    assert token_splits(7, 3) == [3, 2, 2]
    assert token_splits(12, 3) == [4, 4, 4]
    assert token_splits(2, 3) == [1, 1, 0]
    for tokens in range(30):
        for parts in range(1, 6):
            sizes = token_splits(tokens, parts)
            assert sum(sizes) == tokens and max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_shard_bounds_and_sizes_within_without_a_process_group():
    shards = [SequenceShard(r, 3, None) for r in range(3)]
    assert [s.bounds(10) for s in shards] == [(0, 4), (4, 7), (7, 10)]
    x = torch.arange(20).reshape(2, 10)
    assert torch.equal(torch.cat([s.take(x, 1) for s in shards], dim=1), x)
    assert torch.equal(shards[1].take(x, 1, tokens=7), x[:, 3:5])  # a slice of the first 7 only
    assert shards[0].sizes_within(10, 7) == [4, 3, 0]  # video tokens first, the last 3 are references
    assert shards[0].sizes_within(10, 5) == [4, 1, 0]
    assert shards[0].sizes_within(10, 10) == [4, 3, 3]
    assert SequenceShard(0, 2, None).sizes_within(9, 6) == [5, 1]


@pytest.mark.parametrize("length", ["uneven", "short"])
def test_heads_for_tokens_and_back(ranks, length):
    world = len(ranks)
    tokens = tokens_of(world)[length]
    x = full(1, 2, HEADS, tokens, HEAD_DIM)
    share = HEADS // world
    for rank, result in enumerate(ranks):
        spread, back = result["round trip"][length]
        assert torch.equal(spread, x[:, rank * share : (rank + 1) * share])  # every token, this rank's heads
        assert torch.equal(back, SequenceShard(rank, world, None).take(x, 2))  # this rank's tokens, every head


@pytest.mark.parametrize("front", [True, False])
def test_ulysses_attention_is_full_attention(ranks, front):
    world = len(ranks)
    tokens = tokens_of(world)["uneven"]
    q, k, v = qkv(10, FRONT + tokens)
    outputs = [result["ulysses"]["front" if front else "plain"] for result in ranks]
    if front:
        expected = sdpa(q, k, v)
        for out in outputs:  # every rank holds the whole front's output
            assert rel_err(out[:, :, :FRONT], expected[:, :, :FRONT]) < 1e-6
        outputs = [out[:, :, FRONT:] for out in outputs]
        expected = expected[:, :, FRONT:]
    else:
        expected = sdpa(*(x[:, :, FRONT:] for x in (q, k, v)))
    assert [out.shape[2] for out in outputs] == token_splits(tokens, world)
    error = rel_err(torch.cat(outputs, dim=2), expected)
    print(f"ulysses {world} ranks, front {front}: rel_err {error:.2e}")
    assert error < 1e-6


@pytest.mark.parametrize("front", [True, False])
def test_ring_attention_is_full_attention(ranks, front):
    world = len(ranks)
    tokens = tokens_of(world)["ring"]
    q, k, v = qkv(20, FRONT + tokens)
    outputs = [result["ring"]["front" if front else "plain"] for result in ranks]
    expected = sdpa(q, k, v) if front else sdpa(*(x[:, :, FRONT:] for x in (q, k, v)))
    if front:
        for out in outputs:
            assert rel_err(out[:, :, :FRONT], expected[:, :, :FRONT]) < 1e-6
        outputs, expected = [out[:, :, FRONT:] for out in outputs], expected[:, :, FRONT:]
    error = rel_err(torch.cat(outputs, dim=2), expected)
    print(f"ring {world} ranks, front {front}: rel_err {error:.2e}")
    assert error < 1e-6


def test_gather_with_uneven_sizes_and_sizes_within(ranks):
    world = len(ranks)
    tokens = tokens_of(world)["uneven"]
    x = full(30, 2, tokens, 3)
    for result in ranks:  # every rank gets the whole
        assert torch.equal(result["gather"]["all"], x)
        assert torch.equal(result["gather"]["video"], x[:, : tokens - 2])
        assert torch.equal(result["gather"]["dim 2"], x.movedim(1, 2))


def test_peer_residuals_reach_the_pair(ranks):
    received = ranks[0]["peers"]
    assert sorted(received) == [0, 1, 2]
    for k, tensor in received.items():
        assert torch.equal(tensor, residual(k))
    assert all(not result["peers"] for result in ranks[1:])
