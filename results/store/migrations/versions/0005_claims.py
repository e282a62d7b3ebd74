"""Claims decided by the database's clock, and fenced writes: each epoch row keeps the
attempt (the claim's token) that wrote it.

From this revision on, heartbeats, claims, takeovers and releases are timed by the
database server, and every write for a run is conditional on its claim; a worker of an
older keras-sweep, which timed them by its own clock and wrote unfenced, must not
share the database: the new revision makes it refuse the tables.

Adds the nullable column `epochs.attempt`; existing rows keep NULL (written before
claims were fenced). Frozen: it names its column itself.

Revision ID: 0005_claims
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_claims"
down_revision = "0004_slurm"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("epochs", sa.Column("attempt", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("epochs") as batch:
        batch.drop_column("attempt")
