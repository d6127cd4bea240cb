"""Immunotherapy injections: record one (one transaction, every safety rule), the next injection, the due/late
list and the injection-day read model. Web, API, CLI, importer, FHIR, demo and tests all come here.

Rules of `record_injection` (each refusal names the field, the rule and the accepted range, or the record):
- only immunotherapy courses (`IMMUNOTHERAPY_KINDS`);
- ``given_at`` (clinic time) at most ``future_tolerance_minutes`` after the clinic clock (project rule,
  reference file ``registry_recording``);
- the same clinical act twice (same course, same dose, same clinic minute, among injections not voided) is a
  `Conflict` naming the first record (``registry_recording`` ``same-clinical-act``);
- not before the engine's earliest time for the next injection (same-visit interval or next visit's date,
  ``scit_adjustment`` ``intervals`` / ``scit_products``) unless an ``override_reason`` is given (stored);
- the next dose and its due date are computed by the engine in the same transaction, from the course's live
  injections, and the due date is stored on the course (``next_due_on``).

Voided injections (and voided reactions) are ignored everywhere: sequence, history, next dose, duplicates.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from immunoplan import clock, reference
from immunoplan.clinical import vocabularies
from immunoplan.clinical.immunotherapy import (
    GivenInjection,
    NextInjection,
    dose_of,
    due_status,
    next_injection,
    product,
)
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.reference.limits import limit
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services import unit_of_work
from immunoplan.services.inputs import InputModel, validate
from immunoplan.services.records.common import as_row
from immunoplan.services.records.fields import OptionalClinicInstant, choice_field, one_of

IMMUNOTHERAPY_KINDS = ("SCIT", "RIT", "cluster", "OIT")
#: reactions the SCIT rules read: systemic grades on these scales, local reactions as ``local-size`` grades
ENGINE_SCALES = vocabularies.SCIT_ADJUSTMENT_SCALES
LOCAL_SCALE = "local-size"
CLINIC_TIME = "YYYY-MM-DDTHH:MM (clinic time)"
RECORDING = "registry_recording"


def future_tolerance_minutes() -> int:
    """How far after the clinic clock a time recorded as given may be (project rule,
    ``registry_recording``)."""
    return int(reference.load(RECORDING)["future_tolerance_minutes"]["value"])


# ------------------------------------------------------------------------------------------------ input


class InjectionIn(InputModel):
    """One injection as entered (web form, API body, CLI options, importer). ``given_at``: clinic time
    (empty = now). ``dose_ml`` with ``vial`` gives the dose from the product's vial strengths;
    ``dose``/``dose_unit`` (product units) are for courses without a catalogue product (imports, FHIR) and,
    when both are given, must agree with vial x dose_ml."""

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
    dose: Decimal | None = Field(None, gt=0, le=10**9)
    dose_unit: str | None = Field(None, max_length=16)
    phase: Annotated[str | None, one_of(vocabularies.INJECTION_PHASES)] = choice_field(
        vocabularies.INJECTION_PHASES, None
    )


# ------------------------------------------------------------------------------------------------ reads


def _course(s: Session, course_id: Any, *, lock: bool = False, patient_id: int | None = None) -> m.Course:
    try:
        cid = int(str(course_id))
    except ValueError:
        raise InvalidInput("course_id", f"not a course id: {course_id!r}", "a whole number") from None
    # PostgreSQL: lock the course row first, so a concurrent recording waits and then sees this one's row
    c = s.get(m.Course, cid, with_for_update=True) if lock else s.get(m.Course, cid)
    if c is None or (patient_id is not None and c.patient_id != patient_id):
        raise LookupError(f"no course {course_id} for patient {patient_id}" if patient_id else cid)
    return c


def _live(s: Session, course_id: int) -> list[m.Injection]:
    return list(
        s.scalars(
            select(m.Injection)
            .where(m.Injection.course_id == course_id, m.Injection.voided_at.is_(None))
            .order_by(m.Injection.given_at, m.Injection.id)
        )
    )


def _reactions(s: Session, injections: Sequence[m.Injection], *, live: bool = True) -> dict[int, list[Any]]:
    ids = [i.id for i in injections] or [-1]
    q = select(m.Reaction).where(m.Reaction.injection_id.in_(ids))
    if live:
        q = q.where(m.Reaction.voided_at.is_(None))
    out: dict[int, list[m.Reaction]] = {}
    for r in s.scalars(q.order_by(m.Reaction.id)):
        out.setdefault(r.injection_id or -1, []).append(r)
    return out


def _given(i: m.Injection, reactions: list[m.Reaction]) -> GivenInjection:
    """One live injection as the engine sees it: clinic-local date and time, and the reactions it caused."""
    local, scale, grade = "none", None, None
    for r in reactions:
        if r.kind == "systemic" and r.scale in ENGINE_SCALES and r.grade:
            scale, grade = r.scale, r.grade
        elif r.kind == "local" and r.scale == LOCAL_SCALE and r.grade in vocabularies.LOCAL_REACTION_SIZES:
            local = max(local, r.grade, key=vocabularies.LOCAL_REACTIONS.index)
    at = clock.local(i.given_at)
    return GivenInjection(at.date(), Decimal(i.dose), local, scale, grade, at)


def _plain(x: Decimal) -> Decimal:
    """An exact amount without trailing zeros (100.0 -> 100, 0.10 -> 0.1)."""
    return x.quantize(Decimal(1)) if x == x.to_integral_value() else x.normalize()


def _history_entry(i: m.Injection, g: GivenInjection) -> dict[str, Any]:
    return {
        "injection_id": i.id,
        "sequence": i.sequence,
        "given_at": clock.local(i.given_at),
        "date": g.date,
        "dose": to_jsonable(i.dose),
        "unit": i.dose_unit,
        "vial": i.vial,
        "volume_ml": to_jsonable(i.volume_ml),
        "lot": i.lot,
        "local_reaction": g.local_reaction,
        "systemic_reaction": {"scale": g.systemic_scale, "grade": g.systemic_grade}
        if g.systemic_grade
        else None,
    }


def _engine_ids(c: m.Course) -> tuple[str, str] | None:
    if c.product_id and c.regimen_id:
        return c.product_id, c.regimen_id
    return None


def _start_of(day: date) -> datetime:
    """Clinic-local midnight of ``day``, aware."""
    return clock.local(clock.to_utc(datetime.combine(day, time.min)))


def _rule(r: Any) -> dict[str, Any] | None:
    if r is None:
        return None
    b = r.basis
    return {"id": r.id, "text": r.text, "source": b.source, "status": b.status, "basis": b.to_dict()}


def _compute(
    c: m.Course, live: list[m.Injection], reactions: dict[int, list[Any]], at: datetime
) -> tuple[dict[str, Any], NextInjection | None]:
    """The next injection of course ``c`` at aware instant ``at`` from its live injections: the view
    (JSON-able values, clinic-local times) and the engine's answer (None when it cannot answer)."""
    at_local = clock.local(at)
    given = [_given(i, reactions.get(i.id, [])) for i in live]
    history = [_history_entry(i, g) for i, g in zip(live, given, strict=True)]
    base: dict[str, Any] = {
        "course_id": c.id,
        "product_id": c.product_id,
        "regimen_id": c.regimen_id,
        "at": at_local,
        "history": history,
    }
    ids = _engine_ids(c)
    reason = None
    nx = None
    if ids is None:
        reason = (
            f"course {c.id} has no catalogue product and regimen (product_id/regimen_id): the next dose "
            "cannot be computed; the planned next due date is shown"
        )
    else:
        try:
            nx = next_injection(
                ids[0], ids[1], given, at_local, maintenance_interval_weeks=c.maintenance_interval_weeks
            )
        except InvalidInput as exc:
            if exc.field == "at":
                raise
            reason = str(exc)
    if nx is None:
        view = {
            **base,
            "kind": "cannot-answer",
            "phase": None,
            "dose": None,
            "dose_ml": None,
            "due_date": c.next_due_on,
            "earliest_at": None,
            "earliest": None,
            "rule": None,
            "rules": [],
            "warnings": [reason],
            "visit_injections": [],
            "same_visit": False,
            "observation_minutes": None,
            "next_visit_after": None,
        }
        return view, None
    d = nx.decision
    earliest = nx.earliest_at or (_start_of(nx.earliest_on) if nx.earliest_on else None)
    due = nx.due_date if live else (c.next_due_on or c.started_on)
    view = {
        **base,
        "kind": d.kind,
        "phase": d.phase,
        "dose": to_jsonable(d.dose) if d.dose else None,
        "dose_ml": to_jsonable(d.dose.volume_ml) if d.dose else None,
        "due_date": due,
        "earliest_at": earliest,
        "earliest": {"at": earliest, "same_visit": nx.same_visit, "rule": _rule(nx.interval)},
        "rule": _rule(d.rule),
        "rules": to_jsonable(d.rules),
        "warnings": list(d.warnings),
        "visit_injections": to_jsonable(d.visit_injections),
        "same_visit": nx.same_visit,
        "observation_minutes": d.observation_minutes,
        "next_visit_after": d.next_due,
    }
    return view, nx


