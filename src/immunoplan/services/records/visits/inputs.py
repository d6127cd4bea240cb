"""The visit's input model, declared once (`VisitIn`: one form, one API body, one CLI command), with the
names of its questionnaires, laboratory results and spirometry fields."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field, field_validator

from immunoplan import clock
from immunoplan.clinical import spirometry as spirometry_engine
from immunoplan.clinical.vocabularies import QUESTIONNAIRES, VISIT_CODES
from immunoplan.errors import InvalidInput
from immunoplan.reference.limits import limit
from immunoplan.services.inputs import InputModel
from immunoplan.services.records.fields import ClinicDate, choice_field, one_of

#: the use case behind the visit page, the API and ``immunoplan visit record``
USE_CASE = "record_visit_with_results"

#: registry instrument name (``questionnaires.instrument``) -> input field (form, API, CLI ``--<field>``);
#: the questionnaire engine's id is the field with ``-`` for ``_`` (act, c-act, acq5, ..., mini-aqlq).
QUESTIONNAIRE_FIELDS: dict[str, str] = {
    "ACT": "act",
    "C-ACT": "c_act",
    "ACQ-5": "acq5",
    "ACQ-6": "acq6",
    "ACQ-7": "acq7",
    "AQLQ": "aqlq",
    "mini-AQLQ": "mini_aqlq",
}
assert set(QUESTIONNAIRE_FIELDS) == set(QUESTIONNAIRES), "every registry questionnaire has an input field"

#: Laboratory and lung-function results a visit records directly (registry ``measurements.kind``; bounds and
#: units from ``registry_measurements``): the outcome measures seed 001 follows besides the questionnaires
#: and spirometry (``registry_demo_calibration`` ``seed001``).
LAB_KINDS: tuple[str, ...] = (
    "total_ige_iu_ml",
    "sige_kua_l",
    "eosinophils_10e9_l",
    "feno_ppb",
    "pef_pct_pred",
)
SPIROMETRY_FIELDS = ("sex", "height_cm", "fev1_l", "fvc_l", "equation", "ethnicity")
#: The visit's own columns (what an amendment of the visit row changes).
VISIT_COLUMNS = ("code", "visit_on", "course_id", "asthma_step", "medication_score", "notes")
#: What an amendment of a questionnaire or of a laboratory result changes.
QUESTIONNAIRE_AMENDABLE = ("items", "completed_on", "score")
MEASUREMENT_AMENDABLE = ("value", "measured_on", "allergen", "method")
DEFAULT_EQUATION = spirometry_engine.EQUATIONS[0]  # GLI Global 2022 (race-neutral; clinical.spirometry)

Items = Annotated[list[Decimal], Field(max_length=40)]


def questionnaire_engine_id(instrument: str) -> str:
    """The questionnaire engine's id of a registry instrument (``"C-ACT"`` -> ``"c-act"``; unknown: "")."""
    return QUESTIONNAIRE_FIELDS.get(instrument, "").replace("_", "-")


def _items_field(instrument: str) -> Any:
    return Field(
        None,
        description=f"{instrument} item responses in questionnaire order (a list, or text '3,3,4,3,3')",
        json_schema_extra={"accepted": f"{instrument} item responses, comma-separated"},
    )


def split_items(value: Any) -> Any:
    """Item responses typed as text (``"3,3,4"`` or ``"3;3;4"``) as a list; other values unchanged."""
    if isinstance(value, str):
        return [x.strip() for x in value.replace(";", ",").split(",") if x.strip()] or None
    return value


class VisitIn(InputModel):
    """A visit and everything measured at it: one form, one API body, one CLI command."""

    code: Annotated[str, one_of(VISIT_CODES)] = choice_field(VISIT_CODES, description="visit code")
    visit_on: ClinicDate = Field(
        description="visit date (clinic date)", json_schema_extra={"accepted": clock.DATE_RANGE}
    )
    course_id: int | None = Field(None, ge=1, description="the course this visit belongs to")
    asthma_step: int | None = limit("asthma_step").pydantic(None)
    medication_score: Decimal | None = limit("medication_score").pydantic(None)
    notes: str | None = Field(None, max_length=2000)
    # questionnaires: item responses, scored by clinical.questionnaires
    act: Items | None = _items_field("ACT")
    c_act: Items | None = _items_field("C-ACT")
    acq5: Items | None = _items_field("ACQ-5")
    acq6: Items | None = _items_field("ACQ-6")
    acq7: Items | None = _items_field("ACQ-7")
    aqlq: Items | None = _items_field("AQLQ")
    mini_aqlq: Items | None = _items_field("mini-AQLQ")
    # spirometry: GLI results by clinical.spirometry (age at the visit date)
    sex: Annotated[str | None, one_of(spirometry_engine.SEXES)] = choice_field(
        spirometry_engine.SEXES, None, description="sex for the reference equation (default: the patient's)"
    )
    height_cm: Decimal | None = limit("height_cm").pydantic(None)
    fev1_l: Decimal | None = limit("fev1_l").pydantic(None)
    fvc_l: Decimal | None = limit("fvc_l").pydantic(None)
    equation: Annotated[str, one_of(spirometry_engine.EQUATIONS)] = choice_field(
        spirometry_engine.EQUATIONS, DEFAULT_EQUATION
    )
    ethnicity: str | None = Field(None, max_length=32, description="GLI-2012 only")
    # laboratory and other lung-function results (registry_measurements kinds)
    total_ige_iu_ml: Decimal | None = limit("total_ige_iu_ml").pydantic(None)
    sige_kua_l: Decimal | None = limit("sige_kua_l").pydantic(None)
    sige_allergen: str | None = Field(
        None, max_length=64, json_schema_extra={"accepted": "an allergen code, e.g. d1, d2"}
    )
    eosinophils_10e9_l: Decimal | None = limit("eosinophils_10e9_l").pydantic(None)
    feno_ppb: Decimal | None = limit("feno_ppb").pydantic(None)
    pef_pct_pred: Decimal | None = limit("pef_pct_pred").pydantic(None)

    @field_validator(*QUESTIONNAIRE_FIELDS.values(), mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        return split_items(v)

    def questionnaire_items(self) -> dict[str, list[Decimal]]:
        """Instrument (registry name) -> item responses, for the questionnaires filled in."""
        return {name: getattr(self, f) for name, f in QUESTIONNAIRE_FIELDS.items() if getattr(self, f)}

    def has_spirometry(self) -> bool:
        return self.fev1_l is not None or self.fvc_l is not None

    def labs(self) -> dict[str, Decimal]:
        return {k: getattr(self, k) for k in LAB_KINDS if getattr(self, k) is not None}

    def has_results(self) -> bool:
        return bool(self.questionnaire_items() or self.has_spirometry() or self.labs())


class VisitResultsInvalid(InvalidInput):
    """Every engine error of one visit at once (each an `InvalidInput` naming its `VisitIn` field), so a page
    shows each message next to its field. The exception itself is the first error (CLI, API)."""

    def __init__(self, errors: list[InvalidInput]) -> None:
        first = errors[0]
        super().__init__(first.field, first.reason, first.accepted)
        self.errors = errors
