"""Visit: questionnaires, spirometry (GLI) and laboratory results, recorded by ONE use case
(`immunoplan.services.records.visits.record_visit_with_results`, one transaction).

Routes parse the form or body into the shared input model `VisitIn`, call one service and render. A form
POST answers 303 to the recorded visit's page (a reload never re-posts) and carries an idempotency key. A
visit already recorded for the same patient, code and date gives HTTP 409 on the page, the entry kept, with
the offer to record the values typed as a correction of that visit (`corrections.amend`) or to open its
correction form.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Header, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from immunoplan.clinical import spirometry
from immunoplan.clinical.vocabularies import VISIT_CODES
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.services.inputs import validate, validate_form
from immunoplan.services.records import corrections
from immunoplan.services.records import visits as svc
from immunoplan.web import forms
from immunoplan.web.auth import permit
from immunoplan.web.deps import actor_of, found_or_404, registry_of
from immunoplan.web.rendering import render

router = APIRouter()

KEY = forms.IDEMPOTENCY_FIELD
FIELDS = tuple(svc.VisitIn.model_fields)
REASON = "reason"


def _defaults(request: Request, patient_id: int) -> dict[str, Any]:
    return found_or_404(svc.visit_form_defaults(registry_of(request), patient_id), f"no patient {patient_id}")


def _no_visit(patient_id: int, visit_id: int) -> str:
    return f"no visit {visit_id} for patient {patient_id}"


def _form(
    request: Request,
    patient_id: int,
    f: forms.FormState,
    *,
    status: int = 200,
    conflict: Conflict | None = None,
    existing: tuple[str, int] | None = None,
) -> Response:
    d = _defaults(request, patient_id)
    f.raw.setdefault("visit_on", d["visit_on"])
    f.raw.setdefault("sex", d["sex"])
    f.raw.setdefault("equation", svc.DEFAULT_EQUATION)
    if existing is None and conflict is not None:
        existing = corrections.parse_record_ref(conflict.record)
    ctx = {
        "title": f"Visit · {d['pseudo_id']}",
        "patient_id": patient_id,
        "pseudo_id": d["pseudo_id"],
        "age": d["age_today"],
        "form": f,
        "codes": VISIT_CODES,
        "hints": svc.questionnaire_hints(),
        "instruments": svc.QUESTIONNAIRE_FIELDS,
        "equations": spirometry.EQUATIONS,
        "conflict": conflict,
        "existing": existing,
        "typed": {k: v for k, v in f.raw.items() if k in FIELDS and v},
    }
    return render(request, "visit.html", ctx, status_code=status)


def _form_errors(f: forms.FormState, exc: InvalidInput) -> None:
    """Put a service refusal next to its field(s): every engine error of the visit at once."""
    for e in getattr(exc, "errors", None) or [exc]:
        f.fail(e, known=FIELDS)


@router.get(
    "/patients/{patient_id}/visits/new", dependencies=[permit("visit.record")], include_in_schema=False
)
async def visit_form(request: Request, patient_id: int) -> Response:
    return _form(request, patient_id, forms.FormState({}))


@router.post("/patients/{patient_id}/visits", dependencies=[permit("visit.record")], include_in_schema=False)
async def visit_submit(request: Request, patient_id: int) -> Response:
    f = await forms.read_form(request)
    data, errors = validate_form(svc.VisitIn, {k: v for k, v in f.raw.items() if k in FIELDS})
    f.errors.update(errors)
    if data is None:
        return _form(request, patient_id, f, status=422)
    key = forms.idempotency_key(request, f)
    try:
        out = svc.record_visit_with_results(
            registry_of(request), actor_of(request), patient_id, data, idempotency_key=key
        )
    except Conflict as exc:
        return _form(request, patient_id, f, status=409, conflict=exc)
    except InvalidInput as exc:
        if exc.field == "patient":
            raise HTTPException(404, str(exc)) from None
        _form_errors(f, exc)
        return _form(request, patient_id, f, status=422)
    shown = f"?shown={key}" if key else ""
    return RedirectResponse(f"/patients/{patient_id}/visits/{out['id']}{shown}", status_code=303)


@router.post(
    "/patients/{patient_id}/visits/{visit_id}/amend",
    dependencies=[permit("record.amend")],
    include_in_schema=False,
)
async def visit_amend(request: Request, patient_id: int, visit_id: int) -> Response:
    """Record the values typed in the visit form as a correction of the existing visit (same-day visit)."""
    f = await forms.read_form(request)
    changes = {k: v for k, v in f.raw.items() if k in FIELDS and v}
    found_or_404(svc.visit_view(registry_of(request), patient_id, visit_id), _no_visit(patient_id, visit_id))
    try:
        corrections.amend(
            registry_of(request),
            actor_of(request),
            "visit",
            visit_id,
            changes,
            f.get(REASON),
            idempotency_key=forms.idempotency_key(request, f),
        )
    except Conflict as exc:
        return _form(request, patient_id, f, status=409, conflict=exc, existing=("visit", visit_id))
    except InvalidInput as exc:
        _form_errors(f, exc)
        if exc.field == REASON:
            f.errors[REASON] = forms.message(exc)
        return _form(request, patient_id, f, status=422, existing=("visit", visit_id))
    return RedirectResponse(f"/patients/{patient_id}/visits/{visit_id}", status_code=303)


@router.get(
    "/patients/{patient_id}/visits/{visit_id}", dependencies=[permit("patient.read")], include_in_schema=False
)
async def visit_page(request: Request, patient_id: int, visit_id: int) -> Response:
    """A recorded visit with its results and corrections (the target of the POST/redirect/GET)."""
    view = found_or_404(
        svc.visit_view(registry_of(request), patient_id, visit_id, request.query_params.get("shown")),
        _no_visit(patient_id, visit_id),
    )
    ctx = {
        "title": f"Visit {view['visit']['code']} · {view['pseudo_id']}",
        "patient_id": patient_id,
        "pseudo_id": view["pseudo_id"],
        "view": view,
        "results": view["results"],
        "here": f"/patients/{patient_id}/visits/{visit_id}",
    }
    return render(request, "visit_recorded.html", ctx)


# ------------------------------------------------------------------------------------------------- JSON API

IDEMPOTENCY_HEADER = Header(
    None, alias=forms.IDEMPOTENCY_HEADER, description="a key for this write: a retry writes nothing twice"
)


@router.post(
    "/api/patients/{patient_id}/visits",
    dependencies=[permit("visit.record")],
    tags=["visits"],
    status_code=201,
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": svc.VisitIn.model_json_schema()}}}
    },
)
def api_visit(
    request: Request,
    patient_id: int,
    body: Any = Body(None),
    idempotency_key: str | None = IDEMPOTENCY_HEADER,
) -> dict[str, Any]:
    """Record a visit (`VisitIn`): questionnaires scored, spirometry with GLI results (age at the visit),
    laboratory results, in one transaction; 422 names the first bad field, 409 a visit already recorded for
    the same patient, code and date (``record``: the visit to correct)."""
    if not isinstance(body, dict):
        raise InvalidInput("body", "must be a JSON object", "VisitIn")
    data = validate(svc.VisitIn, body)
    try:
        return svc.record_visit_with_results(
            registry_of(request), actor_of(request), patient_id, data, idempotency_key=idempotency_key
        )
    except InvalidInput as exc:
        if exc.field == "patient":
            raise HTTPException(404, str(exc)) from None
        raise
