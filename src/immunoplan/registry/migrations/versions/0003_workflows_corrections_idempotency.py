"""Workflows: courses store what they are, corrections instead of deletions, idempotency keys.

- patients: ``mrn`` (medical record number, unique where given; a direct identifier).
- courses: ``product_id``, ``regimen_id``, ``start_time``, ``maintenance_interval_weeks``,
  ``omalizumab_lead_weeks`` as columns. Existing rows are converted: the web app stored
  ``"<product id>|<regimen id>"`` in ``regimen`` (split), imported/demo courses named the product and the
  regimen in words (Alutard + cluster/weekly/conventional, tyrosine + rush: mapped to the catalogue ids);
  schedule parameters are read from the stored planning request.
- injections, visits, measurements, questionnaires, reactions, omalizumab_administrations,
  desensitization_steps: ``voided_at/by``, ``void_reason``, ``amended_at/by``, ``amend_reason``; their natural
  unique keys hold only among entries that are not voided (partial unique indexes), so a voided entry can be
  entered again correctly.
- desensitization_sessions: ``status`` (in-progress, completed, stopped), ``ended_at``, ``outcome`` and
  ``dose_given_mg``; desensitization_steps: ``replan_no`` (0 = the original protocol, n = the n-th re-planned
  continuation after a breakthrough reaction; part of the step's natural key) and ``early_reason``.
- injections: ``override_reason`` (why an injection was given before the earliest time of its schedule).
- idempotency_keys: one row per write done with a client key (re-posts return the stored result).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

import immunoplan.registry.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CORRECTABLE = (
    "injections",
    "visits",
    "measurements",
    "questionnaires",
    "reactions",
    "omalizumab_administrations",
    "desensitization_steps",
)
#: unique constraint name -> (table, columns): re-created as partial unique indexes over live rows
NATURAL_KEYS = {
    "uq_visits_patient_code_date": ("visits", ("patient_id", "code", "visit_on")),
    "uq_measurements_natural": ("measurements", ("patient_id", "kind", "allergen", "measured_on")),
    "uq_questionnaires_natural": ("questionnaires", ("patient_id", "instrument", "completed_on")),
    "uq_injections_course_given": ("injections", ("course_id", "given_at")),
    "uq_omalizumab_patient_given": ("omalizumab_administrations", ("patient_id", "given_at")),
    "uq_desensitization_steps_step": ("desensitization_steps", ("session_id", "step_no")),
}
LIVE = sa.text("voided_at IS NULL")
MRN = sa.text("mrn IS NOT NULL")  # patients.mrn: unique among the patients that have one
#: natural keys whose live-row index has more columns than the unique constraint it replaces
LIVE_KEY_COLUMNS = {"uq_desensitization_steps_step": ("session_id", "replan_no", "step_no")}


def _correction_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("voided_by", sa.String(length=64), nullable=True),
        sa.Column("void_reason", sa.Text(), nullable=True),
        sa.Column("amended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("amended_by", sa.String(length=64), nullable=True),
        sa.Column("amend_reason", sa.Text(), nullable=True),
    ]


def _ids_from_words(product: str, regimen: str) -> tuple[str | None, str | None]:
    """Catalogue ids for a course stored before this revision (the web app's former inference)."""
    product, regimen = product.lower(), regimen.lower()
    if "|" in regimen:
        pid, rid = regimen.split("|", 1)
        return pid, rid
    if "alutard" in product:
        for word, rid in (
            ("cluster", "cluster"),
            ("weekly", "conventional"),
            ("conventional", "conventional"),
        ):
            if word in regimen:
                return "alutard-sq-hdm", rid
    if "tyrosine" in product and "rush" in regimen:
        return "hdm-tyrosine-ultrarush", "rush"
    return None, None


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value in (None, "") else int(float(value))
    except (TypeError, ValueError):
        return None


def _convert_courses() -> None:
    conn = op.get_bind()
    courses = sa.table(
        "courses",
        sa.column("id", sa.Integer),
        sa.column("product", sa.String),
        sa.column("regimen", sa.String),
        sa.column("plan", sa.JSON),
        sa.column("product_id", sa.String),
        sa.column("regimen_id", sa.String),
        sa.column("start_time", sa.String),
        sa.column("maintenance_interval_weeks", sa.Integer),
        sa.column("omalizumab_lead_weeks", sa.Integer),
    )
    rows = conn.execute(sa.select(courses.c.id, courses.c.product, courses.c.regimen, courses.c.plan)).all()
    for cid, product, regimen, plan in rows:
        if isinstance(plan, str):
            try:
                plan = json.loads(plan)
            except ValueError:
                plan = None
        request = (plan or {}).get("request") if isinstance(plan, dict) else None
        request = request if isinstance(request, dict) else {}
        pid, rid = _ids_from_words(product or "", regimen or "")
        pid = request.get("product") or pid
        rid = request.get("regimen") or rid
        if pid is None and rid is None and not request:
            continue
        new_regimen = rid if regimen and "|" in regimen else regimen
        start_time = request.get("start_time")
        conn.execute(
            courses.update()
            .where(courses.c.id == cid)
            .values(
                product_id=pid if isinstance(pid, str) else None,
                regimen_id=rid if isinstance(rid, str) else None,
                regimen=new_regimen,
                start_time=start_time if isinstance(start_time, str) and len(start_time) == 5 else None,
                maintenance_interval_weeks=_int_or_none(request.get("maintenance_interval_weeks")),
                omalizumab_lead_weeks=_int_or_none(request.get("omalizumab_lead_weeks")),
            )
        )


def upgrade() -> None:
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("product_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("regimen_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("start_time", sa.String(length=5), nullable=True))
        batch_op.add_column(sa.Column("maintenance_interval_weeks", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("omalizumab_lead_weeks", sa.Integer(), nullable=True))
    _convert_courses()
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mrn", sa.String(length=64), nullable=True))
    op.create_index(
        "uq_patients_mrn", "patients", ["mrn"], unique=True, sqlite_where=MRN, postgresql_where=MRN
    )

    with op.batch_alter_table("desensitization_sessions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), nullable=False, server_default="in-progress")
        )
        batch_op.add_column(sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("outcome", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("dose_given_mg", immunoplan.registry.types.ExactDecimal(), nullable=True)
        )
    with op.batch_alter_table("desensitization_steps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replan_no", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("early_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("injections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("override_reason", sa.Text(), nullable=True))
    sessions = sa.table(
        "desensitization_sessions", sa.column("status", sa.String), sa.column("completed", sa.Boolean)
    )
    op.execute(sessions.update().where(sessions.c.completed.is_(True)).values(status="completed"))
    op.execute(sessions.update().where(sessions.c.completed.is_(False)).values(status="stopped"))

    for table in CORRECTABLE:
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in _correction_columns():
                batch_op.add_column(column)
    for name, (table, columns) in NATURAL_KEYS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(name, type_="unique")
        live_columns = LIVE_KEY_COLUMNS.get(name, columns)
        op.create_index(
            name, table, list(live_columns), unique=True, sqlite_where=LIVE, postgresql_where=LIVE
        )

    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("use_case", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_idempotency_keys")),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    for name, (table, columns) in NATURAL_KEYS.items():
        op.drop_index(name, table_name=table)
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_unique_constraint(name, list(columns))
    for table in CORRECTABLE:
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in _correction_columns():
                batch_op.drop_column(column.name)
    with op.batch_alter_table("injections", schema=None) as batch_op:
        batch_op.drop_column("override_reason")
    with op.batch_alter_table("desensitization_steps", schema=None) as batch_op:
        batch_op.drop_column("early_reason")
        batch_op.drop_column("replan_no")
    with op.batch_alter_table("desensitization_sessions", schema=None) as batch_op:
        batch_op.drop_column("dose_given_mg")
        batch_op.drop_column("outcome")
        batch_op.drop_column("ended_at")
        batch_op.drop_column("status")
    op.drop_index("uq_patients_mrn", table_name="patients")
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_column("mrn")
    with op.batch_alter_table("courses", schema=None) as batch_op:
        for name in (
            "omalizumab_lead_weeks",
            "maintenance_interval_weeks",
            "start_time",
            "regimen_id",
            "product_id",
        ):
            batch_op.drop_column(name)
