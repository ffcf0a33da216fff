"""Faults a hostile but realistic user meets (issue 19): each ends in one clear error line
or a documented correct behaviour, never a traceback, a silently wrong result or a
half-written output. Failing jobs are run as real processes (the scripts Snakemake runs),
killed with SIGKILL where the case is a kill, against a loopback HTTP server, a small
tmpfs (root) or a file size limit (anyone), and file modes in a user namespace (root).

Tested here:

| case | test |
| --- | --- |
| kill -9 during a download, then rerun: Range, checksum, no leftovers | test_kill_during_download_then_rerun_resumes_with_range |
| kill -9 during extraction, then rerun: the scratch folder is removed | test_kill_during_extraction_then_rerun_removes_the_scratch_folder, test_scratch_folder_of_a_live_process_is_kept |
| two downloads of one dataset at once | test_two_downloads_of_one_dataset_at_once |
| truncated archive, served whole without a checksum | test_truncated_archive_is_one_line_and_nothing_is_kept |
| disk full while writing outputs | test_full_disk_is_one_line_and_leaves_no_output, test_file_size_limit_is_one_line_and_leaves_no_output |
| read-only results folder | test_read_only_results_folder_is_one_line |
| permission denied | test_permission_denied_is_one_line |
| a log file on a full disk | test_unwritable_log_file_is_one_line |
| an image folder with one class | test_one_class_stops_with_a_clear_error |
| an empty class folder | test_empty_class_folder_is_named_or_skipped |
| a class with too few training images after the split | test_class_below_min_per_class_is_named, test_class_lost_to_skipped_images_is_named |
| nested non-class folders | test_split_layout_and_wrapper_folder_are_named, test_hidden_folders_and_loose_files |
| an unreadable folder or image | test_unreadable_folder_and_image_are_named |

Tested beside the code they concern:

| case | test |
| --- | --- |
| path traversal, absolute paths, symlinks, hard links, devices in tar and zip | tests/test_download.py::test_unsafe_member_is_rejected_and_nothing_left |
| wrong checksum | tests/test_download.py::test_wrong_checksum_is_rejected_and_nothing_left, tests/test_download_workflow.py::test_wrong_checksum_through_snakemake_leaves_nothing |
| dropped connection, resumed with Range (in the run, and by the next run) | tests/test_download.py::test_interrupted_download_resumes_with_range, ::test_truncated_download_keeps_only_its_bytes_and_the_next_run_resumes |
| a partial download whose file changed upstream, or whose checksum changed in the config | tests/test_download.py::test_partial_download_of_a_file_changed_upstream_starts_over, ::test_changed_checksum_discards_the_old_partial_download |
| kill -9 during fine-tuning, rerun with the same config: identical traces | tests/test_train.py::test_resume_after_kill_gives_identical_traces |
| kill -9 during fine-tuning, rerun with a changed config: the checkpoint is discarded | tests/test_train.py::test_checkpoint_of_another_config_is_discarded (lr, epochs, batch_size, augment, images.npy) |
| NaN in traces | tests/test_traces.py::test_nan_in_p_true_names_run_and_sample |
| NaN loss during training | tests/test_train.py::test_nan_loss_names_the_epoch |
| a corrupt image | tests/test_data.py::test_corrupt_image_stops_or_is_skipped |
| a bad config key or value | tests/test_config.py |
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from retention.acquire import data
from retention.acquire.download import DownloadSpec, fetch_dataset, parse_spec, partial_key
from retention.acquire.listing import list_imagefolder
from retention.errors import DataError

from .conftest import REPO, write_jpeg
from .test_download import FAST, FileServer, _tar_add, build_cub_tgz, digest, files_under, make_jpeg

NOBODY = 65534


def run_script(name: str, *args: str, **popen) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / name), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        **popen,
    )


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The failed script's error: exit 1, no traceback, exactly one ERROR line."""
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    errors = [
        line
        for line in proc.stderr.splitlines()
        if " ERROR " in line or line.startswith(("StorageError", "DataError", "DownloadError"))
    ]
    assert len(errors) == 1, proc.stderr[-2000:]
    return errors[0]


def wait_for(condition, timeout: float = 60.0, every: float = 0.002):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(every)
    raise AssertionError("timed out waiting")


# ------------------------------------------------------------------ downloads


