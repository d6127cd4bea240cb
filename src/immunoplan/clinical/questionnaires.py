"""Questionnaire scoring: ACT, C-ACT, ACQ-5/6/7, AQLQ(S), mini-AQLQ, SCORAD.

Items, ranges, scoring, category bands and minimal important differences (MIDs) are data in
``reference/data/assess_questionnaires.json`` (sources per instrument: Nathan 2004 / Schatz 2007, 2009 for
ACT; Liu 2007, 2010 and Bime 2016 for C-ACT; Juniper 1999 and NAEPP 2020 for ACQ; qoltech / Juniper for AQLQ;
European Task Force 1993, Chopra 2017 and Silverberg 2021 for SCORAD). Out-of-range items raise
`InvalidInput`. `response` classifies the change between two visits against the instrument's MID.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from immunoplan.clinical.assess_rules import (
    FiredRule,
    age_years,
    choice,
    evaluate,
    find_band,
    fire,
    number,
)
from immunoplan.errors import InvalidInput
from immunoplan.reference import limits, load

TABLE = "assess_questionnaires"
MEAN_PLACES = Decimal("0.01")


def instruments() -> tuple[str, ...]:
    """Names accepted by `score` and `response` (act, c-act, acq5, acq6, acq7, aqlq, mini-aqlq, scorad)."""
    return tuple(load(TABLE)["instruments"])


def _spec(instrument: str) -> dict[str, Any]:
    name = choice("instrument", instrument, instruments())
    return load(TABLE)["instruments"][name]


def _bands(instrument: str, bands: str | None) -> tuple[str, dict[str, Any]] | None:
    spec = _spec(instrument)
    table = load(TABLE)["acq_bands"] if spec.get("bands_ref") == "acq" else spec.get("bands")
    if table is None:
        if bands is not None:
            raise InvalidInput("bands", f"{instrument} has no category bands", "none")
        return None
    choices = tuple(k for k in table if k != "default")
    name = choice("bands", bands if bands is not None else table["default"], choices)
    return name, table[name]


@dataclass(frozen=True)
class ScoreResult:
    """A questionnaire total with its category, MID and basis."""

    instrument: str
    items: list[Decimal]
    score: Decimal
    category: str | None
    bands: str | None
    mid: Decimal
    mid_kind: str
    range: tuple[Decimal, Decimal]
    domains: dict[str, Decimal] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    rules: list[FiredRule] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "instrument": self.instrument,
            "score": self.score,
            "category": self.category,
            "bands": self.bands,
            "range": list(self.range),
            "mid": self.mid,
            "mid_kind": self.mid_kind,
            "items": self.items,
        }
        if self.domains:
            d["domains"] = self.domains
        d.update(self.extra)
        d["rules"] = [r.to_dict() for r in self.rules]
        d["warnings"] = list(self.warnings)
        return d


def _item_groups(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return spec.get("items") or spec["inputs"]


def _check_items(instrument: str, spec: dict[str, Any], items: Sequence[Any], integer: bool) -> list[Decimal]:
    groups = _item_groups(spec)
    expected = sum(g["count"] for g in groups)
    if len(items) != expected:
        raise InvalidInput(
            "items", f"{instrument} takes {expected} item responses, got {len(items)}", f"{expected} values"
        )
    out: list[Decimal] = []
    n = 0
    for g in groups:
        for _ in range(g["count"]):
            n += 1
            fld = f"item {n}"
            lo, hi = Decimal(g["min"]), Decimal(g["max"])
            v = number(fld, items[n - 1], lo, hi)
            if (integer or g.get("name") == "intensity") and v != v.to_integral_value():
                raise InvalidInput(fld, f"must be a whole number, got {v}", f"integers {lo}-{hi}")
            out.append(v)
    return out


def acq_fev1_item(fev1_percent_predicted: Any) -> tuple[int, FiredRule]:
    """ACQ-7 item 7 from pre-bronchodilator FEV1 % predicted (Juniper 1999 bands, half-open intervals)."""
    value = limits.check("fev1_pct_pred", fev1_percent_predicted, "fev1_percent_predicted")
    item = _spec("acq7")["fev1_item"]
    band = find_band(value, item["bands"])
    assert band is not None
    rule = fire(
        TABLE,
        item,
        "acq7_fev1_item",
        f"FEV1 {value} % predicted scores {band['score']} on ACQ item 7. {item['gap_rule']}",
    )
    return int(band["score"]), rule


def _categorise(
    instrument: str, value: Decimal, bands: str | None, rules: list[FiredRule]
) -> tuple[str | None, str | None]:
    chosen = _bands(instrument, bands)
    if chosen is None:
        return None, None
    name, table = chosen
    band = find_band(value, table["categories"])
    assert band is not None, f"{instrument} bands do not cover {value}"
    rules.append(fire(TABLE, table, f"{instrument}_bands_{name}", f"{value} -> {band['category']}"))
    return band["category"], name


def score(
    instrument: str,
    items: Sequence[Any],
    *,
    fev1_percent_predicted: Any = None,
    bands: str | None = None,
    age: Any = None,
) -> ScoreResult:
    """Score one questionnaire. ACQ-7 takes 7 items, or 6 items plus ``fev1_percent_predicted``. With ``age``
    (years) the result warns when the instrument or its MID was not validated at that age."""
    spec = _spec(instrument)
    years = None if age is None else age_years(age)
    rules = [fire(TABLE, spec, instrument, f"{spec['name']}: {spec['scoring']} of item responses")]
    items = list(items)
    extra: dict[str, Any] = {}
    if instrument == "acq7" and fev1_percent_predicted is not None:
        if len(items) != 6:
            raise InvalidInput(
                "items", f"acq7 with FEV1 % predicted takes 6 item responses, got {len(items)}", "6 values"
            )
        fev1_score, fev1_rule = acq_fev1_item(fev1_percent_predicted)
        items.append(fev1_score)
        rules.append(fev1_rule)
    elif fev1_percent_predicted is not None:
        raise InvalidInput("fev1_percent_predicted", f"only used by acq7, not {instrument}", "acq7")
    scorad = spec["scoring"] == "scorad"
    values = _check_items(instrument, spec, items, integer=not scorad)
    domains: dict[str, Decimal] = {}
    warnings: list[str] = []
    if spec["scoring"] == "sum":
        total = sum(values, Decimal(0))
    elif spec["scoring"] == "mean":
        exact = sum(values, Decimal(0)) / len(values)
        total = exact.quantize(MEAN_PLACES, rounding=ROUND_HALF_UP)
        start = 0
        for d in spec.get("domains", []):
            part = values[start : start + d["count"]]
            domains[d["domain"]] = (sum(part, Decimal(0)) / len(part)).quantize(MEAN_PLACES, ROUND_HALF_UP)
            start += d["count"]
        if domains:
            warnings.append(spec["item_order"])
    else:  # SCORAD = A/5 + 7B/2 + C
        a, b, c = values[0], sum(values[1:7], Decimal(0)), values[7] + values[8]
        objective = a / 5 + 7 * b / 2
        exact = total = objective + c
        extra = {"extent_a": a, "intensity_b": b, "subjective_c": c, "objective_scorad": objective}
    category, band_name = _categorise(instrument, exact if spec["scoring"] != "sum" else total, bands, rules)
    if category is None and spec.get("bands_note"):
        warnings.append(spec["bands_note"])
    if years is not None:
        warnings += [
            c["warning"] for c in spec.get("age_checks", []) if evaluate(c["when"], {"age_years": years})
        ]
    mid = spec["mid"]
    rules.append(
        fire(TABLE, mid, f"{instrument}_mid", f"minimal important difference {mid['value']} ({mid['kind']})")
    )
    return ScoreResult(
        instrument=instrument,
        items=values,
        score=total,
        category=category,
        bands=band_name,
        mid=Decimal(mid["value"]),
        mid_kind=mid["kind"],
        range=(Decimal(spec["range"][0]), Decimal(spec["range"][1])),
        domains=domains,
        extra=extra,
        rules=rules,
        warnings=warnings,
    )


@dataclass(frozen=True)
class ResponseResult:
    """Change between two visits, classified against the MID."""

    instrument: str
    before: Decimal
    after: Decimal
    change: Decimal
    percent_change: Decimal | None
    classification: str
    mid: Decimal
    mid_kind: str
    rule: FiredRule

    def to_dict(self) -> dict[str, Any]:
        return {
            "instrument": self.instrument,
            "before": self.before,
            "after": self.after,
            "change": self.change,
            "percent_change": self.percent_change,
            "classification": self.classification,
            "mid": self.mid,
            "mid_kind": self.mid_kind,
            "rules": [self.rule.to_dict()],
        }


def response(instrument: str, before: Any, after: Any) -> ResponseResult:
    """Classify the change from ``before`` to ``after``: ``improved``, ``worsened``, ``no-important-change``.

    Absolute MIDs (ACT 3, C-ACT 2, ACQ 0.5, AQLQ 0.5) apply in both directions, oriented by whether a higher
    score is better. SCORAD uses the percentage MIC of -35 % (Silverberg 2021); no MIC for worsening was
    found, so any other change is ``no-important-improvement``.
    """
    spec = _spec(instrument)
    lo, hi = Decimal(spec["range"][0]), Decimal(spec["range"][1])
    b = number("before", before, lo, hi)
    a = number("after", after, lo, hi)
    change = a - b
    mid = spec["mid"]
    m = Decimal(mid["value"])
    pct: Decimal | None = None
    if mid["kind"] == "percent":
        pct = None if b == 0 else (change / b * 100).quantize(Decimal("0.1"), ROUND_HALF_UP)
        exact_pct = None if b == 0 else change / b * 100
        improved = exact_pct is not None and exact_pct <= m
        classification = "improved" if improved else "no-important-improvement"
    else:
        gain = change if spec["higher_is_better"] else -change
        classification = "improved" if gain >= m else "worsened" if gain <= -m else "no-important-change"
    rule = fire(
        TABLE, mid, f"{instrument}_mid", f"change {change} against MID {m} ({mid['kind']}): {classification}"
    )
    return ResponseResult(instrument, b, a, change, pct, classification, m, mid["kind"], rule)
