"""Where a fine-tuning job's time goes, from the start of its process to its last write.

``JobClock`` splits a job's wall time into consecutive parts (seconds):

- ``start``: the interpreter and Snakemake's script preamble, up to the script's first
  line (the process's age then, from /proc on Linux; 0 elsewhere);
- ``imports``: the script's imports (torch, timm, ...);
- ``data``: reading the prepared dataset (and a sampler's scout fits);
- ``model``: the device lease, creating the model(s), putting data and model on the device;
- ``first_step``: the first optimizer step (where a compiled model compiles);
- ``epochs``: every epoch's training and evaluation, less the first step;
- ``write``: writing traces.npz (and the checkpoint's removal);
- ``other``: the rest (resuming a checkpoint, logging).

Standard library only, so the script can start its clock before anything heavy loads.
"""

from __future__ import annotations

import os
import time

PARTS = ("start", "imports", "data", "model", "first_step", "epochs", "write", "other")


def process_age_s() -> float:
    """Seconds since this process started (Linux: /proc/self/stat); 0.0 where unknown."""
    try:
        with open("/proc/self/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        return max(0.0, uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


class JobClock:
    """Consecutive parts of a job's time; create it first thing in the process."""

    def __init__(self):
        self.parts = dict.fromkeys(PARTS, 0.0)
        self.parts["start"] = process_age_s()
        self._origin = time.perf_counter() - self.parts["start"]
        self._last = time.perf_counter()

    def lap(self, part: str, split: dict[str, float] | None = None) -> float:
        """Charge the time since the last lap to ``part``; returns it.

        split: seconds of the lap that belong to other parts ({part: seconds});
        ``part`` gets the rest.
        """
        now = time.perf_counter()
        seconds, self._last = now - self._last, now
        rest = seconds
        for other, share in (split or {}).items():
            self.parts[other] += share
            rest -= share
        self.parts[part] += rest
        return seconds

    def total(self) -> float:
        """Seconds since the process started."""
        return time.perf_counter() - self._origin

    def columns(self) -> dict[str, float]:
        """``job_<part>_s`` for every part, and ``job_total_s`` (the metrics.csv columns)."""
        out = {f"job_{part}_s": round(seconds, 4) for part, seconds in self.parts.items()}
        out["job_total_s"] = round(self.total(), 4)
        return out

    def summary(self) -> str:
        """One log line: the total and every part."""
        parts = ", ".join(f"{part.replace('_', ' ')} {seconds:.2f}" for part, seconds in self.parts.items())
        return f"job time {self.total():.2f} s: {parts}"
