"""Rapid drug desensitization pages and API: parse the input into the shared models of
``services.records.desensitization``, call one use case, render.

Plan (preview, then open the session: ``start_session``), run it step by step (``mark_step``), record a
breakthrough reaction at a step (``record_breakthrough``: the protocol stops and the re-planned continuation
is shown and given like the others), finish it (``finish_session``), print pharmacy and nursing sheets
(``immunoplan.sheets``). The rules are the service's (``clinical.desensitization.session``).

Every form carries a hidden idempotency key; a successful POST answers 303 to the session page (a reload
never re-posts); a refusal shows its message on the page (422 invalid input, 409 conflict).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from immunoplan import reference
from immunoplan.clinical import vocabularies
from immunoplan.clinical.desensitization import session as rules
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.reference import limits
from immunoplan.services.inputs import validate, validate_form
from immunoplan.services.records import desensitization as svc
from immunoplan.services.records.desensitization.inputs import VITAL_SIGN_FIELDS
from immunoplan.web import forms
from immunoplan.web.auth import permit
from immunoplan.web.deps import actor_of, conflict_message, patient_or_404, registry_of, today
from immunoplan.web.rendering import is_htmx, render

router = APIRouter()

SHEETS = {
    "rdd": "Full protocol",
    "rdd-pharmacy": "Pharmacy preparation sheet",
    "rdd-nursing": "Nursing sheet",
}
#: planning-form fields a link may prefill (the course page's "plan this cycle" links), nothing is saved
PREFILL = ("drug", "dose_mg", "bags", "bag_volume_ml", "final_rate_ml_h", "cycle_choice", "from_session_id")
#: form fields that are not part of an input model
NOT_INPUT = (forms.IDEMPOTENCY_FIELD, "action")
#: treatment rows on the reaction form (fields ``tr_<drug|dose|unit|route|given_at>_<row>``)
TREATMENT_ROWS = 3
TREATMENT_PARTS = ("drug", "dose", "unit", "route", "given_at")
#: vital signs on the reaction and baseline forms: (field, label, unit)
VITAL_FIELDS = tuple((name, limits.limit(name).label, limits.limit(name).unit) for name in VITAL_SIGN_FIELDS)


def _treatment_rows(raw: dict[str, Any]) -> dict[str, Any]:
    """The reaction form's treatment rows as ``treatments`` (a row with any field filled in; rows are
    numbered as on the form, so an error names ``treatments.<row>.<field>``). Other ``tr_`` names are left
    for the model to refuse."""
    rows: dict[int, dict[str, Any]] = {}
    for i in range(TREATMENT_ROWS):
        row = {part: raw.pop(f"tr_{part}_{i}", "") for part in TREATMENT_PARTS}
        if any(isinstance(v, str) and v.strip() for v in row.values()):
            rows[i] = row
    if rows:
        if sorted(rows) != list(range(len(rows))):  # keep the row numbers the page shows
            first_empty = next(i for i in range(TREATMENT_ROWS) if i not in rows)
            raise InvalidInput(
                f"treatments.{first_empty}.drug", "fill the treatment rows from the first one", "drug"
            )
        raw["treatments"] = [rows[i] for i in sorted(rows)]
    return raw


def _fields(f: forms.FormState, **extra: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {k: v for k, v in f.raw.items() if k not in NOT_INPUT and not k.endswith("[]")}
    for k in list(raw):
        if f"{k}[]" in f.raw:  # a multi-valued field (checkboxes)
            raw[k] = [x for x in f.raw[f"{k}[]"].split(",") if x]
    raw.update(extra)
    return raw


def _message(exc: InvalidInput | Conflict) -> str:
    if isinstance(exc, Conflict):
        return conflict_message(exc)
    return forms.message(exc)


# ---------------------------------------------------------------------------------------------- planning


def _form_context(request: Request, patient_id: int, f: forms.FormState) -> dict[str, Any]:
    pseudo = patient_or_404(request, patient_id)["pseudo_id"]
    return {
        "title": f"Plan desensitization · {pseudo}",
        "patient_id": patient_id,
        "pseudo_id": pseudo,
        "form": f,
        "premedication_choices": [
            (r["id"], r["name"]) for r in reference.load("rdd_premedication")["regimens"]
        ],
    }


@router.get(
    "/patients/{patient_id}/desensitization/new",
    dependencies=[permit("desensitization.plan")],
    include_in_schema=False,
)
async def plan_form(request: Request, patient_id: int) -> Response:
    """The planning form; the course page's next-cycle links prefill it (``PREFILL`` query parameters)."""
    defaults = {"bag_volume_ml": "250", "bags": "3", "session_on": today().isoformat(), "start": "09:00"}
    defaults.update({k: v for k, v in request.query_params.items() if k in PREFILL and v})
    f = forms.FormState(defaults)
    return render(request, "desens_new.html", _form_context(request, patient_id, f))


