"""New assessment: risk tier, omalizumab pre-treatment advice, biologic eligibility and the label dose, each
with its basis, computed and stored (under the logged-in user) by one service call,
``services.records.assessments.assess_and_store``."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from immunoplan.clinical import eligibility, risk
from immunoplan.errors import InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.reference.limits import limit
from immunoplan.services.records import assessments
from immunoplan.web import forms
from immunoplan.web.auth import permit
from immunoplan.web.deps import actor_of, found_or_404, patient_or_404, registry_of
from immunoplan.web.rendering import render

router = APIRouter()

NUMBER_FIELDS = (
    "age_years",
    "total_ige_iu_ml",
    "sige_kua_l",
    "weight_kg",
    "eosinophils_cells_ul",
    "feno_ppb",
    "fev1_percent_predicted",
)
TRISTATE_FIELDS = ("perennial_sensitization", "beta_blocker", "ocs_dependent")
CHOICE_FIELDS = {"severity": eligibility.SEVERITIES, "asthma_control": risk.ASTHMA_CONTROL}  # the core's
REGIONS = ("us", "eu")


def tristate(field: str) -> Any:
    def parse(text: str) -> bool | None:
        if text in ("", "unknown"):
            return None
        if text in ("yes", "no"):
            return text == "yes"
        raise InvalidInput(field, f"unknown value {text!r}", "yes, no, unknown")

    return parse


def _assess(
    request: Request, patient_id: int, inputs: dict[str, Any], region: str, key: Any
) -> dict[str, Any]:
    """Assess and store the assessment shown: one service call (`assessments.assess_and_store`)."""
    return assessments.assess_and_store(
        registry_of(request),
        actor_of(request),
        patient_id=patient_id,
        inputs=inputs,
        region=region,
        idempotency_key=key,
    )


def _form_context(request: Request, patient_id: int, f: forms.FormState) -> dict[str, Any]:
    patient = patient_or_404(request, patient_id)
    age, pseudo = patient["age_years"], patient["pseudo_id"]
    if "age_years" not in f.raw and age is not None:
        f.raw["age_years"] = str(age)
    return {
        "title": f"Assess {pseudo}",
        "patient_id": patient_id,
        "pseudo_id": pseudo,
        "form": f,
        "choices": CHOICE_FIELDS,
        "regions": REGIONS,
    }


@router.get(
    "/patients/{patient_id}/assess", dependencies=[permit("assessment.write")], include_in_schema=False
)
async def assess_form(request: Request, patient_id: int) -> Response:
    return render(request, "assess.html", _form_context(request, patient_id, forms.FormState({})))


@router.post(
    "/patients/{patient_id}/assess", dependencies=[permit("assessment.write")], include_in_schema=False
)
async def assess_submit(request: Request, patient_id: int) -> Response:
    f = await forms.read_form(request)
    context = _form_context(request, patient_id, f)
    inputs: dict[str, Any] = {}
    for name in NUMBER_FIELDS:
        required = name in ("age_years", "total_ige_iu_ml", "sige_kua_l")
        inputs[name] = f.parse(name, forms.number_text(name, optional=not required))
    for name in TRISTATE_FIELDS:
        inputs[name] = f.parse(name, tristate(name))
    for name, choices in CHOICE_FIELDS.items():
        inputs[name] = f.parse(name, forms.optional_choice(name, choices))
    inputs["allergen"] = f.get("allergen", "mite").strip() or "mite"
    region = f.parse("region", forms.choice("region", REGIONS))
    if f.ok:
        given = {k: v for k, v in inputs.items() if v is not None}
        try:
            row = _assess(request, patient_id, given, region, forms.idempotency_key(request, f))
            return RedirectResponse(f"/patients/{patient_id}/assessments/{row['id']}", status_code=303)
        except InvalidInput as exc:
            f.fail(exc, known=NUMBER_FIELDS)
    return render(request, "assess.html", context, status_code=422)


def _assessment(request: Request, patient_id: int, assessment_id: int) -> dict[str, Any]:
    view = assessments.assessment_view(registry_of(request), patient_id, assessment_id)
    return found_or_404(view, f"no assessment {assessment_id} for patient {patient_id}")


@router.get(
    "/patients/{patient_id}/assessments/{assessment_id}",
    dependencies=[permit("patient.read")],
    include_in_schema=False,
)
async def assessment_page(request: Request, patient_id: int, assessment_id: int) -> Response:
    a = _assessment(request, patient_id, assessment_id)
    return render(
        request, "assessment.html", {"title": f"Assessment {a['pseudo_id']}", "a": a, "r": a["result"]}
    )


# ------------------------------------------------------------------------------------------------- JSON API


class AssessmentIn(BaseModel):
    """Assessment inputs (names as in ``services.assessment.assess_patient``; bounds and units from the
    field-limit catalogue, `immunoplan.reference.limits`)."""

    age_years: float = limit("age_years").pydantic()
    total_ige_iu_ml: float = limit("total_ige_iu_ml").pydantic()
    sige_kua_l: float = limit("sige_kua_l").pydantic()
    allergen: str = Field("mite", max_length=40)
    weight_kg: float | None = limit("weight_kg").pydantic(None)
    eosinophils_cells_ul: float | None = limit("eosinophils_cells_ul").pydantic(None)
    feno_ppb: float | None = limit("feno_ppb").pydantic(None)
    perennial_sensitization: bool | None = None
    severity: Literal["mild", "moderate", "severe"] | None = None
    asthma_control: Literal["controlled", "partly-controlled", "uncontrolled"] | None = None
    ocs_dependent: bool | None = None
    fev1_percent_predicted: float | None = limit("fev1_pct_pred").pydantic(None)
    beta_blocker: bool | None = None
    region: Literal["us", "eu"] = "us"


@router.post(
    "/api/patients/{patient_id}/assessments",
    dependencies=[permit("assessment.write")],
    tags=["assessment"],
    status_code=201,
)
def api_assess(request: Request, patient_id: int, body: AssessmentIn) -> dict[str, Any]:
    """Assess a patient and store the assessment shown; returns it with the basis of every rule."""
    patient_or_404(request, patient_id)
    data = body.model_dump(exclude_none=True)
    region = data.pop("region")
    inputs = {k: (repr(v) if isinstance(v, float) else v) for k, v in data.items()}
    row = _assess(request, patient_id, inputs, region, forms.idempotency_key(request))
    return {"id": row["id"], "patient_id": patient_id, "result": row["result"]}


@router.get(
    "/api/patients/{patient_id}/assessments/{assessment_id}",
    dependencies=[permit("patient.read")],
    tags=["assessment"],
)
def api_assessment(request: Request, patient_id: int, assessment_id: int) -> dict[str, Any]:
    """A stored assessment (inputs, result and basis as shown)."""
    return to_jsonable(_assessment(request, patient_id, assessment_id))
