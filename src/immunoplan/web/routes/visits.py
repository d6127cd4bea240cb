"""Visit: questionnaires (ACT, C-ACT, ACQ, AQLQ, mini-AQLQ scored by ``clinical.questionnaires``) and
spirometry with GLI results (``clinical.spirometry``: predicted, LLN, z-score, % predicted), stored with the
``services.records`` use cases. Everything is validated and computed before anything is written."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from immunoplan.clinical import questionnaires, spirometry
from immunoplan.errors import InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import models as m
from immunoplan.services import records
from immunoplan.web import forms, queries
from immunoplan.web.auth import permit
from immunoplan.web.deps import actor_of, patient_or_404, registry_of, today
from immunoplan.web.rendering import render

router = APIRouter()

#: registry instrument name -> questionnaire engine id (one name per concept in the UI: the registry's)
INSTRUMENTS = {
    "ACT": "act",
    "C-ACT": "c-act",
    "ACQ-5": "acq5",
    "ACQ-6": "acq6",
    "ACQ-7": "acq7",
    "AQLQ": "aqlq",
    "mini-AQLQ": "mini-aqlq",
}


def instrument_hints() -> dict[str, str]:
    """Item count and range per instrument, from the engine's reference data."""
    out = {}
    for name, key in INSTRUMENTS.items():
        spec = questionnaires._spec(key)
        parts = [
            f"{g['count']} items {g['min']}-{g['max']}" + (f" ({g['who']})" if g.get("who") else "")
            for g in spec["items"]
        ]
        out[name] = "; ".join(parts) + f" · {spec['name']}"
    return out


def field_name(instrument: str) -> str:
    return "q_" + instrument.lower().replace("-", "_")


def _items(field: str) -> Any:
    def parse(text: str) -> list[str] | None:
        if not text:
            return None
        items = [x.strip() for x in text.replace(";", ",").split(",") if x.strip()]
        for x in items:
            forms.number_text(field)(x)
        return items

    return parse


def compute(inputs: dict[str, Any], age: int | None, f: forms.FormState) -> dict[str, Any]:
    """Scores and GLI results; errors go to their fields in ``f``."""
    out: dict[str, Any] = {"questionnaires": {}, "spirometry": None}
    sp = inputs["spirometry"]
    if sp.get("fev1_l") or sp.get("fvc_l"):
        try:
            out["spirometry"] = to_jsonable(
                spirometry.spirometry(
                    sex=sp["sex"],
                    age=age,
                    height_cm=sp["height_cm"],
                    equation=sp["equation"],
                    fev1_l=sp.get("fev1_l"),
                    fvc_l=sp.get("fvc_l"),
                )
            )
        except InvalidInput as exc:
            target = {"age_years": "form", "age": "form"}.get(exc.field, exc.field)
            if target == "form":
                f.errors.setdefault("form", f"{exc.field}: {forms.message(exc)}")
            else:
                f.errors.setdefault(target if target in f.raw else "form", forms.message(exc))
    fev1_pct = ((out["spirometry"] or {}).get("fev1") or {}).get("percent_predicted")  # ACQ-7 item 7
    for name, key in INSTRUMENTS.items():
        items = inputs["questionnaires"].get(name)
        if not items:
            continue
        try:
            out["questionnaires"][name] = to_jsonable(
                questionnaires.score(
                    key, items, fev1_percent_predicted=fev1_pct if key == "acq7" else None, age=age
                )
            )
        except InvalidInput as exc:
            f.errors.setdefault(field_name(name), forms.message(exc))
    return out


def save(request: Request, pseudo_id: str, code: str, day: date, results: dict[str, Any]) -> None:
    """Write the visit, its questionnaires and spirometry (each an audited use case)."""
    reg, actor = registry_of(request), actor_of(request)
    records.record_visit(reg, actor, pseudo_id=pseudo_id, code=code, visit_on=day)
    for name, res in results["questionnaires"].items():
        records.record_questionnaire(
            reg,
            actor,
            pseudo_id=pseudo_id,
            instrument=name,
            score=res["score"],
            completed_on=day,
            items=res.get("items"),
            visit_code=code,
        )
    sp = results["spirometry"]
    if sp:
        eq = sp["equation"]
        for measure, kind in (("fev1", "fev1_l"), ("fvc", "fvc_l")):
            r = sp.get(measure)
            if r:
                records.record_measurement(
                    reg,
                    actor,
                    pseudo_id=pseudo_id,
                    kind=kind,
                    value=r["observed"],
                    measured_on=day,
                    visit_code=code,
                    pct_predicted=r["percent_predicted"],
                    z_score=r["z"],
                    reference_equation=eq,
                )
        if sp.get("fev1"):
            records.record_measurement(
                reg,
                actor,
                pseudo_id=pseudo_id,
                kind="fev1_pct_pred",
                value=sp["fev1"]["percent_predicted"],
                measured_on=day,
                visit_code=code,
                reference_equation=eq,
            )


