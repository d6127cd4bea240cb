"""The input models of a desensitization session, declared once: the API bodies, the form parsers and the
CLI use them. ``...Fields`` models are the API bodies (the session from the path), ``...In`` the same with
the session id."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from immunoplan import clock
from immunoplan.clinical import vocabularies
from immunoplan.clinical.desensitization import session as rules
from immunoplan.errors import InvalidInput
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
    cycle_choice: str | None = Field(
        None,
        max_length=64,
        description="what this cycle starts from after the last one (an option of next_cycle_options: "
        "same-protocol, change-bags or a re-plan's next-course option), recorded with its basis",
    )
    from_session_id: int | None = Field(
        None, ge=1, description="the cycle the choice follows (default: the course's last session)"
    )

    @field_validator("session_on")
    @classmethod
    def _day(cls, v: date) -> date:
        if not clock.EARLIEST_DATE <= v <= clock.LATEST_DATE:
            raise PydanticCustomError("date_range", "{day} is outside the accepted range", {"day": str(v)})
        return v

    def plan_in(self) -> PlanIn:
        not_plan = {"patient_id", "pseudo_id", "session_on", "course_id", "cycle_choice", "from_session_id"}
        return PlanIn(**self.model_dump(exclude=not_plan))


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


_HHMM = re.compile(r"^([01]?\d|2[0-3]):[0-5]\d$")
#: how a treatment is typed on the CLI (``--treatment``, repeatable) or as one line of text
TREATMENT_TEXT = "DRUG:DOSE:UNIT:ROUTE[@HH:MM or @YYYY-MM-DDTHH:MM] (clinic time)"
DRUG_MAX = 120


def _drug(v: Any) -> Any:
    if not isinstance(v, str):
        return v
    if len(v) > DRUG_MAX:
        raise InvalidInput("drug", f"is {len(v)} characters long", f"at most {DRUG_MAX} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in v) or not v.strip():
        raise InvalidInput(
            "drug", "must be a drug name (no control characters)", f"at most {DRUG_MAX} characters"
        )
    return v.strip()


def _choice(name: str, choices: tuple[str, ...]) -> BeforeValidator:
    def check(v: Any) -> Any:
        if v is None:
            return v
        text = str(v).strip()
        if text not in choices:
            shown = text if len(text) <= 32 else text[:32] + "..."
            raise InvalidInput(name, f"unknown value {shown!r}", ", ".join(choices))
        return text

    return BeforeValidator(check)


def _dose(v: Any) -> Any:
    return limits.limit("treatment_dose").check(v, "dose")


def _given_at(v: Any) -> Any:
    """``HH:MM`` (on the reaction's day, clinic time) as a time of day; a full time as aware UTC."""
    if v is None or isinstance(v, (datetime, time)):
        return clock.to_utc(v) if isinstance(v, datetime) else v
    text = str(v).strip()
    if not text:
        return None
    if _HHMM.match(text):
        h, mi = text.split(":")
        return time(int(h), int(mi))
    return clock.to_utc(clock.parse_local("given_at", text[:40]))


class TreatmentGiven(InputModel):
    """One treatment given for a reaction: drug (free text, bounded), dose in its unit, route, time given
    (clinic time; ``HH:MM`` = on the reaction's day). Typed as one text: `TREATMENT_TEXT`."""

    drug: Annotated[str, BeforeValidator(_drug)] = Field(max_length=DRUG_MAX)
    dose: Annotated[Decimal, BeforeValidator(_dose)] = Field(
        json_schema_extra={"unit": "unit", "accepted": limits.limit("treatment_dose").accepted}
    )
    unit: Annotated[str, _choice("unit", vocabularies.TREATMENT_UNITS)] = Field(
        json_schema_extra=_accepted(vocabularies.TREATMENT_UNITS)
    )
    route: Annotated[str, _choice("route", vocabularies.TREATMENT_ROUTES)] = Field(
        json_schema_extra=_accepted(vocabularies.TREATMENT_ROUTES)
    )
    given_at: Annotated[datetime | time | None, BeforeValidator(_given_at)] = Field(
        None, json_schema_extra={"accepted": "HH:MM or " + CLINIC_TIME}
    )

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, v: Any) -> Any:
        """``"epinephrine:0.5:mg:IM@10:20"`` as its fields."""
        if not isinstance(v, str):
            return v
        text = v.strip()
        body, _, when = text.partition("@")
        parts = [x.strip() for x in body.split(":")]
        if len(parts) != 4 or not all(parts):
            raise InvalidInput("treatments", f"cannot read {text[:60]!r}", TREATMENT_TEXT)
        out = dict(zip(("drug", "dose", "unit", "route"), parts, strict=True))
        return {**out, "given_at": when.strip() or None}


def _sampled(v: datetime | None, info: ValidationInfo) -> datetime | None:
    """A tryptase sampling time needs the tryptase value (declared before it)."""
    if v is not None and info.data.get("tryptase_ng_ml") is None:
        raise InvalidInput("tryptase_at", "a sampling time was given without the tryptase value", "ng/mL")
    return v