def big_cub_tgz(path: Path, blob_bytes: int = 1 << 20, extra_files: int = 0) -> None:
    """CUB_200_2011.tgz in the real layout plus incompressible bytes (a transfer long
    enough to kill mid-way) and, optionally, many small files (a long extraction)."""
    small = path.with_name("small.tgz")
    build_cub_tgz(small)
    with tarfile.open(small) as src, tarfile.open(path, "w:gz", compresslevel=1) as tf:
        for member in src:
            tf.addfile(member, src.extractfile(member) if member.isfile() else None)
        _tar_add(tf, "CUB_200_2011/blob.bin", os.urandom(blob_bytes))
        for i in range(extra_files):
            _tar_add(tf, f"CUB_200_2011/parts/p{i % 40}/{i}.txt", b"%d\n" % i)
    small.unlink()


def download_spec_file(tmp_path: Path, entry: dict) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump([entry]))
    return spec


def test_kill_during_download_then_rerun_resumes_with_range(tmp_path):
    archive = tmp_path / "src" / "CUB_200_2011.tgz"
    archive.parent.mkdir()
    big_cub_tgz(archive)
    size = archive.stat().st_size
    datasets = tmp_path / "resources" / "datasets"
    dest = datasets / "cub200"
    with FileServer() as server:
        url = server.add("CUB_200_2011.tgz", archive.read_bytes(), stall_first=600_000)
        entry = {"file": "CUB_200_2011.tgz", "url": url, "checksum": digest(archive), "extract": True}
        spec = download_spec_file(tmp_path, entry)
        args = [
            sys.executable,
            str(REPO / "scripts/download_dataset.py"),
            "--dest",
            str(dest),
            "--spec",
            str(spec),
            "--no-progress",
            "--backoff",
            "0",
        ]
        job = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        part = datasets / ".partial" / "cub200" / partial_key(parse_spec(entry)) / "CUB_200_2011.tgz.part"
        try:
            wait_for(lambda: part.is_file() and part.stat().st_size >= 8 * 65536)
        finally:
            job.send_signal(signal.SIGKILL)
            job.wait(30)
        kept = part.stat().st_size
        assert 0 < kept < size and not dest.exists()

        rerun = run_script(
            "download_dataset.py", "--dest", dest, "--spec", spec, "--no-progress", "--backoff", "0"
        )
        assert rerun.returncode == 0, rerun.stderr
        first, second = server.requests_for("CUB_200_2011.tgz")
        assert first["range"] is None
        assert second["range"] == f"bytes={kept}-" and second["status"] == 206
        assert second["sent"] == size - kept  # only the missing bytes were sent again
    assert f"resuming CUB_200_2011.tgz.part at byte {kept}" in rerun.stderr
    assert f"checksum ok for CUB_200_2011.tgz: {digest(archive)}" in rerun.stderr
    assert (dest / "CUB_200_2011" / "blob.bin").stat().st_size == 1 << 20
    assert (dest / "CUB_200_2011" / "images.txt").is_file()
    assert sorted(p.name for p in datasets.iterdir()) == ["cub200"]  # no partial, lock, scratch


def test_kill_during_extraction_then_rerun_removes_the_scratch_folder(tmp_path):
    archive = tmp_path / "src" / "CUB_200_2011.tgz"
    archive.parent.mkdir()
    big_cub_tgz(archive, blob_bytes=1000, extra_files=4000)
    datasets = tmp_path / "resources" / "datasets"
    dest = datasets / "cub200"
    entry = {
        "file": "CUB_200_2011.tgz",
        "archive": str(archive),
        "checksum": digest(archive),
        "extract": True,
    }
    spec = download_spec_file(tmp_path, entry)
    args = [
        sys.executable,
        str(REPO / "scripts/download_dataset.py"),
        "--dest",
        str(dest),
        "--spec",
        str(spec),
        "--no-progress",
    ]
    job = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def scratch():
        return [p for p in datasets.glob(".cub200.*.tmp") if (p / "tree" / "CUB_200_2011").is_dir()]

    try:
        (folder,) = wait_for(scratch)
    finally:
        job.send_signal(signal.SIGKILL)
        job.wait(30)
    assert folder.is_dir() and not dest.exists()  # killed mid-extraction
    assert folder.name.startswith(f".cub200.{job.pid}.")  # the folder records its process

    rerun = run_script("download_dataset.py", "--dest", dest, "--spec", spec, "--no-progress")
    assert rerun.returncode == 0, rerun.stderr
    assert f"removing {folder}, the scratch folder of an interrupted run" in rerun.stderr
    assert len(list((dest / "CUB_200_2011" / "parts").rglob("*.txt"))) == 4000
    assert sorted(p.name for p in datasets.iterdir()) == ["cub200"]


