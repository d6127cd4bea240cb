"""Rapid drug desensitization (RDD) plan generator: 1-4 bags, any target, volumes and final rate.

Rules (reference file ``rdd_protocols``; protocols.md section 1.2, reproduced number for number against the
UpToDate ceftazidime 2,000 mg 12-step example):

- bag k holds the final concentration (target / final-bag volume) divided by its dilution factor
  (12-step: 1:100, 1:10; 16-step: 1:1000, 1:100, 1:10), so a dilution bag holds conc x its own volume;
- each step lasts ``step_minutes`` (15 min); rates are the base sequence scaled by final_rate / 80;
- dilution bags are only partly infused; the final bag is *corrected*: it holds target - dose already given,
  and its last step runs at the final rate until it is empty, so the cumulative dose equals the target.

Pure: no I/O. Decimal arithmetic at 40 significant digits; the last step's dose is the exact remainder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, localcontext
from typing import Any

from immunoplan import reference
from immunoplan.errors import InvalidInput
from immunoplan.reference import Basis, limits
from immunoplan.validation import to_decimal

DATA = "rdd_protocols"
PRECISION = 40
# Per-step volumes, minutes and doses are kept to 1e-12 (far below any measurable amount) so that sums are
# exact: the cumulative dose equals the target to the last digit.
QUANTUM = Decimal("1e-12")
MAX_BAGS = 4


@dataclass(frozen=True)
class RddRequest:
    """Inputs of one desensitization plan (units in the names)."""

    drug: str
    target_mg: Decimal
    bag_volume_ml: Decimal
    final_rate_ml_h: Decimal
    bags: int = 3
    dilution_bag_volume_ml: Decimal | None = None
    step_minutes: Decimal | None = None
    first_rate_variant: bool = False
    rates_ml_h: tuple[tuple[Decimal, ...], ...] | None = None
    start: datetime | time | None = None
    override_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        if self.rates_ml_h is not None:
            d["rates_ml_h"] = [list(r) for r in self.rates_ml_h]
        return d


@dataclass(frozen=True)
class Bag:
    bag: int
    dilution: str
    dilution_factor: int
    volume_ml: Decimal
    concentration_mg_ml: Decimal
    mg_in_bag: Decimal
    volume_infused_ml: Decimal
    dose_infused_mg: Decimal


@dataclass(frozen=True)
class Step:
    step: int
    bag: int
    rate_ml_h: Decimal
    minutes: Decimal
    volume_ml: Decimal
    dose_mg: Decimal
    cumulative_mg: Decimal
    start_minute: Decimal
    end_minute: Decimal
    start_clock: str | None = None
    end_clock: str | None = None


@dataclass
class RddPlan:
    """A complete plan. ``kind`` is ``plan`` or ``needs-override`` (UNVERIFIED scheme without override)."""

    kind: str
    drug: str
    target_mg: Decimal
    scheme: str
    bags: list[Bag]
    steps: list[Step]
    total_minutes: Decimal
    vital_sign_minutes: list[Decimal]
    observation_minutes: int
    basis: list[Basis]
    warnings: list[str] = field(default_factory=list)
    override: dict[str, Any] | None = None
    request: RddRequest | None = None
    start_clock: str | None = None
    end_clock: str | None = None
    observe_until_clock: str | None = None
    vital_sign_clocks: list[str] = field(default_factory=list)

    @property
    def dosing_allowed(self) -> bool:
        return self.kind == "plan"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "dosing_allowed": self.dosing_allowed,
            "drug": self.drug,
            "target_mg": self.target_mg,
            "scheme": self.scheme,
            "bags": self.bags,
            "steps": self.steps,
            "total_minutes": self.total_minutes,
            "totals": {
                "dose_mg": self.steps[-1].cumulative_mg,
                "volume_ml": sum((s.volume_ml for s in self.steps), Decimal(0)),
                "minutes": self.total_minutes,
                "steps": len(self.steps),
            },
            "start_clock": self.start_clock,
            "end_clock": self.end_clock,
            "observe_until_clock": self.observe_until_clock,
            "observation_minutes": self.observation_minutes,
            "vital_sign_minutes": self.vital_sign_minutes,
            "vital_sign_clocks": self.vital_sign_clocks,
            "basis": [b.to_dict() for b in self.basis],
            "warnings": self.warnings,
            "override": self.override,
            "inputs": self.request.to_dict() if self.request else None,
        }


def dilution_label(factor: int) -> str:
    return "final (corrected)" if factor == 1 else f"1:{factor}"


def clock(start: datetime | time | None, minutes: Decimal) -> str | None:
    """Clock time (HH:MM, truncated to the minute; '+1d' when past midnight) ``minutes`` after ``start``."""
    if start is None:
        return None
    if isinstance(start, time):
        start = datetime.combine(date(2000, 1, 1), start)
    t = start + timedelta(seconds=float(minutes * 60))
    days = (t.date() - start.date()).days
    return t.strftime("%H:%M") + (f" (+{days}d)" if days else "")


def scheme_rates(
    bags: int, final_rate: Decimal, first_rate_variant: bool
) -> tuple[list[list[Decimal]], Basis]:
    """Base rate table of the ``bags``-bag scheme scaled to ``final_rate`` (rate = R x base / 80)."""
    data = reference.load(DATA)
    scheme = data["schemes"][str(bags)]
    ref = Decimal(data["reference_final_rate_ml_h"]["value"])
    base = [[Decimal(r) for r in row] for row in scheme["base_rates_ml_h"]]
    if first_rate_variant:
        base[0][0] = Decimal(data["first_rate_variant"]["base_rate_ml_h"])
    rates = [[final_rate * r / ref for r in row] for row in base]
    return rates, reference.basis(
        DATA, f"scheme {scheme['name']}", status=scheme["status"], source=scheme["source"]
    )


def _validate(req: RddRequest) -> None:
    # Typing-error guards (field limits, `immunoplan.reference.limits`), not clinical numbers: far above any
    # real dose, bag or pump rate, they also keep exact Decimal arithmetic within its working precision
    # (`PRECISION` digits; 1e300 mg overflowed it).
    limits.check("desensitization_dose_mg", req.target_mg, "target_mg")
    limits.check("bag_volume_ml", req.bag_volume_ml)
    limits.check("rate_ml_h", req.final_rate_ml_h, "final_rate_ml_h")
    if req.dilution_bag_volume_ml is not None:
        limits.check("bag_volume_ml", req.dilution_bag_volume_ml, "dilution_bag_volume_ml")
    if req.step_minutes is not None:
        limits.check("step_minutes", req.step_minutes)
    if req.rates_ml_h is None:
        if req.bags not in range(1, MAX_BAGS + 1):
            raise InvalidInput("bags", f"{req.bags} bags is not supported", "1, 2, 3, 4")
    else:
        if not 1 <= len(req.rates_ml_h) <= MAX_BAGS:
            raise InvalidInput("rates_ml_h", f"{len(req.rates_ml_h)} bags given", "1 to 4 bags of rates")
        if req.first_rate_variant:
            raise InvalidInput(
                "first_rate_variant", "only applies to the standard rate table", "omit with custom rates"
            )
        for i, row in enumerate(req.rates_ml_h, start=1):
            if not row:
                raise InvalidInput("rates_ml_h", f"bag {i} has no steps", "at least one rate per bag")
            for r in row:
                limits.check("rate_ml_h", r, "rates_ml_h")
            if any(b < a for a, b in zip(row, row[1:], strict=False)):
                raise InvalidInput(
                    "rates_ml_h", f"bag {i} rates must not decrease", "non-decreasing rates per bag"
                )
        if req.rates_ml_h[-1][-1] != req.final_rate_ml_h:
            raise InvalidInput(
                "rates_ml_h",
                "the last rate of the last bag must equal the final rate",
                f"{req.final_rate_ml_h}",
            )


#: Plausibility limit of the planner, not a clinical number: a plan lasting more than a week comes from a
#: mistyped rate or step length (e.g. 1e-6 mL/h), and listing its vital-sign times would take hours.
MAX_PROTOCOL_MINUTES = Decimal(7 * 24 * 60)


def generate(req: RddRequest) -> RddPlan:
    """Build the plan for ``req`` (see module docstring for the rules and their sources)."""
    _validate(req)
    data = reference.load(DATA)
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return _generate(req, data)


def _generate(req: RddRequest, data: dict[str, Any]) -> RddPlan:
    warnings: list[str] = []
    basis = [reference.basis(DATA, "final-bag correction", status="VERIFIED")]
    if req.rates_ml_h is None:
        rates, scheme_basis = scheme_rates(req.bags, req.final_rate_ml_h, req.first_rate_variant)
        scheme = data["schemes"][str(req.bags)]
        dilutions = [int(x) for x in scheme["dilutions"]]
        scheme_name = scheme["name"]
        basis.append(scheme_basis)
        basis.append(
            reference.basis(
                DATA, "rate scaling R x base/80", status="COMPUTED", source=data["rate_scaling"]["source"]
            )
        )
        if req.first_rate_variant:
            v = data["first_rate_variant"]
            basis.append(
                reference.basis(DATA, "first rate 2.5 mL/h variant", status=v["status"], source=v["source"])
            )
    else:
        rates = [list(r) for r in req.rates_ml_h]
        n = len(rates)
        dilutions = [int(data["schemes"][str(n)]["dilutions"][i]) for i in range(n)]
        scheme_name = f"custom {sum(len(r) for r in rates)}-step, {n}-bag"
        basis.append(
            Basis(
                id="clinician-entered-rates",
                version="-",
                source="rate table entered by the clinician",
                status="SECONDARY",
                rule="custom rate table",
            )
        )
        warnings.append(
            "Custom rate table entered by the clinician: check it against your institutional protocol."
        )
    n_bags = len(rates)
    step_minutes = (
        req.step_minutes if req.step_minutes is not None else Decimal(data["step_minutes"]["value"])
    )
    final_volume = req.bag_volume_ml
    dil_volume = req.dilution_bag_volume_ml if req.dilution_bag_volume_ml is not None else final_volume
    final_conc = req.target_mg / final_volume
    hours = step_minutes / Decimal(60)

    steps: list[Step] = []
    bags: list[Bag] = []
    cumulative = Decimal(0)
    clock_min = Decimal(0)
    number = 0
    given_before_final = Decimal(0)
    for b, (row, factor) in enumerate(zip(rates, dilutions, strict=True), start=1):
        last_bag = b == n_bags
        volume = final_volume if last_bag else dil_volume
        if last_bag:
            mg_in_bag = req.target_mg - given_before_final
            conc = mg_in_bag / volume
        else:
            conc = final_conc / factor
            mg_in_bag = conc * volume
        infused = Decimal(0)
        bag_dose = Decimal(0)
        for i, rate in enumerate(row):
            number += 1
            if last_bag and i == len(row) - 1:
                vol = volume - infused
                if vol <= 0:
                    raise InvalidInput(
                        "bag_volume_ml",
                        f"the steps before the final step already infuse {_fmt(infused)} mL of the "
                        f"{_fmt(volume)} mL final bag (more volume infused than the bag holds)",
                        f"> {_fmt(infused)} mL, or a higher final rate",
                    )
                minutes = _q(vol * 60 / rate)
                dose = req.target_mg - cumulative  # exact remainder: cumulative == target
            else:
                minutes = step_minutes
                vol = _q(rate * hours)
                dose = _q(vol * conc)
            infused += vol
            bag_dose += dose
            cumulative += dose
            steps.append(
                Step(number, b, rate, minutes, vol, dose, cumulative, clock_min, clock_min + minutes)
            )
            clock_min += minutes
        if infused > volume:
            raise InvalidInput(
                "dilution_bag_volume_ml",
                f"bag {b} would infuse {_fmt(infused)} mL but holds {_fmt(volume)} mL "
                "(more volume infused than the bag holds)",
                f">= {_fmt(infused)} mL",
            )
        if not last_bag:
            given_before_final += bag_dose
        bags.append(Bag(b, dilution_label(factor), factor, volume, conc, mg_in_bag, infused, bag_dose))

    total = sum((s.minutes for s in steps), Decimal(0))
    if total > MAX_PROTOCOL_MINUTES:
        field = "final_rate_ml_h" if steps[-1].minutes * 2 > total else "step_minutes"
        raise InvalidInput(
            field,
            f"the protocol would run {_fmt(total / 60)} h",
            "inputs giving a protocol of at most 7 days (168 h)",
        )
    vs = data["vital_signs"]
    vital = vital_sign_minutes(steps, Decimal(vs["every_minutes"]), Decimal(vs["every_minutes_last_step"]))
    basis.append(
        reference.basis(
            DATA, "vital signs q15 min, q30 min in the last step", status=vs["status"], source=vs["source"]
        )
    )
    observation = int(data["observation_after_minutes"]["value"])

    kind, override = "plan", None
    unverified = [x for x in basis if not x.verified]
    if unverified:
        names = ", ".join(x.rule or x.id for x in unverified)
        if req.override_reason and req.override_reason.strip():
            override = {
                "reason": req.override_reason.strip(),
                "overridden": [x.to_dict() for x in unverified],
            }
            warnings.append(f"UNVERIFIED rule(s) used under a recorded clinician override: {names}.")
        else:
            kind = "needs-override"
            warnings.append(
                f"UNVERIFIED rule(s): {names}. Shown for review only; not for administration without an "
                "explicit, recorded clinician override (--override-unverified REASON)."
            )
    published_minutes = Decimal(data["step_minutes"]["value"])
    if step_minutes != published_minutes:
        warnings.append(
            f"Step length {_fmt(step_minutes)} min differs from the published {published_minutes} min."
        )
        basis.append(
            Basis(
                id="clinician-entered-step-minutes",
                version="-",
                source="step length set by the clinician",
                status="SECONDARY",
                rule=f"{_fmt(step_minutes)} min per step",
            )
        )
    if dil_volume != final_volume and n_bags > 1:
        warnings.append(f"Dilution bags of {_fmt(dil_volume)} mL with a {_fmt(final_volume)} mL final bag.")

    plan = RddPlan(
        kind,
        req.drug,
        req.target_mg,
        scheme_name,
        bags,
        steps,
        total,
        vital,
        observation,
        basis,
        warnings,
        override,
        req,
    )
    return with_clock(plan, req.start)


def with_clock(plan: RddPlan, start: datetime | time | None) -> RddPlan:
    """Fill clock times from ``start`` (a pure computation; None leaves them empty)."""
    if start is None:
        return plan
    plan.steps = [
        Step(
            s.step,
            s.bag,
            s.rate_ml_h,
            s.minutes,
            s.volume_ml,
            s.dose_mg,
            s.cumulative_mg,
            s.start_minute,
            s.end_minute,
            clock(start, s.start_minute),
            clock(start, s.end_minute),
        )
        for s in plan.steps
    ]
    plan.start_clock = clock(start, Decimal(0))
    plan.end_clock = clock(start, plan.total_minutes)
    plan.observe_until_clock = clock(start, plan.total_minutes + plan.observation_minutes)
    plan.vital_sign_clocks = [c for m in plan.vital_sign_minutes if (c := clock(start, m))]
    return plan


def vital_sign_minutes(steps: list[Step], every: Decimal, every_last: Decimal) -> list[Decimal]:
    """Minutes from start for vital signs: every 15 min, every 30 min during the last step, and at the end."""
    last = steps[-1]
    out: list[Decimal] = []
    t = Decimal(0)
    while t < last.start_minute:
        out.append(t)
        t += every
    t = last.start_minute
    while t < last.end_minute:
        out.append(t)
        t += every_last
    out.append(last.end_minute)
    return out


def _q(x: Decimal) -> Decimal:
    """Round to `QUANTUM` unless already shorter (keeps 0.5, 174.375 ... as published)."""
    return x if x.as_tuple().exponent >= -12 else x.quantize(QUANTUM)  # type: ignore[operator]


def _fmt(x: Decimal) -> str:
    q = x.quantize(Decimal("0.001")).normalize()
    return format(q, "f")


def parse_rates(field_name: str, text: str) -> tuple[tuple[Decimal, ...], ...]:
    """Parse a rate table written ``2,5,10,20|5,10,20,40|10,20,40,80`` (bags separated by ``|``)."""
    rows = []
    for part in text.split("|"):
        items = [p for p in part.replace(" ", "").split(",") if p]
        rows.append(tuple(to_decimal(field_name, p) for p in items))
    return tuple(rows)
