"""The input models of a desensitization session, declared once: the API bodies, the form parsers and the
CLI use them. ``...Fields`` models are the API bodies (the session from the path), ``...In`` the same with
the session id."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, field_validator
from pydantic_core import PydanticCustomError

from immunoplan import clock
from immunoplan.clinical import vocabularies
from immunoplan.clinical.desensitization import session as rules
from immunoplan.reference import limits
from immunoplan.services.inputs import InputModel
from immunoplan.services.records.fields import CLINIC_TIME


def _vocabulary(value: Any, choices: tuple[str, ...]) -> Any:
    if value is None or value in choices:
        return value
    raise PydanticCustomError("vocabulary", "unknown value {value}", {"value": repr(value)})


def _one_of(choices: tuple[str, ...]) -> AfterValidator:
    """A value of ``choices`` (or None)."""
    return AfterValidator(lambda v: _vocabulary(v, choices))


def _codes(choices: tuple[str, ...]) -> AfterValidator:
    """A list of values of ``choices``, each once (first occurrence kept)."""

    def check(v: list[str]) -> list[str]:
        for x in v:
            _vocabulary(x, choices)
        return list(dict.fromkeys(v))

    return AfterValidator(check)


def _accepted(choices: tuple[str, ...]) -> Any:
    return {"accepted": ", ".join(choices)}


def _in_date_range(v: datetime | None) -> datetime | None:
    """A typed time as aware UTC (naive = clinic-local wall time), years 1900-2100."""
    if v is None:
        return None
    if not clock.EARLIEST_DATE <= v.date() <= clock.LATEST_DATE:
        raise PydanticCustomError("date_range", "{day} is outside the accepted range", {"day": str(v.date())})
    return clock.to_utc(v)


def _split(v: Any) -> Any:
    """Codes typed as one text (``"a, b; c"``) as a list; other values unchanged."""
    if isinstance(v, str):
        return [x.strip() for x in v.replace(";", ",").split(",") if x.strip()]
    return v


#: a time typed in clinic time (or with an offset), as aware UTC
ClinicTime = Annotated[datetime | None, AfterValidator(_in_date_range)]
#: codes typed as a list or as one comma-separated text
CodeList = Annotated[list[str], BeforeValidator(_split)]


def _clinic_time_field(description: str | None = None) -> Any:
    return Field(None, description=description, json_schema_extra={"accepted": CLINIC_TIME})


class PlanIn(InputModel):
    """A planning request (names as in `services.protocols.plan_desensitization`)."""

    drug: str = Field(min_length=1, max_length=120)
    dose_mg: Decimal = limits.limit("desensitization_dose_mg").pydantic()
    bag_volume_ml: Decimal = limits.limit("bag_volume_ml").pydantic()
    final_rate_ml_h: Decimal = limits.limit("rate_ml_h").pydantic()
    bags: int = Field(3, ge=1, le=4)
    dilution_bag_volume_ml: Decimal | None = limits.limit("bag_volume_ml").pydantic(None)
    step_minutes: Decimal | None = limits.limit("step_minutes").pydantic(None)
    first_rate_variant: bool = False
    rates: str | None = Field(None, max_length=200, description="mL/h per bag, e.g. 2,5,10,20|5,10,20,40")
    start: str | None = Field(None, max_length=20, description="HH:MM (clinic time) or YYYY-MM-DDTHH:MM")
    stock_mg_ml: Decimal | None = limits.limit("stock_mg_ml").pydantic(None)
    premedication_regimen: str | None = Field(None, max_length=64)
    initial_symptoms: CodeList = Field(default_factory=list, max_length=10)
    override_reason: str | None = Field(None, max_length=500)
    weight_kg: Decimal | None = limits.limit("weight_kg").pydantic(
        None, description="for the usual-dose check per m2 (default: the patient's latest weight)"
    )
    height_cm: Decimal | None = limits.limit("height_cm").pydantic(
        None, description="for the usual-dose check per m2 (default: the patient's height)"
    )
    dose_confirmation: str | None = Field(
        None,
        max_length=500,
        description="why a target outside the drug's usual dose range is right (recorded with the session)",
    )

    def request(self) -> dict[str, Any]:
        """Keyword arguments of `plan_desensitization`, JSON-able (numbers as exact text): stored with the
        session so the plan can be regenerated with the same inputs."""
        out: dict[str, Any] = {}
        for k, v in self.model_dump(exclude_none=True).items():
            if k == "initial_symptoms":
                if v:
                    out[k] = list(v)
            elif k == "first_rate_variant":
                if v:
                    out[k] = True
            elif k == "premedication_regimen":
                out[k] = v
            else:
                out[k] = str(v) if isinstance(v, Decimal) else v
        return out


class SessionFields(PlanIn):
    """The planning request and the session's date (the API body; the patient comes from the path)."""

    session_on: date
    course_id: int | None = Field(
        None,
        ge=1,
        description="the patient's desensitization course (default: "
        "the open one for this drug, created with the first session)",
    )

    @field_validator("session_on")
    @classmethod
    def _day(cls, v: date) -> date:
        if not clock.EARLIEST_DATE <= v <= clock.LATEST_DATE:
            raise PydanticCustomError("date_range", "{day} is outside the accepted range", {"day": str(v)})
        return v

    def plan_in(self) -> PlanIn:
        return PlanIn(**self.model_dump(exclude={"patient_id", "pseudo_id", "session_on", "course_id"}))


