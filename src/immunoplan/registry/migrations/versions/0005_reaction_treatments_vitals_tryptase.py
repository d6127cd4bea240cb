"""Desensitization reactions: structured treatments, vital signs, tryptase, every scale graded, phenotype;
a session's baseline tryptase and vital signs.

- reactions: ``vital_signs`` (JSON: systolic/diastolic BP, heart rate, SpO2, temperature as exact text),
  ``treatments_given`` (JSON list: drug, dose, unit, route, given_at), ``tryptase_ng_ml`` with
  ``tryptase_at``, ``grades`` (JSON: the reaction graded on each scale; the recorded one stays in
  ``grade``/``scale``), ``phenotype`` (type I, cytokine release, mixed, undetermined).
- desensitization_sessions: ``baseline_tryptase_ng_ml`` with ``baseline_tryptase_at``,
  ``baseline_vital_signs`` (JSON).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import immunoplan.registry.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("vital_signs", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("treatments_given", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("tryptase_ng_ml", immunoplan.registry.types.ExactDecimal(), nullable=True)
        )
        batch_op.add_column(sa.Column("tryptase_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("grades", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("phenotype", sa.String(length=32), nullable=True))
    with op.batch_alter_table("desensitization_sessions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("baseline_tryptase_ng_ml", immunoplan.registry.types.ExactDecimal(), nullable=True)
        )
        batch_op.add_column(sa.Column("baseline_tryptase_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("baseline_vital_signs", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("desensitization_sessions", schema=None) as batch_op:
        batch_op.drop_column("baseline_vital_signs")
        batch_op.drop_column("baseline_tryptase_at")
        batch_op.drop_column("baseline_tryptase_ng_ml")
    with op.batch_alter_table("reactions", schema=None) as batch_op:
        batch_op.drop_column("phenotype")
        batch_op.drop_column("grades")
        batch_op.drop_column("tryptase_at")
        batch_op.drop_column("tryptase_ng_ml")
        batch_op.drop_column("treatments_given")
        batch_op.drop_column("vital_signs")
