"""Patients: list with search and due/late flags, new patient, patient page (timeline and trend charts)."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from immunoplan.errors import InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import models as m
from immunoplan.services import records
from immunoplan.web import forms, queries
from immunoplan.web.auth import permit
from immunoplan.web.deps import actor_of, patient_or_404, registry_of, today
from immunoplan.web.rendering import is_htmx, render

router = APIRouter()
PSEUDO_ACCEPTED = "1-64 characters"


@router.get("/patients", dependencies=[permit("patient.read")], include_in_schema=False)
async def patient_list(
    request: Request,
    q: Annotated[str, Query(max_length=100)] = "",
    flagged: bool = False,
) -> Response:
    with registry_of(request).session() as s:
        rows = queries.patient_list(s, q, today(), only_flagged=flagged)
    context = {"title": "Patients", "rows": rows, "q": q, "flagged": flagged, "today": today()}
    return render(request, "patients.html", context, block="rows" if is_htmx(request) else None)


@router.get("/patients/new", dependencies=[permit("patient.write")], include_in_schema=False)
async def patient_new(request: Request) -> Response:
    return render(request, "patient_new.html", {"title": "New patient", "form": forms.FormState({})})


def create_patient(request: Request, **values: Any) -> int:
    """Register a patient through the registry use case (audited under the logged-in user)."""
    birth_date = values.get("birth_date")
    if birth_date is not None and birth_date > today():
        raise InvalidInput("birth_date", "is in the future")
    row = records.register_patient(registry_of(request), actor_of(request), **values)
    return int(row["id"])


def _create(request: Request, f: forms.FormState) -> int | None:
    pseudo_id = f.parse("pseudo_id", forms.required("pseudo_id"))
    if pseudo_id and len(pseudo_id) > 64:
        f.errors["pseudo_id"] = f"too long (accepted: {PSEUDO_ACCEPTED})"
    display_name = f.parse("display_name", forms.optional_text)
    birth_date = f.parse("birth_date", forms.date_field("birth_date", optional=True))
    sex = f.parse("sex", forms.choice("sex", m.SEXES))
    if not f.ok:
        return None
    try:
        return create_patient(
            request,
            pseudo_id=pseudo_id,
            display_name=display_name,
            birth_date=birth_date,
            sex=sex,
        )
    except InvalidInput as exc:
        f.fail(exc)
        return None


@router.post("/patients", dependencies=[permit("patient.write")], include_in_schema=False)
async def patient_create(request: Request) -> Response:
    f = await forms.read_form(request)
    pid = _create(request, f)
    if pid is None:
        return render(request, "patient_new.html", {"title": "New patient", "form": f}, status_code=422)
    return RedirectResponse(f"/patients/{pid}", status_code=303)


def patient_summary(p: m.Patient) -> dict[str, Any]:
    return {
        "id": p.id,
        "pseudo_id": p.pseudo_id,
        "display_name": p.display_name,
        "birth_date": p.birth_date,
        "age_years": queries.age_years(p, today()),
        "sex": p.sex,
    }


@router.get("/patients/{patient_id}", dependencies=[permit("patient.read")], include_in_schema=False)
async def patient_page(request: Request, patient_id: int) -> Response:
    with registry_of(request).session() as s:
        p = patient_or_404(s, patient_id)
        courses = sorted(p.courses, key=lambda c: c.created_at, reverse=True)
        context: dict[str, Any] = {
            "title": f"Patient {p.pseudo_id}",
            "patient": patient_summary(p),
            "courses": [
                {
                    "id": c.id,
                    "kind": c.kind,
                    "label": c.allergen or c.drug or c.product or "",
                    "status": c.status,
                    "with_omalizumab": c.with_omalizumab,
                    "omalizumab_timing": c.omalizumab_timing,
                    "next_due_on": c.next_due_on,
                    "flag": queries.due_flag(c.next_due_on, today()),
                }
                for c in courses
            ],
            "timeline": queries.timeline(s, patient_id),
            "trends": queries.trends(s, patient_id),
        }
    context["trends_json"] = {k: json.dumps(to_jsonable(v)) for k, v in context["trends"].items()}
    return render(request, "patient.html", context)


# ------------------------------------------------------------------------------------------------- JSON API


class PatientIn(BaseModel):
    """A new patient. ``pseudo_id`` is the pseudonym (unique); ``display_name`` the only direct identifier."""

    pseudo_id: str = Field(min_length=1, max_length=64)
    display_name: str | None = Field(None, max_length=200)
    birth_date: date | None = None
    sex: Literal["female", "male", "other", "unknown"] = "unknown"


class PatientOut(BaseModel):
    id: int
    pseudo_id: str
    display_name: str | None
    birth_date: date | None
    age_years: int | None
    sex: str


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
    with registry_of(request).session() as s:
        rows = queries.patient_list(s, q, today(), only_flagged=flagged)
    return [PatientListItem(**{k: getattr(r, k) for k in PatientListItem.model_fields}) for r in rows]


@router.post("/api/patients", dependencies=[permit("patient.write")], tags=["patients"], status_code=201)
def api_patient_create(request: Request, body: PatientIn) -> PatientOut:
    """Add a patient (audited under the logged-in user)."""
    pid = create_patient(
        request,
        pseudo_id=body.pseudo_id,
        display_name=body.display_name,
        birth_date=body.birth_date,
        sex=body.sex,
    )
    with registry_of(request).session() as s:
        return PatientOut(**patient_summary(patient_or_404(s, pid)))


@router.get("/api/patients/{patient_id}", dependencies=[permit("patient.read")], tags=["patients"])
def api_patient(request: Request, patient_id: int) -> dict[str, Any]:
    """A patient with the timeline (newest first) and trend series."""
    with registry_of(request).session() as s:
        p = patient_or_404(s, patient_id)
        return to_jsonable(
            {
                "patient": patient_summary(p),
                "timeline": [vars(e) for e in queries.timeline(s, patient_id)],
                "trends": queries.trends(s, patient_id),
            }
        )
