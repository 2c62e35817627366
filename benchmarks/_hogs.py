"""Bounded CPU load for the benchmarks: busy-loop child processes that cannot outlive a run.

Each hog is a `python -c` busy loop that also stops by itself after ``limit`` seconds, so even a
benchmark killed with -9 (whose ``finally`` never runs) leaves no process spinning for long.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

# the deadline is checked every iteration: the loop stays CPU-bound and still ends on time
HOG_CODE = ("import time\nend = time.monotonic() + {limit}\n"
            "while time.monotonic() < end:\n    pass\n")


@dataclass
class Hogs:
    """The running hogs and, once stopped, the CPU they really used (proof the load was on)."""

    procs: list[subprocess.Popen] = field(default_factory=list)
    started: float = 0.0
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def summary(self) -> dict:
        """How many hogs, and the share of a core each got on average."""
        share = self.cpu_seconds / (self.wall_seconds * len(self.procs)) if self.procs and \
            self.wall_seconds else 0.0
        return {"hogs": len(self.procs), "hog_cpu_seconds": round(self.cpu_seconds, 2),
                "hog_wall_seconds": round(self.wall_seconds, 2),
                "mean_core_share_per_hog": round(share, 3)}


def _cpu_seconds(pid: int) -> float:
    import psutil

    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system


@contextmanager
def cpu_hogs(n: int, limit: float = 900.0, settle: float = 0.3) -> Iterator[Hogs]:
    """Run ``n`` busy loops for the duration of the ``with`` block (at most ``limit`` s)."""
    hogs, base = Hogs(), 0.0
    try:
        for _ in range(n):
            hogs.procs.append(subprocess.Popen(
                [sys.executable, "-c", HOG_CODE.format(limit=float(limit))],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(settle)  # the interpreters start up before the measured work begins
        hogs.started = time.perf_counter()
        base = sum(_cpu_seconds(p.pid) for p in hogs.procs)
        yield hogs
    finally:
        hogs.wall_seconds = time.perf_counter() - hogs.started if hogs.started else 0.0
        hogs.cpu_seconds = sum(_cpu_seconds(p.pid) for p in hogs.procs) - base
        for proc in hogs.procs:
            proc.kill()
        for proc in hogs.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass  # a zombie the OS reaps when this process exits; its loop is over
