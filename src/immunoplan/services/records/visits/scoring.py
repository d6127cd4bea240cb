"""What the engines compute for a visit: questionnaire scores (`immunoplan.clinical.questionnaires`) and GLI
spirometry results (`immunoplan.clinical.spirometry`, with the patient's age AT THE VISIT DATE), and the
measurement rows that store them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from immunoplan.clinical import questionnaires as questionnaire_engine
from immunoplan.clinical import spirometry as spirometry_engine
from immunoplan.errors import InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.registry import models as m
from immunoplan.services.records.patients import age_on
from immunoplan.services.records.visits.inputs import (
    QUESTIONNAIRE_FIELDS,
    VisitIn,
    VisitResultsInvalid,
    questionnaire_engine_id,
)


def age_at(patient: m.Patient, day: date) -> int | None:
    """The patient's age in completed years on ``day`` (the visit date, not today): `patients.age_on`."""
    return age_on(patient.birth_date, patient.age_years, day)


@dataclass
class VisitResults:
    """What the engines computed for one visit, ready to store and to show."""

    questionnaires: dict[str, dict[str, Any]] = field(default_factory=dict)
    spirometry: dict[str, Any] | None = None
    labs: dict[str, Decimal] = field(default_factory=dict)


def engine_error(exc: InvalidInput, field_name: str) -> InvalidInput:
    """An engine error re-addressed to the input field (the engine names its own argument, e.g. 'item 3')."""
    reason = exc.reason if exc.field in (field_name, "items") else f"{exc.field}: {exc.reason}"
    return InvalidInput(field_name, reason, exc.accepted)


def score_questionnaire(instrument: str, items: Any, *, age: int | None, fev1_pct_pred: Any = None) -> Any:
    """The engine's score of one registry instrument's item responses (JSON-able)."""
    return to_jsonable(
        questionnaire_engine.score(
            questionnaire_engine_id(instrument), items, fev1_percent_predicted=fev1_pct_pred, age=age
        )
    )


def _spirometry(v: VisitIn, patient: m.Patient, age: int | None, errors: list[InvalidInput]) -> Any:
    sex = v.sex or (patient.sex if patient.sex in spirometry_engine.SEXES else None)
    if sex is None:
        errors.append(InvalidInput("sex", "is required for the reference equation", "female, male"))
    if v.height_cm is None:
        errors.append(InvalidInput("height_cm", "is required for the GLI results", "a height in cm"))
    if age is None:
        errors.append(
            InvalidInput("age_years", "the patient's age at the visit is unknown: record the birth date")
        )
    if errors:
        return None
    ratio = v.fev1_l / v.fvc_l if v.fev1_l is not None and v.fvc_l is not None else None
    try:
        return to_jsonable(
            spirometry_engine.spirometry(
                sex=str(sex),
                age=age,
                height_cm=v.height_cm,
                equation=v.equation,
                ethnicity=v.ethnicity,
                fev1_l=v.fev1_l,
                fvc_l=v.fvc_l,
                fev1_fvc=ratio,
            )
        )
    except InvalidInput as exc:  # names its own argument: sex, age_years, height_cm, fev1_l ...
        errors.append(exc)
        return None


def score_visit(
    v: VisitIn, patient: m.Patient, *, age: int | None, fev1_pct_pred: Any = None
) -> VisitResults:
    """Score the questionnaires and compute the GLI results of ``v`` (all engine errors at once:
    `VisitResultsInvalid`). ``fev1_pct_pred`` is a FEV1 % predicted already recorded at this visit, used for
    ACQ-7 item 7 when ``v`` has no spirometry (an amendment)."""
    out = VisitResults(labs=v.labs())
    errors: list[InvalidInput] = []
    if v.has_spirometry():
        out.spirometry = _spirometry(v, patient, age, errors)
    if out.spirometry and (out.spirometry.get("fev1") or {}).get("percent_predicted") is not None:
        fev1_pct_pred = out.spirometry["fev1"]["percent_predicted"]
    for name, items in v.questionnaire_items().items():
        acq7_fev1 = fev1_pct_pred if questionnaire_engine_id(name) == "acq7" and len(items) == 6 else None
        try:
            out.questionnaires[name] = score_questionnaire(name, items, age=age, fev1_pct_pred=acq7_fev1)
        except InvalidInput as exc:
            errors.append(engine_error(exc, QUESTIONNAIRE_FIELDS[name]))
    if v.sige_kua_l is not None and not v.sige_allergen:
        errors.append(
            InvalidInput("sige_allergen", "is required with sige_kua_l", "an allergen code, e.g. d1")
        )
    if errors:
        raise VisitResultsInvalid(errors)
    return out


def measurement_rows(results: VisitResults, sige_allergen: str | None) -> list[dict[str, Any]]:
    """(kind, allergen, value, pct_predicted, z_score, reference_equation) of every measurement to store."""
    rows: list[dict[str, Any]] = []
    sp = results.spirometry
    if sp:
        eq = sp["equation"]
        for measure, kind in (("fev1", "fev1_l"), ("fvc", "fvc_l"), ("fev1_fvc", "fev1_fvc_pct")):
            r = sp.get(measure)
            if r and r.get("observed") is not None:
                value = Decimal(str(r["observed"])) * (100 if kind == "fev1_fvc_pct" else 1)
                rows.append(
                    dict(
                        kind=kind,
                        allergen="",
                        value=value,
                        pct_predicted=r["percent_predicted"],
                        z_score=r["z"],
                        reference_equation=eq,
                    )
                )
        if (sp.get("fev1") or {}).get("percent_predicted") is not None:
            rows.append(
                dict(
                    kind="fev1_pct_pred",
                    allergen="",
                    value=sp["fev1"]["percent_predicted"],
                    reference_equation=eq,
                )
            )
    for kind, value in results.labs.items():
        rows.append(
            dict(kind=kind, allergen=(sige_allergen or "") if kind == "sige_kua_l" else "", value=value)
        )
    return rows
