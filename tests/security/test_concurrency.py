"""Concurrent promptmill processes on one store, SQLite and PostgreSQL: nothing crashes, nothing
is paid for twice, and a killed run shows as interrupted and resumes. Real processes; every
claim is proved by counting (model calls, migrations, rows), never by timing.

Documented outcome for the same command started twice at once: the second waits for the first
("waiting for run N, being evaluated by pid P on HOST"), then reuses its work from the store's
cache: zero new model calls. It never fails with an IntegrityError.
"""

from __future__ import annotations

import os
import signal

import pytest
import sqlalchemy as sa
from helpers import wait_for
from store_driver import counted_calls, finish, spawn, spawn_cli, write_task

from promptmill.store.db import Store

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def new_store_url(request, tmp_path) -> str:
    """The URL of a store nobody has opened yet: a new SQLite file, or an empty database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'new' / 'store.db'}"
    url = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    return url


def _runs(url: str) -> list[dict]:
    store = Store(url)
    try:
        return sorted(store.list_runs(), key=lambda r: r["id"])
    finally:
        store.close()


def _committed(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("select count(*) from results")).scalar() or 0
    except sa.exc.SQLAlchemyError:  # the first process has not created the tables yet
        return 0
    finally:
        engine.dispose()


# --- opening a new store ---------------------------------------------------------------------
@pytest.mark.parametrize("attempt", range(3))
def test_processes_opening_a_new_store_at_once_all_succeed(new_store_url, tmp_path, attempt):
    go = tmp_path / f"go-{attempt}"
    procs = [spawn("open", new_store_url, go) for _ in range(4)]
    for proc in procs:  # every process is loaded and waiting: they start migrating together
        assert proc.stdout.readline().strip() == "ready"
    go.touch()
    outcomes = [finish(proc, timeout=120) for proc in procs]
    assert [code for code, _, _ in outcomes] == [0, 0, 0, 0], outcomes
    said = sorted(out.split()[0] for _, out, _ in outcomes)
    assert said == ["current", "current", "current", "migrated"]  # one upgrade, three waits
    assert "IntegrityError" not in "".join(err for _, _, err in outcomes)


# --- the same eval twice at once -------------------------------------------------------------
def test_the_second_of_two_identical_evals_waits_and_reuses_every_answer(new_store_url,
                                                                         tmp_path):
    n = 40
    config = write_task(tmp_path, n)
    count, gate, second_err = tmp_path / "calls", tmp_path / "gate", tmp_path / "second.err"
    first = spawn_cli(new_store_url, "eval", config, "-q",
                      env={"PM_COUNT_FILE": str(count), "PM_GATE_AFTER": "0",
                           "PM_GATE_FILE": str(gate)})
    assert wait_for(lambda: len(counted_calls(count)) >= 1, timeout=120)  # it holds the run
    with open(second_err, "w") as err:
        second = spawn_cli(new_store_url, "eval", config, "-q",
                           env={"PM_COUNT_FILE": str(count)}, stderr=err)
        waiting = f"waiting for run 1, being evaluated by pid {first.pid}"
        assert wait_for(lambda: waiting in second_err.read_text(), timeout=120)
        gate.touch()
        results = [finish(first), finish(second)]
    assert [code for code, _, _ in results] == [0, 0], (results, second_err.read_text())
    calls = counted_calls(count)
    assert len(calls) == n and set(calls) == {str(first.pid)}  # the second called nothing
    runs = _runs(new_store_url)
    assert [r["status"] for r in runs] == ["finished", "finished"]
    assert [(r["calls"], r["cache_hits"]) for r in runs] == [(n, 0), (0, n)]  # true counts


@pytest.mark.parametrize("attempt", range(2))
def test_two_identical_evals_started_together_call_the_model_once_per_example(
        new_store_url, tmp_path, attempt):
    n = 30
    config = write_task(tmp_path, n, delay=0.005)
    count, go = tmp_path / "calls", tmp_path / "go"
    env = {"PM_COUNT_FILE": str(count), "PM_GO_FILE": str(go)}
    procs = [spawn_cli(new_store_url, "eval", config, "-q", env=env) for _ in range(2)]
    go.touch()
    results = [finish(proc) for proc in procs]
    assert [code for code, _, _ in results] == [0, 0], results
    assert len(counted_calls(count)) == n
    runs = _runs(new_store_url)
    assert sum(r["calls"] for r in runs) == n and sum(r["cache_hits"] for r in runs) == n


# --- the same optimization twice at once -----------------------------------------------------
def test_the_second_of_two_identical_optimizations_waits_then_replays_for_free(new_store_url,
                                                                                tmp_path):
    config = write_task(tmp_path, 26, splits={"train": 6, "validation": 10, "test": 10})
    count, gate, second_err = tmp_path / "calls", tmp_path / "gate", tmp_path / "second.err"
    args = ("optimize", config, "--method", "fewshot", "--budget-calls", "60", "-q")
    first = spawn_cli(new_store_url, *args, env={"PM_COUNT_FILE": str(count),
                                                 "PM_GATE_AFTER": "0", "PM_GATE_FILE": str(gate)})
    assert wait_for(lambda: len(counted_calls(count)) >= 1, timeout=120)
    with open(second_err, "w") as err:
        second = spawn_cli(new_store_url, *args, env={"PM_COUNT_FILE": str(count)}, stderr=err)
        waiting = f"waiting for run 1, being optimized by pid {first.pid}"
        assert wait_for(lambda: waiting in second_err.read_text(), timeout=120)
        gate.touch()
        results = [finish(first), finish(second)]
    errors = second_err.read_text() + results[0][2]
    assert [code for code, _, _ in results] == [0, 0], (results, errors)
    assert "IntegrityError" not in errors
    calls = counted_calls(count)
    assert calls and set(calls) == {str(first.pid)}  # the replay made no model call
    runs = _runs(new_store_url)
    optimizations = [r for r in runs if r["kind"] == "optimize"]
    assert [r["status"] for r in optimizations] == ["finished", "finished"]
    assert optimizations[1]["calls"] == 0
    assert sum(r["calls"] for r in runs) == len(calls)  # the recorded counts are the real ones


# --- a killed run ----------------------------------------------------------------------------
def test_a_killed_eval_shows_as_interrupted_and_resumes_without_redoing_work(new_store_url,
                                                                             tmp_path):
    n = 100
    config = write_task(tmp_path, n)
    count = tmp_path / "calls"
    victim = spawn_cli(new_store_url, "eval", config, "-q",
                       env={"PM_COUNT_FILE": str(count), "PM_GATE_AFTER": "40"})  # then hangs
    assert wait_for(lambda: len(counted_calls(count)) == 41, timeout=120)
    assert wait_for(lambda: _committed(new_store_url) >= 32, timeout=60)
    assert _runs(new_store_url)[0]["status"] == "running"  # alive: not reported as gone
    os.kill(victim.pid, signal.SIGKILL)
    assert wait_for(lambda: _runs(new_store_url)[0]["status"] == "interrupted", timeout=30)
    victim.wait()  # even before it was reaped (a zombie), it counted as gone
    committed = _committed(new_store_url)
    assert 32 <= committed <= 40

    listing = finish(spawn_cli(new_store_url, "runs"))
    assert listing[0] == 0 and "interrupted" in listing[1], listing
    shown = finish(spawn_cli(new_store_url, "show", "1"))
    assert shown[0] == 0 and "status=interrupted" in shown[1], shown
    assert f"pid {victim.pid}" in " ".join(shown[1].split())

    resume_count = tmp_path / "resumed-calls"
    code, out, err = finish(spawn_cli(new_store_url, "eval", config, "-q",
                                      env={"PM_COUNT_FILE": str(resume_count)}))
    assert code == 0, err
    assert f"resumed run 1: {committed} examples" in " ".join(out.split())
    assert len(counted_calls(resume_count)) == n - committed  # finished work is never redone
    (run,) = _runs(new_store_url)
    assert run["status"] == "finished" and run["n_done"] == n and run["error"] is None
