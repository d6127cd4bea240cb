"""Injection day (nurse): the next dose with the rule that fired, record the injection, the observation
timer, a reaction with guided grading, the course's omalizumab dose; and the JSON API of the same.

Routes parse (the shared input models of `immunoplan.services.records.injections`), call one service and
render; every rule lives in the service and the clinical core. A successful form POST answers 303 to the page
(POST/redirect/GET: a reload never re-posts); the form carries an idempotency key (a double submit or a
duplicated tab writes one row); a Conflict (the same act already recorded) shows its message on the page with
HTTP 409. Times are shown in clinic time with the zone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, Body, Header, Query, Request
from fastapi.responses import RedirectResponse, Response

from immunoplan import clock
from immunoplan.clinical import vocabularies
from immunoplan.clinical.immunotherapy.preinjection import check_questions
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.reference import load
from immunoplan.services.inputs import validate, validate_form
from immunoplan.services.records import injections as svc
from immunoplan.services.records import omalizumab as omalizumab_svc
from immunoplan.web import forms
from immunoplan.web.auth import permit
from immunoplan.web.deps import actor_of, lookup_as_404, registry_of
from immunoplan.web.rendering import is_htmx, render

router = APIRouter()

PAGE = "/patients/{patient_id}/courses/{course_id}/injection-day"
API = "/api/patients/{patient_id}/courses/{course_id}"
KEY = forms.IDEMPOTENCY_FIELD


def symptom_choices() -> list[tuple[str, str, str]]:
    """(code, text, organ system) from reference data ``grading_symptoms``."""
    data = load("grading_symptoms")["symptoms"]
    return [(k, v["text"], v["system"]) for k, v in data.items()]


def _page_url(patient_id: int, course_id: int) -> str:
    return PAGE.format(patient_id=patient_id, course_id=course_id)


def vial_label(v: Mapping[str, Any]) -> str:
    """A usable vial as the select shows it: id, strength (concentration, colour), lot, expiry."""
    colour = f", {v['colour']}" if v.get("colour") else ""
    return (
        f"#{v['id']} · strength {v['strength']} ({v['concentration']}{colour}) · lot {v['lot']} · "
        f"expires {v['expiry_on']}"
    )


def _new_vial_rule(nxt: Mapping[str, Any]) -> Any:
    """The new-vial rule among the rules that fired (else the rule that fired), to show with its basis."""
    fired = [r for r in nxt.get("rules") or [] if r.get("fired") and "new-vial" in str(r.get("id"))]
    return fired[0] if fired else nxt.get("rule")


def _context(request: Request, patient_id: int, course_id: int, **extra: Any) -> dict[str, Any]:
    with lookup_as_404():
        day = svc.injection_day(registry_of(request), patient_id, course_id)
    ctx = {
        "title": f"Injection day · {day['pseudo_id']}",
        **day,
        "today_iso": clock.today().isoformat(),
        "vial_options": [(v["id"], vial_label(v)) for v in day["vials"]],
        "new_vial_rule": _new_vial_rule(day["next"]),
        "symptoms": symptom_choices(),
        "scales": svc.ENGINE_SCALES,
        "local_sizes": vocabularies.LOCAL_REACTION_SIZES,
        "bronchodilator": vocabularies.BRONCHODILATOR_RESPONSES,
        "sites": vocabularies.INJECTION_SITES,
        "form": forms.FormState({}),
        "conflict": None,
        "recorded": request.query_params.get("recorded"),
        "recorded_reaction": request.query_params.get("reaction"),
        "recorded_omalizumab": request.query_params.get("omalizumab"),
        "grading": None,
        "reaction_form": forms.FormState({}),
        "saved_reaction": None,
        "omalizumab_form": forms.FormState({}),
        "omalizumab_message": None,
    }
    ctx.update(extra)
    return ctx


def _day(request: Request, patient_id: int, course_id: int, status: int = 200, **extra: Any) -> Response:
    ctx = _context(request, patient_id, course_id, **extra)
    block = "day" if is_htmx(request) else None
    return render(request, "injection_day.html", ctx, status_code=status, block=block)


def _after_write(request: Request, patient_id: int, course_id: int, query: str, **extra: Any) -> Response:
    """POST/redirect/GET: 303 to the page; htmx gets the updated fragment instead."""
    if is_htmx(request):
        return _day(request, patient_id, course_id, **extra)
    return RedirectResponse(f"{_page_url(patient_id, course_id)}?{query}", status_code=303)


def _write_or_refusal(
    request: Request,
    patient_id: int,
    course_id: int,
    form: str,
    f: forms.FormState,
    known: tuple[str, ...],
    write: Callable[[], dict[str, Any]],
    field_of: Mapping[str, str] | None = None,
) -> dict[str, Any] | Response:
    """Run one service write: its result, or the page with the refusal on form ``form`` (409 for a
    conflict; 422 next to the field, ``field_of`` mapping service fields to form fields). A course that is
    not this patient's is 404."""
    try:
        with lookup_as_404():
            return write()
    except Conflict as exc:
        return _day(request, patient_id, course_id, 409, conflict=exc, **{form: f})
    except InvalidInput as exc:
        exc.field = (field_of or {}).get(exc.field, exc.field)
        f.fail(exc, known=known)
        return _day(request, patient_id, course_id, 422, **{form: f})