def _context(request: Request, patient_id: int, f: forms.FormState, **extra: Any) -> dict[str, Any]:
    with registry_of(request).session() as s:
        p = patient_or_404(s, patient_id)
        pseudo, age, sex = p.pseudo_id, queries.age_years(p, today()), p.sex
    f.raw.setdefault("visit_on", today().isoformat())
    f.raw.setdefault("sex", sex if sex in ("male", "female") else "")
    ctx = {
        "title": f"Visit · {pseudo}",
        "patient_id": patient_id,
        "pseudo_id": pseudo,
        "age": age,
        "form": f,
        "codes": m.VISIT_CODES,
        "hints": instrument_hints(),
        "field_name": field_name,
        "equations": spirometry.EQUATIONS,
        "results": None,
    }
    ctx.update(extra)
    return ctx


@router.get(
    "/patients/{patient_id}/visits/new", dependencies=[permit("visit.record")], include_in_schema=False
)
async def visit_form(request: Request, patient_id: int) -> Response:
    return render(request, "visit.html", _context(request, patient_id, forms.FormState({})))


def _parse(f: forms.FormState) -> dict[str, Any]:
    spiro = {
        "sex": f.parse(
            "sex",
            lambda t: (
                forms.choice("sex", spirometry.SEXES)(t) if (f.get("fev1_l") or f.get("fvc_l")) else t or None
            ),
        ),
        "height_cm": f.parse(
            "height_cm", forms.number_text("height_cm", optional=not (f.get("fev1_l") or f.get("fvc_l")))
        ),
        "fev1_l": f.parse("fev1_l", forms.number_text("fev1_l", optional=True)),
        "fvc_l": f.parse("fvc_l", forms.number_text("fvc_l", optional=True)),
        "equation": f.parse(
            "equation", lambda t: forms.choice("equation", spirometry.EQUATIONS)(t or "gli-global-2022")
        ),
    }
    qs = {name: f.parse(field_name(name), _items(field_name(name))) for name in INSTRUMENTS}
    return {
        "code": f.parse("code", forms.choice("code", m.VISIT_CODES)),
        "visit_on": f.parse("visit_on", forms.date_field("visit_on")),
        "questionnaires": qs,
        "spirometry": spiro,
    }


@router.post("/patients/{patient_id}/visits", dependencies=[permit("visit.record")], include_in_schema=False)
async def visit_submit(request: Request, patient_id: int) -> Response:
    f = await forms.read_form(request)
    ctx = _context(request, patient_id, f)
    inputs = _parse(f)
    if (
        f.ok
        and not any(inputs["questionnaires"].values())
        and not (inputs["spirometry"].get("fev1_l") or inputs["spirometry"].get("fvc_l"))
    ):
        f.errors["form"] = "enter at least one questionnaire or a spirometry result"
    results = compute(inputs, ctx["age"], f)  # every field's engine error is shown at once
    if f.ok:
        try:
            save(request, ctx["pseudo_id"], inputs["code"], inputs["visit_on"], results)
        except InvalidInput as exc:
            f.fail(exc, known=("code", "visit_on"))
    if not f.ok:
        return render(request, "visit.html", ctx, status_code=422)
    ctx["results"] = results
    return render(request, "visit.html", ctx)


# ------------------------------------------------------------------------------------------------- JSON API


class VisitIn(BaseModel):
    code: str = Field(max_length=16)
    visit_on: date
    questionnaires: dict[str, list[float]] = Field(default_factory=dict, max_length=7)
    sex: str | None = Field(None, max_length=8)
    height_cm: float | None = Field(None, gt=0, le=300)
    fev1_l: float | None = Field(None, gt=0, le=20)
    fvc_l: float | None = Field(None, gt=0, le=20)
    equation: str = Field("gli-global-2022", max_length=20)


@router.post(
    "/api/patients/{patient_id}/visits",
    dependencies=[permit("visit.record")],
    tags=["visits"],
    status_code=201,
)
def api_visit(request: Request, patient_id: int, body: VisitIn) -> dict[str, Any]:
    """Score questionnaires and spirometry (GLI) and record the visit; 422 names the first bad field."""
    raw = {
        "code": body.code,
        "visit_on": body.visit_on.isoformat(),
        "sex": body.sex or "",
        "height_cm": "" if body.height_cm is None else repr(body.height_cm),
        "fev1_l": "" if body.fev1_l is None else repr(body.fev1_l),
        "fvc_l": "" if body.fvc_l is None else repr(body.fvc_l),
        "equation": body.equation,
    }
    for name, items in body.questionnaires.items():
        if name not in INSTRUMENTS:
            raise InvalidInput("questionnaires", f"unknown instrument {name!r}", ", ".join(INSTRUMENTS))
        raw[field_name(name)] = ",".join(repr(x) for x in items)
    f = forms.FormState(raw)
    ctx = _context(request, patient_id, f)
    inputs = _parse(f)
    results = compute(inputs, ctx["age"], f) if f.ok else None
    if not f.ok or results is None:
        field, message = next(iter(f.errors.items()))
        raise InvalidInput(field, message)
    save(request, ctx["pseudo_id"], inputs["code"], inputs["visit_on"], results)
    return results
