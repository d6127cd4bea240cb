"""Treatment courses: plan one and store what it is (product id, regimen id and schedule parameters as
columns, the calendar shown with its basis in ``plan``), one transaction each.

- `plan_immunotherapy`: a SCIT course (conventional / cluster / rush, ``scit_products``); the schedule is
  computed here with `immunoplan.services.protocols.plan_scit_schedule`, optionally with omalizumab as an
  adjuvant (``pre``: from ``omalizumab_lead_weeks`` before the first injection; ``concurrent``: from the first
  injection) at the label dose. A regimen whose schedule is UNVERIFIED (the engine answers ``cannot-answer``)
  is refused, and so is an adjuvant whose label lookup gives no dose.
- `plan_omalizumab_course`: omalizumab alone, the label dose (`immunoplan.services.omalizumab`) every label
  interval.
- `plan_course`: the keyword form (tests, desensitization, import-like callers) storing what it is given.
- read helpers for the pages and the CLI: `immunotherapy_choices`, `planning_defaults`, `show_course`,
  `stored_label_dose`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from immunoplan import reference
from immunoplan.clinical import vocabularies as vocab
from immunoplan.clinical.immunotherapy import maintenance_dose
from immunoplan.clinical.immunotherapy.course_kinds import (
    UNPLANNABLE_STATUS,
    check_plannable,
    course_kind,
)
from immunoplan.clinical.omalizumab import INDICATIONS, REGIONS
from immunoplan.errors import InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.reference.limits import limit
from immunoplan.registry import checks as ck
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services import unit_of_work
from immunoplan.services.inputs import InputModel, validate
from immunoplan.services.records.common import (
    as_input,
    basis_json,
    find_patient,
    live_rows,
    lock_row,
    opt_decimal,
    opt_int,
)
from immunoplan.services.records.fields import ClinicDate, ClockTime, choice_field, local_row, one_of
from immunoplan.services.records.patients import age_on, latest_measurement, patient_by_id

USE_CASE = "plan_course"
OVERRIDE_FIELD = Field(None, max_length=500, description="why an UNVERIFIED label table may dose (recorded)")


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


# ------------------------------------------------------------------------------------------ computing


def immunotherapy_choices() -> list[dict[str, Any]]:
    """Products and regimens of ``scit_products`` with their status and whether they can be planned."""
    data = reference.load("scit_products")
    return [
        {
            "id": pid,
            "name": p["name"],
            "regimens": [
                {
                    "id": rid,
                    "name": r["name"],
                    "status": r["status"],
                    "plannable": r["status"] != UNPLANNABLE_STATUS and bool(r.get("rows")),
                    "course_kind": course_kind(rid),
                }
                for rid, r in p["regimens"].items()
            ],
        }
        for pid, p in data["products"].items()
    ]


def calendar(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One calendar: each date with its SCIT visit and/or omalizumab administration."""
    days: dict[str, dict[str, Any]] = {}
    for v in result.get("visits") or []:
        days.setdefault(v["date"], {"date": v["date"], "scit": None, "omalizumab": None})["scit"] = v
    for a in (result.get("omalizumab") or {}).get("administrations") or []:
        days.setdefault(a["date"], {"date": a["date"], "scit": None, "omalizumab": None})["omalizumab"] = a
    return [days[k] for k in sorted(days)]


def _scit_args(d: ImmunotherapyCourseIn) -> dict[str, Any]:
    args: dict[str, Any] = {
        "product": d.product,
        "regimen": d.regimen,
        "start": d.start,
        "start_time": d.start_time,
        "maintenance_interval_weeks": d.maintenance_interval_weeks,
    }
    if d.omalizumab != "none":
        args.update(
            omalizumab=d.omalizumab,
            omalizumab_lead_weeks=d.omalizumab_lead_weeks,
            age_years=d.age_years,
            weight_kg=d.weight_kg,
            total_ige_iu_ml=d.total_ige_iu_ml,
            indication=d.indication,
            region=d.region,
            omalizumab_override_reason=d.omalizumab_override_reason,
        )
    return {k: v for k, v in args.items() if v is not None}


def preview_immunotherapy(data: ImmunotherapyCourseIn | Mapping[str, Any]) -> dict[str, Any]:
    """The SCIT calendar (and omalizumab doses) that `plan_immunotherapy` would store; writes nothing.
    UNVERIFIED schedules are shown (kind ``cannot-answer``) but cannot be planned."""
    from immunoplan.services import protocols

    d = as_input(ImmunotherapyCourseIn, data)
    result: dict[str, Any] = to_jsonable(protocols.plan_scit_schedule(**_scit_args(d)))
    result["calendar"] = calendar(result)
    return result