def next_dose(
    reg: Registry, course_id: Any, at: Any = None, *, patient_id: int | None = None
) -> dict[str, Any]:
    """What the next injection of a course is at clinic time ``at`` (default now): ``dose``/``dose_ml``,
    ``due_date``, ``earliest_at`` (clinic time) with its rule, the ``rule`` that fired (id, source, status,
    basis) and the ``history`` the engine saw (live injections with their clinic-local ``date``).

    Raises `LookupError` for an unknown course (or one of another patient when ``patient_id`` is given)."""
    when = clock.now() if at in (None, "") else clock.parse_local("at", at)
    with reg.session() as s:
        c = _course(s, course_id, patient_id=patient_id)
        live = _live(s, c.id)
        view, _ = _compute(c, live, _reactions(s, live), when)
    return view


# ------------------------------------------------------------------------------------------------ write


def _vial_and_units(c: m.Course, data: InjectionIn, due: NextInjection | None) -> tuple[Decimal, str, Any]:
    """Dose in product units, its unit and the vial: from vial x dose_ml with a catalogue product (vial
    default: the vial of the dose due, else the product's only vial), else the explicit dose."""
    ids = _engine_ids(c)
    p = None
    if ids is not None:
        try:
            p = product(ids[0])
        except InvalidInput:
            p = None
    if ids is not None and p is not None and data.dose_ml is not None:
        vials = [int(v["vial"]) for v in p["vials"]]
        accepted = ", ".join(str(v) for v in vials)
        if data.vial is not None:
            try:
                vial = int(data.vial)
            except ValueError:
                raise InvalidInput("vial", f"not a vial of {p['name']}: {data.vial!r}", accepted) from None
        elif due is not None and due.decision.dose is not None:
            vial = due.decision.dose.vial
        elif len(vials) == 1:
            vial = vials[0]
        else:
            raise InvalidInput("vial", "which vial was the dose drawn from?", accepted)
        units = _plain(dose_of(ids[0], vial, data.dose_ml).units)
        if data.dose is not None and data.dose != units:
            raise InvalidInput(
                "dose",
                f"{data.dose} does not match vial {vial} x {data.dose_ml} mL = {units} {p['unit']}",
                f"{units} (or leave dose empty)",
            )
        return units, str(p["unit"]), str(vial)
    if data.dose is None:
        if p is None and data.dose_ml is not None:
            raise InvalidInput(
                "dose",
                f"course {c.id} has no catalogue product: give the dose in product units",
                "a positive number with dose_unit",
            )
        raise InvalidInput("dose_ml", "is required", limit("dose_ml").accepted)
    unit = data.dose_unit or c.dose_unit or (str(p["unit"]) if p else None)
    if not unit:
        raise InvalidInput("dose_unit", "is required with dose", "e.g. SQ-U, mg")
    return _plain(data.dose), unit, data.vial