@router.post(
    "/patients/{patient_id}/desensitization",
    dependencies=[permit("desensitization.plan")],
    include_in_schema=False,
)
async def plan_submit(request: Request, patient_id: int) -> Response:
    """Preview the plan (stores nothing) or open the session (``start_session``) and go to its page."""
    f = await forms.read_form(request)
    context = _form_context(request, patient_id, f)
    preview = f.get("action") == "preview"
    raw = _fields(f, patient_id=patient_id)
    model, errors = validate_form(svc.SessionStartIn, raw)
    f.errors.update(errors)
    status = 422
    if model is not None:
        try:
            if preview:
                context["preview"] = to_jsonable(svc.plan_session(model.plan_in()))
                return render(
                    request, "desens_new.html", context, block="preview" if is_htmx(request) else None
                )
            done = svc.start_session(
                registry_of(request),
                actor_of(request),
                model,
                idempotency_key=forms.idempotency_key(request, f),
            )
            return RedirectResponse(f"/desensitization/{done['session_id']}", status_code=303)
        except InvalidInput as exc:
            f.fail(exc, known=tuple(svc.SessionStartIn.model_fields))
        except Conflict as exc:
            f.errors["form"] = _message(exc)
            status = 409
    return render(
        request,
        "desens_new.html",
        context,
        status_code=status,
        block="form" if is_htmx(request) else None,
    )


# ---------------------------------------------------------------------------------------------- the session


def _view(request: Request, session_id: int) -> dict[str, Any]:
    try:
        return svc.session_view(registry_of(request), session_id)
    except InvalidInput:
        raise HTTPException(404, f"no desensitization session {session_id}") from None


def _session_context(request: Request, session_id: int, **extra: Any) -> dict[str, Any]:
    v = _view(request, session_id)
    options = reference.load("rdd_breakthrough")["options"]
    ctx = {
        "title": f"Desensitization · {v['pseudo_id']}",
        "s": v,
        "r": v["result"],
        "severities": vocabularies.BROWN_SEVERITIES,
        "finding_groups": _finding_groups(),
        "scales": vocabularies.BREAKTHROUGH_SCALES,
        "phenotypes": vocabularies.REACTION_PHENOTYPES,
        "bronchodilator_responses": vocabularies.BRONCHODILATOR_RESPONSES,
        "treatment_units": vocabularies.TREATMENT_UNITS,
        "treatment_routes": vocabularies.TREATMENT_ROUTES,
        "treatment_rows": TREATMENT_ROWS,
        "vital_fields": VITAL_FIELDS,
        "baseline_fields": ("tryptase_ng_ml", "tryptase_at", *(k for k, _, _ in VITAL_FIELDS)),
        "brown_numeric": reference.load("grading_brown2004")["severe_numeric_criteria"],
        "statuses": rules.STEP_STATUSES,
        "outcomes": rules.OUTCOMES,
        "options": [(o["id"], o["text"]) for o in options],
        "reaction_steps": svc.reaction_steps(v),
        "sheets": SHEETS,
        "errors": {},
        "message": None,
        "sent": {"form": None, "values": {}, "findings": []},
    }
    ctx.update(extra)
    return ctx


def _finding_groups() -> list[tuple[str, list[str]]]:
    """The structured findings (``grading_symptoms`` codes) grouped as Brown 2004 lists them
    (``grading_brown2004``), the rest after: the form shows each once."""
    brown = reference.load("grading_brown2004")
    seen: set[str] = set()
    groups: list[tuple[str, list[str]]] = []
    for title, features in (
        ("Skin (Brown mild)", brown["grades"]["mild"]["features"]),
        ("Brown moderate", brown["grades"]["moderate"]["features"]),
        (
            "Brown severe",
            brown["grades"]["severe"]["features"] + brown["severe_numeric_criteria"]["features"],
        ),
        ("Other", list(vocabularies.REACTION_SYMPTOMS)),
    ):
        codes = [c for c in features if c in vocabularies.REACTION_SYMPTOMS and c not in seen]
        seen.update(codes)
        groups.append((title, codes))
    return groups


