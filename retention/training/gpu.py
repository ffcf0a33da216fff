"""Local GPU allocation: every job on a GPU slot of its own, k slots per GPU.

Snakemake's ``gpu`` resource is only a counter: run locally, it starts as many GPU jobs
as ``--resources gpu=M`` allows but never tells them which GPU to use. Each GPU job
therefore calls :func:`acquire_device` first. It takes a free (GPU, slot) pair by
holding an exclusive ``fcntl.flock`` on one lock file per slot in a per-machine lock
directory, narrows ``CUDA_VISIBLE_DEVICES`` to that GPU and returns ``cuda:0``.

- Release: ``lease.release()`` (or leaving the ``with`` block), and in any case when
  the process ends: the kernel drops a flock when its last file descriptor closes,
  also after ``kill -9``. Lock files are never deleted; an unlocked file is a free slot.
  Child processes made by fork (DataLoader workers) share the descriptor and keep the
  slot until they end too; processes started by exec do not inherit it.
- Order: slot 0 of every GPU is tried before slot 1 of any, so jobs spread over the
  GPUs before they share one. When every slot is taken the call polls every
  ``poll_s`` seconds (logging a line when it starts waiting and then every
  ``log_every_s``) until one frees up or ``timeout_s`` passes (``TimeoutError``).
  With ``--resources gpu=N*k`` Snakemake never starts more GPU jobs than there are
  slots, so the wait only happens when other programs use the same lock directory.
- Call it before anything initialises CUDA in the process (any ``torch.cuda`` call
  that touches the device, a tensor moved to 'cuda', ...): CUDA reads
  ``CUDA_VISIBLE_DEVICES`` once, at its initialisation. Importing torch is fine. If
  CUDA is already initialised, the lease is still taken but the device is returned as
  ``cuda:<i>`` (the GPU's position among the visible ones) instead of narrowing.
- Pre-set ``CUDA_VISIBLE_DEVICES`` (SLURM, or the user): only the devices it lists are
  candidates, and lock files are keyed by the entries as written (``5``, ``7``, or a
  ``GPU-<uuid>``), so jobs under the same visible set share slots correctly. Jobs must
  name a GPU the same way (all by index, or all by UUID) to see each other's locks.
  Indices follow ``CUDA_DEVICE_ORDER`` (CUDA's default, fastest first, unless set to
  ``PCI_BUS_ID``, the order of nvidia-smi). An empty value or ``-1`` means no GPU.
- No GPU: the lease is ``cpu`` and no lock file or directory is touched.
- Lock directory: the ``lock_dir`` argument, else ``$RETENTION_GPU_LOCK_DIR``, else
  ``<tmp>/retention-gpu-locks-<uid>`` (per user; point several users at one shared
  directory with the variable to make them share the GPUs). It must be on a local
  filesystem of the machine (flock over NFS is not reliable).
- GPU count: NVML (``libnvidia-ml``), which does not initialise CUDA; without NVML but
  with a CUDA driver, ``torch.cuda.device_count()`` in a child process. For tests the
  ``device_count`` argument, else ``$RETENTION_FAKE_GPU_COUNT``, replaces the count
  (and nothing touches torch); not for production use.

Linux and macOS (fcntl). A process normally holds one lease.
"""

from __future__ import annotations

import ctypes
import fcntl
import logging
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from retention.errors import ConfigError

log = logging.getLogger("retention.training.gpu")

ENV_LOCK_DIR = "RETENTION_GPU_LOCK_DIR"
ENV_FAKE_COUNT = "RETENTION_FAKE_GPU_COUNT"
CVD = "CUDA_VISIBLE_DEVICES"


