"""Plan an immunotherapy course: SCIT schedule (conventional / cluster / rush) with omalizumab pre-treatment
or concurrent dosing on one calendar (``services.protocols.plan_scit_schedule``), stored with
``services.records.plan_course``; the course page shows that calendar."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from immunoplan.errors import InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.reference import load
from immunoplan.registry import models as m
from immunoplan.services import protocols, records
from immunoplan.web import forms, queries
from immunoplan.web.auth import permit
from immunoplan.web.deps import actor_of, course_or_404, patient_or_404, registry_of, today
from immunoplan.web.rendering import is_htmx, render

router = APIRouter()

#: registry course kind for each regimen id of ``scit_products`` (vocabulary mapping, not a clinical number)
KIND_OF_REGIMEN = {"rush": "RIT", "cluster": "cluster", "conventional": "SCIT"}
OMALIZUMAB_MODES = ("none", "pre", "concurrent")
PLAN_FIELDS = (
    "omalizumab_override_reason",
    "product",
    "regimen",
    "start",
    "start_time",
    "maintenance_interval_weeks",
    "omalizumab",
    "omalizumab_lead_weeks",
    "age_years",
    "weight_kg",
    "total_ige_iu_ml",
    "region",
)


def products() -> list[dict[str, Any]]:
    """Products and regimens offered (from reference data ``scit_products``), with their status."""
    data = load("scit_products")
    return [
        {
            "id": pid,
            "name": p["name"],
            "regimens": [
                {"id": rid, "name": r["name"], "status": r["status"]} for rid, r in p["regimens"].items()
            ],
        }
        for pid, p in data["products"].items()
    ]


def product_choices() -> list[tuple[str, str]]:
    out = []
    for p in products():
        for r in p["regimens"]:
            out.append((f"{p['id']}|{r['id']}", f"{p['name']} — {r['name']} [{r['status']}]"))
    return out


def plan_schedule(req: dict[str, Any]) -> dict[str, Any]:
    """The engine's calendar as a dict, plus ``calendar``: SCIT visits and omalizumab doses merged by date."""
    args = {k: v for k, v in req.items() if v not in (None, "")}
    if args.get("omalizumab") == "none":
        args.pop("omalizumab")
    result = to_jsonable(protocols.plan_scit_schedule(**args))
    result["calendar"] = calendar(result)
    return result


