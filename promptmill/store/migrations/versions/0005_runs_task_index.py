"""An index for listing a task's runs newest first (the workbench's filtered runs list).

Revision ID: 0005_runs_task_index
Revises: 0004_workbench
"""

from alembic import op

revision = "0005_runs_task_index"
down_revision = "0004_workbench"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_task_id", "runs", ["task", "id"])


def downgrade() -> None:
    op.drop_index("ix_runs_task_id", table_name="runs")