@router.get(PAGE, dependencies=[permit("injection.record")], include_in_schema=False)
async def injection_day(request: Request, patient_id: int, course_id: int) -> Response:
    return _day(request, patient_id, course_id)


def _fields(f: forms.FormState, names: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in f.raw.items() if k in names}


INJECTION_FIELDS = tuple(n for n in svc.InjectionIn.model_fields if n not in ("course_id", "checks"))
#: the pre-injection check's form fields: ``check.<question id>`` (yes/no radios, numbers)
CHECK_PREFIX = "check."
#: an answer is a word or a number (the input model's bound): longer text is that question's error
CHECK_ANSWER_MAX_CHARS = svc.CHECK_ANSWER_MAX_CHARS


def _question_ids() -> tuple[str, ...]:
    return tuple(q["id"] for q in check_questions())


def _checks_of(f: forms.FormState) -> dict[str, str]:
    """The answered questions of the form's pre-injection check as ``{question id: answer}`` (an
    unanswered question is left out); a field that is not a question, or an answer too long to be one, is
    that field's error."""
    known = _question_ids()
    checks: dict[str, str] = {}
    for name, value in f.raw.items():
        if not name.startswith(CHECK_PREFIX):
            continue
        qid = name[len(CHECK_PREFIX) :]
        if qid not in known:
            f.errors.setdefault("form", f"{name[:40]}: is not a question of the pre-injection check")
            continue
        text = value.strip()
        if len(text) > CHECK_ANSWER_MAX_CHARS:
            f.errors.setdefault(name, f"not an answer ({len(text)} characters)")
        elif text:
            checks[qid] = text
    return checks


def _check_field_of() -> dict[str, str]:
    """Service fields of the check -> form fields: ``check.<id>`` (a holding rule) and the bare question id
    (a value the question does not accept) both go next to that question."""
    return {qid: f"{CHECK_PREFIX}{qid}" for qid in _question_ids()} | {"check": "form", "checks": "form"}


@router.post(
    PAGE.replace("injection-day", "injections"),
    dependencies=[permit("injection.record")],
    include_in_schema=False,
)
async def injection_submit(request: Request, patient_id: int, course_id: int) -> Response:
    f = await forms.read_form(request)
    unknown = sorted(
        k for k in f.raw if k not in INJECTION_FIELDS and k != KEY and not k.startswith(CHECK_PREFIX)
    )
    checks = _checks_of(f)
    fields = {**_fields(f, INJECTION_FIELDS), "course_id": course_id, "checks": checks or None}
    data, errors = validate_form(svc.InjectionIn, fields)
    f.errors.update(errors)
    for k in unknown:
        f.errors.setdefault("form", f"{k[:40]}: is not a field of this form")
    if data is None or not f.ok:
        return _day(request, patient_id, course_id, 422, form=f)
    key = forms.idempotency_key(request, f)
    check_fields = _check_field_of()
    row = _write_or_refusal(
        request,
        patient_id,
        course_id,
        "form",
        f,
        (*INJECTION_FIELDS, *check_fields.values()),
        lambda: svc.record(
            registry_of(request), actor_of(request), data, idempotency_key=key, patient_id=patient_id
        ),
        field_of=check_fields,
    )
    if isinstance(row, Response):
        return row
    return _after_write(request, patient_id, course_id, f"recorded={row['id']}", recorded=row["id"])


