"""Injection day (nurse).

The dose due with the adjustment rule that fired (``services.protocols.scit_next_dose`` over the course
history); record the injection (``services.records.record_injection``); an observation timer (minutes from the
engine's reference data, 30 for these products); a reaction with guided grading
(``services.protocols.grade_reaction``) recorded with ``services.records.record_reaction``; the next dose is
recomputed from the updated history.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from immunoplan.errors import InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.reference import load
from immunoplan.registry import models as m
from immunoplan.services import protocols, records
from immunoplan.web import forms
from immunoplan.web.auth import permit
from immunoplan.web.deps import actor_of, course_or_404, patient_or_404, registry_of, today
from immunoplan.web.rendering import is_htmx, render

router = APIRouter()

ENGINE_SCALES = ("wao2010", "wao2017", "seed001")  # scales the SCIT adjustment rules read
LOCAL_SIZES = ("up-to-quarter", "larger-than-quarter")  # scit_adjustment vocabulary (LSU rules)
LOCAL_SCALE = "local-size"
BRONCHODILATOR = ("responds", "not-responding", "worsening")
SITES = ("left arm", "right arm")


def symptom_choices() -> list[tuple[str, str, str]]:
    """(code, text, organ system) from reference data ``grading_symptoms``."""
    data = load("grading_symptoms")["symptoms"]
    return [(k, v["text"], v["system"]) for k, v in data.items()]


def infer_regimen(c: m.Course) -> dict[str, str]:
    """Product and regimen ids of ``scit_products`` for a course stored without a web plan (imported or demo
    courses), read from its product/regimen names; empty when they do not name a known schedule."""
    product, regimen = (c.product or "").lower(), (c.regimen or "").lower()
    if "|" in regimen:  # stored by this app: "<product id>|<regimen id>"
        pid, rid = regimen.split("|", 1)
        return {"product": pid, "regimen": rid}
    if "alutard" in product:
        for word, rid in (
            ("cluster", "cluster"),
            ("weekly", "conventional"),
            ("conventional", "conventional"),
        ):
            if word in regimen:
                return {"product": "alutard-sq-hdm", "regimen": rid}
    if "tyrosine" in product and "rush" in regimen:
        return {"product": "hdm-tyrosine-ultrarush", "regimen": "rush"}
    return {}


def _history(s: Any, c: m.Course) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The course history in the engine's format, and the recorded injections for display."""
    plan = c.plan or {}
    req = plan.get("request") or infer_regimen(c)
    injs = s.scalars(
        select(m.Injection)
        .where(m.Injection.course_id == c.id)
        .order_by(m.Injection.given_at, m.Injection.id)
    ).all()
    reactions = s.scalars(
        select(m.Reaction).where(m.Reaction.injection_id.in_([i.id for i in injs] or [-1]))
    ).all()
    by_inj: dict[int, list[m.Reaction]] = {}
    for r in reactions:
        by_inj.setdefault(r.injection_id or -1, []).append(r)
    items, shown = [], []
    for i in injs:
        item: dict[str, Any] = {"date": i.given_at.date().isoformat(), "dose": str(i.dose)}
        for r in by_inj.get(i.id, []):
            if r.kind == "systemic" and r.scale in ENGINE_SCALES and r.grade:
                item["systemic_reaction"] = {"scale": r.scale, "grade": r.grade}
            elif r.kind == "local" and r.scale == LOCAL_SCALE and r.grade in LOCAL_SIZES:
                item["local_reaction"] = r.grade
        items.append(item)
        shown.append(
            {
                "id": i.id,
                "given_at": i.given_at,
                "dose": i.dose,
                "dose_unit": i.dose_unit,
                "vial": i.vial,
                "volume_ml": i.volume_ml,
                "site": i.site,
                "given_by": i.given_by,
                "reactions": [
                    {"kind": r.kind, "grade": r.grade, "scale": r.scale, "findings": r.findings or []}
                    for r in by_inj.get(i.id, [])
                ],
            }
        )
    history = {"product": req.get("product"), "regimen": req.get("regimen"), "injections": items}
    return history, shown


