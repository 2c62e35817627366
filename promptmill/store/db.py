"""The store: prompts, runs, per-example results and the call cache, in any SQLAlchemy database.

SQLite (the default) runs in WAL mode so readers (the CLI, the web UI) never block a running
evaluation. The schema is versioned with Alembic and upgraded on open.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..errors import StoreError
from . import schema
from .paths import default_url

MIGRATIONS = Path(__file__).parent / "migrations"


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str) -> Engine:
    try:
        engine = sa.create_engine(url, future=True)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        fix = ("pip install 'promptmill[postgres]'" if "postgres" in url else
               "use a SQLAlchemy URL such as sqlite:///path.db or postgresql+psycopg://...")
        raise StoreError(f"cannot use database URL ({exc})", where="--db", fix=fix) from None
    if engine.dialect.name == "sqlite":
        db_path = engine.url.database
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _alembic_config(connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the newest revision; a no-op when it is current."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    with engine.begin() as conn:
        cfg = _alembic_config(conn)
        head = ScriptDirectory.from_config(cfg).get_current_head()
        if MigrationContext.configure(conn).get_current_revision() != head:
            command.upgrade(cfg, "head")


def _dialect_insert(engine: Engine, table: sa.Table):
    """INSERT that skips rows whose primary key exists: resumes and cache writes are idempotent."""
    if engine.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        return None
    return insert(table).on_conflict_do_nothing()


class Store:
    """All persistence goes through here, so any SQLAlchemy URL works the same way."""

    def __init__(self, url: str | None = None):
        self.url = url or default_url()
        self.engine = make_engine(self.url)
        try:
            migrate(self.engine)
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot open the store ({str(exc.orig).strip()})",
                             where=self.safe_url(),
                             fix="check that the database server is running and the URL "
                                 "is right") from None

    def safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    # --- generic helpers ------------------------------------------------------------------
    def _insert_ignore(self, conn, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        stmt = _dialect_insert(self.engine, table)
        if stmt is not None:
            conn.execute(stmt, rows)
            return
        for row in rows:  # portable fallback for other databases
            try:
                with conn.begin_nested():
                    conn.execute(table.insert(), row)
            except sa.exc.IntegrityError:
                pass

    # --- prompts --------------------------------------------------------------------------
    def save_prompt(self, name: str, body: dict[str, Any], prompt_hash: str,
                    parent_id: int | None = None, note: str | None = None) -> dict[str, Any]:
        """Keep a prompt version; saving identical content again returns the existing version."""
        t = schema.prompts
        with self.engine.begin() as conn:
            found = conn.execute(sa.select(t).where(t.c.name == name, t.c.hash == prompt_hash)
                                 .order_by(t.c.version)).mappings().first()
            if found:
                return dict(found)
            last = conn.execute(sa.select(sa.func.max(t.c.version))
                                .where(t.c.name == name)).scalar()
            row = {"name": name, "version": (last or 0) + 1, "hash": prompt_hash,
                   "body": json.dumps(body, sort_keys=True), "parent_id": parent_id,
                   "note": note, "created_at": utcnow()}
            row["id"] = conn.execute(t.insert().values(**row)).inserted_primary_key[0]
            return row

    def get_prompt(self, name: str, version: str | None = None) -> dict[str, Any]:
        """By version number, by tag, or the newest version when none is given."""
        t, tags = schema.prompts, schema.prompt_tags
        query = sa.select(t).where(t.c.name == name)
        if version is None:
            query = query.order_by(t.c.version.desc())
        elif version.isdigit():
            query = query.where(t.c.version == int(version))
        else:
            query = query.join(tags, tags.c.prompt_id == t.c.id).where(tags.c.tag == version)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            ref = f"{name}@{version}" if version else name
            raise StoreError(f"no prompt '{ref}' in the store", where=self.safe_url(),
                             fix="check the name and version or tag, or give a prompt YAML file")
        return dict(row)

    def get_prompt_by_id(self, prompt_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(schema.prompts)
                               .where(schema.prompts.c.id == prompt_id)).mappings().first()
        return dict(row) if row else None

    def tag_prompt(self, name: str, version: int, tag: str) -> None:
        prompt = self.get_prompt(name, str(version))
        t = schema.prompt_tags
        with self.engine.begin() as conn:
            conn.execute(t.delete().where(t.c.name == name, t.c.tag == tag))
            conn.execute(t.insert().values(name=name, tag=tag, prompt_id=prompt["id"],
                                           updated_at=utcnow()))

    def list_prompts(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every saved version (or one name's), oldest first, with its tags."""
        t, tags = schema.prompts, schema.prompt_tags
        query, tag_query = sa.select(t), sa.select(tags.c.prompt_id, tags.c.tag)
        if name is not None:
            query, tag_query = query.where(t.c.name == name), tag_query.where(tags.c.name == name)
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(query.order_by(t.c.name, t.c.version))
                    .mappings()]
            tag_rows = conn.execute(tag_query).all()
        by_id: dict[int, list[str]] = {}
        for prompt_id, tag in tag_rows:
            by_id.setdefault(prompt_id, []).append(tag)
        for row in rows:
            row["tags"] = sorted(by_id.get(row["id"], []))
        return rows

    # --- runs -----------------------------------------------------------------------------
    def create_run(self, **fields: Any) -> int:
        defaults = {"kind": "eval", "status": "running", "seed": 0, "n_examples": 0, "n_done": 0,
                    "n_errors": 0, "score_sum": 0.0, "calls": 0, "cache_hits": 0,
                    "tokens_in": 0, "tokens_out": 0, "model_seconds": 0.0,
                    "wall_seconds": 0.0, "created_at": utcnow()}
        with self.engine.begin() as conn:
            result = conn.execute(schema.runs.insert().values(**{**defaults, **fields}))
            return int(result.inserted_primary_key[0])

    def update_run(self, run_id: int, **fields: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(schema.runs.update().where(schema.runs.c.id == run_id).values(**fields))

    def get_run(self, run_id: int | str) -> dict[str, Any]:
        try:
            key = int(run_id)
        except (TypeError, ValueError):
            raise StoreError(f"'{run_id}' is not a run id", where="RUN",
                             fix="give the number shown by 'promptmill runs'") from None
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(schema.runs).where(schema.runs.c.id == key)
                               ).mappings().first()
        if row is None:
            raise StoreError(f"run {run_id} does not exist", where=self.safe_url(),
                             fix="run 'promptmill runs' to list the runs in this store")
        return dict(row)

    def find_resumable_run(self, fingerprint: str) -> dict[str, Any] | None:
        r = schema.runs
        with self.engine.connect() as conn:
            unfinished = r.c.status.in_(["running", "interrupted", "failed"])
            row = conn.execute(sa.select(r).where(r.c.fingerprint == fingerprint, unfinished)
                               .order_by(r.c.id.desc())).mappings().first()
        return dict(row) if row else None

    def list_runs(self, limit: int = 50, offset: int = 0, task: str | None = None
                  ) -> list[dict[str, Any]]:
        r = schema.runs
        query = sa.select(r).order_by(r.c.id.desc()).limit(limit).offset(offset)
        if task:
            query = query.where(r.c.task == task)
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    # --- results --------------------------------------------------------------------------
    def add_results(self, conn, rows: list[dict[str, Any]]) -> None:
        self._insert_ignore(conn, schema.results, rows)

    def drop_failed_results(self, run_id: int) -> int:
        """Forget a run's errored examples so that resuming the run tries them again."""
        t = schema.results
        with self.engine.begin() as conn:
            return conn.execute(t.delete().where(t.c.run_id == run_id,
                                                 t.c.error.is_not(None))).rowcount

    def done_example_ids(self, run_id: int) -> set[str]:
        t = schema.results
        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(t.c.example_id).where(t.c.run_id == run_id))
                       .scalars())

    def run_totals(self, run_id: int) -> dict[str, Any]:
        """Recount a run's figures from its results, so a resumed run's ledger stays exact."""
        t = schema.results
        fresh = sa.not_(t.c.cached)

        def spent(column):  # cache hits cost nothing, so only fresh calls count
            return sa.func.coalesce(sa.func.sum(sa.case((fresh, column), else_=0)), 0)

        query = sa.select(
            sa.func.count(), sa.func.coalesce(sa.func.sum(t.c.score), 0.0),
            sa.func.count(t.c.error), spent(t.c.tokens_in), spent(t.c.tokens_out),
            spent(t.c.seconds), sa.func.coalesce(sa.func.sum(sa.cast(t.c.cached, sa.Integer)), 0),
        ).where(t.c.run_id == run_id)
        with self.engine.connect() as conn:
            n, total, errors, tin, tout, secs, hits = conn.execute(query).one()
        return {"n_done": n, "score_sum": float(total), "n_errors": errors,
                "tokens_in": int(tin), "tokens_out": int(tout), "model_seconds": float(secs),
                "cache_hits": int(hits), "calls": int(n - hits)}

    def iter_results(self, run_id: int, failures_only: bool = False, threshold: float = 1.0,
                     batch: int = 1000) -> Iterator[dict[str, Any]]:
        """Stream a run's results in example order, in constant memory."""
        t = schema.results
        query = sa.select(t).where(t.c.run_id == run_id).order_by(t.c.idx)
        if failures_only:
            query = query.where(sa.or_(t.c.score < threshold, t.c.score.is_(None)))
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=batch).execute(query).mappings()
            for row in result:
                yield dict(row)

    def scores_by_example(self, run_id: int) -> dict[str, float]:
        t = schema.results
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.example_id, t.c.score)
                                .where(t.c.run_id == run_id)).all()
        return {ex: (s if s is not None else 0.0) for ex, s in rows}

    def segments_by_example(self, run_id: int) -> dict[str, str]:
        """The intent segment of each example that has one, for per-segment scores."""
        t = schema.results
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.example_id, t.c.segment)
                                .where(t.c.run_id == run_id, t.c.segment.is_not(None))).all()
        return dict(rows)

    # --- optimizations --------------------------------------------------------------------
    def reset_search(self, run_id: int) -> None:
        """Forget a search's candidates and steps before it is replayed from the cache."""
        with self.engine.begin() as conn:
            for table in (schema.candidates, schema.trajectory):
                conn.execute(table.delete().where(table.c.run_id == run_id))

    def save_candidate(self, run_id: int, row: dict[str, Any]) -> None:
        t = schema.candidates
        with self.engine.begin() as conn:
            updated = conn.execute(t.update().where(t.c.run_id == run_id, t.c.idx == row["idx"])
                                   .values(**row)).rowcount
            if not updated:
                conn.execute(t.insert().values(run_id=run_id, created_at=utcnow(), **row))

    def add_step(self, run_id: int, row: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(schema.trajectory.insert().values(run_id=run_id, **row))

    def candidates(self, run_id: int) -> list[dict[str, Any]]:
        t = schema.candidates
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(t).where(t.c.run_id == run_id)
                                                  .order_by(t.c.idx)).mappings()]

    def steps(self, run_id: int, after: int = -1) -> list[dict[str, Any]]:
        t = schema.trajectory
        with self.engine.connect() as conn:
            query = sa.select(t).where(t.c.run_id == run_id, t.c.step > after).order_by(t.c.step)
            return [dict(r) for r in conn.execute(query).mappings()]

    def child_runs(self, run_id: int) -> list[dict[str, Any]]:
        r = schema.runs
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(
                sa.select(r).where(r.c.parent_run_id == run_id).order_by(r.c.id)).mappings()]

    # --- call cache -----------------------------------------------------------------------
    def cached_calls(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        keys = list(keys)
        found: dict[str, dict[str, Any]] = {}
        t = schema.calls
        with self.engine.connect() as conn:
            for start in range(0, len(keys), 500):  # stay under SQL parameter limits
                chunk = keys[start:start + 500]
                for row in conn.execute(sa.select(t).where(t.c.key.in_(chunk))).mappings():
                    found[row["key"]] = dict(row)
        return found

    def add_calls(self, conn, rows: list[dict[str, Any]]) -> None:
        self._insert_ignore(conn, schema.calls, rows)

    def transaction(self):
        return self.engine.begin()