def _check_not_future(when: datetime, now: datetime) -> None:
    tol = future_tolerance_minutes()
    if when > now + timedelta(minutes=tol):
        raise InvalidInput(
            "given_at",
            f"{clock.format_local(when)} is in the future (clinic clock {clock.format_local(now)})",
            f"at most {tol} min after the clinic clock (project rule, {RECORDING})",
        )


def _check_same_act(s: Session, c: m.Course, units: Decimal, when: datetime) -> None:
    minute = clock.to_utc_stored(when).replace(second=0, microsecond=0)
    rows = s.scalars(
        select(m.Injection).where(
            m.Injection.course_id == c.id,
            m.Injection.voided_at.is_(None),
            m.Injection.given_at >= minute - timedelta(minutes=1),
            m.Injection.given_at < minute + timedelta(minutes=2),
        )
    )
    for i in rows:
        same_minute = clock.to_utc_stored(i.given_at).replace(second=0, microsecond=0) == minute
        if same_minute and Decimal(i.dose) == units:
            raise Conflict(
                "given_at",
                f"the same injection is already recorded: injection {i.id} given "
                f"{clock.local(i.given_at):%H:%M} by {i.given_by or 'unknown'} "
                f"({i.dose} {i.dose_unit}, same course, same minute); void it first if it is wrong",
                f"injection {i.id}",
            )


