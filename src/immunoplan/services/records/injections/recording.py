"""Record one injection: one transaction, every safety rule (listed in the package docstring), the next dose
and its due date computed by the engine in the same transaction."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from immunoplan import clock, reference
from immunoplan.clinical.immunotherapy import NextInjection, dose_of, product
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.jsonable import to_jsonable
from immunoplan.reference.limits import limit
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services import unit_of_work
from immunoplan.services.inputs import validate
from immunoplan.services.records.common import plain_decimal
from immunoplan.services.records.courses import course_by_id
from immunoplan.services.records.fields import refuse_future_instant
from immunoplan.services.records.injections.history import (
    catalogue_ids,
    injection_row,
    live_injections,
    next_injection_view,
    reactions_by_injection,
    recompute_next_due,
)
from immunoplan.services.records.injections.inputs import (
    IMMUNOTHERAPY_KINDS,
    InjectionIn,
)
from immunoplan.services.records.patients import age_on
from immunoplan.services.records.vials import (
    is_new_vial,
    live_vials,
    patient_has_vials,
    vial_for_injection,
    vial_row,
    vial_rule,
)


def dose_in_product_units(
    c: m.Course, data: InjectionIn, due: NextInjection | None
) -> tuple[Decimal, str, Any]:
    """Dose in product units, its unit and the vial: from vial x dose_ml with a catalogue product (vial
    default: the vial of the dose due, else the product's only vial), else the explicit dose."""
    ids = catalogue_ids(c)
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
        units = plain_decimal(dose_of(ids[0], vial, data.dose_ml).units)
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
    return plain_decimal(data.dose), unit, data.vial


def refuse_future_given_at(when: datetime, now: datetime) -> None:
    """``given_at`` at most ``future_tolerance_minutes`` after the clinic clock (``registry_recording``)."""
    refuse_future_instant("given_at", when)


def same_minute_injections(
    s: Session, course_id: int, when: datetime, *, other_than: int | None = None
) -> list[m.Injection]:
    """The course's live injections given in the same (UTC) minute as ``when`` (``other_than``: leave that
    injection out, an amendment's own row)."""
    minute = clock.to_utc_stored(when).replace(second=0, microsecond=0)
    q = select(m.Injection).where(
        m.Injection.course_id == course_id,
        m.Injection.voided_at.is_(None),
        m.Injection.given_at >= minute - timedelta(minutes=1),
        m.Injection.given_at < minute + timedelta(minutes=2),
    )
    if other_than is not None:
        q = q.where(m.Injection.id != other_than)
    return [
        i for i in s.scalars(q) if clock.to_utc_stored(i.given_at).replace(second=0, microsecond=0) == minute
    ]


def _refuse_same_act(
    s: Session, c: m.Course, units: Decimal, volume_ml: Decimal | None, when: datetime
) -> None:
    """``registry_recording`` ``same-clinical-act``: same course, same minute, and the same dose or the same
    volume (a re-entry of the same 0.1 mL without its vial computes its dose from another vial)."""
    for i in same_minute_injections(s, c.id, when):
        same_volume = volume_ml is not None and i.volume_ml is not None and Decimal(i.volume_ml) == volume_ml
        if Decimal(i.dose) == units or same_volume:
            raise Conflict(
                "given_at",
                f"the same injection is already recorded: injection {i.id} given "
                f"{clock.local(i.given_at):%H:%M} by {i.given_by or 'unknown'} "
                f"({i.dose} {i.dose_unit}, same course, same minute); void it first if it is wrong",
                f"injection {i.id}",
            )


def _before_earliest(
    due: NextInjection | None, view: dict[str, Any], when: datetime, reason: str | None
) -> bool:
    """True when ``when`` is before the earliest time and the override reason allows it."""
    earliest = view.get("earliest_at") if due is not None else None
    if earliest is None or when >= earliest:
        return False
    if reason:
        return True
    rule = view["earliest"]["rule"]
    visit = view.get("visit") if view.get("visit_complete") else None
    over = f"{visit['text']} (rule {visit['id']}, {visit['status']}); " if visit else ""
    raise InvalidInput(
        "given_at",
        f"{over}{clock.format_local(when)} is before the earliest time for this injection, "
        f"{clock.format_local(earliest)} (rule {rule['id']}: {rule['text']}; {rule['status']}, "
        f"{rule['source']})",
        f">= {clock.iso_local(earliest)}, or give override_reason",
    )


def _chosen_vial(s: Session, c: m.Course, data: InjectionIn, when: datetime) -> m.Vial | None:
    """The registered vial the dose is drawn from (checked: `vials.vial_for_injection`); required once the
    patient has vials of the course's product (``registry_recording`` ``vial-required``)."""
    day = clock.local_date(when)
    if data.vial_id is not None:
        v = vial_for_injection(s, data.vial_id, c, day)
        if data.lot and data.lot != v.lot:
            raise InvalidInput(
                "lot", f"vial {v.id} is lot {v.lot}, not {data.lot}", f"{v.lot} (or leave lot empty)"
            )
        if data.vial is not None and data.vial != v.strength:
            raise InvalidInput(
                "vial", f"vial {v.id} is strength {v.strength}", f"{v.strength} (or leave it empty)"
            )
        return v
    if catalogue_ids(c) is not None and patient_has_vials(s, c):
        r = vial_rule("vial-required")
        usable = [v for v in live_vials(s, c) if v.expiry_on >= day]
        accepted = ", ".join(
            f"{v.id} (strength {v.strength}, lot {v.lot}, expires {v.expiry_on})" for v in usable
        )
        raise InvalidInput(
            "vial_id", f"{r['text']} (rule {r['id']})", accepted or "register an in-date vial first"
        )
    return None


def _refuse_against_due(
    before: NextInjection | None, view: dict[str, Any], units: Decimal, unit: str, reason: str | None
) -> dict[str, Any] | None:
    """A dose the engine does not allow: any dose when it answers do-not-dose or no rule gives one
    (outside-table), another injection the day a visit is complete or stopped (``visit-complete``,
    ``visit-stops-after-reaction``), or a dose above the dose due (``registry_recording``
    ``dose-above-due``). Refused without ``override_reason``; with one, the rule overridden is returned
    (recorded with the injection)."""
    if before is None:
        return None
    rule = view.get("rule") or {}
    if before.decision.kind == "do-not-dose":
        if reason:
            return {"rule": rule, "kind": "do-not-dose"}
        raise InvalidInput(
            "dose_ml",
            f"no dose is due (rule {rule.get('id')}: {rule.get('text')}; {rule.get('status')}, "
            f"{rule.get('source')})",
            "no injection, or give override_reason",
        )
    if before.decision.kind == "outside-table":
        if reason:
            return {"rule": rule, "kind": "outside-table"}
        raise InvalidInput(
            "dose_ml",
            f"no rule gives a dose (rule {rule.get('id')}: {rule.get('text')}; {rule.get('status')}, "
            f"{rule.get('source')}): the clinician decides the dose and records why",
            "give override_reason",
        )
    if before.visit_complete:
        visit = view.get("visit") or {}
        if reason:
            return {"rule": visit, "kind": "visit-complete"}
        raise InvalidInput(
            "given_at",
            f"today's visit is over (rule {visit.get('id')}: {visit.get('text')}; {visit.get('status')}, "
            f"{visit.get('source')}): the next injection is at the next visit",
            f"on or after {view.get('due_date') or 'the next visit'}, or give override_reason",
        )
    if before.decision.kind == "dose" and rule.get("status") == "UNVERIFIED" and before.decision.dose:
        if reason:
            return {"rule": rule, "kind": "unverified-rule"}
        raise InvalidInput(
            "dose_ml",
            f"the dose due rests on UNVERIFIED data (rule {rule.get('id')}: {rule.get('text')}; "
            f"{rule.get('source')}): it is given only with a clinician's recorded reason",
            "give override_reason",
        )
    due = before.decision.dose
    if before.decision.kind != "dose" or due is None or units <= due.units:
        return None
    above = reference.load("registry_recording")["dose_above_due"]
    if reason:
        return {"rule": rule, "kind": above["id"], "dose_due": plain_decimal(due.units)}
    raise InvalidInput(
        "dose_ml",
        f"{units} {unit} is above the dose due, {plain_decimal(due.units)} {unit} = vial {due.vial} x "
        f"{plain_decimal(due.volume_ml)} mL (rule {rule.get('id')}: {rule.get('text')}; "
        f"{rule.get('status')}, {rule.get('source')}; {above['id']}: {above['text']})",
        f"<= {plain_decimal(due.volume_ml)} mL of vial {due.vial}, or give override_reason",
    )


def _age_years(s: Session, c: m.Course, when: datetime) -> int | None:
    p = s.get(m.Patient, c.patient_id)
    return None if p is None else age_on(p.birth_date, p.age_years, clock.local_date(when))


def _pre_injection_check(
    data: InjectionIn, reason: str | None, age_years: int | None
) -> dict[str, Any] | None:
    """The pre-injection check's outcome for the answers given (None when none were): a check that holds the
    dose refuses the injection unless ``override_reason`` is given."""
    if not data.checks:
        return None
    from immunoplan.clinical.immunotherapy.preinjection import evaluate_check

    outcome = evaluate_check(data.checks, age_years=age_years).to_dict()
    if outcome["holds"] and not reason:
        first = outcome["holds"][0]
        b = first["basis"]
        raise InvalidInput(
            f"check.{first['id']}",
            f"holds the dose: {first['text']} (rule {first['id']}; {b['status']}, {b['source']})",
            "answer again when it no longer applies, or give override_reason",
        )
    return outcome


def _checks_record(
    check: dict[str, Any] | None, refused: dict[str, Any] | None, early: bool, view: dict[str, Any]
) -> dict[str, Any] | None:
    """What is stored in ``injections.checks``: the pre-injection check and every rule overridden."""
    overridden = []
    if early:
        overridden.append({"kind": "before-earliest", "earliest_at": view.get("earliest_at")})
    if refused is not None:
        overridden.append(refused)
    if check is not None and check["holds"]:
        overridden.extend({"kind": "check-holds", "rule": h["id"]} for h in check["holds"])
    if check is None and not overridden:
        return None
    return to_jsonable({"pre_injection": check, "overridden": overridden})  # type: ignore[no-any-return]


def immunotherapy_course(s: Session, course_id: int, patient_id: int | None) -> m.Course:
    """The immunotherapy course ``course_id``, locked for the transaction; `InvalidInput` when there is no
    such course or it is not an immunotherapy course (``patient_id``: another patient's: `LookupError`)."""
    try:
        c = course_by_id(s, course_id, lock=True, patient_id=patient_id)
    except LookupError:
        if patient_id is not None:
            raise
        raise InvalidInput("course_id", f"no course {course_id} in the registry") from None
    if c.kind not in IMMUNOTHERAPY_KINDS:
        raise InvalidInput(
            "course_id",
            f"course {c.id} is {c.kind}, not an immunotherapy course",
            ", ".join(IMMUNOTHERAPY_KINDS),
        )
    return c


def record(
    reg: Registry,
    actor: str,
    data: InjectionIn,
    *,
    idempotency_key: Any = None,
    next_due_on: Any = None,
    patient_id: int | None = None,
) -> dict[str, Any]:
    """Record one injection (package docstring: the rules) and return it with ``next`` (what `next_dose`
    answers now). ``next_due_on``: an importer's stored due date, used only when the engine cannot answer.
    ``patient_id`` (web routes): a course of another patient is a `LookupError` (404)."""
    explicit_due = None if next_due_on in (None, "") else clock.parse_date("next_due_on", next_due_on)

    def fn(s: Session) -> dict[str, Any]:
        c = immunotherapy_course(s, data.course_id, patient_id)
        now = clock.now()
        when = data.given_at or now
        refuse_future_given_at(when, now)
        live = live_injections(s, c.id)
        prior = [i for i in live if clock.to_utc_stored(i.given_at) <= when]
        chosen = _chosen_vial(s, c, data, when)
        new_vial = chosen is not None and is_new_vial(chosen, prior)
        data_in = data.model_copy(update={"vial": chosen.strength}) if chosen is not None else data
        before_view, before = next_injection_view(
            c, prior, reactions_by_injection(s, prior), when, new_vial=new_vial
        )
        units, unit, vial = dose_in_product_units(c, data_in, before)
        _refuse_same_act(s, c, units, data.dose_ml, when)
        overridden = _before_earliest(before, before_view, when, data.override_reason)
        refused = _refuse_against_due(before, before_view, units, unit, data.override_reason)
        check = _pre_injection_check(data, data.override_reason, _age_years(s, c, when))
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
            lot=chosen.lot if chosen is not None else data.lot,
            given_by=actor,
            phase=phase,
            observed_minutes=data.observed_minutes,
            override_reason=data.override_reason,
            vial_id=chosen.id if chosen is not None else None,
            new_vial=new_vial if chosen is not None else None,
            checks=_checks_record(check, refused, overridden, before_view),
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
        # no catalogue schedule: the importer's stored date, else the course's planned interval
        planned = day + timedelta(days=c.interval_days) if c.interval_days else None
        nxt = recompute_next_due(s, c, fallback_due=explicit_due if explicit_due is not None else planned)
        warnings = []
        due_dose = (before_view.get("dose") or {}).get("dose")
        if before is not None and due_dose is not None and Decimal(str(due_dose)) != units:
            rule = before_view["rule"] or {}
            warnings.append(
                f"The dose given ({units} {unit}) differs from the dose due ({due_dose} {unit}, rule "
                f"{rule.get('id')})."
            )
        if chosen is None and catalogue_ids(c) is not None:
            warnings.append("No vial chosen: the lot and expiry of the vial were not checked.")
        if new_vial:
            strength = chosen.strength if chosen else "?"
            warnings.append(
                f"New vial or lot at strength {strength}: the new-vial rule applied to the dose due "
                f"(rule {(before_view.get('rule') or {}).get('id')})."
            )
        if check is not None:
            warnings.extend(f"Pre-injection check: {w['text']}" for w in check["warnings"])
        out = {
            **injection_row(inj),
            "vial_record": vial_row(chosen) if chosen is not None else None,
            "check": check,
            "next": nxt,
            "warnings": warnings,
        }
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
    vial_id: Any = None,
    checks: dict[str, str] | None = None,
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
            "vial_id": None if vial_id in (None, "") else vial_id,
            "checks": checks,
            "dose": dose,
            "dose_unit": dose_unit,
            "phase": phase,
        },
    )
    return record(reg, actor, data, idempotency_key=idempotency_key, next_due_on=next_due_on)