@router.get(
    "/desensitization/{session_id}", dependencies=[permit("desensitization.sheets")], include_in_schema=False
)
async def session_page(request: Request, session_id: int) -> Response:
    return render(request, "desens_session.html", _session_context(request, session_id))


def _sent(block: str, raw: dict[str, str]) -> dict[str, Any]:
    """What the refused form held, to show it again as typed (``form`` names the form's block)."""
    findings = raw.get("findings[]", raw.get("findings", ""))
    return {"form": block, "values": raw, "findings": [x for x in findings.split(",") if x]}


def _refused(
    request: Request, session_id: int, exc: InvalidInput | Conflict, block: str, raw: dict[str, str]
) -> Response:
    """The session page with the refusal's message (422 invalid input, 409 conflict) and the refused form
    filled in as it was typed; nothing was saved."""
    status = 409 if isinstance(exc, Conflict) else 422
    ctx = _session_context(
        request, session_id, errors={exc.field: _message(exc)}, message=_message(exc), sent=_sent(block, raw)
    )
    return render(
        request, "desens_session.html", ctx, status_code=status, block=block if is_htmx(request) else None
    )


async def _write(
    request: Request,
    session_id: int,
    model: type[Any],
    use_case: Any,
    block: str,
    shape: Any = None,
    **extra: Any,
) -> Response:
    f = await forms.read_form(request)
    _view(request, session_id)  # 404 for an unknown session
    try:
        raw = _fields(f, session_id=session_id, **extra)
        inp = validate(model, shape(raw) if shape is not None else raw)
        use_case(
            registry_of(request), actor_of(request), inp, idempotency_key=forms.idempotency_key(request, f)
        )
    except (InvalidInput, Conflict) as exc:
        return _refused(request, session_id, exc, block, f.raw)
    if is_htmx(request):
        return render(request, "desens_session.html", _session_context(request, session_id), block=block)
    return RedirectResponse(f"/desensitization/{session_id}", status_code=303)


@router.post(
    "/desensitization/{session_id}/steps/{step_no}",
    dependencies=[permit("desensitization.record")],
    include_in_schema=False,
)
async def step_given(request: Request, session_id: int, step_no: int) -> Response:
    """Mark a step (given by default) at the time entered, else now."""
    return await _write(request, session_id, svc.StepIn, svc.mark_step, "steps", step_no=step_no)


@router.post(
    "/desensitization/{session_id}/reactions",
    dependencies=[permit("desensitization.record")],
    include_in_schema=False,
)
async def breakthrough(request: Request, session_id: int) -> Response:
    """Record a breakthrough reaction at a step (findings, vital signs, tryptase, treatments given): the
    protocol stops and the re-plan is shown."""
    return await _write(
        request, session_id, svc.BreakthroughIn, svc.record_breakthrough, "replan", shape=_treatment_rows
    )


@router.post(
    "/desensitization/{session_id}/baseline",
    dependencies=[permit("desensitization.record")],
    include_in_schema=False,
)
async def baseline(request: Request, session_id: int) -> Response:
    """Record the session's baseline tryptase and vital signs."""
    return await _write(request, session_id, svc.BaselineIn, svc.record_baseline, "baseline")


@router.post(
    "/desensitization/{session_id}/finish",
    dependencies=[permit("desensitization.record")],
    include_in_schema=False,
)
async def finish(request: Request, session_id: int) -> Response:
    """Finish the session: completed (with or without reactions) or stopped."""
    return await _write(request, session_id, svc.FinishIn, svc.finish_session, "finish")


@router.get(
    "/desensitization/{session_id}/sheets/{sheet}",
    dependencies=[permit("desensitization.sheets")],
    include_in_schema=False,
)
async def sheet(
    request: Request,
    session_id: int,
    sheet: str,
    format: Literal["html", "pdf"] = "html",
    prepared_at: str | None = None,
) -> Response:
    """Printable pharmacy / nursing / full sheets (``immunoplan.sheets``), HTML or PDF, with the patient
    header, drug-allergy alert, cycle, premedication and the session's reactions (``sheet_data``);
    ``?prepared_at=YYYY-MM-DDTHH:MM`` (clinic time) prints the bags' use-by time."""
    from immunoplan import clock
    from immunoplan.services.records.desensitization.sheets import sheet_data
    from immunoplan.sheets.render import render_html, render_pdf

    if sheet not in SHEETS:
        raise HTTPException(404, f"no sheet {sheet!r}")
    _view(request, session_id)  # 404 for an unknown session
    try:
        data = sheet_data(registry_of(request), session_id)
        prepared = clock.parse_local("prepared_at", prepared_at) if prepared_at else None
    except InvalidInput as exc:
        if exc.field == "prepared_at":
            raise HTTPException(422, forms.message(exc)) from None
        raise HTTPException(404, "this session has no stored plan to print") from None
    if format == "pdf":
        return Response(
            render_pdf(sheet, data, prepared_at=prepared),
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{sheet}-{session_id}.pdf"'},
        )
    return HTMLResponse(render_html(sheet, data, prepared_at=prepared))


