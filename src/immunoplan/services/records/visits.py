"""Visits and what is measured at them: questionnaires, spirometry (GLI) and laboratory results.

- `record_visit_with_results` is the one use case behind the visit page, ``POST /api/patients/{id}/visits``
  and ``immunoplan visit record``: it scores the questionnaires (`immunoplan.clinical.questionnaires`),
  computes the GLI results (`immunoplan.clinical.spirometry`, with the patient's age AT THE VISIT DATE) and
  writes the visit with every result in ONE transaction (`unit_of_work.write`): a bad questionnaire leaves
  nothing written. Its input is `VisitIn`, declared once (field limits from `immunoplan.reference.limits`,
  vocabularies from `immunoplan.clinical.vocabularies`).
- A visit already recorded for the same patient, code and date is refused with a `Conflict` naming it
  (``record="visit 12"``): the caller corrects that visit (`services.records.corrections.amend`, which calls
  `amend_visit` here) instead of getting a database error.
- The keyword functions `record_visit`, `record_measurement` and `record_questionnaire` (tests, importer-style
  callers) write one row each, also through `unit_of_work.write`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from immunoplan import clock
from immunoplan.clinical import questionnaires as questionnaire_engine
from immunoplan.clinical import spirometry as spirometry_engine
from immunoplan.clinical.vocabularies import QUESTIONNAIRES, VISIT_CODES
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.reference import load
from immunoplan.reference.limits import limit
from immunoplan.registry import checks as ck
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services.inputs import InputModel, validate
from immunoplan.services.records.common import (
    find_patient,
    find_visit,
    int_or_none,
    opt_course_id,
    opt_float,
    opt_int,
    save_row,
)
from immunoplan.services.records.fields import ClinicDate, choice_field, one_of
from immunoplan.services.records.patients import age_on, patient_by_id
from immunoplan.services.unit_of_work import write

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
DEFAULT_EQUATION = spirometry_engine.EQUATIONS[0]  # GLI Global 2022 (race-neutral; clinical.spirometry)

Items = Annotated[list[Decimal], Field(max_length=40)]


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


# ------------------------------------------------------------------------------------------ computation


def age_at(patient: m.Patient, day: date) -> int | None:
    """The patient's age in completed years on ``day`` (the visit date, not today): `patients.age_on`."""
    return age_on(patient.birth_date, patient.age_years, day)


@dataclass
class VisitResults:
    """What the engines computed for one visit, ready to store and to show."""

    questionnaires: dict[str, dict[str, Any]] = field(default_factory=dict)
    spirometry: dict[str, Any] | None = None
    labs: dict[str, Decimal] = field(default_factory=dict)


def _engine_error(exc: InvalidInput, field_name: str) -> InvalidInput:
    """An engine error re-addressed to the input field (the engine names its own argument, e.g. 'item 3')."""
    reason = exc.reason if exc.field in (field_name, "items") else f"{exc.field}: {exc.reason}"
    return InvalidInput(field_name, reason, exc.accepted)