def dose_due(history: dict[str, Any], plan_result: dict[str, Any], on: date) -> dict[str, Any]:
    """The engine's next dose (rule that fired, basis); before any injection, the schedule's first dose."""
    if not history.get("product"):
        return {"kind": "cannot-answer", "warnings": ["this course has no stored SCIT plan"], "rules": []}
    if not history["injections"]:
        visits = plan_result.get("visits") or []
        if not visits:
            return {"kind": "cannot-answer", "warnings": ["the stored plan has no visits"], "rules": []}
        first = visits[0]["injections"][0]
        basis = (plan_result.get("basis") or [None])[0]
        rule = {
            "id": "schedule-first-dose",
            "text": "first dose of the planned schedule",
            "fired": True,
            "dose": first["dose"],
            "basis": basis,
        }
        return {
            "kind": "dose",
            "date": on.isoformat(),
            "phase": visits[0]["phase"],
            "dose": {
                "dose": first["dose"],
                "unit": first["unit"],
                "vial": first["vial"],
                "volume_ml": first["volume_ml"],
            },
            "rule": rule,
            "rules": [rule],
            "next_due": visits[0]["date"],
            "observation_minutes": plan_result.get("observation_minutes"),
            "warnings": [],
        }
    return to_jsonable(protocols.scit_next_dose(history, on))  # type: ignore[no-any-return]


def _context(request: Request, patient_id: int, course_id: int, **extra: Any) -> dict[str, Any]:
    with registry_of(request).session() as s:
        p = patient_or_404(s, patient_id)
        c = course_or_404(s, patient_id, course_id)
        history, shown = _history(s, c)
        plan_result = (c.plan or {}).get("result", {})
        course = {
            "id": c.id,
            "kind": c.kind,
            "product": c.product,
            "next_due_on": c.next_due_on,
            "dose_unit": c.dose_unit,
            "with_omalizumab": c.with_omalizumab,
        }
        omalizumab_given = [
            {"given_at": o.given_at, "dose_mg": o.dose_mg}
            for o in s.scalars(
                select(m.OmalizumabAdministration)
                .where(m.OmalizumabAdministration.course_id == c.id)
                .order_by(m.OmalizumabAdministration.given_at)
            )
        ]
        pseudo = p.pseudo_id
    due = dose_due(history, plan_result, today())
    last = shown[-1] if shown else None
    observation = due.get("observation_minutes") or plan_result.get("observation_minutes")
    timer = None
    if last is not None and observation:
        given = last["given_at"] if last["given_at"].tzinfo else last["given_at"].replace(tzinfo=UTC)
        end = given + timedelta(minutes=int(observation))
        if end > datetime.now(UTC) - timedelta(hours=12):  # only the day's injection gets a live timer
            timer = {"start": given.isoformat(), "minutes": int(observation), "until": end}
    ctx = {
        "title": f"Injection day · {pseudo}",
        "patient_id": patient_id,
        "pseudo_id": pseudo,
        "course": course,
        "due": due,
        "injections": shown,
        "last": last,
        "timer": timer,
        "observation_minutes": observation,
        "symptoms": symptom_choices(),
        "scales": ENGINE_SCALES,
        "local_sizes": LOCAL_SIZES,
        "bronchodilator": BRONCHODILATOR,
        "sites": SITES,
        "form": forms.FormState({}),
        "grading": None,
        "reaction_form": forms.FormState({}),
        "omalizumab_form": forms.FormState({}),
        "omalizumab_message": None,
        "omalizumab_plan": plan_result.get("omalizumab") or {},
        "omalizumab_given": omalizumab_given,
    }
    ctx.update(extra)
    return ctx


PAGE = "/patients/{patient_id}/courses/{course_id}/injection-day"


@router.get(PAGE, dependencies=[permit("injection.record")], include_in_schema=False)
async def injection_day(request: Request, patient_id: int, course_id: int) -> Response:
    return render(request, "injection_day.html", _context(request, patient_id, course_id))


