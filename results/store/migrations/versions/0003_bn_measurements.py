"""Epoch columns of issue 19: BatchNorm-true validation, the cross-entropy without the
penalty, the head's and γ's norms, the angle per step and its equilibrium, the EMA
horizon.

Adds nullable columns to `epochs`, after revision 0002's; every existing row stays,
with NULL in them (not measured). Frozen: it names its columns itself and imports
nothing of the models, so that later changes to the models cannot change what this
revision does.

Revision ID: 0003_bn_measurements
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_bn_measurements"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = (
    "xent",
    "val_xent",
    "val_loss_bn",
    "val_acc_bn",
    "val_loss_ema_bn",
    "val_acc_ema_bn",
    "train_loss_eval",
    "weight_norm_invariant",
    "weight_norm_other",
    "dense_kernel_norm",
    "bn_gamma_norm",
    "angle_per_step",
    "angle_equilibrium",
    "weight_norm_equilibrium",
    "ema_horizon_epochs",
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