def score_visit(
    v: VisitIn, patient: m.Patient, *, age: int | None, fev1_pct_pred: Any = None
) -> VisitResults:
    """Score the questionnaires and compute the GLI results of ``v`` (all engine errors at once:
    `VisitResultsInvalid`). ``fev1_pct_pred`` is a FEV1 % predicted already recorded at this visit, used for
    ACQ-7 item 7 when ``v`` has no spirometry (an amendment)."""
    out = VisitResults(labs=v.labs())
    errors: list[InvalidInput] = []
    if v.has_spirometry():
        sex = v.sex or (patient.sex if patient.sex in spirometry_engine.SEXES else None)
        if sex is None:
            errors.append(InvalidInput("sex", "is required for the reference equation", "female, male"))
        if v.height_cm is None:
            errors.append(InvalidInput("height_cm", "is required for the GLI results", "a height in cm"))
        if age is None:
            errors.append(
                InvalidInput("age_years", "the patient's age at the visit is unknown: record the birth date")
            )
        if not errors:
            ratio = v.fev1_l / v.fvc_l if v.fev1_l is not None and v.fvc_l is not None else None
            try:
                res = spirometry_engine.spirometry(
                    sex=str(sex),
                    age=age,
                    height_cm=v.height_cm,
                    equation=v.equation,
                    ethnicity=v.ethnicity,
                    fev1_l=v.fev1_l,
                    fvc_l=v.fvc_l,
                    fev1_fvc=ratio,
                )
                out.spirometry = to_jsonable(res)
            except InvalidInput as exc:  # names its own argument: sex, age_years, height_cm, fev1_l ...
                errors.append(exc)
    if out.spirometry and (out.spirometry.get("fev1") or {}).get("percent_predicted") is not None:
        fev1_pct_pred = out.spirometry["fev1"]["percent_predicted"]
    for name, items in v.questionnaire_items().items():
        fld = QUESTIONNAIRE_FIELDS[name]
        engine_id = fld.replace("_", "-")
        acq7_fev1 = fev1_pct_pred if engine_id == "acq7" and len(items) == 6 else None
        try:
            out.questionnaires[name] = to_jsonable(
                questionnaire_engine.score(engine_id, items, fev1_percent_predicted=acq7_fev1, age=age)
            )
        except InvalidInput as exc:
            errors.append(_engine_error(exc, fld))
    if v.sige_kua_l is not None and not v.sige_allergen:
        errors.append(
            InvalidInput("sige_allergen", "is required with sige_kua_l", "an allergen code, e.g. d1")
        )
    if errors:
        raise VisitResultsInvalid(errors)
    return out


def _measurement_rows(results: VisitResults, sige_allergen: str | None) -> list[dict[str, Any]]:
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


# ------------------------------------------------------------------------------------------ look-ups


def live_visit(s: Session, patient_id: int, code: str, day: date, *, other_than: int | None = None) -> Any:
    q = select(m.Visit).where(
        m.Visit.patient_id == patient_id,
        m.Visit.code == code,
        m.Visit.visit_on == day,
        m.Visit.voided_at.is_(None),
    )
    if other_than is not None:
        q = q.where(m.Visit.id != other_than)
    return s.scalar(q)


def visit_conflict(existing: m.Visit, pseudo_id: str) -> Conflict:
    """The refusal of a second visit with the same patient, code and date (names the existing one)."""
    return Conflict(
        "visit_on",
        f"patient {pseudo_id} already has a {existing.code} visit on {existing.visit_on.isoformat()} "
        f"(visit {existing.id}); nothing was saved: correct that visit instead (amend)",
        f"visit {existing.id}",
    )


def _live_measurement(
    s: Session, patient_id: int, kind: str, allergen: str, day: date, *, other_than: int | None = None
) -> Any:
    q = select(m.Measurement).where(
        m.Measurement.patient_id == patient_id,
        m.Measurement.kind == kind,
        m.Measurement.allergen == allergen,
        m.Measurement.measured_on == day,
        m.Measurement.voided_at.is_(None),
    )
    if other_than is not None:
        q = q.where(m.Measurement.id != other_than)
    return s.scalar(q)


def _live_questionnaire(
    s: Session, patient_id: int, instrument: str, day: date, *, other_than: int | None = None
) -> Any:
    q = select(m.Questionnaire).where(
        m.Questionnaire.patient_id == patient_id,
        m.Questionnaire.instrument == instrument,
        m.Questionnaire.completed_on == day,
        m.Questionnaire.voided_at.is_(None),
    )
    if other_than is not None:
        q = q.where(m.Questionnaire.id != other_than)
    return s.scalar(q)


def _duplicate_measurement(row: m.Measurement) -> Conflict:
    what = row.kind + (f" ({row.allergen})" if row.allergen else "")
    return Conflict(
        row.kind,
        f"{what} is already recorded on {row.measured_on.isoformat()} (measurement {row.id}): "
        "correct it instead",
        f"measurement {row.id}",
    )


