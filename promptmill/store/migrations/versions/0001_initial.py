"""Initial schema: prompts, tags, runs, results and the call cache.

Revision ID: 0001_initial
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prompts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("prompts.id"), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_prompts_name_version"),
    )
    op.create_table(
        "prompt_tags",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("tag", sa.String(100), primary_key=True),
        sa.Column("prompt_id", sa.Integer, sa.ForeignKey("prompts.id"), nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("task", sa.String(200), nullable=False),
        sa.Column("split", sa.String(32), nullable=False),
        sa.Column("model", sa.String(500), nullable=False),
        sa.Column("model_identity", sa.String(500), nullable=False),
        sa.Column("metric", sa.String(500), nullable=False),
        sa.Column("prompt_id", sa.Integer, sa.ForeignKey("prompts.id"), nullable=True),
        sa.Column("prompt_hash", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("n_examples", sa.Integer, nullable=False),
        sa.Column("n_done", sa.Integer, nullable=False),
        sa.Column("n_errors", sa.Integer, nullable=False),
        sa.Column("score_sum", sa.Float, nullable=False),
        sa.Column("calls", sa.Integer, nullable=False),
        sa.Column("cache_hits", sa.Integer, nullable=False),
        sa.Column("tokens_in", sa.Integer, nullable=False),
        sa.Column("tokens_out", sa.Integer, nullable=False),
        sa.Column("model_seconds", sa.Float, nullable=False),
        sa.Column("wall_seconds", sa.Float, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime, nullable=True),
    )
    op.create_index("ix_runs_fingerprint", "runs", ["fingerprint"])
    op.create_table(
        "results",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("example_id", sa.String(200), primary_key=True),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("inputs", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=True),
        sa.Column("answers", sa.Text, nullable=True),
        sa.Column("output", sa.Text, nullable=True),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("feedback", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("tokens_in", sa.Integer, nullable=False),
        sa.Column("tokens_out", sa.Integer, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("cached", sa.Boolean, nullable=False),
        sa.Column("call_key", sa.String(64), nullable=True),
    )
    op.create_index("ix_results_run_idx", "results", ["run_id", "idx"])
    op.create_table(
        "calls",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("model_identity", sa.String(500), nullable=False),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("sample", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("tokens_in", sa.Integer, nullable=False),
        sa.Column("tokens_out", sa.Integer, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("finish_reason", sa.String(32), nullable=True),
        sa.Column("logprobs", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    for table in ("calls", "results", "runs", "prompt_tags", "prompts"):
        op.drop_table(table)
