"""MultiID Multi-GPU going wrong in a real ComfyUI server (--cpu, so the ranks are CPU Ray actors over gloo).

Each fault must end the run with a clear message within seconds, leave the server working (the next prompt,
on one process and on the ranks, succeeds) and leave no process behind: the server's descendants (psutil,
recursive) return to their count before Ray started. The faults: a rank killed (SIGKILL) mid-run, Ray
addresses nobody answers, POST /interrupt during a parallel run, settings the model or the world size cannot
take. Last, the server is stopped (SIGTERM, as a service manager does) with the ranks warm: no Ray process
(gcs_server, raylet, ray::* workers) outlives it.

This module runs its own server (the last test stops it). Figures are printed with -s.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time

import psutil
import pytest
from comfy_env import ComfyServer, error_message, make_base_dir
from reliability_graphs import assert_clear, finished, outcome, succeed, video_prompt, with_model_patch

pytestmark = pytest.mark.server

SMALL = {"width": 64, "height": 64, "frames": 5, "steps": 2}  # reliability_graphs' size: seconds a run
LONG = {"width": 352, "height": 240, "frames": 9, "steps": 200}  # a run that would take minutes: stopped early
ERROR_WITHIN = 10.0  # seconds from the fault to the run's error
SETTLE_WITHIN = 30.0  # seconds for the group's and Ray's processes to exit
RANK = "ray::RankActor"  # the process title Ray gives an actor's worker (".forward" etc. while it runs a call)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """This module's own server (it stops it at the end); shadows the session server of conftest.py."""
    base = make_base_dir(tmp_path_factory.mktemp("multi_gpu_faults_base"))
    with ComfyServer(base) as running:
        yield running


@pytest.fixture(scope="module")
def defaults(server) -> dict:
    return widget_defaults(server)


def widget_defaults(server) -> dict:
    """MultiID Multi-GPU's widget defaults, from the running server (world size 2, guidance parallel, ...)."""
    required = server.get("/object_info/MultiID_MultiGPU")["MultiID_MultiGPU"]["input"]["required"]
    return {name: spec[1]["default"] for name, spec in required.items() if name != "model"}


@pytest.fixture(scope="module")
def before(server) -> int:
    """The server's descendant count with everything but Ray loaded (after one single-process run)."""
    succeed(server, video_prompt(**SMALL))
    count = len(descendants(server))
    print(f"\nserver descendants before any Multi-GPU run: {count}")
    return count


def parallel(defaults: dict, size: dict = SMALL, **settings) -> dict:
    """reliability_graphs' small ConsisID graph with MultiID Multi-GPU between the loader and the sampler."""
    node = {"class_type": "MultiID_MultiGPU", "inputs": {**defaults, **settings}}
    return with_model_patch(video_prompt(**size), "multi_gpu", node)


def descendants(server) -> list[psutil.Process]:
    alive = []
    for process in psutil.Process(server.process.pid).children(recursive=True):
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:
            pass
    return alive


def title(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline()).strip() or process.name()
    except psutil.Error:
        return ""


def ranks(server) -> list[psutil.Process]:
    return [p for p in descendants(server) if title(p).startswith(RANK)]


def settle(server, count: int) -> float:
    """Seconds until the server has `count` descendants again; fails naming the ones left."""
    start = time.monotonic()
    while time.monotonic() - start < SETTLE_WITHIN:
        if len(descendants(server)) == count:
            return time.monotonic() - start
        time.sleep(0.1)
    left = [f"{p.pid} {title(p)[:60]}" for p in descendants(server)]
    raise AssertionError(f"{len(left)} descendants after {SETTLE_WITHIN:.0f} s, expected {count}: {left}")


def wait_until(condition, timeout: float, what: str):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"{what}: not within {timeout:.0f} s")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: connections are refused


def next_runs_work(server, defaults: dict, before: int) -> None:
    """The server keeps working: a parallel run, then a single-process one, which drops the parallel MODEL from
    ComfyUI's cache: its ranks and the Ray this server started end, back to the descendants of before."""
    succeed(server, parallel(defaults))
    assert len(ranks(server)) == defaults["world_size"]
    succeed(server, video_prompt(**SMALL))
    print(f"after the next runs: {settle(server, before):.2f} s to {before} descendants")