def record(request: Request, patient_id: int, course_id: int, values: dict[str, Any]) -> int:
    """Record an injection; the course's next due date is the engine's, computed with this injection."""
    with registry_of(request).session() as s:
        c = course_or_404(s, patient_id, course_id)
        history, _ = _history(s, c)
        unit = c.dose_unit or ""
    given_at: datetime = values["given_at"]
    next_due = None
    if history.get("product"):
        future = {
            **history,
            "injections": [
                *history["injections"],
                {"date": given_at.date().isoformat(), "dose": values["dose"]},
            ],
        }
        nd = to_jsonable(protocols.scit_next_dose(future, given_at.date()))
        next_due = nd.get("next_due")
    row = records.record_injection(
        registry_of(request),
        actor_of(request),
        course_id=course_id,
        given_at=given_at,
        dose=values["dose"],
        dose_unit=unit or "units",
        volume_ml=values.get("volume_ml"),
        vial=values.get("vial"),
        site=values.get("site"),
        lot=values.get("lot"),
        next_due_on=next_due,
    )
    return int(row["id"])


def _parse_datetime(field: str) -> Any:
    def parse(text: str) -> datetime:
        if not text:
            return datetime.now(UTC)
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidInput(
                field, f"cannot read {text!r} as a date and time", "YYYY-MM-DDTHH:MM"
            ) from None
        return dt if dt.tzinfo else dt.astimezone(UTC)

    return parse


@router.post(
    PAGE.replace("injection-day", "injections"),
    dependencies=[permit("injection.record")],
    include_in_schema=False,
)
async def injection_submit(request: Request, patient_id: int, course_id: int) -> Response:
    f = await forms.read_form(request)
    values = {
        "dose": f.parse("dose", forms.number_text("dose")),
        "volume_ml": f.parse("volume_ml", forms.number_text("volume_ml", optional=True)),
        "vial": f.parse("vial", lambda t: t or None),
        "site": f.parse("site", lambda t: None if t == "" else forms.choice("site", SITES)(t)),
        "lot": f.parse("lot", lambda t: t or None),
        "given_at": f.parse("given_at", _parse_datetime("given_at")),
    }
    if f.ok:
        try:
            record(request, patient_id, course_id, values)
        except InvalidInput as exc:
            f.fail(exc, known=tuple(values))
    ctx = _context(request, patient_id, course_id, form=f if not f.ok else forms.FormState({}))
    return render(
        request,
        "injection_day.html",
        ctx,
        status_code=422 if not f.ok else 200,
        block="day" if is_htmx(request) else None,
    )


def _findings(f: forms.FormState, symptoms: list[str]) -> dict[str, Any]:
    return {
        "symptoms": symptoms,
        "bronchodilator_response": f.parse(
            "bronchodilator_response",
            lambda t: None if t == "" else forms.choice("bronchodilator_response", BRONCHODILATOR)(t),
        ),
        "epinephrine_minutes": f.parse("epinephrine_minutes", forms.number_text("epinephrine_minutes", True)),
        "onset_minutes": f.parse("onset_minutes", forms.number_text("onset_minutes", True)),
    }


def grade(scale: str, findings: dict[str, Any]) -> dict[str, Any]:
    return to_jsonable(protocols.grade_reaction(scale, **findings))  # type: ignore[no-any-return]


