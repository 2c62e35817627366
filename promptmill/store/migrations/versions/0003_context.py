"""Per-example context: the intent segment and what contextualization added or dropped.

Revision ID: 0003_context
Revises: 0002_optimizations
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_context"
down_revision = "0002_optimizations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("results") as batch:
        batch.add_column(sa.Column("segment", sa.String(200), nullable=True))
        batch.add_column(sa.Column("raw_output", sa.Text, nullable=True))
        batch.add_column(sa.Column("context_notes", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("results") as batch:
        batch.drop_column("context_notes")
        batch.drop_column("raw_output")
        batch.drop_column("segment")
