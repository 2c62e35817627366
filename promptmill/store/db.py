"""The store: prompts, runs, per-example results and the call cache, in any SQLAlchemy database.

SQLite (the default) runs in WAL mode so readers (the CLI, the web UI) never block a running
evaluation. The schema is versioned with Alembic and upgraded on open, one process at a time.
Failures the user can act on (a full disk, a read-only store, a file that is not a database)
are one-line errors wherever they happen (``failures``). A run left 'running' by a process that
has gone is marked interrupted when the store is opened or its runs are read (``owner``).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..errors import StoreError
from . import failures, schema
from .locks import Lease, WaitHook, migration_transaction
from .owner import Owner, is_gone
from .paths import default_url, make_folder, sqlite_file

MIGRATIONS = Path(__file__).parent / "migrations"
RECONCILE_EVERY = 10.0  # seconds between checks for dead owners' runs in a long-lived process
SAVE_ATTEMPTS = 5  # a prompt version number lost to a concurrent save is retried this often


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=30000")  # first: two new connections race for WAL mode
    try:
        cur.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError as exc:
        if failures.kind_of(exc) != "readonly":
            raise
        # a read-only store can still be read; a write then says it is read-only
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str) -> Engine:
    try:
        engine = sa.create_engine(url, future=True)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        fix = ("pip install 'promptmill[postgres]'" if "postgres" in url else
               "use a SQLAlchemy URL such as sqlite:///path.db or postgresql+psycopg://...")
        raise StoreError(f"cannot use database URL ({exc})", where="--db", fix=fix) from None
    path = store_file(engine)
    if path is not None:
        make_folder(path.parent, str(path.parent),
                    "give --db (or PROMPTMILL_HOME) a folder promptmill may create and write")
    where = str(path) if path is not None else engine.url.render_as_string(hide_password=True)
    failures.install(engine, where, path)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def store_file(engine: Engine) -> Path | None:
    """The SQLite file of an engine, or None (a server database, or SQLite in memory)."""
    if engine.dialect.name != "sqlite":
        return None
    return sqlite_file(engine.url.database, dict(engine.url.query))


def _alembic_config(connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def migrate(engine: Engine) -> bool:
    """Upgrade the schema to the newest revision; False (a no-op) when it is current.

    Concurrent openers of a new store take turns: the first upgrades, the others wait on the
    migration lock and then find the schema current.
    """
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    with engine.connect() as conn:
        if _revision(conn) == head:  # the common case: no lock, no write
            return False
    with migration_transaction(engine, store_file(engine)) as conn:
        current = _revision(conn)
        if current == head:
            return False
        _check_upgradable(conn, current)
        from alembic import command

        command.upgrade(_alembic_config(conn), "head")
        return True


def _revision(conn) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def _check_upgradable(conn, current: str | None) -> None:
    """Refuse a database promptmill did not create, or one from a newer promptmill."""
    from alembic.script import ScriptDirectory

    where = conn.engine.url.render_as_string(hide_password=True)
    if current is None:
        ours = {t.name for t in schema.metadata.sorted_tables}
        found = ours & set(sa.inspect(conn).get_table_names())
        if found:
            raise StoreError(f"this database has tables named like promptmill's "
                             f"({', '.join(sorted(found))}) but is not a promptmill store",
                             where=where, fix="give --db a new file or an empty database")
        return
    from alembic.util.exc import CommandError

    try:
        known = ScriptDirectory(str(MIGRATIONS)).get_revision(current) is not None
    except CommandError:
        known = False
    if not known:
        raise StoreError(f"the store's schema '{current}' is newer than this promptmill knows",
                         where=where, fix="upgrade promptmill (pip install -U promptmill), or "
                                          "use another store")


def _dialect_insert(engine: Engine, table: sa.Table) -> sa.Insert | None:
    """INSERT that skips rows whose primary key exists: resumes and cache writes are idempotent."""
    if engine.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing()
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(table).on_conflict_do_nothing()
    return None


def inserted_id(result: sa.CursorResult[Any]) -> int:
    """The primary key of the row a single-row INSERT just added."""
    key = result.inserted_primary_key
    if key is None:  # SQLAlchemy gives None only for statements other than a one-row INSERT
        raise StoreError("the database did not report the id of the row just added",
                         where=f"{result.context.dialect.name} database",
                         fix="use SQLite or PostgreSQL, which report it")
    return int(key[0])


class Store:
    """All persistence goes through here, so any SQLAlchemy URL works the same way."""

    def __init__(self, url: str | None = None):
        self.url = url or default_url()
        self.engine = make_engine(self.url)
        try:
            migrate(self.engine)
        except sa.exc.DBAPIError as exc:
            raise self._open_error(exc) from None
        self.reconcile_runs()
        # long-lived readers (the workbench) see a run whose process dies later as interrupted
        # too: every so often, opening a connection first reconciles
        self._reconciled_at = time.monotonic()
        self._reconciling = threading.Lock()
        sa.event.listen(self.engine, "engine_connect", self._reconcile_now_and_then)

    def _open_error(self, exc: sa.exc.DBAPIError) -> StoreError:
        detail = " ".join(str(exc.orig).split())
        if self.engine.dialect.name == "sqlite":
            return StoreError(f"cannot open the store ({detail})", where=self.safe_url(),
                              fix="check the path given by --db or PROMPTMILL_HOME")
        return StoreError(f"cannot open the store ({detail})", where=self.safe_url(),
                          fix="check that the database server is running and the URL is right")

    def safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    @staticmethod
    def now() -> datetime:
        return utcnow()

    # --- ownership and leases -------------------------------------------------------------
    def lease(self, name: str, on_wait: WaitHook | None = None) -> Lease:
        """``with store.lease("eval:FINGERPRINT"):`` one process at a time; see ``locks``."""
        return Lease(self, name, on_wait)

    def reconcile_runs(self) -> dict[int, str]:
        """Mark interrupted every run left 'running' by a process that is gone.

        Returns {run id: reason} for those runs. Best effort: on a read-only or full store the
        rows stay as they are, and the readers below still show the truth.
        """
        r = schema.runs
        columns = (r.c.id, r.c.owner_pid, r.c.owner_host, r.c.owner_started, r.c.heartbeat_at)
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(*columns).where(r.c.status == "running")).mappings()
            rows = [dict(row) for row in found]
        now = utcnow()
        gone = {row["id"]: row for row in rows
                if is_gone(Owner.from_row(row), row["heartbeat_at"], now)}
        reasons = {run_id: _interrupted_reason(Owner.from_row(row))
                   for run_id, row in gone.items()}
        if not gone:  # the common case: no write transaction at every open
            return reasons
        with contextlib.suppress(StoreError):
            with self.engine.begin() as conn:
                for run_id, row in gone.items():
                    same_owner = [r.c[name].is_not_distinct_from(row[name])
                                  for name in ("owner_pid", "owner_host", "owner_started")]
                    conn.execute(r.update().where(r.c.id == run_id, r.c.status == "running",
                                                  *same_owner)
                                 .values(status="interrupted", error=reasons[run_id]))
        return reasons

    def _reconcile_now_and_then(self, _connection) -> None:
        if time.monotonic() - self._reconciled_at < RECONCILE_EVERY:
            return
        if not self._reconciling.acquire(blocking=False):  # another thread is on it
            return
        try:
            self._reconciled_at = time.monotonic()  # first: the reconcile connects too
            with contextlib.suppress(Exception):  # a reader must not fail for this
                self.reconcile_runs()
        finally:
            self._reconciling.release()

    def _reconciled(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if any(row["status"] == "running" for row in rows):
            reasons = self.reconcile_runs()
            for row in rows:
                if row["status"] == "running" and row["id"] in reasons:
                    row.update(status="interrupted", error=reasons[row["id"]])
        return rows

    def stop_run(self, run_id: int, status: str, error: str | None, **fields: Any) -> bool:
        """Record why a run stopped, if the store can still be written (it may be full).

        When it cannot, the run stays 'running' until its process has gone; it is then shown
        as interrupted, and resumes the same way.
        """
        try:
            self.update_run(run_id, status=status, error=error, **fields)
        except StoreError:
            return False
        return True

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
        """Keep a prompt version; saving identical content again returns the existing version.

        Two processes saving the same name at once race for the next version number: the
        loser sees the unique constraint fail and tries again with the number after.
        """
        for _ in range(SAVE_ATTEMPTS - 1):
            try:
                return self._save_prompt(name, body, prompt_hash, parent_id, note)
            except sa.exc.IntegrityError:
                continue
        return self._save_prompt(name, body, prompt_hash, parent_id, note)

    def _save_prompt(self, name, body, prompt_hash, parent_id, note) -> dict[str, Any]:
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
            row["id"] = inserted_id(conn.execute(t.insert().values(**row)))
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
        row = _owned({**defaults, **fields})
        with self.engine.begin() as conn:
            return inserted_id(conn.execute(schema.runs.insert().values(**row)))

    def update_run(self, run_id: int, **fields: Any) -> None:
        fields = _owned(fields)
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
        return self._reconciled([dict(row)])[0]

    def find_resumable_run(self, fingerprint: str) -> dict[str, Any] | None:
        """The newest unfinished run with this fingerprint (call it under the run's lease)."""
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
            rows = [dict(row) for row in conn.execute(query).mappings()]
        return self._reconciled(rows)

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


def _owned(fields: dict[str, Any]) -> dict[str, Any]:
    """A run set 'running' belongs to this process from now on."""
    if fields.get("status") != "running":
        return fields
    return {**fields, **Owner.current().fields(), "heartbeat_at": utcnow()}


def _interrupted_reason(owner: Owner | None) -> str:
    who = owner.describe() if owner is not None else "its process"
    return (f"interrupted: {who} ended before the run finished (killed or crashed); "
            "rerun the same command to resume it")
