"""Oral immunotherapy (OIT) up-dosing calendars under omalizumab cover (protocols.md section 3; reference file
``oit_protocols``).

What is published is the frame: omalizumab pretreatment length, start and target doses, the interval between
increases, the omalizumab taper (Langlois 2020: full 12 weeks, 50% 4 weeks, 25% 4 weeks). No study published
its intermediate step doses, so they are entered by the clinician (recorded as such) or left blank
(``calendar-only``). Up-dosing visits that fall in or after the omalizumab taper carry the seed 003 warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from immunoplan import reference
from immunoplan.errors import InvalidInput
from immunoplan.reference import Basis, limits
from immunoplan.validation import check_choice, check_range

DATA = "oit_protocols"


@dataclass(frozen=True)
class OitVisit:
    visit: int
    date: date
    week: int
    dose_mg: Decimal | None
    dose_source: str
    omalizumab_phase: str
    warning: str | None = None


@dataclass(frozen=True)
class OmalizumabPhase:
    start: date
    end: date
    fraction: Decimal
    text: str
    mg_per_month: Decimal | None


@dataclass
class OitPlan:
    kind: str
    regimen: str
    name: str
    unit: str
    omalizumab_start: date
    oit_start: date
    omalizumab_phases: list[OmalizumabPhase]
    omalizumab_stop: date | None
    visits: list[OitVisit]
    basis: list[Basis]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            k: getattr(self, k) if k != "basis" else [b.to_dict() for b in self.basis]
            for k in (
                "kind",
                "regimen",
                "name",
                "unit",
                "omalizumab_start",
                "oit_start",
                "omalizumab_phases",
                "omalizumab_stop",
                "visits",
                "basis",
                "warnings",
            )
        }


def regimen_ids() -> list[str]:
    return list(reference.load(DATA)["regimens"])


def plan_oit(
    regimen_id: str,
    omalizumab_start: date,
    *,
    doses_mg: list[Decimal] | None = None,
    weight_kg: Decimal | None = None,
    arm_mg_per_kg_month: Decimal | None = None,
    pretreatment_weeks: int | None = None,
) -> OitPlan:
    """Calendar for ``regimen_id`` with omalizumab starting on ``omalizumab_start``."""
    check_choice("regimen", regimen_id, regimen_ids())
    data = reference.load(DATA)
    reg = data["regimens"][regimen_id]
    om = reg["omalizumab"]
    warnings: list[str] = []
    basis = [
        reference.basis(DATA, regimen_id, status=reg["status"], source=reg["source"]),
        reference.basis(DATA, f"{regimen_id} omalizumab", status=om["status"], source=om["source"]),
    ]
    # pretreatment
    pre = om.get("pretreatment_weeks")
    if pretreatment_weeks is not None:
        check_range("pretreatment_weeks", pretreatment_weeks, 0, 52, unit="weeks")
        if pre is not None and pretreatment_weeks != pre:
            warnings.append(
                f"Pretreatment {pretreatment_weeks} weeks differs from the published {pre} weeks."
            )
        pre = pretreatment_weeks
    if pre is None:
        raise InvalidInput(
            "pretreatment_weeks",
            f"{reg['name']}: omalizumab pretreatment length not published (UNVERIFIED); enter it",
            "0 to 52 weeks",
        )
    oit_start = omalizumab_start + timedelta(weeks=pre)
    # omalizumab phases
    phases: list[OmalizumabPhase] = []
    mg_kg = None
    if "arms_mg_per_kg_month" in om:
        if arm_mg_per_kg_month is None:
            raise InvalidInput(
                "arm_mg_per_kg_month", "choose the omalizumab arm", ", ".join(om["arms_mg_per_kg_month"])
            )
        check_choice(
            "arm_mg_per_kg_month", format(arm_mg_per_kg_month.normalize(), "f"), om["arms_mg_per_kg_month"]
        )
        mg_kg = arm_mg_per_kg_month
        if weight_kg is None:
            warnings.append("weight_kg not given: omalizumab mg per month not computed")
        else:
            weight_kg = limits.check("weight_kg", weight_kg)
        warnings.append(
            om["split_within_month"]["text"] + " (UNVERIFIED): the prescriber splits the monthly dose."
        )
    day = omalizumab_start
    for ph in om.get("phases", []):
        end = day + timedelta(weeks=int(ph["weeks"]))
        frac = Decimal(ph["fraction"])
        mg = mg_kg * weight_kg * frac if (mg_kg is not None and weight_kg is not None) else None
        phases.append(OmalizumabPhase(day, end, frac, ph["text"], mg))
        day = end
    stop = phases[-1].end if phases else None
    taper_start = next((p.start for p in phases if p.fraction < 1), None)
    if not phases and not om.get("until_target"):
        warnings.append(f"Omalizumab: {om['dosing']}; schedule not published.")
    # OIT doses
    start_mg = Decimal(reg["start_mg"]) if reg["start_mg"] else None
    target = Decimal(reg["target_mg"])
    every = int(reg["increase_every_weeks"])
    if doses_mg:
        for i, d in enumerate(doses_mg):
            check_range(f"doses_mg[{i}]", d, 0, target, low_inclusive=False, unit=reg["unit"])
        if any(b <= a for a, b in zip(doses_mg, doses_mg[1:], strict=False)):
            raise InvalidInput("doses_mg", "up-dosing doses must increase", "strictly increasing doses")
        if doses_mg[-1] != target:
            raise InvalidInput(
                "doses_mg", f"the last dose must be the published target {target}", str(target)
            )
        if start_mg is not None and doses_mg[0] != start_mg:
            raise InvalidInput(
                "doses_mg", f"the first dose must be the published start {start_mg}", str(start_mg)
            )
        doses: list[Decimal | None] = list(doses_mg)
        sources = ["clinician-entered"] * len(doses)
        kind = "schedule"
        basis.append(
            Basis(
                "clinician-entered-doses",
                "-",
                "intermediate doses entered by the clinician",
                "SECONDARY",
                "OIT step doses",
            )
        )
    else:
        if reg["updosing_weeks"] is None:
            raise InvalidInput(
                "doses_mg",
                f"{reg['name']}: step doses and their number are not published; enter the up-dosing doses",
                f"increasing doses ending at {target}",
            )
        n = int(reg["updosing_weeks"]) // every + 1
        doses = [None] * n
        doses[0], doses[-1] = start_mg, target
        sources = ["published"] + ["not published"] * (n - 2) + ["published"]
        kind = "calendar-only"
        warnings.append("Intermediate doses are not published (UNVERIFIED): enter them (--doses) before use.")
    visits: list[OitVisit] = []
    tw = data["taper_warning"]["text"]
    for i, (dose, src) in enumerate(zip(doses, sources, strict=True)):
        day = oit_start + timedelta(weeks=every * i)
        week = (day - omalizumab_start).days // 7
        phase = _phase_at(phases, day, stop)
        warn = (
            tw
            if (taper_start is not None and day >= taper_start) or (stop is not None and day >= stop)
            else None
        )
        visits.append(OitVisit(i + 1, day, week, dose, src, phase, warn))
    if om.get("until_target") and visits:
        stop = visits[-1].date
        phases.append(OmalizumabPhase(omalizumab_start, stop, Decimal(1), om["text"], None))
        visits = [OitVisit(v.visit, v.date, v.week, v.dose_mg, v.dose_source, "full", None) for v in visits]
        visits[-1] = OitVisit(
            visits[-1].visit,
            stop,
            visits[-1].week,
            visits[-1].dose_mg,
            visits[-1].dose_source,
            "full (stop after this dose)",
            data["taper_warning"]["text"],
        )
    # every omalizumab-covered OIT ends with a taper or a stop: the seed 003 warning always applies
    basis.append(
        reference.basis(
            DATA,
            "taper warning",
            status=data["taper_warning"]["status"],
            source=data["taper_warning"]["source"],
        )
    )
    warnings.append(tw)
    return OitPlan(
        kind,
        regimen_id,
        reg["name"],
        reg["unit"],
        omalizumab_start,
        oit_start,
        phases,
        stop,
        visits,
        basis,
        warnings,
    )


def _phase_at(phases: list[OmalizumabPhase], day: date, stop: date | None) -> str:
    for p in phases:
        if p.start <= day < p.end:
            return (
                "full"
                if p.fraction == 1
                else f"taper {format(p.fraction * 100, 'f').rstrip('0').rstrip('.')}%"
            )
    if stop is not None and day >= stop:
        return "stopped"
    return "not published"