def _refuse_unplannable(d: ImmunotherapyCourseIn, result: Mapping[str, Any]) -> None:
    if result.get("kind") != "schedule" or not result.get("visits"):
        basis = (result.get("basis") or [{}])[0]
        raise InvalidInput(
            "regimen",
            f"the schedule engine answered {result.get('kind')!r} for {d.product} {d.regimen} "
            f"(rule {basis.get('rule')!r}, status {basis.get('status')}): it cannot be planned",
            "a regimen whose schedule is not UNVERIFIED",
        )
    if d.omalizumab == "none":
        return
    om = result.get("omalizumab") or {}
    label = om.get("label_dose") or {}
    if label.get("status") != "dose" or not om.get("administrations"):
        raise InvalidInput(
            "omalizumab",
            f"the omalizumab label lookup answered {label.get('status')!r} ({label.get('reason')}): "
            "no dose to plan with the immunotherapy",
            "a label-table dose (an UNVERIFIED table needs omalizumab_override_reason), or omalizumab none",
        )


def _locked_patient(s: Session, patient_id: Any) -> m.Patient:
    """The patient, its row locked on PostgreSQL for the rest of the transaction (SQLite: BEGIN IMMEDIATE)."""
    p = patient_by_id(s, patient_id)
    lock_row(s, p)
    return p


def _planned(c: m.Course, result: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": c.id,
        "course": local_row(c),
        "kind": c.kind,
        "schedule": result.get("visits") or [],
        "omalizumab": result.get("omalizumab"),
        "calendar": result.get("calendar") or [],
        "warnings": result.get("warnings") or [],
        "basis": c.basis or [],
    }