# ------------------------------------------------------------------------------------------------- JSON API


@router.post(
    "/api/desensitization/plan", dependencies=[permit("desensitization.plan")], tags=["desensitization"]
)
def api_plan(body: svc.PlanIn) -> dict[str, Any]:
    """Compute a protocol (bags, steps with clock times, preparation, checklist, basis); stores nothing."""
    return to_jsonable(svc.plan_session(body))  # type: ignore[no-any-return]


@router.post(
    "/api/patients/{patient_id}/desensitization",
    dependencies=[permit("desensitization.plan")],
    tags=["desensitization"],
    status_code=201,
)
def api_start(request: Request, patient_id: int, body: svc.SessionFields) -> dict[str, Any]:
    """Plan and open a desensitization session for a patient (``Idempotency-Key`` header honoured)."""
    patient_or_404(request, patient_id)
    inp = validate(svc.SessionStartIn, {**body.model_dump(exclude_none=True), "patient_id": patient_id})
    done = svc.start_session(
        registry_of(request), actor_of(request), inp, idempotency_key=forms.idempotency_key(request)
    )
    view = svc.view_json(svc.session_view(registry_of(request), int(done["session_id"])))
    return {**view, "replayed": bool(done.get("replayed"))}


@router.get(
    "/api/desensitization/{session_id}",
    dependencies=[permit("desensitization.sheets")],
    tags=["desensitization"],
)
def api_session(request: Request, session_id: int) -> dict[str, Any]:
    """A session: the stored plan, each protocol with its steps' status and clinic-local times, reactions,
    re-plans, the next step and its earliest time."""
    return svc.view_json(_view(request, session_id))  # type: ignore[no-any-return]


def _api_write(
    request: Request, session_id: int, model: type[Any], body: Any, use_case: Any
) -> dict[str, Any]:
    _view(request, session_id)
    inp = validate(model, {**body.model_dump(exclude_none=True), "session_id": session_id})
    out = use_case(
        registry_of(request), actor_of(request), inp, idempotency_key=forms.idempotency_key(request)
    )
    return svc.view_json(out)  # type: ignore[no-any-return]


@router.post(
    "/api/desensitization/{session_id}/steps",
    dependencies=[permit("desensitization.record")],
    tags=["desensitization"],
    status_code=201,
)
def api_step(request: Request, session_id: int, body: svc.StepFields) -> dict[str, Any]:
    """Mark a step (given by default; ``given_at`` clinic time, default now)."""
    out = _api_write(request, session_id, svc.StepIn, body, svc.mark_step)
    return {**out, "step_id": out["id"]}


@router.post(
    "/api/desensitization/{session_id}/reactions",
    dependencies=[permit("desensitization.record")],
    tags=["desensitization"],
    status_code=201,
)
def api_breakthrough(request: Request, session_id: int, body: svc.BreakthroughFields) -> dict[str, Any]:
    """Record a breakthrough reaction at a step; returns the re-plan and its continuation."""
    out = _api_write(request, session_id, svc.BreakthroughIn, body, svc.record_breakthrough)
    return {**out, "replans": svc.view_json(_view(request, session_id))["replans"]}


@router.post(
    "/api/desensitization/{session_id}/baseline",
    dependencies=[permit("desensitization.record")],
    tags=["desensitization"],
    status_code=201,
)
def api_baseline(request: Request, session_id: int, body: svc.BaselineFields) -> dict[str, Any]:
    """Record the session's baseline: tryptase (ng/mL) with its time, vital signs."""
    return _api_write(request, session_id, svc.BaselineIn, body, svc.record_baseline)


@router.post(
    "/api/desensitization/{session_id}/finish",
    dependencies=[permit("desensitization.record")],
    tags=["desensitization"],
    status_code=201,
)
def api_finish(request: Request, session_id: int, body: svc.FinishFields) -> dict[str, Any]:
    """Finish the session: completed, completed-with-reactions or stopped."""
    return _api_write(request, session_id, svc.FinishIn, body, svc.finish_session)
