"""The input models of course planning, declared once (web forms, API bodies, CLI options)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field

from immunoplan.clinical import vocabularies as vocab
from immunoplan.clinical.omalizumab import INDICATIONS, REGIONS
from immunoplan.reference.limits import limit
from immunoplan.services.inputs import InputModel
from immunoplan.services.records.fields import ClinicDate, ClockTime, choice_field, one_of

USE_CASE = "plan_course"
OVERRIDE_FIELD = Field(
    None,
    max_length=500,
    description="why an UNVERIFIED label table may dose (recorded)",
)


class OmalizumabDosingIn(InputModel):
    """What the omalizumab label tables need (``services.omalizumab.label_dose``)."""

    age_years: Decimal | None = limit("age_years").pydantic(None)
    weight_kg: Decimal | None = limit("weight_kg").pydantic(None)
    total_ige_iu_ml: Decimal | None = limit("total_ige_iu_ml").pydantic(None)
    indication: Annotated[str, one_of(INDICATIONS)] = choice_field(INDICATIONS, "asthma")
    region: Annotated[str, one_of(REGIONS)] = choice_field(REGIONS, "us")


class ImmunotherapyCourseIn(OmalizumabDosingIn):
    """A SCIT course to plan; ``product``/``regimen`` are ``scit_products`` ids (names as in
    ``services.protocols.plan_scit_schedule``)."""

    product: str = Field(min_length=1, max_length=64, description="scit_products product id")
    regimen: str = Field(min_length=1, max_length=32, description="scit_products regimen id")
    start: ClinicDate
    start_time: ClockTime = None
    maintenance_interval_weeks: int | None = limit("maintenance_interval_weeks").pydantic(None)
    omalizumab: Annotated[str, one_of(vocab.OMALIZUMAB_MODES)] = choice_field(vocab.OMALIZUMAB_MODES, "none")
    omalizumab_lead_weeks: int | None = limit("omalizumab_lead_weeks").pydantic(None)
    omalizumab_override_reason: str | None = OVERRIDE_FIELD
    allergen: str | None = Field(None, max_length=64)


class OmalizumabCourseIn(OmalizumabDosingIn):
    """An omalizumab course on its own: the label dose every label interval from ``start``."""

    start: ClinicDate
    override_reason: str | None = OVERRIDE_FIELD
