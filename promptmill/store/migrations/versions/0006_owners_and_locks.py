"""Run owners and heartbeats (a dead owner's run shows as interrupted), and leases.

Revision ID: 0006_owners_and_locks
Revises: 0005_runs_task_index
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_owners_and_locks"
down_revision = "0005_runs_task_index"
branch_labels = None
depends_on = None

OWNER_COLUMNS = (("owner_pid", sa.Integer), ("owner_host", sa.String(255)),
                 ("owner_started", sa.String(200)), ("heartbeat_at", sa.DateTime))


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        for name, kind in OWNER_COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_table(
        "locks",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("owner_pid", sa.Integer, nullable=False),
        sa.Column("owner_host", sa.String(255), nullable=False),
        sa.Column("owner_started", sa.String(200), nullable=False),
        sa.Column("run_id", sa.Integer, nullable=True),
        sa.Column("acquired_at", sa.DateTime, nullable=False),
        sa.Column("heartbeat_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("locks")
    op.drop_index("ix_runs_status", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        for name, _ in reversed(OWNER_COLUMNS):
            batch.drop_column(name)
