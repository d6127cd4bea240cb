"""What a session's printed sheets show (`sheet_data`): the stored plan with the patient header (name, MRN,
birth date, weight, drug-allergy alert, date, cycle), the premedication of the stored request and the
session's reactions (step, time, grade, findings, treatment). Nothing is written."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from immunoplan import clock
from immunoplan.clinical.desensitization.premedication import premedication
from immunoplan.errors import InvalidInput
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services.records.desensitization.course import alert_text
from immunoplan.services.records.desensitization.views import session_view
from immunoplan.services.records.patients import latest_weight_kg


def _allergy_alert(p: m.Patient, course: m.Course | None, drug: str) -> str:
    """The index drug and reaction when the course or the patient's diagnoses hold them, else the drug being
    desensitized (``drug allergy: <drug>``)."""
    plan = (course.plan or {}) if course is not None else {}
    index = plan.get("index_reaction") if isinstance(plan, Mapping) else None
    if isinstance(index, Mapping) and index:
        return alert_text(index, drug)  # `course.record_index_reaction` stores it
    labels = [
        d.label or d.allergen or ""
        for d in p.diagnoses
        if d.code == "drug_allergy" and (d.label or d.allergen)
    ]
    if labels:
        return "drug allergy: " + "; ".join(dict.fromkeys(labels))
    return f"drug allergy: {drug}"


def _treatment_text(t: Any) -> str:
    if t is None:
        return ""
    if isinstance(t, str):
        return t
    if isinstance(t, Mapping):  # "salbutamol 8 puffs inhaled at 12:20" (the dose with its unit, clinic time)
        at = t.get("given_at")
        when = clock.local(at).strftime("%H:%M") if isinstance(at, datetime) else at
        return " ".join(str(t[k]) for k in ("drug", "dose", "unit", "route") if t.get(k)) + (
            f" at {when}" if when else ""
        )
    if isinstance(t, (list, tuple)):
        return "; ".join(_treatment_text(x) for x in t)
    return str(t)


def sheet_data(reg: Registry, session_id: int) -> dict[str, Any]:
    """The session's stored plan (``result``) with ``sheet`` (the header), ``premedication`` and
    ``session_reactions``, ready for `immunoplan.sheets.render_html`. `InvalidInput` naming ``session_id``
    for an unknown session or one without a stored plan."""
    v = session_view(reg, session_id)
    data = dict(v["result"] or {})
    if not data.get("steps"):
        raise InvalidInput("session_id", f"session {session_id} has no stored plan to print")
    with reg.session() as s:
        sess = s.get(m.DesensitizationSession, session_id)
        assert sess is not None  # session_view found it
        p = s.get(m.Patient, sess.patient_id)
        course = s.get(m.Course, sess.course_id) if sess.course_id else None
        weight = latest_weight_kg(s, p.id) if p else None
        header = {
            "patient_name": (p.display_name if p else None) or None,
            "pseudo_id": p.pseudo_id if p else None,
            "mrn": p.mrn if p else None,
            "birth_date": p.birth_date.isoformat() if p and p.birth_date else None,
            "weight_kg": weight if weight is not None else (v["request"] or {}).get("weight_kg"),
            "height_cm": p.height_cm if p else None,
            "allergy_alert": _allergy_alert(p, course, sess.drug) if p else f"drug allergy: {sess.drug}",
            "date": sess.session_on.isoformat(),
            "cycle": v["cycle"],
            "session_id": sess.id,
            "course_id": sess.course_id,
        }
    request = v["request"] or {}
    if not data.get("premedication") and request.get("premedication_regimen"):
        data["premedication"] = premedication(
            request["premedication_regimen"], tuple(request.get("initial_symptoms") or ())
        ).to_dict()
    data["sheet"] = header
    data["dose_confirmation"] = request.get("dose_confirmation") or data.get("dose_confirmation")
    data["session_reactions"] = [
        {
            "step": r["step"],
            "replan_no": r["replan_no"],
            "time": clock.format_local(r["onset_at"]) if r.get("onset_at") else "",
            "grade": r["grade"],
            "scale": r["scale"],
            "findings": [str(f).replace("_", " ") for f in r.get("findings") or ()],
            "treatment": _treatment_text(r.get("treatments") or r.get("treatment")),
        }
        for r in v["reactions"]
    ]
    return data
