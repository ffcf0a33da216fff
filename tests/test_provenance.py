"""retention.provenance: run.json records, their atomic writing, and provenance.csv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from retention import provenance
from retention.errors import DataError, StorageError

from .conftest import REPO

START = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def record(**over) -> dict:
    args = dict(
        stage="sampler",
        dataset="digits",
        arch="cnn",
        seed=3,
        config={"train": {"epochs": 2}, "inputs": {"manifest": Path("m.csv")}},
        device="cpu",
        started=START,
        ended=START + timedelta(seconds=90.5),
        sampler="spaced",
        commit="a" * 40,
    )
    args.update(over)
    return provenance.run_record(**args)


def test_record_holds_the_run_its_config_times_versions_and_device():
    import timm
    import torch
    import torchvision

    rec = record()  # after torch is loaded, as in a training job
    assert {k: rec[k] for k in ("stage", "dataset", "arch", "seed", "sampler", "git_commit")} == {
        "stage": "sampler",
        "dataset": "digits",
        "arch": "cnn",
        "seed": 3,
        "sampler": "spaced",
        "git_commit": "a" * 40,
    }
    assert rec["started"] == "2026-01-02T03:04:05+00:00" and rec["duration_s"] == 90.5
    ended, started = datetime.fromisoformat(rec["ended"]), datetime.fromisoformat(rec["started"])
    assert ended - started == timedelta(seconds=90.5)
    assert set(rec["versions"]) == {"python", "retention", "torch", "torchvision", "timm", "cuda"}
    assert rec["versions"]["torch"] == torch.__version__ and rec["versions"]["timm"] == timm.__version__
    assert rec["versions"]["torchvision"] == torchvision.__version__
    assert rec["versions"]["cuda"] == torch.version.cuda  # torch is loaded: its build's CUDA (None on CPU)
    assert rec["device"]["type"] == "cpu" and rec["device"]["name"] == provenance.cpu_name()
    assert rec["host"] and rec["config"]["train"] == {"epochs": 2}
    with pytest.raises(ValueError, match="stage"):
        record(stage="finetuning")


def test_cpu_name_reads_cpuinfo_else_the_platform(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU @ 2.0GHz\n\n")
    assert provenance.cpu_name(info) == "Test CPU @ 2.0GHz"
    monkeypatch.setattr(provenance.platform, "processor", lambda: "arm")
    assert provenance.cpu_name(tmp_path / "missing") == "arm"
    monkeypatch.setattr(provenance.platform, "processor", lambda: "")
    assert provenance.cpu_name(tmp_path / "missing") is None


def test_git_commit_of_a_checkout_and_none_outside_one(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert provenance.git_commit(tmp_path) is None  # not a git checkout
    if (REPO / ".git").exists():
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout
        head = head.strip()
        assert provenance.git_commit() == head and len(head) >= 40
    monkeypatch.setenv("PATH", str(tmp_path))  # no git at all
    assert provenance.git_commit(REPO) is None


def test_write_record_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "run" / "run.json"
    provenance.write_record(path, record())
    assert json.loads(path.read_text())["config"]["inputs"]["manifest"] == "m.csv"  # a Path, as a string
    assert os.listdir(path.parent) == ["run.json"]  # no temporary file left
    old = path.read_text()

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(StorageError, match="run.json"):
        provenance.write_record(path, record(seed=4))
    assert path.read_text() == old and os.listdir(path.parent) == ["run.json"]


def test_table_has_one_row_per_record_and_names_bad_records(tmp_path):
    paths = []
    for seed, sampler in ((0, None), (1, "random")):
        paths.append(tmp_path / f"seed{seed}.json")
        stage = "sampler" if sampler else "finetune"
        provenance.write_record(paths[-1], record(seed=seed, sampler=sampler, stage=stage))
    table = provenance.provenance_table([provenance.read_record(p) for p in paths])
    assert list(table.columns) == list(provenance.TABLE_COLUMNS)
    assert table["seed"].tolist() == [0, 1] and table["sampler"].tolist() == ["", "random"]
    assert table["device"].tolist() == [provenance.cpu_name()] * 2 and (table["duration_s"] == 90.5).all()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"stage": "finetune"}))
    with pytest.raises(DataError, match="bad.json lacks"):
        provenance.read_record(bad)
    with pytest.raises(DataError, match="does not exist"):
        provenance.read_record(tmp_path / "absent.json")


def test_collect_script_help_and_standalone(tmp_path):
    script = REPO / "scripts" / "collect_provenance.py"
    usage = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True)
    assert usage.returncode == 0 and "run.json" in usage.stdout
    paths = [tmp_path / f"r{s}.json" for s in (0, 1)]
    for seed, path in enumerate(paths):
        provenance.write_record(path, record(seed=seed, commit="b" * 40 if seed else "a" * 40))
    out = tmp_path / "provenance.csv"
    proc = subprocess.run(
        [sys.executable, str(script), *map(str, paths), "--out", str(out)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert pd.read_csv(out)["seed"].tolist() == [0, 1]
    assert "2 git commits" in proc.stderr  # runs of different code are pointed out
    missing = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "none.json"), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 1 and "none.json does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr


def _git(folder, *args):
    subprocess.run(
        ["git", *args],
        cwd=folder,
        check=True,
        capture_output=True,
        env={
            **os.environ,
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@t",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t",
        },
    )


def test_git_state_records_uncommitted_changes_and_their_hash(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    _git(tmp_path, "add", "code.py")
    _git(tmp_path, "commit", "-q", "-m", "one")
    clean = provenance.git_state(tmp_path)
    assert (
        clean.commit == provenance.git_commit(tmp_path) and clean.dirty is False and clean.diff_sha256 is None
    )
    (tmp_path / "code.py").write_text("x = 2\n")
    dirty = provenance.git_state(tmp_path)
    assert dirty.commit == clean.commit and dirty.dirty is True and len(dirty.diff_sha256) == 64
    (tmp_path / "code.py").write_text("x = 3\n")
    assert provenance.git_state(tmp_path).diff_sha256 != dirty.diff_sha256  # another change, another hash
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "new.py").write_text("y = 1\n")  # an untracked file: dirty, no diff of tracked files
    assert provenance.git_state(tmp_path) == provenance.GitState(clean.commit, True, None)
    rec = record(commit=dirty, data_sha256="d" * 64)
    assert (rec["git_commit"], rec["git_dirty"], rec["git_diff_sha256"], rec["data_sha256"]) == (
        dirty.commit,
        True,
        dirty.diff_sha256,
        "d" * 64,
    )
    row = provenance.table_row(rec)
    assert (row["git_dirty"], row["git_diff_sha256"], row["data_sha256"]) == (
        True,
        dirty.diff_sha256,
        "d" * 64,
    )


def test_data_digest_hashes_the_images_and_the_manifest(tmp_path):
    manifest, images = tmp_path / "manifest.csv", tmp_path / "images.npy"
    manifest.write_text("sample_id\n0\n")
    images.write_bytes(b"\x00" * 100)
    first = provenance.data_digest(manifest, images)
    assert first == provenance.file_digest(images, manifest) and len(first) == 64
    images.write_bytes(b"\x01" * 101)  # the stored images changed: another hash (not a cached one)
    assert provenance.data_digest(manifest, images) not in (first, None)


def test_collect_script_warns_about_dirty_checkouts_and_changed_data(tmp_path):
    script = REPO / "scripts" / "collect_provenance.py"
    dirty = provenance.GitState("a" * 40, True, "f" * 64)
    paths = [tmp_path / f"r{s}.json" for s in (0, 1)]
    for seed, path in enumerate(paths):
        provenance.write_record(
            path, record(seed=seed, stage="finetune", sampler=None, commit=dirty, data_sha256="ab"[seed] * 64)
        )
    out = tmp_path / "provenance.csv"
    proc = subprocess.run(
        [sys.executable, str(script), *map(str, paths), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out)
    assert table["git_dirty"].tolist() == [True, True] and table["git_diff_sha256"].tolist() == ["f" * 64] * 2
    assert table["data_sha256"].tolist() == ["a" * 64, "b" * 64]
    assert (
        "2 of 2 runs were trained from a checkout with uncommitted changes (diff sha256 ffffffffffff)"
        in proc.stderr
    )
    assert "2 different versions of the prepared data" in proc.stderr


def test_a_finished_run_leaves_no_empty_checkpoint_folders(tmp_path):
    from retention.io import remove_checkpoint

    ours = tmp_path / "results/checkpoints/sampler/d/cnn/spaced/seed0.pt"
    other = tmp_path / "results/checkpoints/d/vit/seed1.pt"  # another run's, still in progress
    for path in (ours, other):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"state")
    remove_checkpoint(ours)
    assert not (tmp_path / "results/checkpoints/sampler").exists() and other.exists()
    remove_checkpoint(other)
    assert not (tmp_path / "results/checkpoints").exists() and (tmp_path / "results").is_dir()
    # a checkpoint outside a checkpoints folder (a standalone --checkpoint) loses only the file
    mine = tmp_path / "mine/ck.pt"
    mine.parent.mkdir()
    mine.write_bytes(b"state")
    remove_checkpoint(mine)
    assert not mine.exists() and mine.parent.is_dir()