# ------------------------------------------------------------------------------------------------ reactions


async def _reaction_form(request: Request) -> tuple[forms.FormState, dict[str, Any]]:
    form = await request.form()
    raw = {k: v for k, v in form.items() if isinstance(v, str) and k not in ("csrf_token", "symptoms")}
    f = forms.FormState(raw)
    symptoms = [str(x) for x in form.getlist("symptoms")]
    f.raw["symptoms"] = ",".join(symptoms)
    data: dict[str, Any] = {k: v for k, v in raw.items() if k in svc.InjectionReactionIn.model_fields}
    data["symptoms"] = symptoms
    return f, data


def _reaction_in(f: forms.FormState, data: dict[str, Any]) -> svc.InjectionReactionIn | None:
    model, errors = validate_form(svc.InjectionReactionIn, data)
    f.errors.update(errors)
    return model


@router.post(
    PAGE.replace("injection-day", "reactions/grade"),
    dependencies=[permit("injection.record")],
    include_in_schema=False,
)
async def reaction_grade(request: Request, patient_id: int, course_id: int) -> Response:
    """Guided grading: the grade the chosen scale gives for these findings (nothing is saved)."""
    f, data = await _reaction_form(request)
    model = _reaction_in(f, data)
    graded = None
    if model is not None:
        try:
            graded = svc.grade_injection_reaction(model)
        except InvalidInput as exc:
            f.fail(exc, known=tuple(svc.InjectionReactionIn.model_fields))
    ctx = _context(request, patient_id, course_id, grading=graded, reaction_form=f)
    block = "grading" if is_htmx(request) else None
    return render(request, "injection_day.html", ctx, status_code=200 if f.ok else 422, block=block)


@router.post(
    PAGE.replace("injection-day", "reactions"),
    dependencies=[permit("injection.record")],
    include_in_schema=False,
)
async def reaction_submit(request: Request, patient_id: int, course_id: int) -> Response:
    f, data = await _reaction_form(request)
    model = _reaction_in(f, data)
    if model is None:
        return _day(request, patient_id, course_id, 422, reaction_form=f)
    key = forms.idempotency_key(request, f)
    saved = _write_or_refusal(
        request,
        patient_id,
        course_id,
        "reaction_form",
        f,
        (*svc.InjectionReactionIn.model_fields, "injection_id"),
        lambda: svc.record_reaction_to_last_injection(
            registry_of(request), actor_of(request), patient_id, course_id, model, idempotency_key=key
        ),
    )
    if isinstance(saved, Response):
        return saved
    grading = saved["grading"]
    query = f"reaction={saved['reaction']['id']}"
    return _after_write(request, patient_id, course_id, query, saved_reaction=grading)


# ------------------------------------------------------------------------------------------ omalizumab doses

OMALIZUMAB_FIELDS = {
    "omalizumab_dose_mg": "dose_mg",
    "omalizumab_given_at": "given_at",
    "omalizumab_lot": "lot",
    "omalizumab_expiry_on": "expiry_on",
    "omalizumab_observed_minutes": "observed_minutes",
}


@router.post(
    PAGE.replace("injection-day", "omalizumab"),
    dependencies=[permit("injection.record")],
    include_in_schema=False,
)
async def omalizumab_submit(request: Request, patient_id: int, course_id: int) -> Response:
    """An omalizumab dose of a course planned with omalizumab (`services.records.omalizumab.record_dose`)."""
    f = await forms.read_form(request)
    raw = {OMALIZUMAB_FIELDS[k]: v for k, v in f.raw.items() if k in OMALIZUMAB_FIELDS}
    data, errors = validate_form(omalizumab_svc.OmalizumabDoseIn, {**raw, "course_id": course_id})
    back = {v: k for k, v in OMALIZUMAB_FIELDS.items()}
    for k, message in errors.items():
        f.errors.setdefault(back.get(k, "form"), message)
    if data is None or not f.ok:
        return _day(request, patient_id, course_id, 422, omalizumab_form=f)
    key = forms.idempotency_key(request, f)
    row = _write_or_refusal(
        request,
        patient_id,
        course_id,
        "omalizumab_form",
        f,
        tuple(OMALIZUMAB_FIELDS),
        lambda: omalizumab_svc.record_dose(
            registry_of(request), actor_of(request), data, idempotency_key=key, patient_id=patient_id
        ),
        field_of=back,
    )
    if isinstance(row, Response):
        return row
    message = f"Omalizumab {data.dose_mg} mg recorded."
    return _after_write(request, patient_id, course_id, f"omalizumab={row['id']}", omalizumab_message=message)


