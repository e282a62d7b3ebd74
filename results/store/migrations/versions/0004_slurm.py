"""The Slurm job array task that trains each run (`sweep submit`).

Adds a nullable `slurm_job` column to `runs`: `ARRAY_TASK` (e.g. `4242_3`) of the
attempt's worker, NULL for a worker outside Slurm and for every existing row. Frozen:
it names its column itself and imports nothing of the models.

Revision ID: 0004_slurm
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_slurm"
down_revision = "0003_bn_measurements"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("slurm_job", sa.String(64), nullable=True))


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35+ has it), not batch mode: batch mode copies
    # `runs`, and dropping the old copy would cascade to every row of `epochs`.
    op.drop_column("runs", "slurm_job")
