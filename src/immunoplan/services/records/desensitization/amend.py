"""Corrections of a desensitization step in the caller's transaction (called by
`services.records.corrections`): an amendment within the field limits, and the session's cumulative doses
recomputed after a void or an amendment."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from immunoplan import clock
from immunoplan.reference.limits import limit
from immunoplan.registry import models as m
from immunoplan.services.records.amending import (
    apply_changes,
    refuse_nothing_changed,
    refuse_unknown_fields,
    stamp_amended,
)
from immunoplan.services.records.common import live_rows

#: the fields an amendment may change
STEP_AMENDABLE = ("dose_mg", "rate_ml_h", "minutes", "started_at")


def amend_step(
    s: Session, actor: str, row: m.DesensitizationStep, changes: Mapping[str, Any], reason: str, at: datetime
) -> dict[str, Any]:
    """Amend a live step (any of `STEP_AMENDABLE`), each value within its field limit."""
    refuse_unknown_fields(changes, STEP_AMENDABLE, "a step")
    values: dict[str, Any] = {}
    if "dose_mg" in changes:
        values["dose_mg"] = limit("desensitization_dose_mg").check(changes["dose_mg"], "dose_mg")
    if "rate_ml_h" in changes:
        values["rate_ml_h"] = limit("rate_ml_h").check_optional(changes["rate_ml_h"])
    if "minutes" in changes:
        values["minutes"] = limit("step_minutes").check_optional(changes["minutes"], "minutes")
    if "started_at" in changes:
        text = changes["started_at"]
        values["started_at"] = None if text in (None, "") else clock.parse_local("started_at", text)
    changed = apply_changes(row, values)
    refuse_nothing_changed(changed)
    stamp_amended(row, actor, reason, at)
    return {"changed": changed}


def recompute_cumulative_doses(s: Session, session_id: int) -> None:
    """A desensitization session's cumulative doses over its live steps given, in step order (exact)."""
    s.flush()
    total = Decimal(0)
    Step = m.DesensitizationStep
    for st in live_rows(s, Step, Step.session_id == session_id, order_by=(Step.step_no,)):
        if st.status == "given":
            total += Decimal(st.dose_mg)
        if st.cumulative_dose_mg is None or Decimal(st.cumulative_dose_mg) != total:
            st.cumulative_dose_mg = total
