"""Shared fixtures: an isolated home directory, stores, fake and real models, PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from helpers import free_port, skip_or_fail, write_jsonl
from needs_extras import require_extra, require_extras_of


def pytest_collection_modifyitems(items):
    for item in items:  # a test on the PostgreSQL server needs psycopg, like any marked one
        if "postgres_url" in item.fixturenames:
            item.add_marker(pytest.mark.postgres)


def pytest_runtest_setup(item):
    """Marked ``ray`` or ``postgres``: skip without the extra, fail in CI (see needs_extras.py)."""
    require_extras_of(item)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("promptmill-home")
    monkeypatch.setenv("PROMPTMILL_HOME", str(home))
    monkeypatch.delenv("PROMPTMILL_DB", raising=False)
    return home


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def store(sqlite_url):
    from promptmill.store.db import Store

    s = Store(sqlite_url)
    yield s
    s.close()


COUNTRIES = {"France": "Paris", "Japan": "Tokyo", "Italy": "Rome", "Spain": "Madrid",
             "Germany": "Berlin", "Egypt": "Cairo", "Peru": "Lima", "Kenya": "Nairobi",
             "Canada": "Ottawa", "Norway": "Oslo", "Greece": "Athens", "Chile": "Santiago"}


@pytest.fixture
def capitals_rows() -> list[dict]:
    return [{"id": f"c{i}", "country": c, "capital": cap}
            for i, (c, cap) in enumerate(COUNTRIES.items())]


@pytest.fixture
def capitals_task(tmp_path, capitals_rows) -> Path:
    """A task folder with data and a config that uses the fake model."""
    write_jsonl(tmp_path / "data.jsonl", capitals_rows)
    answers = {c: cap for c, cap in list(COUNTRIES.items())[:8]}  # 8 of 12 right
    config = {
        "name": "capitals",
        "data": {"path": "data.jsonl", "input": ["country"], "target": "capital", "id": "id"},
        "splits": {"train": 0, "validation": 0, "test": 12, "seed": 0},
        "metric": "exact",
        "model": {"name": "fake", "params": {"answers": answers, "default": "I do not know"}},
        "generation": {"max_tokens": 8},
        "prompt": {"name": "ask", "instruction": "Name the capital city.",
                   "template": "Country: {{ country }}"},
    }
    import yaml

    (tmp_path / "task.yaml").write_text(yaml.safe_dump(config))
    return tmp_path / "task.yaml"


@pytest.fixture(scope="session")
def embedded_model():
    from promptmill.errors import ModelError
    from promptmill.models import load_model

    try:
        model = load_model("embedded", n_ctx=1024)
    except ModelError as exc:
        skip_or_fail(f"embedded model unavailable: {exc}")
    yield model
    model.close()


def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL server on 127.0.0.1, started and stopped here."""
    require_extra("psycopg", "postgres")
    bindir = _postgres_bin()
    if bindir is None:
        skip_or_fail("PostgreSQL is not installed (apt-get install postgresql)")
    # Not under pytest's tmp dir: that is private to root, and postgres must reach its data.
    data = Path(tempfile.mkdtemp(prefix="promptmill-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        shutil.chown(data, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust",
                    "-U", "postgres"], check=True, capture_output=True)
    port = free_port()
    log = data / "server.log"
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w",
                    "-o", f"-h 127.0.0.1 -p {port} -k {data}", "start"], check=True,
                   capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast",
                        "stop"], capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_store(request, sqlite_url):
    """The same store tests on SQLite and on a real PostgreSQL server."""
    from promptmill.store.db import Store

    if request.param == "sqlite":
        url = sqlite_url
    else:
        url = request.getfixturevalue("postgres_url")
        _reset_postgres(url)
    s = Store(url)
    yield s
    s.close()


def _reset_postgres(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


