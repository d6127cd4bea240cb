"""What is in a registry: row counts per table and patients per cohort and study group."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from immunoplan.registry import models as m
from immunoplan.registry.db import Registry


def registry_summary(reg: Registry) -> dict[str, Any]:
    with reg.session() as s:
        tables = {
            name: s.scalar(select(func.count()).select_from(table)) or 0
            for name, table in m.Base.metadata.tables.items()
        }
        groups = s.execute(
            select(m.Patient.cohort, m.Patient.study_group, func.count())
            .group_by(m.Patient.cohort, m.Patient.study_group)
            .order_by(m.Patient.cohort, m.Patient.study_group)
        ).all()
    return {
        "tables": tables,
        "groups": [{"cohort": c, "study_group": g, "patients": n} for c, g, n in groups],
    }
