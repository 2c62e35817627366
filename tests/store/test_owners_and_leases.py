"""Run owners, stale-run reconciliation, leases and the save-prompt race, on SQLite and
PostgreSQL. In one process: other owners are made up (a pid that has exited, another host)."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from helpers import wait_for

from promptmill.store import schema
from promptmill.store.db import utcnow
from promptmill.store.locks import Lease
from promptmill.store.owner import STALE_AFTER, Owner, is_gone


def _exited_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _dead_owner() -> Owner:
    me = Owner.current()
    return Owner(_exited_pid(), me.host, me.started)


def _remote_owner() -> Owner:
    return Owner(4242, "another-machine", "other-boot:pid:[1]:123")


def _run(store, fingerprint: str = "f") -> int:
    return store.create_run(task="t", split="test", model="fake", model_identity="fake:x",
                            metric="exact", prompt_hash="h", fingerprint=fingerprint,
                            config="{}")


def _set_owner(store, run_id: int, owner: Owner | None, heartbeat=None) -> None:
    fields = owner.fields() if owner else {"owner_pid": None, "owner_host": None,
                                           "owner_started": None}
    with store.engine.begin() as conn:  # as another process would have written it
        conn.execute(schema.runs.update().where(schema.runs.c.id == run_id)
                     .values(**fields, heartbeat_at=heartbeat))


# --- owners --------------------------------------------------------------------------------
def test_this_process_is_alive_and_an_exited_one_is_gone():
    now = utcnow()
    assert not is_gone(Owner.current(), None, now)
    assert is_gone(_dead_owner(), None, now)


def test_a_reused_pid_is_not_the_original_owner():
    me = Owner.current()
    if not me.started:
        pytest.skip("no /proc: process start times cannot be read here")
    boot_and_ns, _, ticks = me.started.rpartition(":")
    impostor = Owner(me.pid, me.host, f"{boot_and_ns}:{int(ticks) + 1}")  # same pid, later
    assert is_gone(impostor, None, utcnow())


def test_an_owner_elsewhere_is_judged_by_its_heartbeat():
    now, remote = utcnow(), _remote_owner()
    assert not is_gone(remote, now - timedelta(seconds=5), now)
    assert is_gone(remote, now - STALE_AFTER - timedelta(seconds=1), now)
    assert is_gone(remote, None, now)
    assert is_gone(None, None, now)  # a 'running' row from before owners were recorded


# --- reconciling runs ------------------------------------------------------------------------
def test_runs_of_gone_processes_show_and_become_interrupted(any_store):
    alive = _run(any_store)
    dead = _run(any_store)
    _set_owner(any_store, dead, owner := _dead_owner())
    remote_fresh, remote_stale, legacy = _run(any_store), _run(any_store), _run(any_store)
    _set_owner(any_store, remote_fresh, _remote_owner(), utcnow())
    _set_owner(any_store, remote_stale, _remote_owner(), utcnow() - 2 * STALE_AFTER)
    _set_owner(any_store, legacy, None)
    status = {r["id"]: r["status"] for r in any_store.list_runs()}
    assert status == {alive: "running", dead: "interrupted", remote_fresh: "running",
                      remote_stale: "interrupted", legacy: "interrupted"}
    shown = any_store.get_run(dead)
    assert f"pid {owner.pid}" in shown["error"] and "resume" in shown["error"]
    with any_store.engine.connect() as conn:  # the store itself now says so
        stored = dict(conn.execute(sa.select(schema.runs.c.id, schema.runs.c.status)).all())
    assert stored == status


def test_an_interrupted_run_is_resumable_and_claimed_by_its_new_process(any_store):
    run_id = _run(any_store, fingerprint="fp")
    _set_owner(any_store, run_id, _dead_owner())
    assert any_store.find_resumable_run("fp")["id"] == run_id
    any_store.update_run(run_id, status="running")
    run = any_store.get_run(run_id)
    assert run["status"] == "running" and run["owner_pid"] == Owner.current().pid


def test_a_run_is_not_reclaimed_from_under_a_process_that_resumed_it(any_store):
    """Reconciling only touches the row it judged: a new owner in the meantime keeps it."""
    run_id = _run(any_store)
    _set_owner(any_store, run_id, _dead_owner())
    original = any_store.engine.begin

    def resumed_meanwhile():
        any_store.engine.begin = original
        any_store.update_run(run_id, status="running")  # another process resumes it first
        return original()

    any_store.engine.begin = resumed_meanwhile
    try:
        any_store.reconcile_runs()
    finally:
        any_store.engine.begin = original
    assert any_store.get_run(run_id)["status"] == "running"


# --- leases ----------------------------------------------------------------------------------
def _hold(store, name: str, owner: Owner) -> None:
    now = utcnow()
    with store.engine.begin() as conn:
        conn.execute(schema.locks.insert().values(name=name, **owner.fields(), run_id=7,
                                                  acquired_at=now, heartbeat_at=now))


def _holders(store) -> list[tuple]:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(schema.locks.c.name, schema.locks.c.owner_pid)).all()


def test_a_lease_is_taken_and_released(any_store):
    with any_store.lease("eval:x") as lease:
        assert _holders(any_store) == [("eval:x", Owner.current().pid)]
        assert not lease.waited
    assert _holders(any_store) == []


def test_a_dead_holders_lease_is_taken_over_without_waiting(any_store):
    _hold(any_store, "eval:x", _dead_owner())
    waits = []
    with any_store.lease("eval:x", on_wait=waits.append):
        assert _holders(any_store) == [("eval:x", Owner.current().pid)]
    assert waits == []


def test_a_live_holder_makes_the_next_one_wait_until_it_releases(any_store):
    remote = _remote_owner()
    _hold(any_store, "eval:x", remote)  # beating, elsewhere: alive
    waits, inside = [], threading.Event()

    def second():
        with any_store.lease("eval:x", on_wait=waits.append):
            inside.set()

    thread = threading.Thread(target=second)
    thread.start()
    assert wait_for(lambda: waits, timeout=30)  # it has seen the holder and said so...
    assert not inside.is_set()  # ...and stays out
    assert [w["owner_pid"] for w in waits] == [remote.pid] and waits[0]["run_id"] == 7
    with any_store.engine.begin() as conn:  # the holder finishes
        conn.execute(schema.locks.delete())
    thread.join(timeout=30)
    assert inside.is_set() and len(waits) == 1


def test_the_heartbeat_refreshes_this_processs_leases_and_runs(any_store):
    run_id = _run(any_store)
    old = utcnow() - timedelta(hours=1)
    with any_store.lease("eval:x") as lease:
        with any_store.engine.begin() as conn:
            conn.execute(schema.locks.update().values(heartbeat_at=old))
            conn.execute(schema.runs.update().values(heartbeat_at=old))
        lease._heartbeat.beat()
        with any_store.engine.connect() as conn:
            beats = [conn.execute(sa.select(t.c.heartbeat_at)).scalar()
                     for t in (schema.locks, schema.runs)]
    assert all(beat > old for beat in beats), beats
    assert any_store.get_run(run_id)["status"] == "running"


def test_a_lease_never_deletes_a_holder_that_replaced_the_dead_one(any_store):
    dead = _dead_owner()
    _hold(any_store, "eval:x", dead)
    lease = Lease(any_store, "eval:x")
    stale = lease._holder()
    with any_store.engine.begin() as conn:  # a third process stole it first
        conn.execute(schema.locks.delete())
    _hold(any_store, "eval:x", _remote_owner())
    lease._steal(stale)
    assert _holders(any_store) == [("eval:x", _remote_owner().pid)]


# --- the save-prompt race ------------------------------------------------------------------
def test_a_prompt_version_lost_to_a_concurrent_save_is_retried(any_store):
    """Another process saves version 1 between our read of the last version and our insert."""
    t = schema.prompts
    raced = []

    def rival(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO PROMPTS") and not raced:
            raced.append(True)
            with any_store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") \
                    as other:
                other.execute(t.insert().values(name="p", version=1, hash="theirs", body="{}",
                                                created_at=utcnow()))

    sa.event.listen(any_store.engine, "before_cursor_execute", rival)
    try:
        saved = any_store.save_prompt("p", {"instruction": "ours"}, "ours")
    finally:
        sa.event.remove(any_store.engine, "before_cursor_execute", rival)
    assert raced and saved["version"] == 2
    assert [r["hash"] for r in any_store.list_prompts("p")] == ["theirs", "ours"]


def test_a_lease_taken_again_by_its_own_thread_does_not_wait_for_itself(any_store):
    waits = []
    with any_store.lease("eval:x"):
        with any_store.lease("eval:x", on_wait=waits.append):  # e.g. a nested evaluation
            assert _holders(any_store) == [("eval:x", Owner.current().pid)]
        assert _holders(any_store) == [("eval:x", Owner.current().pid)]  # still the outer's
    assert waits == [] and _holders(any_store) == []


def test_a_long_lived_reader_sees_a_run_whose_process_died_later_as_interrupted(any_store):
    """The workbench reads runs with its own SQL for hours: its connections reconcile too."""
    run_id = _run(any_store)
    _set_owner(any_store, run_id, _dead_owner())  # died after this store was opened
    any_store._reconciled_at -= 3600  # as if the last check was long ago
    with any_store.engine.connect() as conn:  # a plain read, as promptmill.web.queries does
        status = conn.execute(sa.select(schema.runs.c.status)
                              .where(schema.runs.c.id == run_id)).scalar()
    assert status == "interrupted"


def test_a_lease_this_process_failed_to_release_does_not_block_it(any_store):
    """E.g. the disk was full when the lease was to be deleted; it is free again now."""
    _hold(any_store, "eval:x", Owner.current())  # left over, held by no thread
    waits = []
    with any_store.lease("eval:x", on_wait=waits.append):
        pass
    assert waits == [] and _holders(any_store) == []
