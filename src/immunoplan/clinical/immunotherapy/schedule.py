"""Dated SCIT calendars: up-dosing visits (several injections a day where the regimen says so, at least the
product's same-day interval apart) followed by maintenance visits at the chosen interval.

Regimens and intervals are data (reference file ``scit_products``; protocols.md 2.1-2.3, 2.7). A regimen with
status UNVERIFIED (e.g. Alutard rush: no step table was read) yields kind ``cannot-answer``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from immunoplan import reference
from immunoplan.reference import Basis, limits
from immunoplan.validation import check_range

from .catalogue import DATA, Dose, dose_of, maintenance_dose, product, regimen


@dataclass(frozen=True)
class Injection:
    injection: int
    dose: Dose
    offset_minutes: int
    clock: str | None = None
    status: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {
            "injection": self.injection,
            **self.dose.to_dict(),
            "offset_minutes": self.offset_minutes,
            "clock": self.clock,
        }
        if self.status:
            d["status"] = self.status
        return d


@dataclass(frozen=True)
class Visit:
    visit: int
    date: date
    week: int | None
    phase: str
    injections: list[Injection]
    note: str = ""
    treatment: str = "scit"

    def to_dict(self) -> dict[str, Any]:
        return {
            "visit": self.visit,
            "date": self.date,
            "week": self.week,
            "phase": self.phase,
            "treatment": self.treatment,
            "injections": self.injections,
            "note": self.note,
        }


@dataclass
class Schedule:
    kind: str
    product: str
    product_name: str
    regimen: str
    regimen_name: str
    start: date
    visits: list[Visit]
    observation_minutes: int
    maintenance_interval_weeks: int | None
    basis: list[Basis]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "product": self.product,
            "product_name": self.product_name,
            "regimen": self.regimen,
            "regimen_name": self.regimen_name,
            "start": self.start,
            "visits": self.visits,
            "observation_minutes": self.observation_minutes,
            "maintenance_interval_weeks": self.maintenance_interval_weeks,
            "basis": [b.to_dict() for b in self.basis],
            "warnings": self.warnings,
        }


def build_schedule(
    product_id: str,
    regimen_id: str,
    start: date,
    *,
    maintenance_interval_weeks: int | None = None,
    maintenance_visits: int = 3,
    start_time: time | None = None,
) -> Schedule:
    """Calendar for ``regimen_id`` of ``product_id`` starting on ``start`` (see module docstring)."""
    p = product(product_id)
    reg = regimen(product_id, regimen_id)
    check_range("maintenance_visits", maintenance_visits, 0, 60)
    mi = p["maintenance_interval_weeks"]
    basis = [reference.basis(DATA, f"{product_id} {regimen_id}", status=reg["status"], source=reg["source"])]
    warnings: list[str] = []
    if reg["status"] == "UNVERIFIED" or not reg["rows"]:
        warnings.append(f"No verified {regimen_id} schedule for {p['name']}: {reg['source']}.")
        return Schedule(
            "cannot-answer",
            product_id,
            p["name"],
            regimen_id,
            reg["name"],
            start,
            [],
            int(p["observation_minutes"]),
            None,
            basis,
            warnings,
        )
    if reg["status"] == "SECONDARY":
        warnings.append(f"Schedule status SECONDARY: {reg['source']}. Check against the SmPC before use.")
    interval = maintenance_interval_weeks if maintenance_interval_weeks is not None else mi["default"]
    if interval is None:
        if maintenance_visits:
            warnings.append(
                f"Maintenance interval not published for this regimen ({mi['source']}): "
                "set --maintenance-interval-weeks to list maintenance visits."
            )
        maintenance_visits = 0
    else:
        interval = int(limits.check("maintenance_interval_weeks", interval))  # plausibility, whole weeks
        check_range("maintenance_interval_weeks", interval, mi["min"], mi["max"], unit="weeks")  # the product
        if mi["default"] is None:
            basis.append(
                Basis(
                    "clinician-entered",
                    "-",
                    "maintenance interval set by the clinician",
                    "SECONDARY",
                    f"maintenance every {interval} weeks",
                )
            )
        else:
            basis.append(
                reference.basis(DATA, "maintenance interval", status=mi["status"], source=mi["source"])
            )
    same_day = int(reg.get("interval_minutes", p["same_day_min_interval_minutes"]))
    basis.append(
        reference.basis(
            DATA,
            "observation and same-day interval",
            status="VERIFIED",
            source=f"{p['observation_source']}; {p['same_day_source']}",
        )
    )
    visits: list[Visit] = []
    by_week: dict[int, list[dict[str, Any]]] = {}
    for r in reg["rows"]:
        by_week.setdefault(int(r["week"]), []).append(r)
    for week, rows in sorted(by_week.items()):
        day = start + timedelta(days=7 * (week - 1))
        inj = []
        for i, r in enumerate(rows):
            off = i * same_day
            clock = _clock(day, start_time, off)
            inj.append(
                Injection(
                    int(r["injection"]),
                    dose_of(product_id, int(r["vial"]), Decimal(r["ml"])),
                    off,
                    clock,
                    r.get("status"),
                )
            )
        note = f"{len(rows)} injections at least {same_day} min apart" if len(rows) > 1 else ""
        visits.append(Visit(len(visits) + 1, day, week, "build-up", inj, note))
    last = visits[-1].date
    top = maintenance_dose(product_id)
    reached = [i.dose for v in visits for i in v.injections if i.dose.units == top]
    top_dose = reached[-1] if reached else None
    if reg.get("day_total_is_maintenance_dose"):
        vial = int(reg["rows"][0]["vial"])
        top_dose = dose_of(product_id, vial, top / dose_of(product_id, vial, Decimal(1)).units)
        warnings.append("The day's injections together make up the maintenance dose (split-dose ultra-rush).")
    if top_dose is None:
        warnings.append("The regimen does not reach the maintenance dose.")
    elif interval is not None:
        for k in range(1, maintenance_visits + 1):
            day = last + timedelta(weeks=interval * k)
            visits.append(
                Visit(
                    len(visits) + 1,
                    day,
                    None,
                    "maintenance",
                    [Injection(0, top_dose, 0, _clock(day, start_time, 0))],
                    f"maintenance every {interval} weeks",
                )
            )
    return Schedule(
        "schedule",
        product_id,
        p["name"],
        regimen_id,
        reg["name"],
        start,
        visits,
        int(p["observation_minutes"]),
        interval,
        basis,
        warnings,
    )


def _clock(day: date, start_time: time | None, offset_minutes: int) -> str | None:
    if start_time is None:
        return None
    return (datetime.combine(day, start_time) + timedelta(minutes=offset_minutes)).strftime("%H:%M")
