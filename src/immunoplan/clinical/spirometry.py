"""Spirometry reference values: GLI Global 2022 (race-neutral, default; Bowerman et al. AJRCCM
2023;207:768-74) and GLI-2012 (Quanjer et al. ERJ 2012;40:1324-43) for FEV1, FVC and FEV1/FVC.

The coefficient and spline tables are not re-typed: L, M, S come from the MIT-licensed ``pyspiro`` library,
which interpolates the splines linearly between the quarter-year rows (as the GLI SAS macro and rspiro do).
From L, M, S: ``z = ((obs/M)^L - 1)/(L*S)``, ``LLN/ULN = M*(1 -/+ 1.645*L*S)^(1/L)``, ``%pred = 100*obs/M``.
Settings, limits and the ATS/ERS 2022 severity bands are data in ``reference/data/assess_spirometry.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any

from immunoplan.clinical.assess_rules import FiredRule, choice, find_band, fire, number
from immunoplan.errors import InvalidInput
from immunoplan.reference import limits, load

TABLE = "assess_spirometry"
EQUATIONS = ("gli-global-2022", "gli2012")
SEXES = ("male", "female")
MEASURES = ("fev1", "fvc", "fev1_fvc")
_PARAM = {"fev1": 1, "fvc": 2, "fev1_fvc": 3}  # pyspiro Parameters codes (FEV1, FVC, FEV1FVC)


@cache
def _reference(equation: str) -> Any:
    from pyspiro import BOWERMAN_2022, GLI_2012

    ref = BOWERMAN_2022() if equation == "gli-global-2022" else GLI_2012()
    ref.set_silence(True)
    return ref


def lms(
    equation: str, sex: str, age: float, height_cm: float, measure: str, ethnicity: int | None
) -> tuple[float, float, float]:
    """(L, M, S) of ``measure`` from pyspiro; ages must already be within the equation's range."""
    ref = _reference(equation)
    sex_code = 1 if sex == "male" else 0
    if equation == "gli2012":
        triple = ref.lms(sex_code, age, height_cm, ethnicity, _PARAM[measure], None)
    else:
        triple = ref.lms(sex_code, age, height_cm, _PARAM[measure], None)
    return float(triple[0]), float(triple[1]), float(triple[2])


def _dec(x: float, places: int) -> Decimal:
    return Decimal(repr(x)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class MeasureResult:
    measure: str
    observed: Decimal | None
    predicted: Decimal
    lln: Decimal
    uln: Decimal
    z: Decimal | None
    percent_predicted: Decimal | None
    interpretation: str | None
    lms: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "observed": self.observed,
            "predicted": self.predicted,
            "lln": self.lln,
            "uln": self.uln,
            "z": self.z,
            "percent_predicted": self.percent_predicted,
            "interpretation": self.interpretation,
            "lms": self.lms,
        }


@dataclass(frozen=True)
class SpirometryResult:
    equation: str
    inputs: dict[str, Any]
    measures: dict[str, MeasureResult]
    rules: list[FiredRule] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"equation": self.equation, "inputs": self.inputs}
        d.update({k: v.to_dict() for k, v in self.measures.items()})
        d["rules"] = [r.to_dict() for r in self.rules]
        d["warnings"] = list(self.warnings)
        return d


def _interpret(z: float, data: dict[str, Any]) -> str:
    if z > float(data["limits"]["uln_z"]):
        return "above-uln"
    band = find_band(Decimal(repr(z)), data["severity"]["categories"])
    assert band is not None
    return str(band["category"])


def spirometry(
    *,
    sex: str,
    age: Any,
    height_cm: Any,
    equation: str = "gli-global-2022",
    ethnicity: str | None = None,
    fev1_l: Any = None,
    fvc_l: Any = None,
    fev1_fvc: Any = None,
) -> SpirometryResult:
    """Predicted value, LLN, ULN, z-score and % predicted for each measure given (all three, predicted only,
    when none is given). ``fev1_fvc`` is a ratio (0-1], not a percentage."""
    data = load(TABLE)
    equation = choice("equation", equation, EQUATIONS)
    eq = data["equations"][equation]
    sex = choice("sex", sex, SEXES)
    lo, hi = (Decimal(x) for x in eq["age_range_years"])
    age_d = number("age_years", age, lo, hi, unit=f"years for {equation}")
    height = limits.check("height_cm", height_cm)  # plausibility (field limits), not GLI limits
    warnings: list[str] = []
    eth_code: int | None = None
    if eq["uses_ethnicity"]:
        if ethnicity is None:
            raise InvalidInput("ethnicity", "required for gli2012", ", ".join(eq["ethnicities"]))
        ethnicity = choice("ethnicity", ethnicity, tuple(eq["ethnicities"]))
        eth_code = int(eq["ethnicities"][ethnicity])
    elif ethnicity is not None:
        warnings.append(f"{eq['name']} is race-neutral: ethnicity {ethnicity!r} was ignored")
    observed = {
        "fev1": None if fev1_l is None else limits.check("fev1_l", fev1_l),
        "fvc": None if fvc_l is None else limits.check("fvc_l", fvc_l),
        "fev1_fvc": None if fev1_fvc is None else limits.check("fev1_fvc", fev1_fvc),
    }
    wanted = [m for m in MEASURES if observed[m] is not None] or list(MEASURES)
    places = data["display_places"]
    z_lln, z_uln = float(data["limits"]["lln_z"]), float(data["limits"]["uln_z"])
    results: dict[str, MeasureResult] = {}
    for m in wanted:
        L, M, S = lms(equation, sex, float(age_d), float(height), m, eth_code)
        lln = M * (1 + z_lln * L * S) ** (1 / L)
        uln = M * (1 + z_uln * L * S) ** (1 / L)
        vol = places["ratio" if m == "fev1_fvc" else "litres"]
        obs = observed[m]
        z = pct = interp = None
        if obs is not None:
            zf = ((float(obs) / M) ** L - 1) / (L * S)
            z, pct, interp = (
                _dec(zf, places["z"]),
                _dec(100 * float(obs) / M, places["percent"]),
                _interpret(zf, data),
            )
        results[m] = MeasureResult(
            m, obs, _dec(M, vol), _dec(lln, vol), _dec(uln, vol), z, pct, interp, {"L": L, "M": M, "S": S}
        )
    rules = [
        fire(TABLE, eq, equation, f"{eq['name']} ({eq['citation']}); {data['age_handling']}"),
        fire(
            TABLE,
            data["limits"],
            "lln_uln",
            f"LLN/ULN at z = {data['limits']['lln_z']}/{data['limits']['uln_z']}",
        ),
    ]
    if any(r.interpretation for r in results.values()):
        rules.append(fire(TABLE, data["severity"], "severity_ats_ers_2022", "z-score severity bands"))
    inputs = {
        "equation": equation,
        "sex": sex,
        "age_years": age_d,
        "height_cm": height,
        "ethnicity": ethnicity,
        "fev1_l": observed["fev1"],
        "fvc_l": observed["fvc"],
        "fev1_fvc": observed["fev1_fvc"],
    }
    return SpirometryResult(equation, inputs, results, rules, warnings)