def test_scratch_folder_of_a_live_process_is_kept(tmp_path, octdl_zip):
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = datasets / f".octdl.{sleeper.pid}.abc123_x.tmp"
        dead = datasets / ".octdl.ab12cd34.tmp"  # the older name, without a process id
        for folder in (live, dead):
            (folder / "tree").mkdir(parents=True)
        spec = DownloadSpec("OCTDL.zip", (str(octdl_zip),), None, extract=True)
        fetch_dataset([spec], datasets / "octdl", **FAST)
        assert live.is_dir() and not dead.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.fixture
def octdl_zip(tmp_path):
    from .test_download import build_octdl

    zip_path, _ = build_octdl(tmp_path / "src")
    return zip_path


@pytest.mark.parametrize("file", ["CUB_200_2011.tgz", "OCTDL.zip"])
def test_truncated_archive_is_one_line_and_nothing_is_kept(tmp_path, file):
    """A cut upload (the server sends it whole): no checksum pinned, so only extraction
    can tell; the bad download is not kept for reuse."""
    whole = tmp_path / "src" / file
    whole.parent.mkdir()
    if file.endswith(".zip"):
        with zipfile.ZipFile(whole, "w") as zf:
            for i in range(20):
                zf.writestr(f"OCTDL/AMD/amd_{i}.jpg", make_jpeg(i))
    else:
        build_cub_tgz(whole)
    cut = whole.read_bytes()[: whole.stat().st_size * 2 // 3]
    datasets = tmp_path / "resources" / "datasets"
    with FileServer() as server:
        url = server.add(file, cut)
        spec = download_spec_file(tmp_path, {"file": file, "url": url, "checksum": None, "extract": True})
        proc = run_script(
            "download_dataset.py", "--dest", datasets / "x", "--spec", spec, "--no-progress", "--backoff", "0"
        )
    line = one_error_line(proc)
    assert f"DownloadError: archive {file} is corrupt or truncated" in line
    assert not (tmp_path / "resources").exists()


# ------------------------------------------------------------------ storage


@contextlib.contextmanager
def tmpfs(where: Path, size: str = "1m"):
    """A small tmpfs at ``where`` (needs root and mount); skips the test where impossible."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def prepare_digits(out: Path, **popen) -> subprocess.CompletedProcess:
    """prepare_dataset.py on digits at 16 px: images.npy is 1,380,096 bytes."""
    return run_script(
        "prepare_dataset.py", "--source", "digits", "--storage-size", "16", "--out", out, **popen
    )


def test_full_disk_is_one_line_and_leaves_no_output(tmp_path):
    with tmpfs(tmp_path / "small") as small:
        out = small / "results" / "data" / "digits"
        out.mkdir(parents=True)
        (out / "manifest.csv").write_text("an old manifest of a previous run\n")
        proc = prepare_digits(out)
        line = one_error_line(proc)
        assert f"StorageError: cannot write {out / 'images.npy'}: the disk is full" in line
        assert re.search(r"; \d+(\.\d)? (B|KiB) free of 1\.0 MiB on ", line), line
        assert list(out.iterdir()) == []  # no temporary file, and not the old manifest either


def test_file_size_limit_is_one_line_and_leaves_no_output(tmp_path):
    """The same without root: the kernel refuses writes past RLIMIT_FSIZE (EFBIG)."""

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    out = tmp_path / "out"
    line = one_error_line(prepare_digits(out, preexec_fn=limit))
    assert f"StorageError: cannot write {out / 'images.npy'}: " in line
    assert re.search(r"; [\d.]+ [KMGT]?i?B free of [\d.]+ [KMGT]?i?B on ", line), line
    assert list(out.iterdir()) == []


def test_read_only_results_folder_is_one_line(tmp_path):
    with tmpfs(tmp_path / "ro") as ro:
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        out = ro / "digits"
        line = one_error_line(prepare_digits(out))
        assert f"StorageError: cannot write {out / 'images.npy'}: Read-only file system" in line
        assert "free of 1.0 MiB on " in line


def unprivileged(cmd: list) -> list:
    """``cmd`` run where file modes apply: as root (which ignores them) inside a new user
    namespace, where our files' owner bits hold (``unshare --user``); skips where that
    is impossible."""
    cmd = [str(c) for c in cmd]
    if os.geteuid() != 0:
        return cmd
    probe = (
        subprocess.run(["unshare", "--user", "true"], capture_output=True)
        if shutil.which("unshare")
        else None
    )
    if probe is None or probe.returncode != 0:
        pytest.skip("running as root without user namespaces: file modes cannot be tested")
    return ["unshare", "--user", *cmd]


def test_permission_denied_is_one_line(tmp_path):
    out = tmp_path / "results"
    out.mkdir(mode=0o555)
    cmd = [
        sys.executable,
        REPO / "scripts/prepare_dataset.py",
        "--source",
        "digits",
        "--storage-size",
        "16",
        "--out",
        out / "digits",
    ]
    proc = subprocess.run(unprivileged(cmd), capture_output=True, text=True, timeout=300)
    line = one_error_line(proc)
    assert f"StorageError: cannot write {out / 'digits' / 'images.npy'}: Permission denied" in line
    assert " free of " in line
    assert list(out.iterdir()) == []


def test_unwritable_log_file_is_one_line(tmp_path):
    """A log that fills the disk mid-run: one line about the log, not a traceback per record."""
    with tmpfs(tmp_path / "logs", size="8k") as logs:
        code = (
            f"import logging, sys; sys.path.insert(0, {str(REPO)!r}); from retention.io import setup_logging;"
            f"log = setup_logging({str(logs / 'job.log')!r});\n"
            "for i in range(2000): log.info('line %d of a long log', i)"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "cannot write the log" in line]
    assert len(lines) == 1 and "job.log: No space left on device" in lines[0]


# ------------------------------------------------------------------ datasets


def image_tree(root: Path, layout: dict[str, int]) -> Path:
    """``root/<folder>/<k>.jpg`` with ``layout[folder]`` images each (folder may nest)."""
    seed = 0
    for folder, n in layout.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            seed += 1
            write_jpeg(root / folder / f"{k}.jpg", seed=seed, size=(12, 10))
    return root


def test_one_class_stops_with_a_clear_error(tmp_path):
    root = image_tree(tmp_path / "tree", {"cat": 6})
    with pytest.raises(DataError, match=r"has 1 class\(es\) \('cat'\); the analysis needs at least 2"):
        data.prepare_dataset("imagefolder", root, 16)
    out = tmp_path / "out"
    proc = run_script(
        "prepare_dataset.py", "--source", "imagefolder", "--path", root, "--storage-size", "16", "--out", out
    )
    assert "DataError: dataset 'imagefolder' at " in one_error_line(proc)
    assert not out.exists() or list(out.iterdir()) == []


def test_empty_class_folder_is_named_or_skipped(tmp_path, caplog):
    root = image_tree(tmp_path / "tree", {"cat": 5, "dog": 5, "fox": 0, "owl": 5})
    (root / "fox" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match=rf"class folder\(s\) {root / 'fox'} hold no image files"):
        data.prepare_dataset("imagefolder", root, 16)
    with caplog.at_level("WARNING", logger="retention.acquire.listing"):
        prepared = data.prepare_dataset("imagefolder", root, 16, skip_empty_classes=True)
    assert data.class_names(prepared.manifest) == ["cat", "dog", "owl"]
    assert any(f"skipped the empty class folder {root / 'fox'}" in r.getMessage() for r in caplog.records)


def test_class_below_min_per_class_is_named(tmp_path):
    root = image_tree(tmp_path / "tree", {"cat": 8, "dog": 8, "eel": 2})
    # 2 eel images, 20% held out: 1 in train, 1 held out
    with pytest.raises(
        DataError,
        match=r"class 'eel' has 1 training image\(s\) after the split "
        r"\(1 held out; 1 class\(es\) below data.min_per_class = 2\)",
    ):
        data.prepare_dataset("imagefolder", root, 16, heldout_fraction=0.2)
    prepared = data.prepare_dataset("imagefolder", root, 16, heldout_fraction=0.2, min_per_class=1)
    assert (prepared.manifest["class_name"] == "eel").sum() == 2
    with pytest.raises(DataError, match="class 'cat' has 6 training"):
        data.prepare_dataset("imagefolder", root, 16, heldout_fraction=0.2, min_per_class=7)


def test_class_lost_to_skipped_images_is_named(tmp_path):
    root = image_tree(tmp_path / "tree", {"cat": 5, "dog": 5, "eel": 3})
    for path in (root / "eel").iterdir():
        path.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"class 'eel' has 0 training image\(s\)"):
        data.prepare_dataset("imagefolder", root, 16, skip_corrupt=True)


def test_split_layout_and_wrapper_folder_are_named(tmp_path):
    split = image_tree(tmp_path / "split", {"train/cat": 4, "train/dog": 4, "val/cat": 2, "val/dog": 2})
    with pytest.raises(
        DataError,
        match=r"looks like <split>/<class>: the folders 'train', 'val' hold "
        r"no images of their own but share the subfolders 'cat', 'dog'",
    ):
        list_imagefolder(split)
    wrapped = image_tree(tmp_path / "wrapped", {"images/cat": 4, "images/dog": 4})
    with pytest.raises(
        DataError,
        match=rf"one class folder, 'images'.*point the dataset's path at "
        rf"{wrapped / 'images'}",
    ):
        list_imagefolder(wrapped)
    # subfolders inside a class belong to it (as in torchvision's ImageFolder)
    nested = image_tree(tmp_path / "nested", {"cat/2020": 3, "cat/2021": 2, "dog": 4})
    listing = list_imagefolder(nested)
    assert listing.groupby("class_name").size().to_dict() == {"cat": 5, "dog": 4}


def test_hidden_folders_and_loose_files(tmp_path, caplog):
    root = image_tree(
        tmp_path / "tree",
        {"cat": 4, "dog": 4, ".ipynb_checkpoints": 2, "cat/.thumbnails": 3, "__MACOSX/cat": 0},
    )
    (root / "__MACOSX" / "cat" / "._0.jpg").write_bytes(b"AppleDouble")  # a zip's metadata
    write_jpeg(root / "stray.jpg", seed=99)
    with caplog.at_level("WARNING", logger="retention.acquire.listing"):
        listing = list_imagefolder(root, skip_empty_classes=True)
    assert listing.groupby("class_name").size().to_dict() == {"cat": 4, "dog": 4}
    messages = [r.getMessage() for r in caplog.records]
    assert any("1 image file(s) directly in" in m and "stray.jpg" in m for m in messages)
    assert any(f"skipped the empty class folder {root / '__MACOSX'}" in m for m in messages)


def test_unreadable_folder_and_image_are_named(tmp_path):
    tree = image_tree(tmp_path / "tree", {"cat": 3, "cat/more": 2, "dog": 3})
    code = (
        f"import sys; sys.path.insert(0, {str(REPO)!r}); from retention import io; "
        "from retention.acquire import data;"
        f"io.run_main(lambda: data.prepare_dataset('imagefolder', {str(tree)!r}, 16, heldout_fraction=0.34))"
    )
    cmd = unprivileged([sys.executable, "-c", code])
    (tree / "cat" / "more").chmod(0o000)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    line = one_error_line(proc)
    assert f"DataError: cannot read the folder {tree / 'cat' / 'more'}: Permission denied" in line
    (tree / "cat" / "more").chmod(0o755)
    (tree / "dog" / "1.jpg").chmod(0o000)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    line = one_error_line(proc)
    assert f"DataError: unreadable image {tree / 'dog' / '1.jpg'}: " in line
    assert "Permission denied" in line


def test_two_downloads_of_one_dataset_at_once(tmp_path, octdl_zip):
    """The script and the rule, or two Snakemake invocations sharing resources/: the
    second stops with one line naming the process that holds the dataset."""
    from retention.acquire.download import _download_lock

    dest = tmp_path / "datasets" / "octdl"
    dest.parent.mkdir()
    spec = download_spec_file(tmp_path, {"file": "OCTDL.zip", "url": str(octdl_zip), "extract": True})
    with _download_lock(dest):
        proc = run_script("download_dataset.py", "--dest", dest, "--spec", spec, "--no-progress")
    line = one_error_line(proc)
    assert f"DownloadError: {dest} is being downloaded by process {os.getpid()} on " in line
    assert files_under(dest.parent) == []  # the lock is released and its file removed
    done = run_script("download_dataset.py", "--dest", dest, "--spec", spec, "--no-progress")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in dest.parent.iterdir()) == ["octdl"]
