"""Table definitions. The migrations in ``migrations/versions`` create exactly these tables."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

prompts = Table(
    "prompts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("parent_id", Integer, ForeignKey("prompts.id"), nullable=True),
    Column("note", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("name", "version", name="uq_prompts_name_version"),
)

prompt_tags = Table(
    "prompt_tags", metadata,
    Column("name", String(200), primary_key=True),
    Column("tag", String(100), primary_key=True),
    Column("prompt_id", Integer, ForeignKey("prompts.id"), nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

runs = Table(
    "runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False, default="eval"),
    Column("task", String(200), nullable=False),
    Column("split", String(32), nullable=False),
    Column("model", String(500), nullable=False),
    Column("model_identity", String(500), nullable=False),
    Column("metric", String(500), nullable=False),
    Column("prompt_id", Integer, ForeignKey("prompts.id"), nullable=True),
    Column("prompt_hash", String(64), nullable=False),
    Column("fingerprint", String(64), nullable=False, index=True),
    Column("config", Text, nullable=False),
    Column("seed", Integer, nullable=False, default=0),
    Column("status", String(32), nullable=False),
    Column("error", Text, nullable=True),
    Column("n_examples", Integer, nullable=False, default=0),
    Column("n_done", Integer, nullable=False, default=0),
    Column("n_errors", Integer, nullable=False, default=0),
    Column("score_sum", Float, nullable=False, default=0.0),
    Column("calls", Integer, nullable=False, default=0),
    Column("cache_hits", Integer, nullable=False, default=0),
    Column("tokens_in", Integer, nullable=False, default=0),
    Column("tokens_out", Integer, nullable=False, default=0),
    Column("model_seconds", Float, nullable=False, default=0.0),
    Column("wall_seconds", Float, nullable=False, default=0.0),
    Column("created_at", DateTime, nullable=False),
    Column("finished_at", DateTime, nullable=True),
    Column("parent_run_id", Integer, nullable=True),
    # who runs it (migration 0006): a run left 'running' by a process that is gone is shown
    # as interrupted; the heartbeat judges owners on other machines, whose pids mean nothing here
    Column("owner_pid", Integer, nullable=True),
    Column("owner_host", String(255), nullable=True),
    Column("owner_started", String(200), nullable=True),
    Column("heartbeat_at", DateTime, nullable=True),
    Index("ix_runs_task_id", "task", "id"),  # the workbench's runs list filtered by task
    Index("ix_runs_status", "status"),  # finding the runs left 'running', on every open
)

results = Table(
    "results", metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("example_id", String(200), primary_key=True),
    Column("idx", Integer, nullable=False),
    Column("inputs", Text, nullable=False),
    Column("target", Text, nullable=True),
    Column("answers", Text, nullable=True),
    Column("output", Text, nullable=True),
    Column("score", Float, nullable=True),
    Column("feedback", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("tokens_in", Integer, nullable=False, default=0),
    Column("tokens_out", Integer, nullable=False, default=0),
    Column("seconds", Float, nullable=False, default=0.0),
    Column("cached", Boolean, nullable=False, default=False),
    Column("call_key", String(64), nullable=True),
    Column("segment", String(200), nullable=True),
    Column("raw_output", Text, nullable=True),  # before answer extraction, when it differs
    Column("context_notes", Text, nullable=True),
    Index("ix_results_run_idx", "run_id", "idx"),
)

calls = Table(
    "calls", metadata,
    Column("key", String(64), primary_key=True),
    Column("model_identity", String(500), nullable=False),
    Column("request", Text, nullable=False),
    Column("params", Text, nullable=False),
    Column("sample", Integer, nullable=False, default=0),
    Column("text", Text, nullable=False),
    Column("tokens_in", Integer, nullable=False, default=0),
    Column("tokens_out", Integer, nullable=False, default=0),
    Column("seconds", Float, nullable=False, default=0.0),
    Column("finish_reason", String(32), nullable=True),
    Column("logprobs", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
)

candidates = Table(
    "candidates", metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("hash", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("parents", Text, nullable=False),
    Column("origin", String(200), nullable=False),
    Column("val_mean", Float, nullable=True),
    Column("val_n", Integer, nullable=False, default=0),
    Column("accepted", Boolean, nullable=False, default=False),
    Column("created_at", DateTime, nullable=False),
)

trajectory = Table(
    "trajectory", metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("step", Integer, primary_key=True),
    Column("event", String(64), nullable=False),
    Column("candidate_idx", Integer, nullable=True),
    Column("incumbent_idx", Integer, nullable=True),
    Column("incumbent_score", Float, nullable=True),
    Column("calls", Integer, nullable=False),
    Column("tokens", Integer, nullable=False),
    Column("seconds", Float, nullable=False),
    Column("detail", Text, nullable=True),
)

# --- production, tuning and workbench (migration 0004) -----------------------------------------
traces = Table(
    "traces", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("prompt_name", String(200), nullable=False),
    Column("prompt_id", Integer, ForeignKey("prompts.id"), nullable=True),
    Column("model", String(500), nullable=False),
    Column("inputs", Text, nullable=False),  # JSON: the template variables of the request
    Column("messages", Text, nullable=True),  # JSON: what was sent to the backend
    Column("output", Text, nullable=True),
    Column("status", Integer, nullable=False),  # HTTP status returned to the client
    Column("error", Text, nullable=True),
    Column("tokens_in", Integer, nullable=False, default=0),
    Column("tokens_out", Integer, nullable=False, default=0),
    Column("seconds", Float, nullable=False, default=0.0),
    Column("created_at", DateTime, nullable=False),
    Index("ix_traces_prompt", "prompt_name", "id"),
)

adapters = Table(
    "adapters", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("method", String(32), nullable=False),  # lora | prompt-tuning | prefix
    Column("base_model", String(500), nullable=False),
    Column("task", String(200), nullable=False),
    Column("path", Text, nullable=False),  # folder holding the PEFT adapter and checkpoints
    Column("config", Text, nullable=False),  # JSON: hyperparameters and prompt used
    Column("metrics", Text, nullable=True),  # JSON: per-epoch losses and validation scores
    Column("status", String(32), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("finished_at", DateTime, nullable=True),
)

ratings = Table(
    "ratings", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("example_id", String(200), nullable=False),
    Column("score", Float, nullable=False),
    Column("comment", Text, nullable=True),
    Column("author", String(200), nullable=True),
    Column("created_at", DateTime, nullable=False),
    Index("ix_ratings_run_example", "run_id", "example_id"),
)

jobs = Table(
    "jobs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),  # eval | optimize
    Column("status", String(32), nullable=False),  # queued | running | done | failed | cancelled
    Column("config", Text, nullable=False),
    Column("run_id", Integer, nullable=True),
    Column("progress", Float, nullable=False, default=0.0),
    Column("error", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

# --- leases (migration 0006) ------------------------------------------------------------------
locks = Table(
    "locks", metadata,
    # e.g. "eval:<run fingerprint>": taken by inserting the row, so only one process holds it
    Column("name", String(200), primary_key=True),
    Column("owner_pid", Integer, nullable=False),
    Column("owner_host", String(255), nullable=False),
    Column("owner_started", String(200), nullable=False),
    Column("run_id", Integer, nullable=True),  # the run the holder works on, once it has one
    Column("acquired_at", DateTime, nullable=False),
    Column("heartbeat_at", DateTime, nullable=False),
)
