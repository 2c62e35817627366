"""Which process owns a run or a lease, and whether that process still exists.

An owner is a pid, a host name and a start token. On Linux the token is the kernel's boot id,
the pid namespace and the process's start time, so a pid reused after a crash or a reboot, or a
pid from another container, is never taken for the original owner. When the owner's liveness
cannot be checked from here (another machine or container, or no ``/proc``), its heartbeat
decides: an owner that has not beaten for ``STALE_AFTER`` is gone.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

HEARTBEAT_EVERY = 15.0  # seconds between heartbeats of a running owner
STALE_AFTER = timedelta(seconds=120)  # a remote owner silent this long is gone


@dataclass(frozen=True)
class Owner:
    pid: int
    host: str
    started: str  # "<boot id>:<pid namespace>:<start ticks>", or "" where /proc is missing

    @classmethod
    def current(cls) -> Owner:
        return _current(os.getpid())  # keyed by pid: a forked child is a new owner

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Owner | None:
        if row.get("owner_pid") is None:
            return None
        return cls(int(row["owner_pid"]), row.get("owner_host") or "",
                   row.get("owner_started") or "")

    def fields(self) -> dict[str, Any]:
        return {"owner_pid": self.pid, "owner_host": self.host, "owner_started": self.started}

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"

    def checkable_here(self) -> bool:
        """Can this process see the owner's process table (same machine, same namespace)?"""
        here = Owner.current()
        return (self.host == here.host and _machine(self.started) == _machine(here.started)
                and (bool(self.started) or not Path("/proc/self").exists()))


@lru_cache(maxsize=4)
def _current(pid: int) -> Owner:
    return Owner(pid, socket.gethostname(), _start_token(pid))


def is_gone(owner: Owner | None, heartbeat_at: datetime | None, now: datetime) -> bool:
    """Has the process that owns a row ended (or, when it cannot be seen, stopped beating)?"""
    if owner is None:  # written before owners were recorded: nothing can still be running it
        return True
    if owner.checkable_here():
        return not _alive(owner)
    return heartbeat_at is None or now - heartbeat_at > STALE_AFTER


def _machine(token: str) -> str:
    return token.rpartition(":")[0]


def _alive(owner: Owner) -> bool:
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    if not owner.started:  # no /proc: the pid exists, which is all that can be known
        return True
    stat = _stat(owner.pid)  # a zombie (killed, not yet reaped) is gone too
    return stat is not None and stat[0] != "Z" and stat[1] == owner.started.rpartition(":")[2]


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, start ticks) of a process from /proc/PID/stat, or None when it has gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()  # the command name may hold spaces and ')'
    return fields[0], fields[19]


def _start_token(pid: int) -> str:
    """This process's start token (the machine part is the same for all its neighbours)."""
    stat = _stat(pid)
    if stat is None:
        return ""
    return f"{_read('/proc/sys/kernel/random/boot_id')}:{_pid_namespace()}:{stat[1]}"


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""