class SessionStartIn(SessionFields):
    """Plan and open a session: the planning request, the date and the patient (registry id or pseudonym)."""

    patient_id: int | None = Field(None, ge=1)
    pseudo_id: str | None = Field(None, max_length=64)


class StepFields(InputModel):
    """Mark one step: given (default), skipped, paused or stopped (the API body; the session from the
    path)."""

    step_no: int = Field(ge=1, le=100)
    status: Annotated[str, _one_of(rules.STEP_STATUSES)] = Field(
        "given", json_schema_extra=_accepted(rules.STEP_STATUSES)
    )
    replan_no: int | None = Field(
        None, ge=0, le=100, description="the protocol shown: 0 = original, n = n-th re-planned continuation"
    )
    given_at: ClinicTime = _clinic_time_field("when the step started (clinic time; default now)")
    early_reason: str | None = Field(None, max_length=500)


class StepIn(StepFields):
    """`StepFields` of one session."""

    session_id: int = Field(ge=1)


class BreakthroughFields(InputModel):
    """A breakthrough reaction at a step: its findings (graded on Brown 2004: the severity is computed, never
    typed, unless no finding can be placed on the scale), the symptoms that drive the next course's
    premedication, vital signs, the minutes into the step when it started."""

    step_no: int = Field(ge=1, le=100)
    findings: Annotated[CodeList, _codes(vocabularies.REACTION_SYMPTOMS)] = Field(
        default_factory=list,
        max_length=len(vocabularies.REACTION_SYMPTOMS),
        json_schema_extra=_accepted(vocabularies.REACTION_SYMPTOMS),
        description="structured findings (grading_symptoms codes), graded on Brown 2004",
    )
    severity: Annotated[str | None, _one_of(vocabularies.BROWN_SEVERITIES)] = Field(
        None,
        json_schema_extra=_accepted(vocabularies.BROWN_SEVERITIES),
        description="Brown 2004 grade: only when the findings cannot be graded (else it must match them)",
    )
    spo2_pct: Decimal | None = limits.limit("spo2_pct").pydantic(None)
    systolic_bp_mmhg: Decimal | None = limits.limit("systolic_bp_mmhg").pydantic(None)
    heart_rate_bpm: Decimal | None = limits.limit("heart_rate_bpm").pydantic(None)
    symptoms: Annotated[CodeList, _codes(vocabularies.DESENSITIZATION_SYMPTOMS)] = Field(
        default_factory=list,
        max_length=20,
        json_schema_extra=_accepted(vocabularies.DESENSITIZATION_SYMPTOMS),
    )
    minutes_into_step: Decimal | None = Field(
        None, ge=0, le=240, json_schema_extra={"unit": "min", "accepted": "[0, the step's minutes] min"}
    )
    steps_back: int = Field(1, ge=1, le=2)
    chosen: str | None = Field(None, max_length=64, description="a clinician's chosen option id (recorded)")
    onset_at: ClinicTime = _clinic_time_field()
    treatment: str | None = Field(None, max_length=2000)
    replan_no: int | None = Field(None, ge=0, le=100)


class BreakthroughIn(BreakthroughFields):
    """`BreakthroughFields` of one session."""

    session_id: int = Field(ge=1)


class FinishFields(InputModel):
    """End the session: completed (the last step given), completed-with-reactions, or stopped."""

    outcome: Annotated[str, _one_of(rules.OUTCOMES)] = Field(json_schema_extra=_accepted(rules.OUTCOMES))
    ended_at: ClinicTime = _clinic_time_field()


class FinishIn(FinishFields):
    """`FinishFields` of one session."""

    session_id: int = Field(ge=1)