def _duplicate_questionnaire(row: m.Questionnaire) -> Conflict:
    return Conflict(
        QUESTIONNAIRE_FIELDS.get(row.instrument, "instrument"),
        f"{row.instrument} is already recorded on {row.completed_on.isoformat()} (questionnaire {row.id}): "
        "correct it instead",
        f"questionnaire {row.id}",
    )


def _patient(s: Session, patient_id: Any, *, lock: bool = False) -> m.Patient:
    p = patient_by_id(s, patient_id)
    if lock:  # PostgreSQL: serialise the visits of one patient (SQLite: BEGIN IMMEDIATE already does)
        s.refresh(p, with_for_update=True)
    return p


def _course_of(s: Session, p: m.Patient, course_id: int | None) -> int | None:
    if course_id is None:
        return None
    c = s.get(m.Course, course_id)
    if c is None or c.patient_id != p.id:
        raise InvalidInput("course_id", f"no course {course_id} for patient {p.pseudo_id}")
    return c.id


# ------------------------------------------------------------------------------------------ writing


def _add_results(
    s: Session, p: m.Patient, visit: m.Visit, results: VisitResults, sige_allergen: str | None
) -> dict[str, Any]:
    """Insert the questionnaire and measurement rows of ``results`` for ``visit`` (duplicates: `Conflict`)."""
    day = visit.visit_on
    qrows: dict[str, Any] = {}
    for name, res in results.questionnaires.items():
        dup = _live_questionnaire(s, p.id, name, day)
        if dup is not None:
            raise _duplicate_questionnaire(dup)
        q = m.Questionnaire(
            patient_id=p.id,
            visit_id=visit.id,
            instrument=name,
            score=float(res["score"]),
            completed_on=day,
            items=res.get("items"),
        )
        qrows[name] = {**res, "id": save_row(s, q)["id"]}
    mrows = []
    for r in _measurement_rows(results, sige_allergen):
        kind, value, allergen, unit = ck.measurement(r["kind"], r["value"], r["allergen"])
        dup = _live_measurement(s, p.id, kind, allergen, day)
        if dup is not None:
            raise _duplicate_measurement(dup)
        row = m.Measurement(
            patient_id=p.id,
            visit_id=visit.id,
            kind=kind,
            allergen=allergen,
            value=value,
            unit=unit,
            measured_on=day,
            pct_predicted=opt_float("pct_predicted", r.get("pct_predicted")),
            z_score=opt_float("z_score", r.get("z_score")),
            reference_equation=r.get("reference_equation"),
        )
        mrows.append(save_row(s, row))
    return {"questionnaires": qrows, "measurements": mrows}