def _vital_limit(name: str) -> Any:
    return limits.limit(name).pydantic(None)


class VitalSigns(InputModel):
    """Vital signs (each optional, with its unit): systolic/diastolic BP, heart rate, SpO2, temperature."""

    systolic_bp_mmhg: Decimal | None = _vital_limit("systolic_bp_mmhg")
    diastolic_bp_mmhg: Decimal | None = _vital_limit("diastolic_bp_mmhg")
    heart_rate_bpm: Decimal | None = _vital_limit("heart_rate_bpm")
    spo2_pct: Decimal | None = _vital_limit("spo2_pct")
    temperature_c: Decimal | None = _vital_limit("temperature_c")

    @field_validator("diastolic_bp_mmhg")
    @classmethod
    def _diastolic_below_systolic(cls, d: Decimal | None, info: ValidationInfo) -> Decimal | None:
        s = info.data.get("systolic_bp_mmhg")
        if s is not None and d is not None and d >= s:
            raise InvalidInput(
                "diastolic_bp_mmhg", f"{d} mmHg is not below the systolic {s} mmHg", f"below {s} mmHg"
            )
        return d

    def vital_signs(self) -> dict[str, str] | None:
        """The vital signs given, as exact text (None when none was)."""
        out = {k: str(getattr(self, k)) for k in VITAL_SIGN_FIELDS if getattr(self, k) is not None}
        return out or None


#: the vital signs recorded at a reaction or at baseline (names as in `VitalSigns`)
VITAL_SIGN_FIELDS = ("systolic_bp_mmhg", "diastolic_bp_mmhg", "heart_rate_bpm", "spo2_pct", "temperature_c")


class BreakthroughFields(VitalSigns):
    """A breakthrough reaction at a step: its findings (graded on Brown 2004, and on the scale the clinician
    picks: the severity is computed, never typed, unless no finding can be placed on the scale), the
    endophenotype (computed from the findings, chosen only when they do not decide), the symptoms that drive
    the next course's premedication, vital signs (Brown 2004 grades on SpO2 and systolic BP), tryptase with
    its time, the treatments given, the minutes into the step when it started."""

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
    scale: Annotated[str, _one_of(vocabularies.BREAKTHROUGH_SCALES)] = Field(
        "brown2004",
        json_schema_extra=_accepted(vocabularies.BREAKTHROUGH_SCALES),
        description="the scale the reaction is recorded on (Brown 2004 is computed too: the re-plan uses it)",
    )
    phenotype: Annotated[str | None, _one_of(vocabularies.REACTION_PHENOTYPES)] = Field(
        None,
        json_schema_extra=_accepted(vocabularies.REACTION_PHENOTYPES),
        description="endophenotype: only when the findings do not decide it (else it must match them)",
    )
    bronchodilator_response: Annotated[str | None, _one_of(vocabularies.BRONCHODILATOR_RESPONSES)] = Field(
        None, json_schema_extra=_accepted(vocabularies.BRONCHODILATOR_RESPONSES)
    )
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
    tryptase_ng_ml: Decimal | None = limits.limit("tryptase_ng_ml").pydantic(None)
    tryptase_at: ClinicTime = _clinic_time_field("when the tryptase sample was taken (default: now)")
    treatments: list[TreatmentGiven] = Field(
        default_factory=list, max_length=20, json_schema_extra={"accepted": TREATMENT_TEXT}
    )
    treatment: str | None = Field(None, max_length=2000, description="notes on the treatment (free text)")
    replan_no: int | None = Field(None, ge=0, le=100)

    _tryptase_time = field_validator("tryptase_at")(classmethod(lambda cls, v, info: _sampled(v, info)))


class BreakthroughIn(BreakthroughFields):
    """`BreakthroughFields` of one session."""

    session_id: int = Field(ge=1)


class BaselineFields(VitalSigns):
    """A session's baseline before the first step: serum tryptase with its sampling time, vital signs."""

    tryptase_ng_ml: Decimal | None = limits.limit("tryptase_ng_ml").pydantic(None)
    tryptase_at: ClinicTime = _clinic_time_field("when the tryptase sample was taken (default: now)")

    _tryptase_time = field_validator("tryptase_at")(classmethod(lambda cls, v, info: _sampled(v, info)))


class BaselineIn(BaselineFields):
    """`BaselineFields` of one session."""

    session_id: int = Field(ge=1)


class FinishFields(InputModel):
    """End the session: completed (the last step given), completed-with-reactions, or stopped."""

    outcome: Annotated[str, _one_of(rules.OUTCOMES)] = Field(json_schema_extra=_accepted(rules.OUTCOMES))
    ended_at: ClinicTime = _clinic_time_field()


class FinishIn(FinishFields):
    """`FinishFields` of one session."""

    session_id: int = Field(ge=1)
