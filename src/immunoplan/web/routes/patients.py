"""Patients: list with search and due/late flags, new patient, patient page (timeline and trend charts).

Routes parse (`immunoplan.services.records.patients.PatientIn`, the model the API and the CLI use), call one
service (`add_patient`, `show_patient`) and render. A saved form answers 303 to the patient page, so a reload
never re-posts; the hidden ``idempotency_key`` makes a double submit write one patient; an MRN already
registered is shown on the form with HTTP 409.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel

from immunoplan.clinical import vocabularies as vocab
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.services.inputs import validate_form
from immunoplan.services.records import patients as svc
from immunoplan.web import forms, queries
from immunoplan.web.auth import permit
from immunoplan.web.deps import actor_of, conflict_message, patient_or_404, registry_of, today
from immunoplan.web.rendering import is_htmx, render

router = APIRouter()
FORM_FIELDS = tuple(svc.PatientIn.model_fields)


@router.get("/patients", dependencies=[permit("patient.read")], include_in_schema=False)
async def patient_list(
    request: Request,
    q: Annotated[str, Query(max_length=100)] = "",
    flagged: bool = False,
) -> Response:
    rows = queries.patient_list(registry_of(request), q, today(), only_flagged=flagged)
    context = {"title": "Patients", "rows": rows, "q": q, "flagged": flagged, "today": today()}
    return render(request, "patients.html", context, block="rows" if is_htmx(request) else None)


def _new_form(request: Request, f: forms.FormState, status_code: int = 200) -> Response:
    context = {"title": "New patient", "form": f, "sexes": vocab.SEXES}
    return render(request, "patient_new.html", context, status_code=status_code)


@router.get("/patients/new", dependencies=[permit("patient.write")], include_in_schema=False)
async def patient_new(request: Request) -> Response:
    return _new_form(request, forms.FormState({}))


@router.post("/patients", dependencies=[permit("patient.write")], include_in_schema=False)
async def patient_create(request: Request) -> Response:
    f = await forms.read_form(request)
    raw = {k: v for k, v in f.raw.items() if k in FORM_FIELDS}
    data, errors = validate_form(svc.PatientIn, raw)
    f.errors.update(errors)
    if data is None:
        return _new_form(request, f, 422)
    try:
        row = svc.add_patient(
            registry_of(request), actor_of(request), data, idempotency_key=forms.idempotency_key(request, f)
        )
    except Conflict as exc:
        f.errors[exc.field if exc.field in FORM_FIELDS else "form"] = conflict_message(exc)
        return _new_form(request, f, 409)
    except InvalidInput as exc:
        f.fail(exc, known=FORM_FIELDS)
        return _new_form(request, f, 422)
    return RedirectResponse(f"/patients/{row['id']}", status_code=303)


@router.get("/patients/{patient_id}", dependencies=[permit("patient.read")], include_in_schema=False)
async def patient_page(request: Request, patient_id: int) -> Response:
    patient = patient_or_404(request, patient_id)
    courses = [{**c, "flag": queries.due_flag(c["next_due_on"], today())} for c in patient.pop("courses")]
    timeline = queries.timeline(registry_of(request), patient_id)
    trends = queries.trends(registry_of(request), patient_id)
    context: dict[str, Any] = {
        "title": f"Patient {patient['pseudo_id']}",
        "patient": patient,
        "courses": courses,
        "timeline": timeline,
        "trends": trends,
        "trends_json": {k: json.dumps(to_jsonable(v)) for k, v in trends.items()},
    }
    return render(request, "patient.html", context)


# ------------------------------------------------------------------------------------------------- JSON API


class PatientOut(BaseModel):
    id: int
    pseudo_id: str
    mrn: str | None
    display_name: str | None
    birth_date: date | None
    age_years: int | None
    sex: str
    weight_kg: float | None = None


class PatientListItem(BaseModel):
    id: int
    pseudo_id: str
    display_name: str | None
    age_years: int | None
    next_due_on: date | None
    flag: Literal["due", "late"] | None
    active_courses: list[str]


@router.get("/api/patients", dependencies=[permit("patient.read")], tags=["patients"])
def api_patient_list(
    request: Request, q: Annotated[str, Query(max_length=100)] = "", flagged: bool = False
) -> list[PatientListItem]:
    """Patients matching ``q`` with their next due dose and a due/late flag (earliest due first)."""
    rows = queries.patient_list(registry_of(request), q, today(), only_flagged=flagged)
    return [PatientListItem(**{k: getattr(r, k) for k in PatientListItem.model_fields}) for r in rows]


@router.post("/api/patients", dependencies=[permit("patient.write")], tags=["patients"], status_code=201)
def api_patient_create(request: Request, body: svc.PatientIn) -> PatientOut:
    """Add a patient (audited under the logged-in user). ``Idempotency-Key`` header: a repeat writes nothing
    and answers the same patient; an MRN or pseudonym already registered: 409 naming that patient."""
    row = svc.add_patient(
        registry_of(request), actor_of(request), body, idempotency_key=forms.idempotency_key(request)
    )
    patient = patient_or_404(request, int(row["id"]))
    return PatientOut.model_validate({k: patient.get(k) for k in PatientOut.model_fields})


@router.get("/api/patients/{patient_id}", dependencies=[permit("patient.read")], tags=["patients"])
def api_patient(request: Request, patient_id: int) -> dict[str, Any]:
    """A patient with its courses, the timeline (newest first) and trend series."""
    patient = patient_or_404(request, patient_id)
    timeline = queries.timeline(registry_of(request), patient_id)
    trends = queries.trends(registry_of(request), patient_id)
    return to_jsonable({"patient": patient, "timeline": [vars(e) for e in timeline], "trends": trends})