@dataclass
class DeviceLease:
    """A GPU slot held by this process, or the CPU.

    device: the torch device string to use ('cuda:0' after narrowing, or 'cpu');
    physical_id: the GPU as named in the lock files (an index such as '3', or the
    entry of a pre-set CUDA_VISIBLE_DEVICES), None on the CPU; slot: 0..k-1, None on
    the CPU; description: one line for logs and metrics, e.g.
    'cuda:0 (physical 3, slot 1)' or 'cpu'; lock_path: the slot's lock file.
    """

    device: str
    physical_id: str | None = None
    slot: int | None = None
    description: str = "cpu"
    lock_path: Path | None = None
    _fd: int | None = field(default=None, repr=False)
    _narrowed_to: str | None = field(default=None, repr=False)
    _previous_cvd: str | None = field(default=None, repr=False)

    @property
    def physical_index(self) -> int | None:
        """The physical GPU index when ``physical_id`` is an integer, else None."""
        if self.physical_id is not None and self.physical_id.isdigit():
            return int(self.physical_id)
        return None

    @property
    def held(self) -> bool:
        """True while this lease holds its slot's lock."""
        return self._fd is not None

    def release(self) -> None:
        """Free the slot and restore CUDA_VISIBLE_DEVICES; a no-op on the CPU or twice."""
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None
        _NARROWINGS.pop(id(self), None)
        if self._narrowed_to is not None and os.environ.get(CVD) == self._narrowed_to:
            if self._previous_cvd is None:
                os.environ.pop(CVD, None)
            else:
                os.environ[CVD] = self._previous_cvd
        self._narrowed_to = None

    def __enter__(self) -> DeviceLease:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


# Live leases of this process that narrowed CUDA_VISIBLE_DEVICES, in the order taken:
# {id(lease): (the value set, the value before)}.
_NARROWINGS: dict[int, tuple[str, str | None]] = {}


def default_lock_dir() -> Path:
    """``$RETENTION_GPU_LOCK_DIR``, else ``<tmp>/retention-gpu-locks-<uid>``."""
    env = os.environ.get(ENV_LOCK_DIR)
    if env:
        return Path(env)
    return Path(tempfile.gettempdir()) / f"retention-gpu-locks-{os.getuid()}"


def parse_visible_devices(value: str) -> list[str]:
    """The device entries of a CUDA_VISIBLE_DEVICES value, as CUDA reads them.

    Entries are comma separated and stripped; the list ends at the first empty entry
    or negative number (CUDA ignores everything from an invalid entry on).
    """
    out: list[str] = []
    for entry in value.split(","):
        entry = entry.strip()
        if not entry or re.fullmatch(r"-\d+", entry):
            break
        out.append(entry)
    return out


def _nvml_device_count() -> int | None:
    """Number of GPUs per NVML (ignores CUDA_VISIBLE_DEVICES), None without NVML."""
    try:
        nvml = ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return None
    if nvml.nvmlInit_v2() != 0:
        return None
    try:
        count = ctypes.c_uint(0)
        if nvml.nvmlDeviceGetCount_v2(ctypes.byref(count)) != 0:
            return None
        return int(count.value)
    finally:
        nvml.nvmlShutdown()


def _cuda_initialised() -> bool:
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_initialized())


