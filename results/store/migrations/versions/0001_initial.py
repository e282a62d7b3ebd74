"""The first results schema: `runs` and `epochs`.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Frozen: the states as they were when this revision was written. A state added later
# gets a migration of its own that changes the check constraint.
RUN_STATES = ("waiting", "running", "complete", "failed", "diverged", "pruned", "stopped")

# Frozen: the timestamp columns' DDL. The models' `UTCDateTime` is a TypeDecorator over
# this type (it converts values in Python only), so the columns are the same; the
# migration does not import live code that a later change could alter.
UTCDateTime = sa.DateTime(timezone=True)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("study", sa.String(512), nullable=False),
        sa.Column("trial_number", sa.Integer(), nullable=True),
        sa.Column("run_key", sa.String(64), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("worker", sa.String(255), nullable=True),
        sa.Column("heartbeat_at", UTCDateTime, nullable=True),
        sa.Column("device", sa.String(255), nullable=True),
        sa.Column("versions", sa.JSON(), nullable=True),
        sa.Column("registered", UTCDateTime, nullable=False),
        sa.Column("started", UTCDateTime, nullable=True),
        sa.Column("finished", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.UniqueConstraint("study", "run_key", name="uq_runs_study_run_key"),
        sa.CheckConstraint(
            "state IN (" + ", ".join(f"'{state}'" for state in RUN_STATES) + ")",
            name="ck_runs_state",
        ),
    )
    op.create_index("ix_runs_study_state", "runs", ["study", "state"])
    op.create_table(
        "epochs",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        *(
            sa.Column(name, sa.Double(), nullable=True)
            for name in ("loss", "acc", "val_loss", "val_acc", "lr", "seconds", "images_per_second")
        ),
        sa.Column("trainings", sa.Integer(), nullable=False, server_default="1"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_epochs_run_id_runs", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "epoch", name="pk_epochs"),
    )


def downgrade() -> None:
    op.drop_table("epochs")
    op.drop_index("ix_runs_study_state", table_name="runs")
    op.drop_table("runs")