def plan_immunotherapy(
    reg: Registry,
    actor: str,
    patient_id: Any,
    data: ImmunotherapyCourseIn | Mapping[str, Any],
    *,
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Plan and store a SCIT course (with omalizumab pre/concurrent when asked) in one transaction.

    Returns ``id``, the stored ``course`` row, ``schedule`` (the dated visits), ``omalizumab`` (label dose and
    administrations), ``calendar`` (both merged by date), ``warnings`` and ``basis``.
    """
    d = as_input(ImmunotherapyCourseIn, data)
    check_plannable(d.product, d.regimen)
    result = preview_immunotherapy(d)
    _refuse_unplannable(d, result)
    om = result.get("omalizumab") or {}
    label = om.get("label_dose") or {}
    basis = list(result.get("basis") or []) + ([label["basis"]] if label.get("basis") else [])
    first = result["visits"][0]["injections"][0]

    def fn(s: Session) -> dict[str, Any]:
        p = _locked_patient(s, patient_id)
        c = m.Course(
            patient_id=p.id,
            kind=course_kind(d.regimen),
            product=result.get("product_name"),
            product_id=d.product,
            regimen=result.get("regimen_name"),
            regimen_id=d.regimen,
            allergen=d.allergen,
            start_time=d.start_time,
            maintenance_interval_weeks=result.get("maintenance_interval_weeks"),
            omalizumab_lead_weeks=d.omalizumab_lead_weeks if d.omalizumab == "pre" else None,
            with_omalizumab=d.omalizumab != "none",
            omalizumab_timing=d.omalizumab,
            status="planned",
            started_on=d.start,
            target_dose=maintenance_dose(d.product),
            dose_unit=first.get("unit"),
            next_due_on=d.start,
            plan={"request": to_jsonable(d.model_dump(exclude_none=True)), "result": result},
            basis=basis_json(basis),
        )
        s.add(c)
        s.flush()
        return _planned(c, result)

    return unit_of_work.write(reg, actor, USE_CASE, fn, idempotency_key=idempotency_key)


def preview_omalizumab_course(data: OmalizumabCourseIn | Mapping[str, Any]) -> dict[str, Any]:
    """The omalizumab-alone calendar `plan_omalizumab_course` would store (label maintenance schedule)."""
    from immunoplan.services import omalizumab

    d = as_input(OmalizumabCourseIn, data)
    sched = to_jsonable(
        omalizumab.build_schedule(
            "maintenance",
            d.start,
            indication=d.indication,
            region=d.region,
            age_years=d.age_years,
            weight_kg=d.weight_kg,
            total_ige_iu_ml=d.total_ige_iu_ml,
            override_reason=d.override_reason,
        )
    )
    label = sched.get("label_dose") or {}
    result: dict[str, Any] = {
        "kind": "omalizumab",
        "status": sched.get("status"),
        "start": d.start,
        "visits": [],
        "omalizumab": {
            "mode": "alone",
            "lead_weeks": 0,
            "label_dose": label,
            "administrations": sched.get("administrations") or [],
        },
        "warnings": sched.get("warnings") or [],
        "basis": sched.get("basis") or [],
    }
    result["calendar"] = calendar(result)
    return to_jsonable(result)  # type: ignore[no-any-return]


def plan_omalizumab_course(
    reg: Registry,
    actor: str,
    patient_id: Any,
    data: OmalizumabCourseIn | Mapping[str, Any],
    *,
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Plan and store an omalizumab course (label dose and interval) in one transaction; refused when the
    label lookup gives no dose (do-not-dose, outside-table, an UNVERIFIED table without override)."""
    d = as_input(OmalizumabCourseIn, data)
    result = preview_omalizumab_course(d)
    label = result["omalizumab"]["label_dose"]
    if label.get("status") != "dose" or not result["omalizumab"]["administrations"]:
        raise InvalidInput(
            "omalizumab",
            f"the omalizumab label lookup answered {label.get('status')!r} ({label.get('reason')}): "
            "no dose to plan",
            "a label-table dose (an UNVERIFIED table needs override_reason)",
        )
    interval_weeks = int(label["interval_weeks"])

    def fn(s: Session) -> dict[str, Any]:
        p = _locked_patient(s, patient_id)
        c = m.Course(
            patient_id=p.id,
            kind="omalizumab",
            drug="omalizumab",
            with_omalizumab=False,
            omalizumab_timing="none",
            status="planned",
            started_on=d.start,
            target_dose=Decimal(str(label["dose_mg"])),
            dose_unit="mg",
            interval_days=7 * interval_weeks,
            next_due_on=d.start,
            plan={"request": to_jsonable(d.model_dump(exclude_none=True)), "result": result},
            basis=basis_json(result.get("basis") or ([label["basis"]] if label.get("basis") else None)),
        )
        s.add(c)
        s.flush()
        return _planned(c, result)

    return unit_of_work.write(reg, actor, USE_CASE, fn, idempotency_key=idempotency_key)


class _StartTimeIn(InputModel):
    start_time: ClockTime = None


def _opt_limit(name: str, value: Any) -> int | None:
    """A whole number checked against field limit ``name`` (None when not given)."""
    d = limit(name).check_optional(value)
    return None if d is None else int(d)


def plan_course(
    reg: Registry,
    actor: str,
    *,
    pseudo_id: str,
    kind: str,
    started_on: Any = None,
    product: str | None = None,
    allergen: str | None = None,
    drug: str | None = None,
    regimen: str | None = None,
    product_id: str | None = None,
    regimen_id: str | None = None,
    start_time: Any = None,
    maintenance_interval_weeks: Any = None,
    omalizumab_lead_weeks: Any = None,
    with_omalizumab: bool = False,
    omalizumab_timing: str = "none",
    target_dose: Any = None,
    dose_unit: str | None = None,
    interval_days: Any = None,
    plan: Any = None,
    basis: Any = None,
    status: str = "planned",
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Store a treatment course and the plan that was shown (with its basis), as given (keyword style).

    ``product_id``/``regimen_id`` (``scit_products`` ids), when given, must name a regimen that can be
    planned (not UNVERIFIED); the schedule itself is the caller's (`plan_immunotherapy` computes one).
    """
    kind = ck.choice("kind", kind, m.COURSE_KINDS)
    timing = ck.choice("omalizumab_timing", omalizumab_timing, m.OMALIZUMAB_TIMINGS)
    if with_omalizumab and timing == "none":
        raise InvalidInput(
            "omalizumab_timing", "must be pre or concurrent when with_omalizumab", "pre, concurrent"
        )
    if (product_id is None) != (regimen_id is None):
        raise InvalidInput("regimen_id", "product_id and regimen_id go together", "both or neither")
    if product_id is not None and regimen_id is not None:
        check_plannable(product_id, regimen_id)
    start = ck.to_date("started_on", started_on) if started_on else None
    interval = opt_int("interval_days", interval_days)
    if interval is not None and interval < 1:
        raise InvalidInput("interval_days", "must be at least 1", "[1, inf)")
    values = dict(
        kind=kind,
        product=product,
        allergen=allergen,
        drug=drug,
        regimen=regimen,
        product_id=product_id,
        regimen_id=regimen_id,
        start_time=validate(_StartTimeIn, {"start_time": start_time}).start_time,
        maintenance_interval_weeks=_opt_limit("maintenance_interval_weeks", maintenance_interval_weeks),
        omalizumab_lead_weeks=_opt_limit("omalizumab_lead_weeks", omalizumab_lead_weeks),
        with_omalizumab=bool(with_omalizumab),
        omalizumab_timing=timing,
        status=ck.choice("status", status, m.COURSE_STATUSES),
        started_on=start,
        target_dose=opt_decimal("target_dose", target_dose),
        dose_unit=dose_unit,
        interval_days=interval,
        next_due_on=start,
        plan=to_jsonable(plan) if plan is not None else None,
        basis=basis_json(basis),
    )

    def fn(s: Session) -> dict[str, Any]:
        p = find_patient(s, pseudo_id)
        c = m.Course(patient_id=p.id, **values)
        s.add(c)
        s.flush()
        return local_row(c)

    return unit_of_work.write(reg, actor, USE_CASE, fn, idempotency_key=idempotency_key)


# ------------------------------------------------------------------------------------------------ reading


def course_by_id(
    s: Session, course_id: Any, *, lock: bool = False, patient_id: int | None = None
) -> m.Course:
    """The course (``lock``: its row locked first, so a concurrent recording waits and then sees this one's
    row on PostgreSQL). `LookupError` for an unknown course, or one of another patient when ``patient_id``
    is given (routes answer 404)."""
    try:
        cid = int(str(course_id))
    except ValueError:
        raise InvalidInput("course_id", f"not a course id: {course_id!r}", "a whole number") from None
    c = s.get(m.Course, cid, with_for_update=True) if lock else s.get(m.Course, cid)
    if c is None or (patient_id is not None and c.patient_id != patient_id):
        raise LookupError(f"no course {course_id} for patient {patient_id}" if patient_id else cid)
    return c


def stored_label_dose(c: m.Course) -> dict[str, Any] | None:
    """The omalizumab label dose a course was planned with (``plan.result.omalizumab.label_dose``): its
    ``dose_mg``, ``interval_weeks`` and ``basis``; None when the course holds none (imported, no
    omalizumab)."""
    node: Any = c.plan
    for key in ("result", "omalizumab", "label_dose"):
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) and node.get("status") == "dose" else None


def planned_with_omalizumab(c: m.Course) -> bool:
    """An omalizumab course, or an immunotherapy course planned with omalizumab pre-treatment/concurrently."""
    return c.kind == "omalizumab" or bool(c.with_omalizumab)


def planning_defaults(reg: Registry, patient_id: Any) -> dict[str, Any]:
    """Values to pre-fill a course form: ``pseudo_id``, age on the clinic's today, and weight and total IgE
    from the latest assessment inputs, else the latest measurements."""
    from immunoplan import clock

    with reg.session() as s:
        p = patient_by_id(s, patient_id)
        a = s.scalars(
            select(m.RiskAssessment)
            .where(m.RiskAssessment.patient_id == p.id)
            .order_by(m.RiskAssessment.assessed_at.desc(), m.RiskAssessment.id.desc())
            .limit(1)
        ).first()
        prior = dict(a.inputs or {}) if a is not None else {}
        age = age_on(p.birth_date, p.age_years, clock.today())
        out = {
            "pseudo_id": p.pseudo_id,
            "age_years": age if age is not None else prior.get("age_years"),
            "weight_kg": prior.get("weight_kg") or latest_measurement(s, p.id, "weight_kg"),
            "total_ige_iu_ml": prior.get("total_ige_iu_ml") or latest_measurement(s, p.id, "total_ige_iu_ml"),
        }
    return {k: v for k, v in out.items() if v not in (None, "")}


def show_course(reg: Registry, course_id: Any, patient_id: Any = None) -> dict[str, Any]:
    """A course as stored: its columns, the calendar it was planned with (``result``), its desensitization
    sessions and the omalizumab administrations recorded for it (entries not voided). With ``patient_id``,
    a course of another patient is refused like a missing one."""
    with reg.session() as s:
        try:
            cid = int(str(course_id).strip())
        except ValueError:
            raise InvalidInput("course_id", f"not a course id: {course_id!r}", "a number") from None
        c = s.get(m.Course, cid)
        if c is None or (patient_id is not None and str(c.patient_id) != str(patient_id).strip()):
            raise InvalidInput(
                "course_id", f"no course {course_id} for this patient", "a course id of the patient"
            )
        plan = c.plan if isinstance(c.plan, dict) else {}
        sessions = list(
            s.scalars(
                select(m.DesensitizationSession.id)
                .where(m.DesensitizationSession.course_id == c.id)
                .order_by(m.DesensitizationSession.id)
            )
        )
        Dose = m.OmalizumabAdministration
        doses = live_rows(s, Dose, Dose.course_id == c.id, order_by=(Dose.given_at,))
        return {
            "course": local_row(c),
            "patient_id": c.patient_id,
            "pseudo_id": c.patient.pseudo_id,
            "result": plan.get("result") if isinstance(plan.get("result"), dict) else {},
            "sessions": sessions,
            "label_dose": stored_label_dose(c),
            "omalizumab_administrations": [
                {"id": o.id, "given_at": o.given_at, "dose_mg": o.dose_mg, "interval_weeks": o.interval_weeks}
                for o in doses
            ],
        }