def _check_earliest(
    due: NextInjection | None, view: dict[str, Any], when: datetime, reason: str | None
) -> bool:
    """True when ``when`` is before the earliest time and the override reason allows it."""
    earliest = view.get("earliest_at") if due is not None else None
    if earliest is None or when >= earliest:
        return False
    if reason:
        return True
    rule = view["earliest"]["rule"]
    raise InvalidInput(
        "given_at",
        f"{clock.format_local(when)} is before the earliest time for this injection, "
        f"{clock.format_local(earliest)} (rule {rule['id']}: {rule['text']}; {rule['status']}, "
        f"{rule['source']})",
        f">= {clock.iso_local(earliest)}, or give override_reason",
    )


def _row(inj: m.Injection) -> dict[str, Any]:
    """The stored injection with its instants in clinic time (JSON: clinic-local ISO with offset)."""
    row = as_row(inj)
    for key in ("given_at", "voided_at", "amended_at"):
        value = getattr(inj, key)
        row[key] = None if value is None else clock.local(value)
    return row


def record(
    reg: Registry,
    actor: str,
    data: InjectionIn,
    *,
    idempotency_key: Any = None,
    next_due_on: Any = None,
    patient_id: int | None = None,
) -> dict[str, Any]:
    """Record one injection (module docstring: the rules) and return it with ``next`` (what `next_dose`
    answers now). ``next_due_on``: an importer's stored due date, used only when the engine cannot answer.
    ``patient_id`` (web routes): a course of another patient is a `LookupError` (404)."""
    explicit_due = None if next_due_on in (None, "") else clock.parse_date("next_due_on", next_due_on)

    def fn(s: Session) -> dict[str, Any]:
        try:
            c = _course(s, data.course_id, lock=True, patient_id=patient_id)
        except LookupError:
            if patient_id is not None:
                raise
            raise InvalidInput("course_id", f"no course {data.course_id} in the registry") from None
        if c.kind not in IMMUNOTHERAPY_KINDS:
            raise InvalidInput(
                "course_id",
                f"course {c.id} is {c.kind}, not an immunotherapy course",
                ", ".join(IMMUNOTHERAPY_KINDS),
            )
        now = clock.now()
        when = data.given_at or now
        _check_not_future(when, now)
        live = _live(s, c.id)
        prior = [i for i in live if clock.to_utc_stored(i.given_at) <= when]
        before_view, before = _compute(c, prior, _reactions(s, prior), when)
        units, unit, vial = _vial_and_units(c, data, before)
        _check_same_act(s, c, units, when)
        overridden = _check_earliest(before, before_view, when, data.override_reason)
        phase = data.phase or (before.decision.phase if before and before.decision.dose else None)
        inj = m.Injection(
            course_id=c.id,
            patient_id=c.patient_id,
            sequence=len(live) + 1,
            given_at=when,
            dose=units,
            dose_unit=unit,
            volume_ml=data.dose_ml,
            vial=vial,
            site=data.site,
            lot=data.lot,
            given_by=actor,
            phase=phase,
            observed_minutes=data.observed_minutes,
            override_reason=data.override_reason,
        )
        s.add(inj)
        s.flush()
        day = clock.local_date(when)
        if c.status == "planned":
            c.status = "active"
            c.started_on = c.started_on or day
        if (
            c.target_dose is not None
            and c.dose_unit == unit
            and units >= c.target_dose
            and not c.target_reached
        ):
            c.target_reached, c.target_reached_on = True, day
        after = _live(s, c.id)
        latest = max([now, *(clock.to_utc_stored(i.given_at) for i in after)])
        nxt, engine = _compute(c, after, _reactions(s, after), latest)
        if engine is not None:  # the engine's due date (None: the reference data has no interval)
            c.next_due_on = nxt["due_date"]
        else:  # no catalogue schedule: the importer's stored date, else the course's planned interval
            if explicit_due is not None:
                c.next_due_on = explicit_due
            elif c.interval_days:
                c.next_due_on = day + timedelta(days=c.interval_days)
            nxt["due_date"] = c.next_due_on
        warnings = []
        due_dose = (before_view.get("dose") or {}).get("dose")
        if before is not None and due_dose is not None and Decimal(str(due_dose)) != units:
            rule = before_view["rule"] or {}
            warnings.append(
                f"The dose given ({units} {unit}) differs from the dose due ({due_dose} {unit}, rule "
                f"{rule.get('id')})."
            )
        out = {**_row(inj), "next": nxt, "warnings": warnings}
        if overridden:
            out["override"] = {
                "reason": data.override_reason,
                "earliest_at": before_view["earliest_at"],
                "rule": before_view["earliest"]["rule"],
            }
        return out

    return unit_of_work.write(reg, actor, "record_injection", fn, idempotency_key=idempotency_key)


