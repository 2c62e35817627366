"""Hostile or broken stores: every one is a single line on stderr and exit status 2, through the
real ``promptmill`` command, never a traceback; a read-only store says so.

Tests run as root, where ``chmod`` stops nothing, so read-only stores are made three ways: a
``mode=ro`` SQLite URI, a real file mode or folder mode with root's override capabilities
dropped (``setpriv --bounding-set=-dac_override``, so the kernel enforces the mode bits), and
a read-only tmpfs mount. Cases that need ``setpriv`` or ``mount`` skip where those are refused.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from entry_point import promptmill_command, run_promptmill
from store_driver import write_task

from promptmill.store.db import Store

NO_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]


class Place:
    """A test's folder, with read-only mounts it can make (unmounted at the end)."""

    def __init__(self, root: Path):
        self.root = root
        self.mounts: list[Path] = []

    def store(self, name: str = "store.db", folder: str = "stores") -> Path:
        """A real promptmill store with one finished run."""
        path = self.root / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        done = run_promptmill("--db", f"sqlite:///{path}", "eval", self.task(), "-q")
        assert done.returncode == 0, done.stderr
        return path

    def task(self) -> Path:
        folder = self.root / "task"
        if not (folder / "task.yaml").exists():
            folder.mkdir(exist_ok=True)
            write_task(folder, 4)
        return folder / "task.yaml"

    def read_only_mount(self, fill: Callable[[Path], None] | None = None) -> Path:
        """A tmpfs, filled by ``fill`` while writable, then remounted read-only."""
        folder = self.root / f"ro-{len(self.mounts)}"
        folder.mkdir()
        if not _mount(["-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)]):
            pytest.skip("cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)")
        self.mounts.append(folder)
        if fill is not None:
            fill(folder)
        assert _mount(["-o", "remount,ro", str(folder)])
        return folder


def _mount(args: list[str]) -> bool:
    if shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.fixture
def place(tmp_path):
    p = Place(tmp_path)
    yield p
    for folder in reversed(p.mounts):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _needs_setpriv() -> None:
    probe = subprocess.run([*NO_OVERRIDE, "true"], capture_output=True) \
        if shutil.which("setpriv") else None
    if probe is None or probe.returncode != 0:
        pytest.skip("setpriv cannot drop CAP_DAC_OVERRIDE here")


@dataclass
class Case:
    """``setup(place)`` gives the command's arguments (and an environment); ``expect`` must be
    in the one line."""

    setup: Callable[[Place], tuple[list[str], dict[str, str]]]
    expect: str
    as_unprivileged_root: bool = False
    also: list[str] = field(default_factory=list)


def _db(path: Path | str) -> list[str]:
    return ["--db", f"sqlite:///{path}"]


def _file(place: Place, name: str, content: bytes) -> Path:
    path = place.root / name
    path.write_bytes(content)
    return path


def _home_is_a_file(place):
    return ["runs"], {"PROMPTMILL_HOME": str(_file(place, "home", b"not a folder"))}


def _home_under_a_file(place):
    return ["runs"], {"PROMPTMILL_HOME": str(_file(place, "home", b"x") / "inside")}


def _random_bytes(place):
    import random

    noise = random.Random(17).randbytes(8192)
    return [*_db(_file(place, "noise.db", noise)), "runs"], {}


def _text_file(place):
    return [*_db(_file(place, "notes.db", b"name,score\nalpha,1\n" * 50)), "runs"], {}


def _sqlite_header_then_garbage(place):
    return [*_db(_file(place, "fake.db", b"SQLite format 3\x00" + b"\xff" * 4000)), "runs"], {}


def _corrupted_store(place):
    path = place.store()
    data = bytearray(path.read_bytes())
    data[4096:] = b"\x5a" * (len(data) - 4096)  # every page after the first overwritten
    path.write_bytes(bytes(data))
    return [*_db(path), "runs"], {}


def _another_apps_database(place):
    path = place.root / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table prompts (id integer primary key, text varchar)")
    return [*_db(path), "runs"], {}


def _newer_schema(place):
    path = place.store()
    with sqlite3.connect(path) as conn:
        conn.execute("update alembic_version set version_num = '0099_from_the_future'")
    return [*_db(path), "runs"], {}


def _a_folder(place):
    folder = place.root / "a-folder.db"
    folder.mkdir()
    return [*_db(folder), "runs"], {}


def _parent_is_a_file(place):
    return [*_db(_file(place, "plain", b"x") / "sub" / "store.db"), "runs"], {}


def _read_only_uri(place):
    path = place.store()
    return ["--db", f"sqlite:///file:{path}?mode=ro&uri=true", "eval", place.task(), "-q",
            "--fresh"], {}


def _read_only_file_mode(place):
    path = place.store()
    path.chmod(0o444)
    return [*_db(path), "eval", place.task(), "-q", "--fresh"], {}


def _read_only_folder_mode(place):
    path = place.store()
    path.parent.chmod(0o555)
    return [*_db(path), "eval", place.task(), "-q", "--fresh"], {}


def _read_only_mount(place):
    task = place.task()
    folder = place.read_only_mount(lambda f: place.store(folder=str(f)))
    return [*_db(folder / "store.db"), "eval", task, "-q", "--fresh"], {}


def _folder_on_read_only_mount(place):
    folder = place.read_only_mount()
    return [*_db(folder / "new" / "store.db"), "runs"], {}


def _home_on_read_only_mount(place):
    folder = place.read_only_mount()
    return ["runs"], {"PROMPTMILL_HOME": str(folder / "home")}


def _folder_without_permission(place):
    locked = place.root / "locked"
    locked.mkdir(mode=0o555)
    return [*_db(locked / "sub" / "store.db"), "runs"], {}


def _name_too_long(place):
    return [*_db(place.root / ("n" * 300 + ".db")), "runs"], {}


def _folder_name_too_long(place):
    return [*_db(place.root / ("n" * 300) / "store.db"), "runs"], {}


CASES = {
    "home-is-a-file": Case(_home_is_a_file, "is a file, not a folder", also=["PROMPTMILL_HOME"]),
    "home-under-a-file": Case(_home_under_a_file, "is a file, not a folder"),
    "store-random-bytes": Case(_random_bytes, "not a promptmill store"),
    "store-text-file": Case(_text_file, "not a promptmill store"),
    "store-sqlite-header-then-garbage": Case(_sqlite_header_then_garbage,
                                             "not a promptmill store"),
    "store-corrupted-pages": Case(_corrupted_store, "not a promptmill store"),
    "store-of-another-app": Case(_another_apps_database, "not a promptmill store"),
    "store-from-a-newer-promptmill": Case(_newer_schema, "newer than this promptmill"),
    "store-is-a-folder": Case(_a_folder, "a folder, not a store file"),
    "store-parent-is-a-file": Case(_parent_is_a_file, "is a file, not a folder"),
    "read-only-uri": Case(_read_only_uri, "read-only"),
    "read-only-file-mode-0444": Case(_read_only_file_mode, "read-only",
                                     as_unprivileged_root=True),
    "read-only-folder-mode-0555": Case(_read_only_folder_mode, "read-only",
                                       as_unprivileged_root=True),
    "read-only-mount": Case(_read_only_mount, "read-only"),
    "store-folder-on-read-only-mount": Case(_folder_on_read_only_mount, "read-only file system"),
    "home-on-read-only-mount": Case(_home_on_read_only_mount, "read-only file system",
                                    also=["PROMPTMILL_HOME"]),
    "store-folder-not-permitted": Case(_folder_without_permission, "Permission denied",
                                       as_unprivileged_root=True),
    "store-name-too-long": Case(_name_too_long, "cannot open the store file"),
    "store-folder-name-too-long": Case(_folder_name_too_long, "cannot create this folder"),
}


def _one_line_error(command: list[str], env: dict[str, str]) -> str:
    import os

    done = subprocess.run(command, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_WAIT_POLICY": "passive", **env})
    output = done.stdout + done.stderr
    assert done.returncode == 2, (done.returncode, output)
    assert "Traceback" not in output
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return " ".join(lines[0].split())


@pytest.mark.parametrize("name", CASES)
def test_a_bad_store_is_one_line_and_exit_2(name, place):
    case = CASES[name]
    if case.as_unprivileged_root:
        _needs_setpriv()
    args, env = case.setup(place)
    prefix = NO_OVERRIDE if case.as_unprivileged_root else []
    message = _one_line_error([*prefix, *promptmill_command(), *map(str, args)], env)
    assert case.expect in message, message
    assert "Fix:" in message and all(word in message for word in case.also)
    assert "server is running" not in message  # SQLite has no server to blame


def test_a_read_only_store_can_still_be_read(place):
    path = place.store()
    listing = run_promptmill("--db", f"sqlite:///file:{path}?mode=ro&uri=true", "runs")
    assert listing.returncode == 0 and "finished" in listing.stdout, listing.stderr
    Store(f"sqlite:///{path}").close()  # and nothing was changed: the store opens as before


def test_a_store_whose_schema_is_current_opens_without_writing(place):
    """Opening an up-to-date store takes no lock and writes nothing (so read-only works)."""
    from promptmill.store.db import make_engine, migrate

    path = place.store()
    (path.parent / (path.name + ".lock")).unlink(missing_ok=True)
    assert migrate(make_engine(f"sqlite:///{path}")) is False
    assert not (path.parent / (path.name + ".lock")).exists()


@pytest.mark.postgres
def test_a_read_only_postgres_store_says_read_only(place, postgres_url):
    """A server whose transactions are read-only (a replica, a read-only role) is the same."""
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    Store(postgres_url).close()  # created while writable
    read_only = f"{postgres_url}?options=-c%20default_transaction_read_only%3Don"
    listing = run_promptmill("--db", read_only, "runs")
    assert listing.returncode == 0, listing.stderr  # reading still works
    message = _one_line_error([*promptmill_command(), "--db", read_only, "eval",
                               str(place.task()), "-q"], {})
    assert "read-only" in message and "server is running" not in message