def test_bad_settings_and_addresses_are_refused_in_seconds(server, defaults, before):
    """Settings the tiny ConsisID (one attention head) or the plan cannot take, and Ray addresses where no Ray
    answers: refused before any process starts, with what to change."""
    refused = closed_port()
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        mute = f"127.0.0.1:{silent.getsockname()[1]}"
        http = f"127.0.0.1:{server.port}"  # ComfyUI's own port: an answer, but HTTP/1, not Ray's gRPC
        cases = [
            ({"world_size": 3}, ["world size 3", "guidance parallel", "ulysses degree", "product match"]),
            (  # the tiny model has 1 attention head: Ulysses cannot split it between 2 ranks
                {"world_size": 2, "guidance_parallel": False, "ulysses_degree": 2},
                ["1 attention head,", "Ulysses degree 2", "divides 1"],
            ),
            ({"world_size": 0}, ["world_size", "Value 0 smaller than min of 1"]),
            ({"ray_address": f"127.0.0.1:{refused}"}, [f"127.0.0.1:{refused}", "no ray cluster", "ray start --head"]),
            ({"ray_address": mute}, [mute, "within 3 s", "firewall"]),
            ({"ray_address": http}, [http, "not as a Ray head node", "ray start --head"]),
            ({"ray_address": "my-cluster"}, ["'my-cluster' is not host:port", "ray://"]),
        ]
        for settings, patterns in cases:
            refused_in_seconds(server, defaults, before, settings, patterns)
    succeed(server, parallel(defaults))  # and on the ranks (which stay warm for the next test)
    assert len(ranks(server)) == defaults["world_size"]


def refused_in_seconds(server, defaults: dict, before: int, settings: dict, patterns: list[str]) -> None:
    """The parallel graph with `settings` fails within 5 s with the patterns, starting no process; the next
    single-process prompt succeeds."""
    start = time.monotonic()
    error, _ = outcome(server, parallel(defaults, **settings))
    took = time.monotonic() - start
    print(f"\n{settings}: {took:.2f} s: {error}")
    assert_clear(error, *(re.escape(p) for p in patterns))
    assert took < 5.0  # the 3 s check of the address at most, never ray.init's retries (20 s to 13 min)
    assert len(descendants(server)) == before  # nothing started, nothing left
    succeed(server, video_prompt(**SMALL))


def progressed(messages: list, prompt_id: str, steps: int, until: float = float("inf")) -> int:
    """The highest sampler step the websocket reported for the prompt (by `until`), or 0."""
    values = [
        m["data"]["value"]
        for t, m in list(messages)
        if t <= until
        and m.get("type") == "progress"
        and m["data"].get("prompt_id") == prompt_id
        and m["data"].get("node") == "sampler"
        and m["data"].get("max") == steps
    ]
    return max(values, default=0)


def test_interrupt_stops_a_parallel_run_within_a_step(server, defaults, before):
    messages: list = []
    stop = server.follow(lambda message: messages.append((time.monotonic(), message)))
    try:
        prompt_id = server.queue(parallel(defaults, LONG))
        wait_until(lambda: progressed(messages, prompt_id, LONG["steps"]) >= 3, 300, "the run's 3rd step")
        group = sorted(p.pid for p in ranks(server))
        warm = len(descendants(server))
        sent = time.monotonic()
        status, _ = server.post("/interrupt", {})
        assert status == 200
        entry = finished(server, prompt_id, 60)
        stopped = time.monotonic()
    finally:
        stop()
    at_request = progressed(messages, prompt_id, LONG["steps"], until=sent)
    after = progressed(messages, prompt_id, LONG["steps"]) - at_request
    print(
        f"\ninterrupt at step {at_request}/{LONG['steps']}: {after} more step(s), stopped {stopped - sent:.2f} s "
        f"after POST /interrupt; ranks {group}, {warm} descendants"
    )
    assert entry["status"]["status_str"] == "error"
    assert any(kind == "execution_interrupted" for kind, _ in entry["status"]["messages"])
    assert after <= 1 and stopped - sent < 5.0
    # An interrupt is not a failure: the ranks stay, warm for the next run (no process ended or started).
    assert len(group) == defaults["world_size"] and len(descendants(server)) == warm
    succeed(server, parallel(defaults))
    assert sorted(p.pid for p in ranks(server)) == group
    next_runs_work(server, defaults, before)


