"""Labels stored whole: `runs.label` widened from 64 to 1000 characters.

A grid over nine settings makes labels of about 90 characters (`λ=0.10 α=8.e-4 m=0.99
…`), which PostgreSQL refused in a VARCHAR(64) (SQLite never enforced the length).
Widening keeps every row. Frozen: it names its column and widths itself and imports
nothing of the models, so that later changes to the models cannot change it.

Revision ID: 0006_wide_labels
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_wide_labels"
down_revision = "0005_claims"
branch_labels = None
depends_on = None

OLD_WIDTH = 64
NEW_WIDTH = 1000


def _sqlite() -> bool:
    # SQLite never enforces a VARCHAR's length, so it has nothing to widen; and altering
    # a column there copies the table and drops the old one, which with foreign keys on
    # (every connection of the store) would delete every run's epochs by cascade.
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    if _sqlite():
        return
    with op.batch_alter_table("runs") as batch:
        batch.alter_column(
            "label", existing_type=sa.String(OLD_WIDTH), type_=sa.String(NEW_WIDTH), existing_nullable=False
        )


def downgrade() -> None:
    # Back to 64 only if every label fits: PostgreSQL refuses the narrowing otherwise,
    # and a truncated label would no longer name its run.
    if _sqlite():
        return
    with op.batch_alter_table("runs") as batch:
        batch.alter_column(
            "label", existing_type=sa.String(NEW_WIDTH), type_=sa.String(OLD_WIDTH), existing_nullable=False
        )