def physical_device_count() -> int:
    """Number of GPUs on this machine, without initialising CUDA in this process.

    (When CUDA is already initialised: torch's count of the visible GPUs.)
    """
    if _cuda_initialised():
        return int(sys.modules["torch"].cuda.device_count())
    count = _nvml_device_count()
    if count is not None:
        return count
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0  # no CUDA driver: no GPU
    env = {k: v for k, v in os.environ.items() if k != CVD}
    try:
        out = subprocess.run(
            [sys.executable, "-c", "import torch; print(torch.cuda.device_count())"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        return int(out.stdout.split()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError, OSError):
        log.warning("could not count GPUs (no NVML, torch failed in a child process); using the CPU")
        return 0


def _device_count(device_count: int | None) -> int:
    if device_count is not None:
        return int(device_count)
    fake = os.environ.get(ENV_FAKE_COUNT)
    if fake not in (None, ""):
        try:
            return int(fake)
        except ValueError:
            raise ConfigError(f"${ENV_FAKE_COUNT} must be an integer, got {fake!r}") from None
    return physical_device_count()


def _visible_candidates(count: int) -> list[str]:
    """GPU ids to choose from: the pre-set CUDA_VISIBLE_DEVICES, else 0..count-1."""
    value = os.environ.get(CVD)
    # Where a live lease of this process narrowed the variable, choose from what it was.
    for narrowed, previous in reversed(list(_NARROWINGS.values())):
        if value == narrowed:
            value = previous
    if value is None:
        return [str(i) for i in range(count)]
    return parse_visible_devices(value)


def _lock_name(physical_id: str, slot: int) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", physical_id)
    return f"gpu-{safe}.slot{slot}.lock"


def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive flock on ``path``, or None when another holds it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:  # another user's lock file in a shared directory
        fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def acquire_device(
    slots_per_device: int = 1,
    lock_dir: str | os.PathLike | None = None,
    device_count: int | None = None,
    *,
    poll_s: float = 1.0,
    timeout_s: float | None = None,
    log_every_s: float = 60.0,
) -> DeviceLease:
    """Take a free GPU slot for this process (or the CPU when there is no GPU).

    slots_per_device: concurrent jobs per GPU (config ``train.gpu_slots_per_device``);
    lock_dir: the lock directory (default :func:`default_lock_dir`); device_count:
    replaces the GPU count, for tests only. Waits while every slot is busy; raises
    TimeoutError after ``timeout_s`` seconds (None: wait forever). Sets
    CUDA_VISIBLE_DEVICES to the chosen GPU unless CUDA is already initialised.
    Returns the lease; keep it (or let the process end) for as long as the GPU is used.
    """
    if not isinstance(slots_per_device, int) or slots_per_device < 1:
        raise ConfigError(
            f"gpu slots per device must be an integer >= 1, got {slots_per_device!r} "
            "(config train.gpu_slots_per_device)"
        )
    count = _device_count(device_count)
    candidates = _visible_candidates(count) if count > 0 else []
    if not candidates:
        log.info("no GPU: using the CPU")
        return DeviceLease(device="cpu")

    directory = Path(lock_dir) if lock_dir is not None else default_lock_dir()
    directory.mkdir(parents=True, exist_ok=True)
    slots = [(gpu, slot) for slot in range(slots_per_device) for gpu in candidates]
    started = time.monotonic()
    last_log = None
    while True:
        for gpu, slot in slots:
            path = directory / _lock_name(gpu, slot)
            fd = _try_lock(path)
            if fd is not None:
                return _lease(fd, path, gpu, slot, candidates)
        now = time.monotonic()
        waited = now - started
        if timeout_s is not None and waited >= timeout_s:
            raise TimeoutError(f"no free GPU slot among {len(slots)} in {directory} after {waited:.0f} s")
        if last_log is None or now - last_log >= log_every_s:
            log.info(
                "all %d GPU slots (GPUs %s x %d) in %s are busy; waiting for one (%.0f s so far)",
                len(slots),
                ",".join(candidates),
                slots_per_device,
                directory,
                waited,
            )
            last_log = now
        time.sleep(poll_s * (0.5 + random.random()))


def _lease(fd: int, path: Path, gpu: str, slot: int, candidates: list[str]) -> DeviceLease:
    previous = os.environ.get(CVD)
    if _cuda_initialised():
        device = f"cuda:{candidates.index(gpu)}"
        narrowed = None
        log.warning(
            "CUDA was initialised before the GPU slot was acquired; using %s without "
            "narrowing CUDA_VISIBLE_DEVICES (call acquire_device before any CUDA use)",
            device,
        )
    else:
        device = "cuda:0"
        narrowed = gpu
        os.environ[CVD] = gpu
    description = f"{device} (physical {gpu}, slot {slot})"
    lease = DeviceLease(
        device=device,
        physical_id=gpu,
        slot=slot,
        description=description,
        lock_path=path,
        _fd=fd,
        _narrowed_to=narrowed,
        _previous_cvd=previous,
    )
    if narrowed is not None:
        _NARROWINGS[id(lease)] = (narrowed, previous)
    try:  # who holds the slot, for people looking into the lock directory
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}: {description}\n".encode())
    except OSError:
        pass
    log.info("GPU slot acquired: %s (lock %s)", description, path)
    return lease


def lease_for(device: str, slots_per_device: int) -> DeviceLease:
    """The lease for config ``train.device``: 'cpu' takes no GPU; 'auto' a free GPU slot
    when there is a GPU, else the CPU; 'cuda' a free GPU slot, and an error without one.
    """
    if device == "cpu":
        return DeviceLease(device="cpu")
    lease = acquire_device(slots_per_device)
    if device == "cuda" and lease.device == "cpu":
        raise ConfigError("config key 'train.device' is 'cuda' but this machine has no visible GPU")
    return lease
