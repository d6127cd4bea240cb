"""Rapid drug desensitization pages and API.

Plan a protocol (``services.protocols.plan_desensitization``), run the session step by step with clock times
(``services.records.record_step``), record a breakthrough reaction at a step and show the re-planned protocol
(``services.protocols.replan_desensitization``), print pharmacy and nursing sheets (``immunoplan.sheets``).

The session stores the planning request and the plan shown; the plan is regenerated from the request (same
reference-data version) to re-plan after a reaction, so what is shown is always what the engine computes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from immunoplan.errors import InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import models as m
from immunoplan.services import protocols, records
from immunoplan.web import forms
from immunoplan.web.auth import permit
from immunoplan.web.deps import actor_of, patient_or_404, registry_of, today
from immunoplan.web.rendering import is_htmx, render

router = APIRouter()

PLAN_FIELDS = (
    "drug",
    "dose_mg",
    "bag_volume_ml",
    "final_rate_ml_h",
    "bags",
    "step_minutes",
    "start",
    "stock_mg_ml",
    "override_reason",
)
SEVERITIES = ("mild", "moderate", "severe")  # Brown 2004 grades, as used by the breakthrough rules
SYMPTOMS = ("flushing", "urticaria", "pruritus", "respiratory", "gastrointestinal", "hypotension")
SHEETS = {
    "rdd": "Full protocol",
    "rdd-pharmacy": "Pharmacy preparation sheet",
    "rdd-nursing": "Nursing sheet",
}


def _plan_request(f: forms.FormState) -> dict[str, Any]:
    req: dict[str, Any] = {
        "drug": f.parse("drug", forms.required("drug")),
        "dose_mg": f.parse("dose_mg", forms.number_text("dose_mg")),
        "bag_volume_ml": f.parse("bag_volume_ml", forms.number_text("bag_volume_ml")),
        "final_rate_ml_h": f.parse("final_rate_ml_h", forms.number_text("final_rate_ml_h")),
        "bags": f.parse("bags", lambda t: int(forms.choice("bags", ("1", "2", "3", "4"))(t or "3"))),
        "step_minutes": f.parse("step_minutes", forms.number_text("step_minutes", optional=True)),
        "start": f.parse("start", lambda t: t or None),
        "stock_mg_ml": f.parse("stock_mg_ml", forms.number_text("stock_mg_ml", optional=True)),
        "override_reason": f.parse("override_reason", lambda t: t or None),
    }
    return {k: v for k, v in req.items() if v is not None}


def plan(req: dict[str, Any]) -> protocols.DesensitizationResult:
    return protocols.plan_desensitization(**req)


def _form_context(request: Request, patient_id: int, f: forms.FormState) -> dict[str, Any]:
    with registry_of(request).session() as s:
        pseudo = patient_or_404(s, patient_id).pseudo_id
    return {
        "title": f"Plan desensitization · {pseudo}",
        "patient_id": patient_id,
        "pseudo_id": pseudo,
        "form": f,
    }


@router.get(
    "/patients/{patient_id}/desensitization/new",
    dependencies=[permit("desensitization.plan")],
    include_in_schema=False,
)
async def plan_form(request: Request, patient_id: int) -> Response:
    f = forms.FormState(
        {"bag_volume_ml": "250", "bags": "3", "session_on": today().isoformat(), "start": "09:00"}
    )
    return render(request, "desens_new.html", _form_context(request, patient_id, f))


def create_session(request: Request, pseudo_id: str, session_on: date, req: dict[str, Any]) -> int:
    """Create the desensitization course and its session (two audited use cases) and return the session id."""
    result = plan(req)
    data = to_jsonable(result)
    reg, actor = registry_of(request), actor_of(request)
    course = records.plan_course(
        reg,
        actor,
        pseudo_id=pseudo_id,
        kind="drug_desensitization",
        drug=req["drug"],
        started_on=session_on,
        regimen=data.get("scheme"),
        target_dose=req["dose_mg"],
        dose_unit="mg",
        plan=data,
        basis=data.get("basis"),
    )
    sess = records.start_desensitization(
        reg,
        actor,
        course_id=course["id"],
        session_on=session_on,
        drug=req["drug"],
        target_dose_mg=req["dose_mg"],
        protocol=data.get("scheme"),
        plan={"request": req, "result": data},
        basis=data.get("basis"),
    )
    return int(sess["id"])


@router.post(
    "/patients/{patient_id}/desensitization",
    dependencies=[permit("desensitization.plan")],
    include_in_schema=False,
)
async def plan_submit(request: Request, patient_id: int) -> Response:
    f = await forms.read_form(request)
    context = _form_context(request, patient_id, f)
    req = _plan_request(f)
    session_on = f.parse("session_on", forms.date_field("session_on"))
    preview = f.get("action") == "preview"
    result = None
    if f.ok:
        try:
            result = plan(req)
        except InvalidInput as exc:
            f.fail(exc, known=PLAN_FIELDS)
    if result is None:
        return render(
            request, "desens_new.html", context, status_code=422, block="form" if is_htmx(request) else None
        )
    if preview:
        context["preview"] = to_jsonable(result)
        return render(request, "desens_new.html", context, block="preview" if is_htmx(request) else None)
    assert session_on is not None
    sid = create_session(request, context["pseudo_id"], session_on, req)
    return RedirectResponse(f"/desensitization/{sid}", status_code=303)


# ---------------------------------------------------------------------------------------------- the session


def _load(request: Request, session_id: int) -> dict[str, Any]:
    with registry_of(request).session() as s:
        sess = s.get(m.DesensitizationSession, session_id)
        if sess is None:
            raise HTTPException(404, f"no desensitization session {session_id}")
        p = s.get(m.Patient, sess.patient_id)
        steps = s.scalars(
            select(m.DesensitizationStep).where(m.DesensitizationStep.session_id == sess.id)
        ).all()
        step_ids = {st.id: st.step_no for st in steps}
        reactions = s.scalars(
            select(m.Reaction).where(m.Reaction.desensitization_step_id.in_(list(step_ids) or [-1]))
        ).all()
        return {
            "id": sess.id,
            "patient_id": sess.patient_id,
            "pseudo_id": p.pseudo_id if p else "",
            "session_on": sess.session_on,
            "drug": sess.drug,
            "protocol": sess.protocol,
            "request": (sess.plan or {}).get("request", {}),
            "result": (sess.plan or {}).get("result", {}),
            "recorded": {
                st.step_no: {
                    "id": st.id,
                    "status": st.status,
                    "started_at": st.started_at,
                    "cumulative_dose_mg": st.cumulative_dose_mg,
                }
                for st in steps
            },
            "reactions": [
                {
                    "step": step_ids.get(r.desensitization_step_id),
                    "grade": r.grade,
                    "scale": r.scale,
                    "findings": r.findings or [],
                    "onset_at": r.onset_at,
                }
                for r in reactions
            ],
        }


def _replans(sess: dict[str, Any]) -> list[dict[str, Any]]:
    """The re-planned protocol after each recorded breakthrough reaction (regenerated, never stored stale)."""
    if not sess["reactions"] or not sess["request"]:
        return []
    base = plan(sess["request"])
    out = []
    for r in sess["reactions"]:
        if r["step"] is None or r["grade"] not in SEVERITIES:
            continue
        rp = protocols.replan_desensitization(
            base, reaction_step=r["step"], severity=r["grade"], symptoms=tuple(r["findings"])
        )
        out.append(to_jsonable(rp))
    return out


def _session_context(request: Request, session_id: int, **extra: Any) -> dict[str, Any]:
    sess = _load(request, session_id)
    ctx = {
        "title": f"Desensitization · {sess['pseudo_id']}",
        "next_step": next_step(sess),
        "stopped": any(r["status"] != "given" for r in sess["recorded"].values()),
        "s": sess,
        "r": sess["result"],
        "replans": _replans(sess),
        "severities": SEVERITIES,
        "symptoms": SYMPTOMS,
        "sheets": SHEETS,
        "errors": {},
    }
    ctx.update(extra)
    return ctx


@router.get(
    "/desensitization/{session_id}", dependencies=[permit("desensitization.sheets")], include_in_schema=False
)
async def session_page(request: Request, session_id: int) -> Response:
    return render(request, "desens_session.html", _session_context(request, session_id))


def _step(sess: dict[str, Any], step_no: int) -> dict[str, Any]:
    steps = sess["result"].get("steps", [])
    if not 1 <= step_no <= len(steps):
        raise InvalidInput("step_no", f"no step {step_no}", f"1-{len(steps)}")
    return steps[step_no - 1]


def next_step(sess: dict[str, Any]) -> int | None:
    """The first step of the plan not yet recorded (None when all are)."""
    n = len(sess["result"].get("steps", []))
    return next((i for i in range(1, n + 1) if i not in sess["recorded"]), None)


def mark_step(request: Request, session_id: int, step_no: int, status: str = "given") -> int:
    """Record a step of the stored plan (dose, bag, rate, minutes as planned) at the current time."""
    sess = _load(request, session_id)
    if not sess["result"].get("dosing_allowed", False):
        raise InvalidInput(
            "step_no",
            "this plan uses UNVERIFIED data and has no recorded override: it cannot be "
            "given (re-plan with an override reason)",
        )
    if step_no in sess["recorded"] and (status != "given" or sess["recorded"][step_no]["status"] == "given"):
        return int(sess["recorded"][step_no]["id"])  # already recorded: idempotent
    st = _step(sess, step_no)
    if status == "given":
        if any(r["status"] != "given" for r in sess["recorded"].values()):
            raise InvalidInput(
                "step_no",
                "a breakthrough reaction stopped this protocol: follow the re-planned "
                "protocol shown below (its steps are not recorded here)",
            )
        expected = next_step(sess)
        if step_no != expected:
            raise InvalidInput(
                "step_no", f"steps are given in order: the next step is {expected}", str(expected)
            )
    row = records.record_step(
        registry_of(request),
        actor_of(request),
        session_id=session_id,
        step_no=step_no,
        dose_mg=st["dose_mg"],
        bag=st["bag"],
        rate_ml_h=st["rate_ml_h"],
        minutes=st["minutes"],
        started_at=datetime.now(UTC),
        status=status,
    )
    return int(row["id"])


@router.post(
    "/desensitization/{session_id}/steps/{step_no}",
    dependencies=[permit("desensitization.record")],
    include_in_schema=False,
)
async def step_given(request: Request, session_id: int, step_no: int) -> Response:
    errors = {}
    try:
        mark_step(request, session_id, step_no)
    except InvalidInput as exc:
        errors["steps"] = forms.message(exc)
    ctx = _session_context(request, session_id, errors=errors)
    return render(
        request,
        "desens_session.html",
        ctx,
        status_code=422 if errors else 200,
        block="steps" if is_htmx(request) else None,
    )


def record_breakthrough(
    request: Request, session_id: int, step_no: int, severity: str, symptoms: list[str]
) -> None:
    sess = _load(request, session_id)
    _step(sess, step_no)
    if severity not in SEVERITIES:
        raise InvalidInput("severity", f"unknown value {severity!r}", ", ".join(SEVERITIES))
    bad = [x for x in symptoms if x not in SYMPTOMS]
    if bad:
        raise InvalidInput("symptoms", f"unknown symptom {bad[0]!r}", ", ".join(SYMPTOMS))
    base = plan(sess["request"])
    protocols.replan_desensitization(base, reaction_step=step_no, severity=severity, symptoms=tuple(symptoms))
    step_id = (sess["recorded"].get(step_no) or {}).get("id")
    if step_id is None:
        step_id = mark_step(request, session_id, step_no, status="stopped")
    records.record_reaction(
        registry_of(request),
        actor_of(request),
        pseudo_id=sess["pseudo_id"],
        kind="systemic",
        grade=severity,
        scale="Brown",
        scale_version="2004",
        findings=symptoms,
        onset_at=datetime.now(UTC),
        desensitization_step_id=step_id,
    )


@router.post(
    "/desensitization/{session_id}/reactions",
    dependencies=[permit("desensitization.record")],
    include_in_schema=False,
)
async def breakthrough(request: Request, session_id: int) -> Response:
    form = await request.form()
    errors: dict[str, str] = {}
    try:
        step_no = int(str(form.get("step_no", "")) or "0")
    except ValueError:
        step_no = 0
    try:
        record_breakthrough(
            request,
            session_id,
            step_no,
            str(form.get("severity", "")),
            [str(x) for x in form.getlist("symptoms")],
        )
    except InvalidInput as exc:
        errors[exc.field] = forms.message(exc)
    ctx = _session_context(request, session_id, errors=errors)
    return render(
        request,
        "desens_session.html",
        ctx,
        status_code=422 if errors else 200,
        block="replan" if is_htmx(request) else None,
    )


@router.get(
    "/desensitization/{session_id}/sheets/{sheet}",
    dependencies=[permit("desensitization.sheets")],
    include_in_schema=False,
)
async def sheet(
    request: Request, session_id: int, sheet: str, format: Literal["html", "pdf"] = "html"
) -> Response:
    """Printable pharmacy / nursing / full sheets (``immunoplan.sheets``), HTML or PDF."""
    from immunoplan.sheets.render import render_html, render_pdf

    if sheet not in SHEETS:
        raise HTTPException(404, f"no sheet {sheet!r}")
    data = _load(request, session_id)["result"]
    if not data.get("steps"):
        raise HTTPException(404, "this session has no stored plan to print")
    if format == "pdf":
        return Response(
            render_pdf(sheet, data),
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{sheet}-{session_id}.pdf"'},
        )
    return HTMLResponse(render_html(sheet, data))


# ------------------------------------------------------------------------------------------------- JSON API


class DesensitizationIn(BaseModel):
    """Planning request (names as in ``services.protocols.plan_desensitization``)."""

    drug: str = Field(min_length=1, max_length=120)
    dose_mg: float = Field(gt=0, le=1e6)
    bag_volume_ml: float = Field(gt=0, le=5000)
    final_rate_ml_h: float = Field(gt=0, le=5000)
    bags: int = Field(3, ge=1, le=4)
    step_minutes: float | None = Field(None, gt=0, le=1440)
    start: str | None = Field(None, max_length=20, description="HH:MM")
    stock_mg_ml: float | None = Field(None, gt=0, le=1e6)
    override_reason: str | None = Field(None, max_length=500)


def _req(body: DesensitizationIn) -> dict[str, Any]:
    return {
        k: (repr(v) if isinstance(v, float) else v) for k, v in body.model_dump(exclude_none=True).items()
    }


@router.post(
    "/api/desensitization/plan", dependencies=[permit("desensitization.plan")], tags=["desensitization"]
)
def api_plan(body: DesensitizationIn) -> dict[str, Any]:
    """Compute a protocol (bags, steps with clock times, preparation, checklist, basis); stores nothing."""
    return to_jsonable(plan(_req(body)))


class SessionIn(DesensitizationIn):
    session_on: date


@router.post(
    "/api/patients/{patient_id}/desensitization",
    dependencies=[permit("desensitization.plan")],
    tags=["desensitization"],
    status_code=201,
)
def api_start(request: Request, patient_id: int, body: SessionIn) -> dict[str, Any]:
    """Plan and open a desensitization session for a patient."""
    with registry_of(request).session() as s:
        pseudo = patient_or_404(s, patient_id).pseudo_id
    req = _req(body)
    req.pop("session_on")
    sid = create_session(request, pseudo, body.session_on, req)
    return to_jsonable(_load(request, sid))


@router.get(
    "/api/desensitization/{session_id}",
    dependencies=[permit("desensitization.sheets")],
    tags=["desensitization"],
)
def api_session(request: Request, session_id: int) -> dict[str, Any]:
    """A session: stored plan, steps recorded, reactions and the re-planned protocol after each."""
    sess = _load(request, session_id)
    return to_jsonable(
        {**sess, "recorded": {str(k): v for k, v in sess["recorded"].items()}, "replans": _replans(sess)}
    )


class StepIn(BaseModel):
    step_no: int = Field(ge=1, le=100)


@router.post(
    "/api/desensitization/{session_id}/steps",
    dependencies=[permit("desensitization.record")],
    tags=["desensitization"],
)
def api_step(request: Request, session_id: int, body: StepIn) -> dict[str, Any]:
    """Mark a step of the plan given now."""
    _load(request, session_id)
    return {"step_id": mark_step(request, session_id, body.step_no)}


class BreakthroughIn(BaseModel):
    step_no: int = Field(ge=1, le=100)
    severity: Literal["mild", "moderate", "severe"]
    symptoms: list[
        Literal["flushing", "urticaria", "pruritus", "respiratory", "gastrointestinal", "hypotension"]
    ] = []


@router.post(
    "/api/desensitization/{session_id}/reactions",
    dependencies=[permit("desensitization.record")],
    tags=["desensitization"],
)
def api_breakthrough(request: Request, session_id: int, body: BreakthroughIn) -> dict[str, Any]:
    """Record a breakthrough reaction at a step; returns the re-planned protocol."""
    record_breakthrough(request, session_id, body.step_no, body.severity, list(body.symptoms))
    return {"replans": _replans(_load(request, session_id))}