# ------------------------------------------------------------------------------------------------- JSON API


def _json_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInput("body", "must be a JSON object", "{...}")
    return body


def _api_body(body: Any, course_id: int) -> dict[str, Any]:
    body = _json_object(body)
    if "course_id" in body and str(body["course_id"]) != str(course_id):
        raise InvalidInput("course_id", "does not match the course in the URL", str(course_id))
    return {**body, "course_id": course_id}


def _json_body_schema(model: Any) -> dict[str, Any]:
    """``openapi_extra`` of a route whose JSON body is validated by the service's input model."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


IDEMPOTENCY_HEADER = Header(
    None,
    alias=forms.IDEMPOTENCY_HEADER,
    description="A client key for this write: a repeat with the same key writes nothing twice.",
)


@router.get(f"{API}/next-dose", dependencies=[permit("injection.record")], tags=["injections"])
def api_next_dose(
    request: Request,
    patient_id: int,
    course_id: int,
    at: str | None = None,
    vial_id: str | None = Query(
        None, max_length=12, description="a registered vial: the dose for it (new vial or lot: its rule)"
    ),
) -> Any:
    """The next injection (as ``immunoplan injection next --json``): ``dose``/``dose_ml``, ``due_date``,
    ``earliest_at`` (clinic time) with its rule, the ``rule`` that fired with its basis, and the ``history``
    of live injections with their clinic-local dates. ``at``: clinic time (default now). ``vial_id``: the
    dose for that registered vial (checked as at an injection: an expired vial is 422; a change of vial or
    lot applies the new-vial rule; ``vial`` says so)."""
    with lookup_as_404():
        view = svc.next_dose(registry_of(request), course_id, at, patient_id=patient_id, vial_id=vial_id)
    return to_jsonable(view)


@router.post(
    f"{API}/injections",
    dependencies=[permit("injection.record")],
    tags=["injections"],
    status_code=201,
    openapi_extra=_json_body_schema(svc.InjectionIn),
    responses={409: {"description": "the same injection is already recorded"}, 422: {}},
)
def api_injection(
    request: Request,
    patient_id: int,
    course_id: int,
    body: Any = Body(None),
    idempotency_key: str | None = IDEMPOTENCY_HEADER,
) -> Any:
    """Record an injection (`InjectionIn`; ``course_id`` from the URL): the stored injection and ``next``.
    201; 422 for invalid input or a rule refusal; 409 for the same act already recorded."""
    data = validate(svc.InjectionIn, _api_body(body, course_id))
    with lookup_as_404():
        return svc.record(
            registry_of(request),
            actor_of(request),
            data,
            idempotency_key=idempotency_key,
            patient_id=patient_id,
        )


@router.post(
    f"{API}/reactions",
    dependencies=[permit("injection.record")],
    tags=["injections"],
    status_code=201,
    openapi_extra=_json_body_schema(svc.InjectionReactionIn),
    responses={409: {"description": "a concurrent change"}, 422: {}},
)
def api_reaction(
    request: Request,
    patient_id: int,
    course_id: int,
    body: Any = Body(None),
    idempotency_key: str | None = IDEMPOTENCY_HEADER,
) -> Any:
    """Grade and record a reaction to the course's last injection (`InjectionReactionIn`): the reaction,
    the grading and the recomputed ``next``."""
    data = validate(svc.InjectionReactionIn, _json_object(body))
    with lookup_as_404():
        return svc.record_reaction_to_last_injection(
            registry_of(request),
            actor_of(request),
            patient_id,
            course_id,
            data,
            idempotency_key=idempotency_key,
        )