def test_a_rank_killed_mid_run_fails_the_run_in_seconds(server, defaults, before):
    messages: list = []
    stop = server.follow(lambda message: messages.append((time.monotonic(), message)))
    try:
        prompt_id = server.queue(parallel(defaults, LONG))
        wait_until(lambda: progressed(messages, prompt_id, LONG["steps"]) >= 2, 300, "the run's 2nd step")
        group = ranks(server)
        assert len(group) == defaults["world_size"], [title(p) for p in group]
        victim = group[-1]
        print(f"\nkilling {victim.pid} ({title(victim)[:40]}) at step {progressed(messages, prompt_id, 200)}")
        killed = time.monotonic()
        os.kill(victim.pid, signal.SIGKILL)
        entry = finished(server, prompt_id, 120)
        failed = time.monotonic() - killed
    finally:
        stop()
    error = error_message(entry)
    ended = wait_until(lambda: not ranks(server) and time.monotonic() - killed, SETTLE_WITHIN, "the other rank's end")
    print(f"error {failed:.2f} s after the kill: {error}\nno rank left {ended:.2f} s after the kill")
    assert_clear(error, r"rank \d", "sampling step", "next run starts a fresh one")
    assert failed < ERROR_WITHIN
    # The same graph again, as a user would queue it (its Multi-GPU MODEL comes from ComfyUI's cache: new ranks
    # start), then one process.
    next_runs_work(server, defaults, before)


def stop_and_watch(server, signum: int) -> tuple[float, dict, set]:
    """Sends `signum` to the server and follows its descendants until it exits: (seconds to exit, every
    descendant seen (pid: (process, title)), the pids that appeared after the signal)."""
    seen = {p.pid: (p, title(p)) for p in descendants(server)}
    start = time.monotonic()
    server.process.send_signal(signum)
    new = set()
    while server.process.poll() is None and time.monotonic() - start < 60:
        try:
            for process in descendants(server):
                if process.pid not in seen:
                    seen[process.pid] = (process, title(process))
                    new.add(process.pid)
        except psutil.NoSuchProcess:  # the server itself, exiting
            break
        time.sleep(0.05)
    server.process.wait(30)
    return time.monotonic() - start, seen, new


def left_of(seen: dict) -> list[str]:
    left = []
    for pid, (process, name) in seen.items():
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{pid} {name[:60]}")
        except psutil.NoSuchProcess:
            pass
    return left


def assert_no_ray_outlives(server, defaults: dict, signum: int) -> None:
    succeed(server, parallel(defaults))
    ray = [title(p) for p in descendants(server) if "ray" in title(p)]
    assert sum(t.startswith(RANK) for t in ray) == defaults["world_size"]
    assert any("gcs_server" in t for t in ray) and any("raylet" in t for t in ray)
    exited, seen, new = stop_and_watch(server, signum)
    start = time.monotonic()
    while left_of(seen) and time.monotonic() - start < SETTLE_WITHIN:
        time.sleep(0.1)
    print(
        f"\n{signal.Signals(signum).name}: {len(seen)} descendants ({len(ray)} Ray), the server exited in "
        f"{exited:.2f} s (code {server.process.returncode}); started while stopping: "
        f"{sorted(seen[pid][1][:40] for pid in new)}; left {time.monotonic() - start:.2f} s later: {left_of(seen)}"
    )
    left = left_of(seen)
    for pid, (process, _) in seen.items():  # a failed check leaves nothing behind either
        if any(entry.startswith(f"{pid} ") for entry in left):
            process.kill()
    assert sorted(seen[pid][1] for pid in new) == []  # stopping starts nothing (no Ray brought up again)
    assert left == []


def test_no_ray_process_outlives_a_stopped_server(server, defaults, before):
    """Runs last: stops this module's server with SIGTERM (a service manager, docker stop; it skips Python's
    atexit) while the ranks are warm."""
    assert_no_ray_outlives(server, defaults, signal.SIGTERM)


def test_no_ray_process_outlives_a_server_stopped_with_ctrl_c(tmp_path_factory):
    """Ctrl-C in ComfyUI's terminal (SIGINT: ComfyUI exits through its atexit handlers), on a server of its own."""
    base = make_base_dir(tmp_path_factory.mktemp("multi_gpu_ctrl_c_base"))
    with ComfyServer(base) as server:
        assert_no_ray_outlives(server, widget_defaults(server), signal.SIGINT)
