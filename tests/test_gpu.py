"""Tests of retention.training.gpu: the local GPU slot allocator, with fake GPU counts (CPU only)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from retention.errors import ConfigError
from retention.training.gpu import (
    CVD,
    ENV_FAKE_COUNT,
    ENV_LOCK_DIR,
    acquire_device,
    parse_visible_devices,
)

# One competing job: waits for a common start time, takes a slot, holds it for a
# while, and records what it held and when (monotonic clock, shared by processes).
WORKER = textwrap.dedent("""
    import json, os, sys, time
    from retention.training.gpu import acquire_device
    out, t0, hold = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    time.sleep(max(0.0, t0 - time.time()))
    lease = acquire_device(int(os.environ["SLOTS"]), poll_s=0.01)
    start = time.monotonic()
    cvd = os.environ.get("CUDA_VISIBLE_DEVICES")
    time.sleep(hold)
    end = time.monotonic()
    record = dict(gpu=lease.physical_id, slot=lease.slot, start=start, end=end,
                  cvd=cvd, device=lease.device, description=lease.description)
    lease.release()
    with open(out, "w") as fh:
        json.dump(record, fh)
    """)

HOLDER = textwrap.dedent("""
    import sys, time
    from retention.training.gpu import acquire_device
    lease = acquire_device(1)
    open(sys.argv[1], "w").write(lease.description)
    time.sleep(120)
    """)


def _env(lock_dir: Path, fake: int, slots: int = 1, cvd: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != CVD}
    env.update({ENV_LOCK_DIR: str(lock_dir), ENV_FAKE_COUNT: str(fake), "SLOTS": str(slots)})
    if cvd is not None:
        env[CVD] = cvd
    return env


def _compete(tmp_path: Path, n_jobs: int, env: dict, holds: list[float]) -> list[dict]:
    t0 = time.time() + 2.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path / f"job{i}.json"), str(t0), str(holds[i])],
            env=env,
        )
        for i in range(n_jobs)
    ]
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    return [json.loads((tmp_path / f"job{i}.json").read_text()) for i in range(n_jobs)]


def _max_overlap(records: list[dict]) -> int:
    events = sorted([(r["start"], 1) for r in records] + [(r["end"], -1) for r in records])
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


@pytest.fixture
def no_cvd(monkeypatch):
    """The test process without CUDA_VISIBLE_DEVICES or a fake count (restored afterwards)."""
    monkeypatch.delenv(CVD, raising=False)
    monkeypatch.delenv(ENV_FAKE_COUNT, raising=False)
    monkeypatch.delenv(ENV_LOCK_DIR, raising=False)


def test_concurrent_jobs_never_share_a_slot(tmp_path):
    # 16 jobs start together and compete for 2 GPUs x 2 slots.
    lock_dir = tmp_path / "locks"
    holds = [0.15 + 0.02 * (i % 7) for i in range(16)]
    records = _compete(tmp_path, 16, _env(lock_dir, fake=2, slots=2), holds)

    by_slot: dict[tuple, list[dict]] = {}
    for r in records:
        assert r["device"] == "cuda:0"
        assert r["cvd"] == r["gpu"]  # the job saw only its own GPU
        assert r["description"] == f"cuda:0 (physical {r['gpu']}, slot {r['slot']})"
        by_slot.setdefault((r["gpu"], r["slot"]), []).append(r)
    assert set(by_slot) == {("0", 0), ("0", 1), ("1", 0), ("1", 1)}
    for holders in by_slot.values():
        holders.sort(key=lambda r: r["start"])
        for a, b in zip(holders, holders[1:]):
            assert a["end"] <= b["start"], "two holders of one slot at the same time"
    # the jobs really ran concurrently, and never more of them than slots
    assert 2 <= _max_overlap(records) <= 4
    assert sorted(p.name for p in lock_dir.iterdir()) == [
        "gpu-0.slot0.lock",
        "gpu-0.slot1.lock",
        "gpu-1.slot0.lock",
        "gpu-1.slot1.lock",
    ]


def test_a_killed_holder_frees_its_slot(tmp_path, no_cvd, caplog):
    lock_dir = tmp_path / "locks"
    ready = tmp_path / "ready"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(ready)], env=_env(lock_dir, fake=1))
    try:
        deadline = time.time() + 30
        while not ready.exists():
            assert holder.poll() is None and time.time() < deadline, "holder did not start"
            time.sleep(0.02)
        assert ready.read_text() == "cuda:0 (physical 0, slot 0)"

        # the only slot is taken: we wait, log it, and time out
        with caplog.at_level(logging.INFO, logger="retention.training.gpu"):
            with pytest.raises(TimeoutError):
                acquire_device(1, lock_dir, device_count=1, poll_s=0.02, timeout_s=0.3)
        assert "busy; waiting" in caplog.text
        assert os.environ.get(CVD) is None

        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        start = time.monotonic()
        lease = acquire_device(1, lock_dir, device_count=1, poll_s=0.02, timeout_s=5)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    try:
        assert time.monotonic() - start < 1.0
        assert (lease.device, lease.physical_id, lease.slot) == ("cuda:0", "0", 0)
        assert os.environ[CVD] == "0"
        assert f"pid {os.getpid()}" in lease.lock_path.read_text()
    finally:
        lease.release()
    assert os.environ.get(CVD) is None  # restored
    # released: taken again at once
    with acquire_device(1, lock_dir, device_count=1, timeout_s=0) as again:
        assert again.held and again.slot == 0
    assert not again.held


def test_preset_visible_devices_restrict_the_choice(tmp_path):
    lock_dir = tmp_path / "locks"
    records = _compete(tmp_path, 8, _env(lock_dir, fake=8, slots=1, cvd="5,7"), [0.1] * 8)
    assert {r["gpu"] for r in records} == {"5", "7"}
    assert all(r["cvd"] == r["gpu"] and r["slot"] == 0 for r in records)
    for gpu in ("5", "7"):
        held = sorted((r for r in records if r["gpu"] == gpu), key=lambda r: r["start"])
        assert all(a["end"] <= b["start"] for a, b in zip(held, held[1:]))
    assert sorted(p.name for p in lock_dir.iterdir()) == ["gpu-5.slot0.lock", "gpu-7.slot0.lock"]


def test_two_leases_in_one_process_choose_from_the_original_visible_set(tmp_path, no_cvd, monkeypatch):
    monkeypatch.setenv(CVD, "5,7")
    lock_dir = tmp_path / "locks"
    first = acquire_device(1, lock_dir, device_count=8, timeout_s=0)
    assert (first.physical_id, first.physical_index, os.environ[CVD]) == ("5", 5, "5")
    second = acquire_device(1, lock_dir, device_count=8, timeout_s=0)
    assert (second.physical_id, os.environ[CVD]) == ("7", "7")
    with pytest.raises(TimeoutError):  # 5 and 7 are taken; 0-4 and 6 are not candidates
        acquire_device(1, lock_dir, device_count=8, timeout_s=0)
    second.release()
    assert os.environ[CVD] == "5"
    first.release()
    assert os.environ[CVD] == "5,7"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5,7", ["5", "7"]),
        (" 2 , 3", ["2", "3"]),
        ("", []),
        ("-1", []),
        ("1,-1,2", ["1"]),
        ("GPU-ab12", ["GPU-ab12"]),
    ],
)
def test_parse_visible_devices(value, expected):
    assert parse_visible_devices(value) == expected


@pytest.mark.parametrize("setting", ["count0", "empty_cvd"])
def test_no_gpu_gives_cpu_without_lock_files(tmp_path, no_cvd, monkeypatch, setting):
    lock_dir = tmp_path / "locks"
    if setting == "count0":
        lease = acquire_device(2, lock_dir, device_count=0)
    else:  # GPUs exist, but none is visible
        monkeypatch.setenv(CVD, "")
        lease = acquire_device(2, lock_dir, device_count=4)
    assert (lease.device, lease.description, lease.physical_id, lease.slot) == ("cpu", "cpu", None, None)
    assert not lease.held
    assert not lock_dir.exists()
    assert os.environ.get(CVD) == ("" if setting == "empty_cvd" else None)
    lease.release()  # a no-op


def test_real_detection_on_this_machine(tmp_path, no_cvd):
    # No fake count: NVML / the CUDA driver decide. On a machine without GPUs this is
    # the CPU and no lock directory appears; with GPUs, a narrowed cuda:0.
    import torch

    lock_dir = tmp_path / "locks"
    with acquire_device(1, lock_dir, timeout_s=5) as lease:
        if lease.device == "cpu":
            assert not lock_dir.exists()
            assert not torch.cuda.is_available()
        else:
            assert lease.device == "cuda:0" and os.environ[CVD] == lease.physical_id
            assert torch.cuda.device_count() == 1


def test_bad_slot_count_is_a_config_error(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="gpu_slots_per_device"):
        acquire_device(0, tmp_path, device_count=1)
    monkeypatch.setenv(ENV_FAKE_COUNT, "two")
    with pytest.raises(ConfigError, match=ENV_FAKE_COUNT):
        acquire_device(1, tmp_path)
