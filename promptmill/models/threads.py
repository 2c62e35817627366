"""Thread settings for llama.cpp, chosen so that a shared machine slows a run down gracefully.

llama-cpp-python's OpenMP build, with OpenMP's default wait policy, keeps its threads spinning
between steps. When other processes want the same cores, the spinning threads and the real work
take turns, and one decode step went from 52 ms to 1,387 ms on this project's 2-core machine. The
passive policy puts waiting threads to sleep instead; OpenMP reads it once, when the library
loads, so :func:`prepare_openmp` runs before anything imports ``llama_cpp``. Sleeping at once
costs a wake-up per step, though, and an evaluation alone on the machine ran 40% slower than
with spinning. GNU OpenMP's ``GOMP_SPINCOUNT`` (which overrides the policy) buys both: a short
spin of 1,000 iterations, then sleep. On the 2-core machine the bundled evaluation took 3.5 s
alone (passive 4.6 s, spinning 3.5 s) and 7.4 s beside two busy loops (passive 6.9-8.2 s,
spinning 20.9 s). Other OpenMP runtimes ignore it and take the passive policy.
``Llama`` also sets ``n_threads_batch`` to every CPU whatever ``n_threads`` says; we pass both.

Overrides, strongest first: the model's ``n_threads`` / ``n_threads_batch`` parameters, then
``PROMPTMILL_THREADS``, then the CPUs this process may run on. A user who sets
``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` keeps their setting, and promptmill sets neither.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import ConfigError

THREADS_ENV = "PROMPTMILL_THREADS"
WAIT_POLICY_ENV = "OMP_WAIT_POLICY"
SPIN_COUNT_ENV = "GOMP_SPINCOUNT"
SPIN_COUNT = "1000"  # iterations a waiting thread spins before it sleeps (GNU OpenMP)
_PRESET: dict[str, str | None] = {}  # what the user had set before we set anything


def prepare_openmp() -> None:
    """Ask OpenMP for a short spin, then sleep, unless the user chose or it is too late."""
    if "llama_cpp" in sys.modules or "policy" in _PRESET:
        return
    _PRESET["policy"] = os.environ.get(WAIT_POLICY_ENV)
    if WAIT_POLICY_ENV in os.environ or SPIN_COUNT_ENV in os.environ:
        return
    os.environ[WAIT_POLICY_ENV] = "passive"
    os.environ[SPIN_COUNT_ENV] = SPIN_COUNT


def usable_cpus() -> int:
    """The CPUs this process may run on (a container's or ``taskset``'s share, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ThreadSettings:
    n_threads: int
    n_threads_batch: int
    wait_policy: str
    spin_count: str
    source: str  # where n_threads came from: "parameter", THREADS_ENV or "cpus"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        return (f"threads {self.n_threads} (batch {self.n_threads_batch}, from {self.source}), "
                f"OMP_WAIT_POLICY={self.wait_policy}, GOMP_SPINCOUNT={self.spin_count}")


def thread_settings(n_threads: int | None = None,
                    n_threads_batch: int | None = None) -> ThreadSettings:
    """The settings a llama.cpp model loads with."""
    source = "parameter"
    if n_threads is None:
        n_threads, source = _from_env(), THREADS_ENV
        if n_threads is None:
            n_threads, source = usable_cpus(), "cpus"
    for name, value in (("n_threads", n_threads), ("n_threads_batch", n_threads_batch)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigError(f"{name} must be a whole number of at least 1, not {value!r}",
                              where=f"model.params.{name}", fix=f"set {name}: 2, or leave it out")
    policy = os.environ.get(WAIT_POLICY_ENV) or "default"
    spin = os.environ.get(SPIN_COUNT_ENV) or "default"
    return ThreadSettings(n_threads, n_threads_batch or n_threads, policy, spin, source)


def _from_env() -> int | None:
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{THREADS_ENV}={raw!r} is not a thread count", where=THREADS_ENV,
                          fix=f"set {THREADS_ENV} to a whole number such as 2, or unset it")
    return int(raw)


__all__ = ["THREADS_ENV", "ThreadSettings", "prepare_openmp", "thread_settings", "usable_cpus"]
