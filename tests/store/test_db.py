import pytest
import sqlalchemy as sa

from promptmill.prompt import Prompt
from promptmill.store.db import Store


def _save(store, prompt: Prompt, name="p"):
    return store.save_prompt(name, prompt.content(), prompt.hash)


def test_migrations_create_the_schema_once(any_store):
    tables = set(sa.inspect(any_store.engine).get_table_names())
    assert {"prompts", "prompt_tags", "runs", "results", "calls", "alembic_version"} <= tables
    Store(any_store.url).close()  # reopening an up-to-date store is a no-op
    with any_store.engine.connect() as conn:
        assert conn.execute(sa.text("select version_num from alembic_version")).scalar() \
            == "0007_suite_runs"


def test_migrations_build_exactly_the_declared_schema(any_store):
    from promptmill.store import schema

    inspector = sa.inspect(any_store.engine)
    for table in schema.metadata.sorted_tables:
        migrated = {c["name"] for c in inspector.get_columns(table.name)}
        assert migrated == {c.name for c in table.columns}, table.name


def test_prompt_versions_are_content_addressed_and_taggable(any_store):
    first = _save(any_store, Prompt(instruction="one"))
    again = _save(any_store, Prompt(instruction="one"))
    second = _save(any_store, Prompt(instruction="two"))
    assert first["version"] == again["version"] == 1 and second["version"] == 2
    any_store.tag_prompt("p", 1, "production")
    assert any_store.get_prompt("p", "production")["hash"] == first["hash"]
    assert any_store.get_prompt("p")["version"] == 2  # newest by default
    any_store.tag_prompt("p", 2, "production")  # moving a tag
    assert any_store.get_prompt("p", "production")["version"] == 2
    listed = any_store.list_prompts()
    assert [r["tags"] for r in listed] == [[], ["production"]]


def test_runs_results_and_cache_roundtrip(any_store):
    run_id = any_store.create_run(task="t", split="test", model="fake", model_identity="fake:x",
                                  metric="exact", prompt_hash="h", fingerprint="f",
                                  config="{}", n_examples=2)
    rows = [{"run_id": run_id, "example_id": str(i), "idx": i, "inputs": "{}", "target": "a",
             "answers": None, "output": "a", "score": float(i), "feedback": None,
             "error": None, "tokens_in": 3, "tokens_out": 1, "seconds": 0.5, "cached": i == 1,
             "call_key": f"k{i}"} for i in range(2)]
    with any_store.transaction() as conn:
        any_store.add_results(conn, rows)
        any_store.add_results(conn, rows)  # a duplicate write is ignored, not an error
    assert [r["example_id"] for r in any_store.iter_results(run_id)] == ["0", "1"]
    assert [r["example_id"] for r in any_store.iter_results(run_id, failures_only=True)] == ["0"]
    totals = any_store.run_totals(run_id)
    assert totals["n_done"] == 2 and totals["cache_hits"] == 1 and totals["calls"] == 1
    assert totals["tokens_in"] == 3  # cache hits cost nothing
    assert any_store.find_resumable_run("f")["id"] == run_id
    any_store.update_run(run_id, status="finished")
    assert any_store.find_resumable_run("f") is None


def test_sqlite_uses_wal(store):
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"


def test_unknown_run_is_a_clear_error(store):
    import pytest

    from promptmill.errors import StoreError

    with pytest.raises(StoreError, match="run 99 does not exist"):
        store.get_run(99)
    with pytest.raises(StoreError, match="not a run id"):
        store.get_run("abc")


@pytest.mark.postgres  # needs psycopg; no server
def test_unreachable_database_is_a_clear_error():
    import pytest

    from promptmill.errors import StoreError

    with pytest.raises(StoreError, match="cannot open the store"):
        Store("postgresql+psycopg://nobody:secret@127.0.0.1:1/none?connect_timeout=2")