def calendar(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One calendar: each date with its SCIT injections and/or omalizumab administration."""
    days: dict[str, dict[str, Any]] = {}
    for v in result.get("visits", []):
        d = days.setdefault(v["date"], {"date": v["date"], "scit": None, "omalizumab": None})
        d["scit"] = v
    for a in (result.get("omalizumab") or {}).get("administrations", []):
        d = days.setdefault(a["date"], {"date": a["date"], "scit": None, "omalizumab": None})
        d["omalizumab"] = a
    return [days[k] for k in sorted(days)]


def _latest_assessment_inputs(s: Any, patient_id: int) -> dict[str, Any]:
    a = s.scalars(
        select(m.RiskAssessment)
        .where(m.RiskAssessment.patient_id == patient_id)
        .order_by(m.RiskAssessment.assessed_at.desc())
    ).first()
    return dict(a.inputs or {}) if a else {}


def _form_context(request: Request, patient_id: int, f: forms.FormState) -> dict[str, Any]:
    with registry_of(request).session() as s:
        p = patient_or_404(s, patient_id)
        pseudo, age = p.pseudo_id, queries.age_years(p, today())
        prior = _latest_assessment_inputs(s, patient_id)
    defaults = {
        "age_years": str(age) if age is not None else str(prior.get("age_years", "")),
        "weight_kg": str(prior.get("weight_kg", "")),
        "total_ige_iu_ml": str(prior.get("total_ige_iu_ml", "")),
        "start": today().isoformat(),
        "omalizumab": "none",
        "region": "us",
    }
    for k, v in defaults.items():
        f.raw.setdefault(k, v)
    return {
        "title": f"Plan immunotherapy · {pseudo}",
        "patient_id": patient_id,
        "pseudo_id": pseudo,
        "form": f,
        "product_choices": product_choices(),
    }


@router.get(
    "/patients/{patient_id}/courses/new", dependencies=[permit("course.plan")], include_in_schema=False
)
async def course_form(request: Request, patient_id: int) -> Response:
    return render(request, "course_new.html", _form_context(request, patient_id, forms.FormState({})))


def _request_from_form(f: forms.FormState) -> dict[str, Any]:
    choice = f.parse(
        "product_regimen", forms.choice("product_regimen", tuple(k for k, _ in product_choices()))
    )
    product, regimen = choice.split("|") if choice else (None, None)
    req = {
        "product": product,
        "regimen": regimen,
        "start": f.parse("start", forms.date_field("start")),
        "start_time": f.parse("start_time", lambda t: t or None),
        "maintenance_interval_weeks": f.parse(
            "maintenance_interval_weeks", forms.number_text("maintenance_interval_weeks", optional=True)
        ),
        "omalizumab": f.parse("omalizumab", forms.choice("omalizumab", OMALIZUMAB_MODES)),
        "omalizumab_lead_weeks": f.parse(
            "omalizumab_lead_weeks", forms.number_text("omalizumab_lead_weeks", optional=True)
        ),
        "age_years": f.parse("age_years", forms.number_text("age_years", optional=True)),
        "weight_kg": f.parse("weight_kg", forms.number_text("weight_kg", optional=True)),
        "total_ige_iu_ml": f.parse("total_ige_iu_ml", forms.number_text("total_ige_iu_ml", optional=True)),
        "region": f.parse("region", forms.choice("region", ("us", "eu"))),
        "omalizumab_override_reason": f.parse("omalizumab_override_reason", lambda t: t or None),
    }
    return req


def save_course(request: Request, pseudo_id: str, req: dict[str, Any], result: dict[str, Any]) -> int:
    """Store the course and the calendar shown (audited); the first SCIT visit is the first due date."""
    if result.get("kind") != "schedule":
        raise InvalidInput(
            "product_regimen",
            "no verified schedule for this regimen: cannot plan it",
            "a regimen whose status is not UNVERIFIED",
        )
    mode = req.get("omalizumab") or "none"
    first = result["visits"][0]["injections"][0] if result.get("visits") else {}
    row = records.plan_course(
        registry_of(request),
        actor_of(request),
        pseudo_id=pseudo_id,
        kind=KIND_OF_REGIMEN.get(req["regimen"], "SCIT"),
        product=result.get("product_name"),
        allergen="house dust mite",
        regimen=f"{req['product']}|{req['regimen']}",
        with_omalizumab=mode != "none",
        omalizumab_timing=mode,
        started_on=result.get("start"),
        dose_unit=first.get("unit"),
        plan={"request": to_jsonable(req), "result": result},
        basis=result.get("basis"),
    )
    return int(row["id"])


@router.post("/patients/{patient_id}/courses", dependencies=[permit("course.plan")], include_in_schema=False)
async def course_submit(request: Request, patient_id: int) -> Response:
    f = await forms.read_form(request)
    context = _form_context(request, patient_id, f)
    req = _request_from_form(f)
    result = None
    if f.ok:
        try:
            result = plan_schedule(req)
            if f.get("action") != "preview":
                cid = save_course(request, context["pseudo_id"], req, result)
                return RedirectResponse(f"/patients/{patient_id}/courses/{cid}", status_code=303)
        except InvalidInput as exc:
            if exc.field in ("product", "regimen"):
                exc.field = "product_regimen"
            f.fail(exc, known=PLAN_FIELDS + ("product_regimen",))
    if not f.ok:
        return render(request, "course_new.html", context, status_code=422)
    context["preview"] = result
    return render(request, "course_new.html", context, block="preview" if is_htmx(request) else None)


@router.get(
    "/patients/{patient_id}/courses/{course_id}",
    dependencies=[permit("patient.read")],
    include_in_schema=False,
)
async def course_page(request: Request, patient_id: int, course_id: int) -> Response:
    with registry_of(request).session() as s:
        p = patient_or_404(s, patient_id)
        c = course_or_404(s, patient_id, course_id)
        plan = c.plan or {}
        course = {
            "id": c.id,
            "kind": c.kind,
            "product": c.product,
            "status": c.status,
            "drug": c.drug,
            "with_omalizumab": c.with_omalizumab,
            "omalizumab_timing": c.omalizumab_timing,
            "next_due_on": c.next_due_on,
            "started_on": c.started_on,
        }
        pseudo = p.pseudo_id
        sessions = (
            [
                d.id
                for d in s.scalars(
                    select(m.DesensitizationSession.id).where(m.DesensitizationSession.course_id == c.id)
                )
            ]
            if c.kind == "drug_desensitization"
            else []
        )
    result = plan.get("result") if isinstance(plan, dict) else None
    return render(
        request,
        "course.html",
        {
            "title": f"Course · {pseudo}",
            "patient_id": patient_id,
            "pseudo_id": pseudo,
            "course": course,
            "r": result or {},
            "sessions": sessions,
        },
    )


# ------------------------------------------------------------------------------------------------- JSON API


class CourseIn(BaseModel):
    """SCIT course request (names as in ``services.protocols.plan_scit_schedule``)."""

    product: str = Field(max_length=64)
    regimen: str = Field(max_length=32)
    start: date
    start_time: str | None = Field(None, max_length=5, pattern=r"^\d{2}:\d{2}$")
    maintenance_interval_weeks: int | None = Field(None, ge=1, le=52)
    omalizumab: Literal["none", "pre", "concurrent"] = "none"
    omalizumab_lead_weeks: int | None = Field(None, ge=1, le=52)
    age_years: float | None = Field(None, ge=0, le=130)
    weight_kg: float | None = Field(None, gt=0, le=500)
    total_ige_iu_ml: float | None = Field(None, ge=0, le=1e7)
    region: Literal["us", "eu"] = "us"
    omalizumab_override_reason: str | None = Field(None, max_length=500)
    save: bool = False


@router.post("/api/patients/{patient_id}/courses", dependencies=[permit("course.plan")], tags=["courses"])
def api_course(request: Request, patient_id: int, body: CourseIn) -> dict[str, Any]:
    """Compute the calendar (SCIT + omalizumab); with ``save`` also store the course (``course_id``)."""
    with registry_of(request).session() as s:
        pseudo = patient_or_404(s, patient_id).pseudo_id
    known = {p["id"]: [r["id"] for r in p["regimens"]] for p in products()}
    if body.product not in known:
        raise InvalidInput("product", f"unknown product {body.product!r}", ", ".join(known))
    if body.regimen not in known[body.product]:
        raise InvalidInput("regimen", f"unknown regimen {body.regimen!r}", ", ".join(known[body.product]))
    req = {k: (repr(v) if isinstance(v, float) else v) for k, v in body.model_dump(exclude={"save"}).items()}
    result = plan_schedule(req)
    out: dict[str, Any] = {"result": result, "course_id": None}
    if body.save:
        out["course_id"] = save_course(request, pseudo, req, result)
    return out