def record_injection(
    reg: Registry,
    actor: str,
    *,
    course_id: Any,
    given_at: Any = None,
    dose: Any = None,
    dose_unit: str | None = None,
    volume_ml: Any = None,
    dose_ml: Any = None,
    vial: Any = None,
    site: str | None = None,
    lot: str | None = None,
    phase: str | None = None,
    observed_minutes: Any = None,
    override_reason: str | None = None,
    next_due_on: Any = None,
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Keyword call style (importer, FHIR, demo, tests): validated through `InjectionIn`, then `record`.
    ``volume_ml`` is ``dose_ml``'s former name."""
    data = validate(
        InjectionIn,
        {
            "course_id": course_id,
            "dose_ml": dose_ml if dose_ml not in (None, "") else volume_ml,
            "given_at": given_at,
            "vial": None if vial in (None, "") else str(vial),
            "lot": lot,
            "site": site,
            "observed_minutes": observed_minutes,
            "override_reason": override_reason,
            "dose": dose,
            "dose_unit": dose_unit,
            "phase": phase,
        },
    )
    return record(reg, actor, data, idempotency_key=idempotency_key, next_due_on=next_due_on)


# ------------------------------------------------------------------------------------------ due / late


def list_due_injections(
    reg: Registry, *, as_of: Any = None, window_days: int = 0, grace_days: int = 0
) -> list[dict[str, Any]]:
    """Active immunotherapy courses whose next injection is due by ``as_of`` (default the clinic's today) +
    ``window_days``, each with its status from `immunoplan.clinical.immunotherapy.due_status` (the one
    definition of due/late). The windows are the caller's clinic policy, not clinical thresholds."""
    day = clock.parse_date("as_of", as_of) if as_of not in (None, "") else clock.today()
    for name, val in (("window_days", window_days), ("grace_days", grace_days)):
        if int(val) < 0:
            raise InvalidInput(name, "must not be negative", "[0, inf)")
    horizon = day + timedelta(days=int(window_days))
    with reg.session() as s:
        rows = s.execute(
            select(m.Course, m.Patient.pseudo_id)
            .join(m.Patient, m.Patient.id == m.Course.patient_id)
            .where(
                m.Course.status == "active",
                m.Course.kind.in_(IMMUNOTHERAPY_KINDS),
                m.Course.next_due_on.is_not(None),
                m.Course.next_due_on <= horizon,
            )
            .order_by(m.Course.next_due_on, m.Course.id)
        ).all()
        out = []
        for c, pid in rows:
            status = due_status(c.next_due_on, day, int(grace_days), int(window_days))
            if status is None or c.next_due_on is None:
                continue
            last = s.scalars(
                select(m.Injection.given_at)
                .where(m.Injection.course_id == c.id, m.Injection.voided_at.is_(None))
                .order_by(m.Injection.given_at.desc())
                .limit(1)
            ).first()
            out.append(
                dict(
                    pseudo_id=pid,
                    course_id=c.id,
                    kind=c.kind,
                    product=c.product,
                    next_due_on=c.next_due_on.isoformat(),
                    days_overdue=max((day - c.next_due_on).days, 0),
                    last_injection_at=clock.iso_local(last),
                    status=status,
                )
            )
        return out


# --------------------------------------------------------------------------------- injection-day reads


def check_course(reg: Registry, patient_id: int, course_id: int) -> None:
    """`LookupError` unless ``course_id`` is a course of ``patient_id`` (routes answer 404)."""
    with reg.session() as s:
        _course(s, course_id, patient_id=patient_id)


def last_injection(reg: Registry, course_id: Any) -> dict[str, Any] | None:
    """The course's last live injection (id, clinic time, dose), or None."""
    with reg.session() as s:
        live = _live(s, int(course_id))
        return _row(live[-1]) if live else None


def injection_day(reg: Registry, patient_id: int, course_id: int) -> dict[str, Any]:
    """Everything the injection-day page shows: patient, course, ``next`` (as `next_dose`), the injections
    (voided and corrected ones marked, with their reactions), the observation timer of today's last
    injection and the course's omalizumab plan and administrations. `LookupError` if not found."""
    now = clock.now()
    with reg.session() as s:
        c = _course(s, course_id, patient_id=patient_id)
        p = s.get(m.Patient, c.patient_id)
        assert p is not None  # foreign key
        live = _live(s, c.id)
        nxt, _ = _compute(c, live, _reactions(s, live), now)
        every = list(
            s.scalars(select(m.Injection).where(m.Injection.course_id == c.id).order_by(m.Injection.given_at))
        )
        reactions = _reactions(s, every, live=False)
        shown = []
        for i in every:
            row = _row(i)
            row["voided"] = i.voided
            row["reactions"] = [
                {
                    "id": r.id,
                    "kind": r.kind,
                    "grade": r.grade,
                    "scale": r.scale,
                    "findings": r.findings or [],
                    "voided": r.voided,
                }
                for r in reactions.get(i.id, [])
            ]
            shown.append(row)
        plan_result = (c.plan or {}).get("result", {}) if isinstance(c.plan, dict) else {}
        omalizumab_given = [
            {"id": o.id, "given_at": clock.local(o.given_at), "dose_mg": o.dose_mg, "lot": o.lot}
            for o in s.scalars(
                select(m.OmalizumabAdministration)
                .where(
                    m.OmalizumabAdministration.course_id == c.id,
                    m.OmalizumabAdministration.voided_at.is_(None),
                )
                .order_by(m.OmalizumabAdministration.given_at)
            )
        ]
        course = {
            "id": c.id,
            "kind": c.kind,
            "product": c.product,
            "product_id": c.product_id,
            "regimen_id": c.regimen_id,
            "next_due_on": c.next_due_on,
            "dose_unit": c.dose_unit,
            "with_omalizumab": c.with_omalizumab,
        }
        pseudo = p.pseudo_id
    last = next((r for r in reversed(shown) if not r["voided"]), None)
    observation = nxt.get("observation_minutes") or plan_result.get("observation_minutes")
    timer = None
    if last is not None and observation and clock.local_date(last["given_at"]) == clock.today():
        start = last["given_at"]
        timer = {
            "start": start,
            "minutes": int(observation),
            "until": start + timedelta(minutes=int(observation)),
        }
    earliest = nxt.get("earliest_at")
    due_now = nxt["kind"] == "dose" and (
        (nxt["due_date"] is None or nxt["due_date"] <= clock.today())
        and (earliest is None or earliest <= now)
    )
    return {
        "patient_id": patient_id,
        "pseudo_id": pseudo,
        "due_now": due_now,
        "course": course,
        "next": nxt,
        "injections": shown,
        "last": last,
        "timer": timer,
        "observation_minutes": observation,
        "omalizumab_plan": plan_result.get("omalizumab") or {},
        "omalizumab_given": omalizumab_given,
        "status": due_status(nxt["due_date"], clock.today()),
    }


# ----------------------------------------------------------------------------- reaction on injection day


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


def grade_injection_reaction(data: InjectionReactionIn) -> dict[str, Any]:
    """The grade the chosen scale gives for a systemic reaction's findings (guided grading; nothing saved)."""
    from immunoplan.services.protocols import grade_reaction

    if not data.symptoms:
        raise InvalidInput(
            "symptoms", "choose at least one symptom", ", ".join(vocabularies.REACTION_SYMPTOMS)
        )
    graded = grade_reaction(
        data.scale,
        symptoms=list(data.symptoms),
        bronchodilator_response=data.bronchodilator_response,
        epinephrine_minutes=data.epinephrine_minutes,
        onset_minutes=data.onset_minutes,
    )
    return to_jsonable(graded)  # type: ignore[no-any-return]


def record_reaction_to_last_injection(
    reg: Registry,
    actor: str,
    patient_id: int,
    course_id: int,
    data: InjectionReactionIn,
    *,
    idempotency_key: Any = None,
) -> dict[str, Any]:
    """Grade (systemic) and record a reaction to the course's last live injection, in one transaction with
    the course's next due date recomputed by the engine (a reaction changes the next dose and ends a visit's
    same-day continuation). The reaction is written by `services.records.reactions.add_reaction` (the
    write of `record_reaction`, inside this transaction). Returns the reaction, the grading and ``next``."""
    from immunoplan.services.records.reactions import ReactionIn, add_reaction

    graded = None
    if data.kind == "local":
        if data.local_size is None:
            raise InvalidInput(
                "local_size", "is required for a local reaction", ", ".join(vocabularies.LOCAL_REACTION_SIZES)
            )
        grade, scale = data.local_size, LOCAL_SCALE
        version, basis = reference.load("scit_adjustment")["version"], None
    else:
        graded = grade_injection_reaction(data)
        grade, scale, version, basis = (
            graded["grade"],
            data.scale,
            graded["basis"]["version"],
            graded["basis"],
        )

    def fn(s: Session) -> dict[str, Any]:
        c = _course(s, course_id, lock=True, patient_id=patient_id)
        p = s.get(m.Patient, c.patient_id)
        assert p is not None  # foreign key
        live = _live(s, c.id)
        if not live:
            raise InvalidInput(
                "injection_id",
                "record the injection first: a reaction is linked to the injection that caused it",
            )
        last = live[-1]
        onset = None
        if data.onset_minutes is not None:
            onset = clock.to_utc_stored(last.given_at) + timedelta(minutes=float(data.onset_minutes))
        r = validate(
            ReactionIn,
            {
                "kind": data.kind,
                "grade": str(grade),
                "scale": scale,
                "scale_version": version,
                "findings": list(data.symptoms),
                "onset_at": onset,
                "injection_id": last.id,
                "basis": basis,
            },
        )
        row = add_reaction(s, p, r)
        latest = max([clock.now(), *(clock.to_utc_stored(i.given_at) for i in live)])
        nxt, engine = _compute(c, live, _reactions(s, live), latest)
        if engine is not None:
            c.next_due_on = nxt["due_date"]
        else:
            nxt["due_date"] = c.next_due_on
        return {
            "reaction": as_row(row),
            "grading": graded or {"grade": grade, "scale": scale},
            "next": nxt,
        }

    return unit_of_work.write(reg, actor, "record_reaction", fn, idempotency_key=idempotency_key)
