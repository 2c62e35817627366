"""Suite runs: one row per ``promptmill test`` invocation, its matrix kept as JSON.

Revision ID: 0007_suite_runs
Revises: 0006_owners_and_locks
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_suite_runs"
down_revision = "0006_owners_and_locks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "suite_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("result", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime, nullable=True),
    )
    op.create_index("ix_suite_runs_name_id", "suite_runs", ["name", "id"])


def downgrade() -> None:
    op.drop_index("ix_suite_runs_name_id", table_name="suite_runs")
    op.drop_table("suite_runs")
