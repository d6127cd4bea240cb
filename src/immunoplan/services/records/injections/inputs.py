"""What an injection-day form, the API and the CLI send: one injection (`InjectionIn`) or a reaction to the
last injection (`InjectionReactionIn`), and the constants of the recording rules."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field

from immunoplan.clinical import vocabularies
from immunoplan.reference.limits import limit
from immunoplan.services.inputs import InputModel
from immunoplan.services.records.fields import (
    CLINIC_TIME,
    OptionalClinicInstant,
    choice_field,
    future_tolerance_minutes,  # noqa: F401  (re-exported)
    one_of,
)

IMMUNOTHERAPY_KINDS = ("SCIT", "RIT", "cluster", "OIT")
#: reactions the SCIT rules read: systemic grades on these scales, local reactions as ``local-size`` grades
ENGINE_SCALES = vocabularies.SCIT_ADJUSTMENT_SCALES
LOCAL_SCALE = "local-size"
RECORDING = "registry_recording"
#: a pre-injection check answer is a word or a number, its name a question id: longer text is not one
CHECK_ANSWER_MAX_CHARS = 32
CHECK_NAME_MAX_CHARS = 64


class InjectionIn(InputModel):
    """One injection as entered (web form, API body, CLI options, importer). ``given_at``: clinic time
    (empty = now). ``dose_ml`` with ``vial`` gives the dose from the product's vial strengths;
    ``dose``/``dose_unit`` (product units) are for courses without a catalogue product (imports, FHIR) and,
    when both are given, must agree with vial x dose_ml. ``vial_id``: the registered vial drawn from (its
    strength is ``vial``; its lot is the injection's). ``checks``: the pre-injection check's answers by
    question id. ``override_reason``: why an injection is given despite a rule that refuses it (before its
    earliest time, above the dose due, a check that holds the dose, a do-not-dose answer); recorded."""

    course_id: int = Field(ge=1, le=2**31 - 1)
    dose_ml: Decimal | None = limit("dose_ml").pydantic(None)
    given_at: OptionalClinicInstant = Field(None, json_schema_extra={"accepted": CLINIC_TIME})
    vial: str | None = Field(None, max_length=32)
    lot: str | None = Field(None, max_length=64)
    site: Annotated[str | None, one_of(vocabularies.INJECTION_SITES)] = choice_field(
        vocabularies.INJECTION_SITES, None
    )
    observed_minutes: int | None = limit("observed_minutes").pydantic(None)
    override_reason: str | None = Field(None, max_length=500)
    vial_id: int | None = Field(None, ge=1, le=2**31 - 1)
    checks: (
        dict[
            Annotated[str, Field(max_length=CHECK_NAME_MAX_CHARS)],
            Annotated[str, Field(max_length=CHECK_ANSWER_MAX_CHARS)],
        ]
        | None
    ) = Field(None, max_length=32)
    dose: Decimal | None = Field(None, gt=0, le=10**9)
    dose_unit: str | None = Field(None, max_length=16)
    phase: Annotated[str | None, one_of(vocabularies.INJECTION_PHASES)] = choice_field(
        vocabularies.INJECTION_PHASES, None
    )


class InjectionReactionIn(InputModel):
    """A reaction to the course's last injection as entered on injection day (form and API): a local reaction
    by its size (the sizes the SCIT local-reaction rules read), or a systemic one by its findings, graded on a
    scale the SCIT systemic rules read."""

    kind: Annotated[str, one_of(vocabularies.REACTION_KINDS)] = choice_field(vocabularies.REACTION_KINDS)
    local_size: Annotated[str | None, one_of(vocabularies.LOCAL_REACTION_SIZES)] = choice_field(
        vocabularies.LOCAL_REACTION_SIZES, None
    )
    scale: Annotated[str, one_of(ENGINE_SCALES)] = choice_field(ENGINE_SCALES, "wao2010")
    symptoms: list[Annotated[str, one_of(vocabularies.REACTION_SYMPTOMS)]] = Field(
        default_factory=list, max_length=len(vocabularies.REACTION_SYMPTOMS)
    )
    bronchodilator_response: Annotated[str | None, one_of(vocabularies.BRONCHODILATOR_RESPONSES)] = (
        choice_field(vocabularies.BRONCHODILATOR_RESPONSES, None)
    )
    epinephrine_minutes: Decimal | None = limit("epinephrine_minutes").pydantic(None)
    onset_minutes: Decimal | None = limit("onset_minutes").pydantic(None)
