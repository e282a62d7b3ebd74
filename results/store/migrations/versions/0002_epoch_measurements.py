"""Epoch columns for the post's questions: EMA validation, the test split, the conv
kernels' norms, effective learning rate and rotation.

Adds nullable columns to `epochs`; every existing row stays, with NULL in them (not
measured). Frozen: it names its columns itself and imports nothing of the models, so
that later changes to the models cannot change what this revision does.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = (
    "val_loss_ema",
    "val_acc_ema",
    "test_loss",
    "test_acc",
    "weight_norm",
    "weight_norm_stage1",
    "weight_norm_stage2",
    "weight_norm_stage3",
    "effective_lr",
    "angular_update",
)


def upgrade() -> None:
    # ADD COLUMN of a nullable column: SQLite and PostgreSQL keep every row in place.
    for name in COLUMNS:
        op.add_column("epochs", sa.Column(name, sa.Double(), nullable=True))


def downgrade() -> None:
    # SQLite drops a column by copying the table: batch mode does that.
    with op.batch_alter_table("epochs") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
