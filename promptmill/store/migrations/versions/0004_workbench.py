"""Production traces (serve), tuned adapters (tune), human ratings and background jobs (web).

Revision ID: 0004_workbench
Revises: 0003_context
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_workbench"
down_revision = "0003_context"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "traces",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("prompt_name", sa.String(200), nullable=False),
        sa.Column("prompt_id", sa.Integer, sa.ForeignKey("prompts.id"), nullable=True),
        sa.Column("model", sa.String(500), nullable=False),
        sa.Column("inputs", sa.Text, nullable=False),
        sa.Column("messages", sa.Text, nullable=True),
        sa.Column("output", sa.Text, nullable=True),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("tokens_in", sa.Integer, nullable=False),
        sa.Column("tokens_out", sa.Integer, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_traces_prompt", "traces", ["prompt_name", "id"])
    op.create_table(
        "adapters",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("base_model", sa.String(500), nullable=False),
        sa.Column("task", sa.String(200), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("metrics", sa.Text, nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime, nullable=True),
    )
    op.create_table(
        "ratings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("example_id", sa.String(200), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("author", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_ratings_run_example", "ratings", ["run_id", "example_id"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("run_id", sa.Integer, nullable=True),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("jobs")
    op.drop_index("ix_ratings_run_example", table_name="ratings")
    op.drop_table("ratings")
    op.drop_table("adapters")
    op.drop_index("ix_traces_prompt", table_name="traces")
    op.drop_table("traces")