def record_visit_with_results(
    reg: Registry,
    actor: str,
    patient_id: Any,
    visit: VisitIn | Mapping[str, Any],
    *,
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Record a visit with its questionnaires (scored), spirometry (GLI, age at the visit) and laboratory
    results in one transaction. Refuses: bad input (`InvalidInput` / `VisitResultsInvalid`, nothing written);
    a visit with no result; a second visit with the same patient, code and date (`Conflict` naming it)."""
    v = visit if isinstance(visit, VisitIn) else validate(VisitIn, visit)
    if not v.has_results():
        raise InvalidInput(
            "results", "enter at least one questionnaire, a spirometry result or a laboratory result"
        )

    def run(s: Session) -> dict[str, Any]:
        p = _patient(s, patient_id, lock=True)  # PostgreSQL: serialise visits of one patient
        age = age_at(p, v.visit_on)
        results = score_visit(v, p, age=age)  # input errors first: a refused duplicate has valid values
        existing = live_visit(s, p.id, v.code, v.visit_on)
        if existing is not None:
            raise visit_conflict(existing, p.pseudo_id)
        row = m.Visit(
            patient_id=p.id,
            code=v.code,
            visit_on=v.visit_on,
            course_id=_course_of(s, p, v.course_id),
            asthma_step=v.asthma_step,
            medication_score=None if v.medication_score is None else float(v.medication_score),
            notes=v.notes,
        )
        stored = save_row(s, row)
        written = _add_results(s, p, row, results, v.sige_allergen)
        return {
            "id": row.id,
            "patient_id": p.id,
            "pseudo_id": p.pseudo_id,
            "age_years_at_visit": age,
            "visit": stored,
            "questionnaires": written["questionnaires"],
            "spirometry": results.spirometry,
            "measurements": written["measurements"],
        }

    return write(reg, actor, USE_CASE, run, idempotency_key=idempotency_key)


# ------------------------------------------------------------------------------------------ amendments


def _changed(row: Any, column: str, new: Any, changed: dict[str, Any]) -> None:
    old = getattr(row, column)
    if old != new:
        changed[column] = {"before": to_jsonable(old), "after": to_jsonable(new)}
        setattr(row, column, new)


def _stamp(row: Any, actor: str, reason: str, at: datetime) -> None:
    row.amended_at, row.amended_by, row.amend_reason = at, actor, reason


def amend_visit(
    s: Session, actor: str, visit: m.Visit, changes: Mapping[str, Any], reason: str, at: datetime
) -> dict[str, Any]:
    """Amend a live visit in the caller's transaction: its own columns and/or results (any `VisitIn` field).

    The changed fields are re-validated with `VisitIn` (same limits as recording); questionnaires given are
    re-scored and spirometry recomputed (GLI, age at the visit date); results replace the visit's live result
    of the same instrument/kind (or are added). A new date moves the visit's results with it. Refuses a
    change that makes it a duplicate of another visit (`Conflict` naming it)."""
    unknown = sorted(set(changes) - set(VisitIn.model_fields))
    if unknown:
        raise InvalidInput(
            unknown[0],
            "is not a field of a visit",
            ", ".join(f for f in VisitIn.model_fields if f != "notes"),
        )
    p = s.get(m.Patient, visit.patient_id)
    assert p is not None  # visits.patient_id is a non-null foreign key
    current = {c: getattr(visit, c) for c in VISIT_COLUMNS if getattr(visit, c) is not None}
    v = validate(VisitIn, {**current, **changes})
    changed: dict[str, Any] = {}
    for c in VISIT_COLUMNS:
        if c not in changes:
            continue
        new = getattr(v, c)
        if c == "medication_score" and new is not None:
            new = float(new)
        if c == "course_id":
            new = _course_of(s, p, new)
        _changed(visit, c, new, changed)
    if "code" in changed or "visit_on" in changed:
        other = live_visit(s, p.id, visit.code, visit.visit_on, other_than=visit.id)
        if other is not None:
            raise visit_conflict(other, p.pseudo_id)
    children_q = list(
        s.scalars(
            select(m.Questionnaire).where(
                m.Questionnaire.visit_id == visit.id, m.Questionnaire.voided_at.is_(None)
            )
        )
    )
    children_m = list(
        s.scalars(
            select(m.Measurement).where(m.Measurement.visit_id == visit.id, m.Measurement.voided_at.is_(None))
        )
    )
    if "visit_on" in changed:  # the visit's results are dated with it
        for q in children_q:
            dup = _live_questionnaire(s, p.id, q.instrument, visit.visit_on, other_than=q.id)
            if dup is not None:
                raise _duplicate_questionnaire(dup)
            q.completed_on = visit.visit_on
            _stamp(q, actor, reason, at)
        for x in children_m:
            dup = _live_measurement(s, p.id, x.kind, x.allergen, visit.visit_on, other_than=x.id)
            if dup is not None:
                raise _duplicate_measurement(dup)
            x.measured_on = visit.visit_on
            _stamp(x, actor, reason, at)
    stored_fev1 = next((x.value for x in children_m if x.kind == "fev1_pct_pred"), None)
    results = score_visit(v, p, age=age_at(p, visit.visit_on), fev1_pct_pred=stored_fev1)
    replaced: dict[str, Any] = {}
    by_instrument = {q.instrument: q for q in children_q}
    for name, res in results.questionnaires.items():
        qrow = by_instrument.get(name)
        if qrow is None:
            dup = _live_questionnaire(s, p.id, name, visit.visit_on)
            if dup is not None:
                raise _duplicate_questionnaire(dup)
            qrow = m.Questionnaire(
                patient_id=p.id, visit_id=visit.id, instrument=name, completed_on=visit.visit_on
            )
            s.add(qrow)
        else:
            _stamp(qrow, actor, reason, at)
        before = qrow.score
        qrow.score, qrow.items = float(res["score"]), res.get("items")
        replaced[name] = {"before": before, "after": qrow.score}
    by_kind = {(mrow.kind, mrow.allergen): mrow for mrow in children_m}
    for r in _measurement_rows(results, v.sige_allergen):
        kind, value, allergen, unit = ck.measurement(r["kind"], r["value"], r["allergen"])
        mrow = by_kind.get((kind, allergen))
        if mrow is None:
            dup = _live_measurement(s, p.id, kind, allergen, visit.visit_on)
            if dup is not None:
                raise _duplicate_measurement(dup)
            mrow = m.Measurement(
                patient_id=p.id, visit_id=visit.id, kind=kind, allergen=allergen, measured_on=visit.visit_on
            )
            s.add(mrow)
        else:
            _stamp(mrow, actor, reason, at)
        before_value = mrow.value
        mrow.value, mrow.unit = value, unit
        mrow.pct_predicted = opt_float("pct_predicted", r.get("pct_predicted"))
        mrow.z_score = opt_float("z_score", r.get("z_score"))
        mrow.reference_equation = r.get("reference_equation")
        replaced[kind + (f" ({allergen})" if allergen else "")] = {"before": before_value, "after": value}
    if not changed and not replaced:
        raise InvalidInput("changes", "nothing to change: every value is the one already recorded")
    _stamp(visit, actor, reason, at)
    s.flush()
    return {"changed": changed, "results": to_jsonable(replaced), "spirometry": results.spirometry}


def amend_questionnaire(
    s: Session, actor: str, row: m.Questionnaire, changes: Mapping[str, Any], reason: str, at: datetime
) -> dict[str, Any]:
    """Amend a live questionnaire: ``items`` (re-scored by the engine, age at the date), ``completed_on``, or
    ``score`` (only for a questionnaire stored without items)."""
    allowed = ("items", "score", "completed_on")
    unknown = sorted(set(changes) - set(allowed))
    if unknown:
        raise InvalidInput(unknown[0], "is not a field of a questionnaire", ", ".join(allowed))
    p = s.get(m.Patient, row.patient_id)
    assert p is not None
    changed: dict[str, Any] = {}
    if "completed_on" in changes:
        day = clock.parse_date("completed_on", changes["completed_on"])
        if day != row.completed_on:
            dup = _live_questionnaire(s, p.id, row.instrument, day, other_than=row.id)
            if dup is not None:
                raise _duplicate_questionnaire(dup)
        _changed(row, "completed_on", day, changed)
    if "items" in changes:
        items = split_items(changes["items"])
        if not isinstance(items, list) or not items:
            raise InvalidInput(
                "items", "are required to re-score the questionnaire", "comma-separated responses"
            )
        engine_id = QUESTIONNAIRE_FIELDS.get(row.instrument, "").replace("_", "-")
        try:
            res = to_jsonable(questionnaire_engine.score(engine_id, items, age=age_at(p, row.completed_on)))
        except InvalidInput as exc:
            raise _engine_error(exc, "items") from None
        _changed(row, "items", res["items"], changed)
        _changed(row, "score", float(res["score"]), changed)
    elif "score" in changes:
        if row.items:
            raise InvalidInput("score", "is computed from the item responses: amend the items instead")
        _, score = ck.questionnaire_score(row.instrument, changes["score"])
        _changed(row, "score", score, changed)
    if not changed:
        raise InvalidInput("changes", "nothing to change: every value is the one already recorded")
    _stamp(row, actor, reason, at)
    return {"changed": changed}


def amend_measurement(
    s: Session, actor: str, row: m.Measurement, changes: Mapping[str, Any], reason: str, at: datetime
) -> dict[str, Any]:
    """Amend a live laboratory result: ``value`` (the kind's limit and unit), ``measured_on``, ``allergen``,
    ``method``. Spirometry with GLI results is amended through its visit (the GLI inputs are needed)."""
    allowed = ("value", "measured_on", "allergen", "method")
    unknown = sorted(set(changes) - set(allowed))
    if unknown:
        raise InvalidInput(unknown[0], "is not a field of a measurement", ", ".join(allowed))
    if row.reference_equation and row.visit_id and {"value"} & set(changes):
        raise InvalidInput(
            "value",
            f"{row.kind} carries GLI results: amend visit {row.visit_id} with fev1_l/fvc_l and height_cm",
        )
    changed: dict[str, Any] = {}
    kind, value, allergen, unit = ck.measurement(
        row.kind, changes.get("value", row.value), changes.get("allergen", row.allergen), row.unit
    )
    day = (
        clock.parse_date("measured_on", changes["measured_on"])
        if "measured_on" in changes
        else row.measured_on
    )
    if (day, allergen) != (row.measured_on, row.allergen):
        dup = _live_measurement(s, row.patient_id, kind, allergen, day, other_than=row.id)
        if dup is not None:
            raise _duplicate_measurement(dup)
    _changed(row, "value", value, changed)
    _changed(row, "allergen", allergen, changed)
    _changed(row, "measured_on", day, changed)
    if "method" in changes:
        method = changes["method"] or None
        if method is not None and len(str(method)) > 64:
            raise InvalidInput("method", "is too long", "at most 64 characters")
        _changed(row, "method", method, changed)
    if not changed:
        raise InvalidInput("changes", "nothing to change: every value is the one already recorded")
    _stamp(row, actor, reason, at)
    return {"changed": changed}


def void_visit_results(s: Session, actor: str, visit: m.Visit, reason: str, at: datetime) -> list[str]:
    """Void the live questionnaires and measurements of a voided visit (they were recorded with it)."""
    rows: list[m.Questionnaire | m.Measurement] = [
        *s.scalars(
            select(m.Questionnaire).where(
                m.Questionnaire.visit_id == visit.id, m.Questionnaire.voided_at.is_(None)
            )
        ),
        *s.scalars(
            select(m.Measurement).where(m.Measurement.visit_id == visit.id, m.Measurement.voided_at.is_(None))
        ),
    ]
    for row in rows:
        row.voided_at, row.voided_by, row.void_reason = at, actor, reason
    return [f"{type(row).__name__.lower()} {row.id}" for row in rows]


# ------------------------------------------------------------------------------------------ reading


def visit_form_defaults(reg: Registry, patient_id: int) -> dict[str, Any] | None:
    """What the visit form shows before anything is typed (None: no such patient)."""
    with reg.session() as s:
        p = s.get(m.Patient, patient_id)
        if p is None:
            return None
        today = clock.today()
        return {
            "patient_id": p.id,
            "pseudo_id": p.pseudo_id,
            "age_today": age_at(p, today),
            "sex": p.sex if p.sex in spirometry_engine.SEXES else "",
            "visit_on": today.isoformat(),
        }


def questionnaire_hints() -> dict[str, str]:
    """Input field -> item count and range of its instrument, from the engine's reference data."""
    out = {}
    for name, fld in QUESTIONNAIRE_FIELDS.items():
        spec = load_instrument(fld.replace("_", "-"))
        groups = spec.get("items") or spec.get("inputs") or []
        parts = [
            f"{g['count']} items {g['min']}-{g['max']}" + (f" ({g['who']})" if g.get("who") else "")
            for g in groups
        ]
        out[fld] = f"{name}: " + "; ".join(parts) + f" · {spec['name']}"
    return out


def load_instrument(engine_id: str) -> dict[str, Any]:
    """The questionnaire engine's reference entry of one instrument (items, ranges, name)."""
    return load(questionnaire_engine.TABLE)["instruments"][engine_id]  # type: ignore[no-any-return]


def _derived_results(s: Session, visit: m.Visit, p: m.Patient) -> dict[str, Any]:
    """The results of a stored visit re-derived from its live rows (questionnaires re-scored from their items;
    GLI observed value, z-score and % predicted as stored)."""
    qs: dict[str, Any] = {}
    for q in s.scalars(
        select(m.Questionnaire).where(
            m.Questionnaire.visit_id == visit.id, m.Questionnaire.voided_at.is_(None)
        )
    ):
        engine_id = QUESTIONNAIRE_FIELDS.get(q.instrument, "").replace("_", "-")
        try:
            qs[q.instrument] = {
                **to_jsonable(
                    questionnaire_engine.score(engine_id, q.items or [], age=age_at(p, visit.visit_on))
                ),
                "id": q.id,
            }
        except InvalidInput:
            qs[q.instrument] = {"score": q.score, "id": q.id, "rules": [], "warnings": []}
    sp: dict[str, Any] | None = None
    for x in s.scalars(
        select(m.Measurement).where(
            m.Measurement.visit_id == visit.id,
            m.Measurement.voided_at.is_(None),
            m.Measurement.kind.in_(("fev1_l", "fvc_l", "fev1_fvc_pct")),
        )
    ):
        sp = sp or {"equation": x.reference_equation, "rules": [], "warnings": []}
        key = {"fev1_l": "fev1", "fvc_l": "fvc", "fev1_fvc_pct": "fev1_fvc"}[x.kind]
        observed = x.value / 100 if x.kind == "fev1_fvc_pct" else x.value
        sp[key] = {"observed": observed, "z": x.z_score, "percent_predicted": x.pct_predicted}
    return {"questionnaires": qs, "spirometry": sp}


def visit_view(
    reg: Registry, patient_id: int, visit_id: int, shown: str | None = None
) -> dict[str, Any] | None:
    """A recorded visit for its page: the visit, its rows (with corrections) and its results. ``shown`` is
    the idempotency key of the write that recorded it: its stored result (with predicted values and LLN) is
    shown as computed; otherwise the results are re-derived from the stored rows. None: no such visit."""
    with reg.session() as s:
        visit = s.get(m.Visit, visit_id)
        if visit is None or visit.patient_id != patient_id:
            return None
        p = s.get(m.Patient, patient_id)
        assert p is not None
        results: dict[str, Any] | None = None
        if shown:
            stored = s.scalar(
                select(m.IdempotencyKey.result).where(
                    m.IdempotencyKey.key == str(shown)[:128], m.IdempotencyKey.use_case == USE_CASE
                )
            )
            if isinstance(stored, dict) and stored.get("id") == visit.id and not visit.amended_at:
                results = stored
        if results is None:
            results = _derived_results(s, visit, p)
        rows = {
            "questionnaires": [
                _raw(q)
                for q in s.scalars(
                    select(m.Questionnaire)
                    .where(m.Questionnaire.visit_id == visit.id)
                    .order_by(m.Questionnaire.id)
                )
            ],
            "measurements": [
                _raw(x)
                for x in s.scalars(
                    select(m.Measurement).where(m.Measurement.visit_id == visit.id).order_by(m.Measurement.id)
                )
            ],
        }
        return {
            "visit": _raw(visit),
            "pseudo_id": p.pseudo_id,
            "age_years_at_visit": age_at(p, visit.visit_on),
            "results": results,
            **rows,
        }


def _raw(obj: m.Base) -> dict[str, Any]:
    """A row's columns with their Python values (dates and instants kept for clinic-time display)."""
    return {c.key: getattr(obj, c.key) for c in obj.__mapper__.column_attrs}


# ------------------------------------------------------------------------------------------ keyword API


def record_visit(
    reg: Registry,
    actor: str,
    *,
    pseudo_id: str,
    code: str,
    visit_on: Any,
    week: Any = None,
    course_id: Any = None,
    asthma_step: Any = None,
    medication_score: Any = None,
    notes: str | None = None,
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Record a visit row alone (baseline, week12, week24, week48, month12 ...); a second live visit with
    the same patient, code and date is a `Conflict` naming it."""
    code = ck.choice("code", code, VISIT_CODES)
    day = clock.parse_date("visit_on", visit_on)
    wk = opt_int("week", week)
    med = limit("medication_score").check_optional(medication_score)
    step = int_or_none(ck.patient_number("asthma_step", asthma_step))

    def run(s: Session) -> dict[str, Any]:
        p = find_patient(s, pseudo_id)
        existing = live_visit(s, p.id, code, day)
        if existing is not None:
            raise visit_conflict(existing, p.pseudo_id)
        v = m.Visit(
            patient_id=p.id,
            code=code,
            visit_on=day,
            week=wk,
            medication_score=None if med is None else float(med),
            notes=notes,
            asthma_step=step,
            course_id=opt_course_id(s, course_id),
        )
        return save_row(s, v)

    return write(reg, actor, "record_visit", run, idempotency_key=idempotency_key)


def record_measurement(
    reg: Registry,
    actor: str,
    *,
    pseudo_id: str,
    kind: str,
    value: Any,
    measured_on: Any,
    allergen: str = "",
    unit: str | None = None,
    visit_code: str | None = None,
    pct_predicted: Any = None,
    z_score: Any = None,
    reference_equation: str | None = None,
    method: str | None = None,
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Record one laboratory or lung-function result (unit and plausible range checked; a second live result
    of the same kind on the same day is a `Conflict` naming it)."""
    kind, v, allergen, unit = ck.measurement(kind, value, allergen, unit)
    day = clock.parse_date("measured_on", measured_on)

    def run(s: Session) -> dict[str, Any]:
        p = find_patient(s, pseudo_id)
        visit = find_visit(s, p, visit_code)
        dup = _live_measurement(s, p.id, kind, allergen, day)
        if dup is not None:
            raise _duplicate_measurement(dup)
        row = m.Measurement(
            patient_id=p.id,
            visit_id=visit.id if visit else None,
            kind=kind,
            allergen=allergen,
            value=v,
            unit=unit,
            measured_on=day,
            reference_equation=reference_equation,
            method=method,
            pct_predicted=opt_float("pct_predicted", pct_predicted),
            z_score=opt_float("z_score", z_score),
        )
        return save_row(s, row)

    return write(reg, actor, "record_measurement", run, idempotency_key=idempotency_key)


def record_questionnaire(
    reg: Registry,
    actor: str,
    *,
    pseudo_id: str,
    instrument: str,
    score: Any,
    completed_on: Any,
    items: list[Any] | None = None,
    visit_code: str | None = None,
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Record a questionnaire score (ACT, C-ACT, ACQ-5/6/7, AQLQ, mini-AQLQ) with optional item answers (a
    second live score of the same instrument on the same day is a `Conflict` naming it)."""
    instrument, sc = ck.questionnaire_score(instrument, score)
    day = clock.parse_date("completed_on", completed_on)

    def run(s: Session) -> dict[str, Any]:
        p = find_patient(s, pseudo_id)
        visit = find_visit(s, p, visit_code)
        dup = _live_questionnaire(s, p.id, instrument, day)
        if dup is not None:
            raise _duplicate_questionnaire(dup)
        row = m.Questionnaire(
            patient_id=p.id,
            visit_id=visit.id if visit else None,
            instrument=instrument,
            score=sc,
            completed_on=day,
            items=to_jsonable(items) if items is not None else None,
        )
        return save_row(s, row)

    return write(reg, actor, "record_questionnaire", run, idempotency_key=idempotency_key)
