"""Plan a course and show it: a SCIT schedule (conventional / cluster / rush) with omalizumab pre-treatment or
concurrent dosing on one calendar, or omalizumab alone at the label dose.

Routes parse into the input models of `immunoplan.services.records.courses` (the ones the API and the CLI
use), call one service (`preview_immunotherapy`, `plan_immunotherapy`, `plan_omalizumab_course`,
`show_course`) and render. A saved form answers 303 to the course page (a reload never re-posts); the hidden
``idempotency_key`` makes a double submit plan one course; a conflict is shown on the form with HTTP 409.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from immunoplan.clinical import vocabularies as vocab
from immunoplan.clinical.immunotherapy.course_kinds import SCIT_COURSE_KINDS
from immunoplan.clinical.omalizumab import INDICATIONS, REGIONS
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.services.inputs import validate_form
from immunoplan.services.records import courses as svc
from immunoplan.services.records import omalizumab as omalizumab_svc
from immunoplan.services.records.desensitization import course as desens_course
from immunoplan.web import forms
from immunoplan.web.auth import permit
from immunoplan.web.deps import actor_of, conflict_message, lookup_as_404, registry_of, today
from immunoplan.web.rendering import is_htmx, render

router = APIRouter()

#: the form's one select for product and regimen ("<product id>|<regimen id>", a form value only)
PRODUCT_REGIMEN = "product_regimen"
KINDS = ("scit", "omalizumab")
MODELS: dict[str, Any] = {
    "scit": svc.ImmunotherapyCourseIn,
    "omalizumab": svc.OmalizumabCourseIn,
}


def product_choices() -> list[tuple[str, str]]:
    """(form value, label) for every product and regimen of ``scit_products``, with its status."""
    return [
        (f"{p['id']}|{r['id']}", f"{p['name']} — {r['name']} [{r['status']}]")
        for p in svc.immunotherapy_choices()
        for r in p["regimens"]
    ]


def _defaults(request: Request, patient_id: int) -> dict[str, Any]:
    try:
        return svc.planning_defaults(registry_of(request), patient_id)
    except InvalidInput:
        raise HTTPException(404, f"no patient {patient_id}") from None


def _kind(f: forms.FormState) -> str:
    kind = f.get("kind", "scit") or "scit"
    return kind if kind in KINDS else "scit"


def _form_context(request: Request, patient_id: int, f: forms.FormState, kind: str) -> dict[str, Any]:
    prior = _defaults(request, patient_id)
    defaults = {
        "age_years": prior.get("age_years", ""),
        "weight_kg": prior.get("weight_kg", ""),
        "total_ige_iu_ml": prior.get("total_ige_iu_ml", ""),
        "start": today().isoformat(),
        "omalizumab": "none",
        "region": "us",
        "indication": "asthma",
    }
    for k, v in defaults.items():
        f.raw.setdefault(k, "" if v is None else str(v))
    title = "Plan omalizumab" if kind == "omalizumab" else "Plan immunotherapy"
    return {
        "title": f"{title} · {prior['pseudo_id']}",
        "patient_id": patient_id,
        "pseudo_id": prior["pseudo_id"],
        "form": f,
        "kind": kind,
        "product_choices": product_choices(),
        "omalizumab_modes": vocab.OMALIZUMAB_MODES,
        "indications": INDICATIONS,
        "regions": REGIONS,
    }


@router.get(
    "/patients/{patient_id}/courses/new", dependencies=[permit("course.plan")], include_in_schema=False
)
async def course_form(request: Request, patient_id: int, kind: str = "scit") -> Response:
    f = forms.FormState({"kind": kind if kind in KINDS else "scit"})
    return render(request, "course_new.html", _form_context(request, patient_id, f, _kind(f)))


def _model_input(f: forms.FormState, kind: str) -> dict[str, Any]:
    """The form's fields under the input model's names (the product/regimen select split in two)."""
    fields = MODELS[kind].model_fields
    raw = {k: v for k, v in f.raw.items() if k in fields}
    choice = f.get(PRODUCT_REGIMEN)
    if kind == "scit" and choice:
        product, _, regimen = choice.partition("|")
        raw.update(product=product, regimen=regimen)
    return raw


def _field_of(name: str) -> str:
    return PRODUCT_REGIMEN if name in ("product", "regimen") else name


@router.post("/patients/{patient_id}/courses", dependencies=[permit("course.plan")], include_in_schema=False)
async def course_submit(request: Request, patient_id: int) -> Response:
    f = await forms.read_form(request)
    kind = _kind(f)
    context = _form_context(request, patient_id, f, kind)
    data, errors = validate_form(MODELS[kind], _model_input(f, kind))
    for name, message in errors.items():
        f.errors.setdefault(_field_of(name), message)
    known = tuple(MODELS[kind].model_fields) + (PRODUCT_REGIMEN,)
    if data is None:
        return render(request, "course_new.html", context, status_code=422)
    reg, preview = registry_of(request), f.get("action") == "preview"
    try:
        if preview:
            result = (
                svc.preview_immunotherapy(data) if kind == "scit" else svc.preview_omalizumab_course(data)
            )
        else:
            plan = svc.plan_immunotherapy if kind == "scit" else svc.plan_omalizumab_course
            row = plan(
                reg, actor_of(request), patient_id, data, idempotency_key=forms.idempotency_key(request, f)
            )
            return RedirectResponse(f"/patients/{patient_id}/courses/{row['id']}", status_code=303)
    except Conflict as exc:
        f.errors["form"] = conflict_message(exc)
        return render(request, "course_new.html", context, status_code=409)
    except InvalidInput as exc:
        exc.field = _field_of(exc.field)
        f.fail(exc, known=known)
        return render(request, "course_new.html", context, status_code=422)
    context["preview"] = result
    return render(request, "course_new.html", context, block="preview" if is_htmx(request) else None)


def _course(request: Request, patient_id: int, course_id: int) -> dict[str, Any]:
    try:
        return desens_course.course_view(registry_of(request), course_id, patient_id=patient_id)
    except InvalidInput:
        raise HTTPException(404, f"no course {course_id} for patient {patient_id}") from None


def _course_page(
    request: Request,
    patient_id: int,
    course_id: int,
    *,
    dose_form: forms.FormState | None = None,
    index_form: forms.FormState | None = None,
    adjuvant_form: forms.FormState | None = None,
    status_code: int = 200,
) -> Response:
    shown = _course(request, patient_id, course_id)
    recorded = request.query_params.get("recorded")
    index = shown.get("index_reaction") or {}
    index_defaults = {
        "reaction_on": index.get("date") or "",
        "drug": index.get("drug") or shown["course"].get("drug") or "",
        "grade": str(index.get("grade_number") or ""),
        "skin_test": index.get("skin_test") or "not-done",
        "skin_test_detail": index.get("skin_test_detail") or "",
        "phenotype": index.get("phenotype") or "",
        "context": index.get("context") or "",
    }
    f_index = index_form or forms.FormState({k: str(v) for k, v in index_defaults.items()})
    f_adjuvant = adjuvant_form or forms.FormState(
        {"start_on": today().isoformat(), "cycles": "6", "cycle_weeks": "3"}
    )
    return render(
        request,
        "course.html",
        {
            "title": f"Course · {shown['pseudo_id']}",
            "patient_id": patient_id,
            "pseudo_id": shown["pseudo_id"],
            "course": shown["course"],
            "r": shown["result"] or {},
            "sessions": shown["sessions"],
            "label_dose": shown["label_dose"],
            "doses": shown["omalizumab_administrations"],
            "recorded": int(recorded) if recorded and recorded.isdigit() else None,
            "scit_kinds": SCIT_COURSE_KINDS,
            "dose_form": dose_form or forms.FormState({}),
            "cycles": shown.get("cycles"),
            "index_reaction": shown.get("index_reaction"),
            "adjuvant": shown.get("omalizumab_adjuvant"),
            "next_cycle": shown.get("next_cycle"),
            "course_calendar": shown.get("course_calendar"),
            "index_form": f_index,
            "adjuvant_form": f_adjuvant,
            "grades": [
                (str(i + 1), f"{i + 1} ({g})") for i, g in enumerate(desens_course.SCALES["brown2004"])
            ],
            "skin_tests": desens_course.SKIN_TESTS,
            "phenotypes": vocab.REACTION_PHENOTYPES,
            "regimens": desens_course.ADJUVANT_REGIMENS,
        },
        status_code=status_code,
    )


@router.get(
    "/patients/{patient_id}/courses/{course_id}",
    dependencies=[permit("patient.read")],
    include_in_schema=False,
)
async def course_page(request: Request, patient_id: int, course_id: int) -> Response:
    return _course_page(request, patient_id, course_id)


@router.post(
    "/patients/{patient_id}/courses/{course_id}/omalizumab-doses",
    dependencies=[permit("injection.record")],
    include_in_schema=False,
)
async def omalizumab_dose_submit(request: Request, patient_id: int, course_id: int) -> Response:
    """An omalizumab dose of an omalizumab course (`services.records.omalizumab.record_dose`); 303 back to
    the course page."""
    f = await forms.read_form(request)
    fields = omalizumab_svc.OmalizumabDoseIn.model_fields
    raw = {k: v for k, v in f.raw.items() if k in fields and k != "course_id"}
    data, errors = validate_form(omalizumab_svc.OmalizumabDoseIn, {**raw, "course_id": str(course_id)})
    f.errors.update(errors)
    if data is None:
        return _course_page(request, patient_id, course_id, dose_form=f, status_code=422)
    try:
        with lookup_as_404():  # another patient's course
            row = omalizumab_svc.record_dose(
                registry_of(request),
                actor_of(request),
                data,
                idempotency_key=forms.idempotency_key(request, f),
                patient_id=patient_id,
            )
    except Conflict as exc:
        f.errors["form"] = conflict_message(exc)
        return _course_page(request, patient_id, course_id, dose_form=f, status_code=409)
    except InvalidInput as exc:
        f.fail(exc, known=("dose_mg", "given_at", "site", "lot", "expiry_on"))  # else: on the form
        return _course_page(request, patient_id, course_id, dose_form=f, status_code=422)
    target = f"/patients/{patient_id}/courses/{course_id}?recorded={row['id']}"
    return RedirectResponse(target, status_code=303)


@router.post(
    "/patients/{patient_id}/courses/{course_id}/index-reaction",
    dependencies=[permit("desensitization.plan")],
    include_in_schema=False,
)
async def index_reaction_submit(request: Request, patient_id: int, course_id: int) -> Response:
    """The index reaction of a desensitization course (`record_index_reaction`); 303 back to the page."""
    _course(request, patient_id, course_id)  # 404 for another patient's course
    f = await forms.read_form(request)
    fields = desens_course.IndexReactionIn.model_fields
    raw = {k: v for k, v in f.raw.items() if k in fields and k != "course_id" and v != ""}
    data, errors = validate_form(desens_course.IndexReactionIn, {**raw, "course_id": str(course_id)})
    f.errors.update(errors)
    if data is None:
        return _course_page(request, patient_id, course_id, index_form=f, status_code=422)
    try:
        desens_course.record_index_reaction(
            registry_of(request), actor_of(request), data, idempotency_key=forms.idempotency_key(request, f)
        )
    except Conflict as exc:
        f.errors["form"] = conflict_message(exc)
        return _course_page(request, patient_id, course_id, index_form=f, status_code=409)
    except InvalidInput as exc:
        f.fail(exc, known=tuple(fields))
        return _course_page(request, patient_id, course_id, index_form=f, status_code=422)
    return RedirectResponse(f"/patients/{patient_id}/courses/{course_id}", status_code=303)


@router.post(
    "/patients/{patient_id}/courses/{course_id}/omalizumab-adjuvant",
    dependencies=[permit("course.plan")],
    include_in_schema=False,
)
async def adjuvant_submit(request: Request, patient_id: int, course_id: int) -> Response:
    """Plan omalizumab as an adjuvant of the desensitization course (`plan_adjuvant_omalizumab`)."""
    _course(request, patient_id, course_id)
    f = await forms.read_form(request)
    fields = desens_course.AdjuvantOmalizumabIn.model_fields
    raw = {k: v for k, v in f.raw.items() if k in fields and k != "course_id" and v != ""}
    data, errors = validate_form(desens_course.AdjuvantOmalizumabIn, {**raw, "course_id": str(course_id)})
    f.errors.update(errors)
    if data is None:
        return _course_page(request, patient_id, course_id, adjuvant_form=f, status_code=422)
    try:
        desens_course.plan_adjuvant_omalizumab(
            registry_of(request),
            actor_of(request),
            course_id,
            data.regimen_id,
            data.start_on,
            cycles=data.cycles,
            cycle_weeks=data.cycle_weeks,
            days_before=list(data.days_before) if data.days_before else None,
            idempotency_key=forms.idempotency_key(request, f),
        )
    except Conflict as exc:
        f.errors["form"] = conflict_message(exc)
        return _course_page(request, patient_id, course_id, adjuvant_form=f, status_code=409)
    except InvalidInput as exc:
        f.fail(exc, known=tuple(fields))
        return _course_page(request, patient_id, course_id, adjuvant_form=f, status_code=422)
    return RedirectResponse(f"/patients/{patient_id}/courses/{course_id}", status_code=303)


# ------------------------------------------------------------------------------------------------- JSON API


def _api_plan(request: Request, patient_id: int, kind: str, body: Any) -> dict[str, Any]:
    _defaults(request, patient_id)  # 404 for an unknown patient
    plan = svc.plan_immunotherapy if kind == "scit" else svc.plan_omalizumab_course
    return plan(
        registry_of(request),
        actor_of(request),
        patient_id,
        body,
        idempotency_key=forms.idempotency_key(request),
    )


@router.post(
    "/api/patients/{patient_id}/courses",
    dependencies=[permit("course.plan")],
    tags=["courses"],
    status_code=201,
)
def api_course(request: Request, patient_id: int, body: svc.ImmunotherapyCourseIn) -> dict[str, Any]:
    """Plan and store a SCIT course (with omalizumab pre/concurrent): ``id``, ``schedule``, ``calendar``.
    UNVERIFIED regimen: 422; ``Idempotency-Key`` header: a repeat plans nothing, answers the same course."""
    return _api_plan(request, patient_id, "scit", body)


@router.post(
    "/api/patients/{patient_id}/courses/preview", dependencies=[permit("course.plan")], tags=["courses"]
)
def api_course_preview(request: Request, patient_id: int, body: svc.ImmunotherapyCourseIn) -> dict[str, Any]:
    """The SCIT calendar (SCIT + omalizumab) a course would be planned with; stores nothing."""
    _defaults(request, patient_id)
    return to_jsonable(svc.preview_immunotherapy(body))


@router.post(
    "/api/patients/{patient_id}/courses/omalizumab",
    dependencies=[permit("course.plan")],
    tags=["courses"],
    status_code=201,
)
def api_omalizumab_course(request: Request, patient_id: int, body: svc.OmalizumabCourseIn) -> dict[str, Any]:
    """Plan and store an omalizumab course at the label dose; 422 when the label lookup gives no dose."""
    return _api_plan(request, patient_id, "omalizumab", body)


@router.get(
    "/api/patients/{patient_id}/courses/{course_id}", dependencies=[permit("patient.read")], tags=["courses"]
)
def api_course_show(request: Request, patient_id: int, course_id: int) -> dict[str, Any]:
    """A course as stored (columns, the calendar it was planned with, omalizumab doses recorded)."""
    return to_jsonable(_course(request, patient_id, course_id))
