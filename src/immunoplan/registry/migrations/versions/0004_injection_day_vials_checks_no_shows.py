"""Injection day: vials with lot and expiry, the pre-injection check, no-shows.

- vials: a patient's vial of a product (strength = the product's vial number, concentration, allergens,
  colour, lot, expiry, opened on, volume), correctable like the other entries.
- injections: ``vial_id`` (the vial drawn from), ``new_vial`` (the new-vial rule applied because the vial or
  lot changed), ``checks`` (the pre-injection check's answers, its outcome and the rules overridden with
  ``override_reason``).
- omalizumab_administrations: ``expiry_on`` of the syringe lot and ``observed_minutes``.
- no_shows: a due visit the patient did not come to.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

import immunoplan.registry.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _correction_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("voided_by", sa.String(length=64), nullable=True),
        sa.Column("void_reason", sa.Text(), nullable=True),
        sa.Column("amended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("amended_by", sa.String(length=64), nullable=True),
        sa.Column("amend_reason", sa.Text(), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "vials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.String(length=64), nullable=False),
        sa.Column("strength", sa.String(length=16), nullable=True),
        sa.Column("concentration", sa.String(length=64), nullable=True),
        sa.Column("allergens", sa.String(length=200), nullable=True),
        sa.Column("colour", sa.String(length=32), nullable=True),
        sa.Column("lot", sa.String(length=64), nullable=False),
        sa.Column("expiry_on", sa.Date(), nullable=False),
        sa.Column("opened_on", sa.Date(), nullable=True),
        sa.Column("volume_ml", immunoplan.registry.types.ExactDecimal(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        *_correction_columns(),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_vials_patient_id_patients"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vials")),
    )
    op.create_index(op.f("ix_vials_patient_id"), "vials", ["patient_id"], unique=False)
    op.create_table(
        "no_shows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        *_correction_columns(),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_no_shows_patient_id_patients"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name=op.f("fk_no_shows_course_id_courses"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_no_shows")),
    )
    op.create_index(op.f("ix_no_shows_patient_id"), "no_shows", ["patient_id"], unique=False)
    op.create_index(op.f("ix_no_shows_course_id"), "no_shows", ["course_id"], unique=False)
    with op.batch_alter_table("injections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("vial_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("new_vial", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("checks", sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f("ix_injections_vial_id"), ["vial_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_injections_vial_id_vials"), "vials", ["vial_id"], ["id"], ondelete="SET NULL"
        )
    with op.batch_alter_table("omalizumab_administrations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expiry_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("observed_minutes", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("omalizumab_administrations", schema=None) as batch_op:
        batch_op.drop_column("observed_minutes")
        batch_op.drop_column("expiry_on")
    with op.batch_alter_table("injections", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_injections_vial_id_vials"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_injections_vial_id"))
        batch_op.drop_column("checks")
        batch_op.drop_column("new_vial")
        batch_op.drop_column("vial_id")
    op.drop_index(op.f("ix_no_shows_course_id"), table_name="no_shows")
    op.drop_index(op.f("ix_no_shows_patient_id"), table_name="no_shows")
    op.drop_table("no_shows")
    op.drop_index(op.f("ix_vials_patient_id"), table_name="vials")
    op.drop_table("vials")
