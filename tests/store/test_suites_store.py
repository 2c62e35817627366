"""The suite_runs table (migration 0007) and the functions that read and write it."""

from __future__ import annotations

import json
import math

import pytest
import sqlalchemy as sa

from promptmill.errors import StoreError
from promptmill.store import db
from promptmill.store.suites import (
    create_suite_run,
    finish_suite_run,
    get_suite_run,
    list_suite_runs,
    save_suite_result,
    suite_run_result,
    suite_runs,
)


def test_the_migration_builds_the_declared_table(any_store):
    inspector = sa.inspect(any_store.engine)
    columns = {c["name"] for c in inspector.get_columns("suite_runs")}
    assert columns == {c.name for c in suite_runs.columns}
    assert "ix_suite_runs_name_id" in {i["name"] for i in inspector.get_indexes("suite_runs")}
    with any_store.engine.connect() as conn:
        assert conn.execute(sa.text("select version_num from alembic_version")).scalar() == \
            "0007_suite_runs"


def test_a_suite_run_is_created_running_and_finished_with_its_matrix(any_store):
    run_id = create_suite_run(any_store, "capitals", "suites/capitals.yaml")
    row = get_suite_run(any_store, run_id)
    assert row is not None and row["status"] == "running" and row["result"] is None
    assert row["finished_at"] is None and suite_run_result(row) is None
    result = {"suite": "capitals", "cells": [{"pass_at_k": {1: 1.0, 2: math.nan}}]}
    finish_suite_run(any_store, run_id, "finished", result)
    row = get_suite_run(any_store, str(run_id))
    assert row is not None and row["status"] == "finished" and row["finished_at"] is not None
    # JSON has no NaN: pass@k beyond a case's samples is kept as null
    assert suite_run_result(row) == {"suite": "capitals",
                                     "cells": [{"pass_at_k": {"1": 1.0, "2": None}}]}
    assert json.loads(row["result"] or "") == suite_run_result(row)


def test_a_stopped_suite_run_keeps_why(any_store):
    run_id = create_suite_run(any_store, "capitals", "s.yaml")
    finish_suite_run(any_store, run_id, "interrupted", error="interrupted by the user")
    row = get_suite_run(any_store, run_id)
    assert row is not None and row["status"] == "interrupted"
    assert row["error"] == "interrupted by the user" and row["result"] is None


def test_the_gates_verdicts_replace_the_result_and_status(any_store):
    run_id = create_suite_run(any_store, "capitals", "s.yaml")
    finish_suite_run(any_store, run_id, "finished", {"gates": []})
    save_suite_result(any_store, run_id, {"gates": [{"passed": True}]}, status="passed")
    row = get_suite_run(any_store, run_id)
    assert row is not None and row["status"] == "passed"
    assert suite_run_result(row) == {"gates": [{"passed": True}]}


def test_suite_runs_list_newest_first_and_by_name(any_store):
    ids = [create_suite_run(any_store, name, f"{name}.yaml") for name in ("a", "b", "a")]
    assert [r["id"] for r in list_suite_runs(any_store)] == ids[::-1]
    assert [r["id"] for r in list_suite_runs(any_store, name="a")] == [ids[2], ids[0]]
    assert [r["id"] for r in list_suite_runs(any_store, limit=1, offset=1)] == [ids[1]]


def test_a_suite_run_that_does_not_exist_is_none(any_store):
    assert get_suite_run(any_store, 404) is None
    with pytest.raises(StoreError, match="not a suite run id"):
        get_suite_run(any_store, "abc")
    with pytest.raises(StoreError, match="suite run 404 does not exist"):
        finish_suite_run(any_store, 404, "finished")


def test_the_migration_downgrades_and_upgrades_again(store):
    from alembic import command

    with store.engine.begin() as conn:
        command.downgrade(db._alembic_config(conn), "0006_owners_and_locks")
    assert "suite_runs" not in sa.inspect(store.engine).get_table_names()
    assert db.migrate(store.engine) is True
    assert "suite_runs" in sa.inspect(store.engine).get_table_names()
    assert create_suite_run(store, "again", "s.yaml") == 1