async def _reaction_form(request: Request) -> tuple[forms.FormState, list[str]]:
    form = await request.form()
    f = forms.FormState({k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"})
    symptoms = [str(x) for x in form.getlist("symptoms")]
    f.raw["symptoms"] = ",".join(symptoms)
    return f, symptoms


def save_reaction(
    request: Request, patient_id: int, course_id: int, f: forms.FormState, symptoms: list[str]
) -> dict[str, Any] | None:
    """Validate, grade (systemic) and record a reaction to the course's last injection; None if invalid."""
    kind = f.parse("kind", forms.choice("kind", ("local", "systemic")))
    ctx = _context(request, patient_id, course_id)
    last = ctx["last"]
    if last is None:
        f.errors["form"] = "record the injection first: a reaction is linked to the injection that caused it"
        return None
    graded = None
    if kind == "local":
        size = f.parse("local_size", forms.choice("local_size", LOCAL_SIZES))
        grade_value, scale, version, basis = size, LOCAL_SCALE, load("scit_adjustment")["version"], None
    else:
        scale = f.parse("scale", forms.choice("scale", ENGINE_SCALES))
        findings = _findings(f, symptoms)
        if not symptoms:
            f.errors["symptoms"] = "choose at least one symptom"
        if not f.ok:
            return None
        try:
            graded = grade(scale, findings)
        except InvalidInput as exc:
            f.fail(exc, known=("symptoms", "epinephrine_minutes", "onset_minutes", "bronchodilator_response"))
            return None
        grade_value, version, basis = graded["grade"], graded["basis"]["version"], graded["basis"]
    if not f.ok:
        return None
    with registry_of(request).session() as s:
        pseudo = patient_or_404(s, patient_id).pseudo_id
    onset = None
    if f.get("onset_minutes"):
        given = last["given_at"] if last["given_at"].tzinfo else last["given_at"].replace(tzinfo=UTC)
        onset = given + timedelta(minutes=float(f.get("onset_minutes")))
    records.record_reaction(
        registry_of(request),
        actor_of(request),
        pseudo_id=pseudo,
        kind=kind,
        grade=str(grade_value),
        scale=scale,
        scale_version=version,
        findings=symptoms,
        onset_at=onset,
        injection_id=last["id"],
        basis=basis,
    )
    return graded or {"grade": grade_value, "scale": scale}


@router.post(
    PAGE.replace("injection-day", "reactions/grade"),
    dependencies=[permit("injection.record")],
    include_in_schema=False,
)
async def reaction_grade(request: Request, patient_id: int, course_id: int) -> Response:
    """Guided grading: the grade the chosen scale gives for these findings (nothing is saved)."""
    f, symptoms = await _reaction_form(request)
    scale = f.parse("scale", forms.choice("scale", ENGINE_SCALES))
    findings = _findings(f, symptoms)
    graded = None
    if not symptoms:
        f.errors["symptoms"] = "choose at least one symptom"
    if f.ok:
        try:
            graded = grade(scale, findings)
        except InvalidInput as exc:
            f.fail(exc, known=("symptoms",))
    ctx = _context(request, patient_id, course_id, grading=graded, reaction_form=f)
    return render(
        request,
        "injection_day.html",
        ctx,
        status_code=200 if f.ok else 422,
        block="grading" if is_htmx(request) else None,
    )


@router.post(
    PAGE.replace("injection-day", "reactions"),
    dependencies=[permit("injection.record")],
    include_in_schema=False,
)
async def reaction_submit(request: Request, patient_id: int, course_id: int) -> Response:
    f, symptoms = await _reaction_form(request)
    saved = save_reaction(request, patient_id, course_id, f, symptoms)
    ctx = _context(
        request,
        patient_id,
        course_id,
        reaction_form=f if saved is None else forms.FormState({}),
        saved_reaction=saved,
    )
    return render(
        request,
        "injection_day.html",
        ctx,
        status_code=200 if saved is not None else 422,
        block="day" if is_htmx(request) else None,
    )


# ------------------------------------------------------------------------------------------------- JSON API


@router.get(
    "/api/patients/{patient_id}/courses/{course_id}/next-dose",
    dependencies=[permit("injection.record")],
    tags=["injections"],
)
def api_next_dose(request: Request, patient_id: int, course_id: int) -> dict[str, Any]:
    """The dose due today with the adjustment rule that fired and its basis, and the injections so far."""
    ctx = _context(request, patient_id, course_id)
    return to_jsonable({"due": ctx["due"], "injections": ctx["injections"]})


class InjectionIn(BaseModel):
    dose: float = Field(gt=0, le=1e7)
    volume_ml: float | None = Field(None, gt=0, le=10)
    vial: str | None = Field(None, max_length=32)
    site: Literal["left arm", "right arm"] | None = None
    lot: str | None = Field(None, max_length=64)
    given_at: datetime | None = None


@router.post(
    "/api/patients/{patient_id}/courses/{course_id}/injections",
    dependencies=[permit("injection.record")],
    tags=["injections"],
    status_code=201,
)
def api_injection(request: Request, patient_id: int, course_id: int, body: InjectionIn) -> dict[str, Any]:
    """Record an injection; returns its id and the next dose due."""
    values = body.model_dump()
    values["dose"] = repr(body.dose)
    values["volume_ml"] = repr(body.volume_ml) if body.volume_ml is not None else None
    given = body.given_at or datetime.now(UTC)
    values["given_at"] = given if given.tzinfo else given.replace(tzinfo=UTC)
    iid = record(request, patient_id, course_id, values)
    return {"injection_id": iid, "due": _context(request, patient_id, course_id)["due"]}


class ReactionIn(BaseModel):
    kind: Literal["local", "systemic"]
    local_size: Literal["up-to-quarter", "larger-than-quarter"] | None = None
    scale: Literal["wao2010", "wao2017", "seed001"] = "wao2010"
    symptoms: list[str] = Field(default_factory=list, max_length=40)
    bronchodilator_response: Literal["responds", "not-responding", "worsening"] | None = None
    epinephrine_minutes: float | None = Field(None, ge=0, le=1440)
    onset_minutes: float | None = Field(None, ge=0, le=1440)


@router.post(
    "/api/patients/{patient_id}/courses/{course_id}/reactions",
    dependencies=[permit("injection.record")],
    tags=["injections"],
    status_code=201,
)
def api_reaction(request: Request, patient_id: int, course_id: int, body: ReactionIn) -> dict[str, Any]:
    """Grade and record a reaction to the course's last injection; returns the grade and the next dose due."""
    raw = {k: ("" if v is None else str(v)) for k, v in body.model_dump(exclude={"symptoms"}).items()}
    f = forms.FormState(raw)
    saved = save_reaction(request, patient_id, course_id, f, list(body.symptoms))
    if saved is None:
        field, message = next(iter(f.errors.items()))
        raise InvalidInput(field, message)
    return {"grading": saved, "due": _context(request, patient_id, course_id)["due"]}


# ------------------------------------------------------------------------------------------ omalizumab doses


def record_omalizumab(
    request: Request, patient_id: int, course_id: int, dose_mg: str, given_at: datetime
) -> int:
    """Record an omalizumab administration of a course planned with omalizumab (basis: the label dose)."""
    with registry_of(request).session() as s:
        p = patient_or_404(s, patient_id)
        c = course_or_404(s, patient_id, course_id)
        if not c.with_omalizumab:
            raise InvalidInput("course_id", "this course was not planned with omalizumab")
        label = ((c.plan or {}).get("result", {}).get("omalizumab") or {}).get("label_dose") or {}
        pseudo = p.pseudo_id
    row = records.record_omalizumab(
        registry_of(request),
        actor_of(request),
        pseudo_id=pseudo,
        given_at=given_at,
        dose_mg=dose_mg,
        course_id=course_id,
        interval_weeks=label.get("interval_weeks"),
        basis=label.get("basis"),
    )
    return int(row["id"])


@router.post(
    PAGE.replace("injection-day", "omalizumab"),
    dependencies=[permit("injection.record")],
    include_in_schema=False,
)
async def omalizumab_submit(request: Request, patient_id: int, course_id: int) -> Response:
    f = await forms.read_form(request)
    dose = f.parse("omalizumab_dose_mg", forms.number_text("omalizumab_dose_mg"))
    given_at = f.parse("omalizumab_given_at", _parse_datetime("omalizumab_given_at"))
    message = None
    if f.ok:
        try:
            record_omalizumab(request, patient_id, course_id, dose, given_at)
            message = f"Omalizumab {dose} mg recorded."
        except InvalidInput as exc:
            exc.field = {"dose_mg": "omalizumab_dose_mg", "given_at": "omalizumab_given_at"}.get(
                exc.field, exc.field
            )
            f.fail(exc, known=("omalizumab_dose_mg", "omalizumab_given_at"))
    ctx = _context(request, patient_id, course_id, omalizumab_form=f, omalizumab_message=message)
    return render(
        request,
        "injection_day.html",
        ctx,
        status_code=200 if f.ok else 422,
        block="day" if is_htmx(request) else None,
    )
