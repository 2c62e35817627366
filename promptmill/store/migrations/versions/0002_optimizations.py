"""Optimizations: candidate prompts and the trajectory of each search, linked to runs.

Revision ID: 0002_optimizations
Revises: 0001_initial
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_optimizations"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("parent_run_id", sa.Integer, nullable=True))
    op.create_table(
        "candidates",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("parents", sa.Text, nullable=False),
        sa.Column("origin", sa.String(200), nullable=False),
        sa.Column("val_mean", sa.Float, nullable=True),
        sa.Column("val_n", sa.Integer, nullable=False),
        sa.Column("accepted", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "trajectory",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("step", sa.Integer, primary_key=True),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("candidate_idx", sa.Integer, nullable=True),
        sa.Column("incumbent_idx", sa.Integer, nullable=True),
        sa.Column("incumbent_score", sa.Float, nullable=True),
        sa.Column("calls", sa.Integer, nullable=False),
        sa.Column("tokens", sa.Integer, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("trajectory")
    op.drop_table("candidates")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("parent_run_id")
