"""The field-limit catalogue (`immunoplan.reference.limits`) and the clinical vocabularies of the core."""

from __future__ import annotations

import ast
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from immunoplan.clinical import vocabularies as voc
from immunoplan.errors import InvalidInput
from immunoplan.reference import limits, load
from immunoplan.validation import to_decimal

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "immunoplan"
CATALOGUE = limits.catalogue()
NAMES = sorted(CATALOGUE)
REQUIRED = [
    "age_years",
    "weight_kg",
    "height_cm",
    "total_ige_iu_ml",
    "sige_kua_l",
    "eosinophils_cells_ul",
    "eosinophils_10e9_l",
    "feno_ppb",
    "fev1_l",
    "fvc_l",
    "pef_l_min",
    "asthma_step",
    "dose_ml",
    "dose_sq_u",
    "omalizumab_dose_mg",
    "desensitization_dose_mg",
    "bag_volume_ml",
    "rate_ml_h",
    "step_minutes",
    "stock_mg_ml",
    "observed_minutes",
    "onset_minutes",
    "epinephrine_minutes",
    "interval_days",
    "maintenance_interval_weeks",
    "omalizumab_interval_weeks",
    "omalizumab_lead_weeks",
    "spo2_pct",
    "systolic_bp_mmhg",
    "heart_rate_bpm",
    "tryptase_ug_l",
    "medication_score",
]


def _step(lim: limits.FieldLimit) -> Decimal:
    return Decimal(1) if lim.integer else Decimal("0.000001")


def test_the_catalogue_has_every_required_field() -> None:
    assert not [n for n in REQUIRED if n not in CATALOGUE]


@pytest.mark.parametrize("name", NAMES)
def test_entry_is_well_formed(name: str) -> None:
    lim = CATALOGUE[name]
    assert lim.name == name
    assert lim.unit or lim.integer, f"{name}: a unit, or a count (integer)"
    assert lim.label, f"{name}: a human label"
    assert lim.low is not None and lim.high is not None, f"{name}: bounded on both sides"
    assert lim.low < lim.high


@pytest.mark.parametrize("name", NAMES)
def test_edges_are_accepted_or_refused_as_declared(name: str) -> None:
    lim = CATALOGUE[name]
    assert lim.low is not None and lim.high is not None
    for edge, inclusive, outside in (
        (lim.low, lim.low_inclusive, lim.low - _step(lim)),
        (lim.high, lim.high_inclusive, lim.high + _step(lim)),
    ):
        if inclusive:
            assert lim.check(str(edge)) == edge
        else:
            with pytest.raises(InvalidInput):
                lim.check(edge)
        with pytest.raises(InvalidInput) as exc:
            lim.check(outside)
        assert exc.value.field == name and exc.value.accepted == lim.accepted
        assert lim.unit in str(exc.value)


def test_accepted_text_names_the_range_and_unit() -> None:
    assert limits.limit("age_years").accepted == "[0, 120] years"
    assert limits.limit("weight_kg").accepted == "(0, 500] kg"
    assert limits.limit("dose_ml").accepted == "(0, 10] mL"
    assert limits.limit("asthma_step").accepted == "[1, 5]"
    with pytest.raises(InvalidInput) as exc:
        limits.check("weight_kg", "600")
    assert str(exc.value) == "weight_kg: 600 is above the accepted range (accepted: (0, 500] kg)"


def test_field_override_optional_and_integer() -> None:
    with pytest.raises(InvalidInput) as exc:
        limits.check("total_ige_iu_ml", "-1", "initial_ige_iu_ml")
    assert exc.value.field == "initial_ige_iu_ml"
    assert limits.check_optional("weight_kg", None) is None
    assert limits.check_optional("weight_kg", "  ") is None
    assert limits.check_optional("weight_kg", "70.5") == Decimal("70.5")
    assert limits.check("weight_kg", 70.1) == Decimal("70.1")  # floats via repr, exactly
    with pytest.raises(InvalidInput, match="whole number"):
        limits.check("asthma_step", "2.5")
    for bad in ("abc", "", True, None, float("nan"), float("inf"), "NaN", [1]):
        with pytest.raises(InvalidInput):
            limits.check("weight_kg", bad)
    with pytest.raises(KeyError, match="no field limit"):
        limits.limit("weight_g")


@pytest.mark.parametrize(
    "text",
    ["1e1000000", "1e9999999", "9" * 100000, "1" + "0" * 45, "0e-99999", "1E+400", "-1e-999", " 1 e 5"],
)
def test_hostile_text_is_refused_before_converting(text: str) -> None:
    # A quadratic conversion of these (int(Decimal("1e1000000")) takes ~27 s) would hang this test.
    with pytest.raises(InvalidInput):
        limits.check("dose_ml", text)
    with pytest.raises(InvalidInput):
        limits.check("asthma_step", text)  # integer check on a hostile exponent


def test_to_decimal_itself_refuses_hostile_input() -> None:
    for bad in ("1e1000000", "9" * 100000, Decimal("1e1000000"), Decimal("1e-1000000"), 10**100000):
        with pytest.raises(InvalidInput, match="not a plausible number"):
            to_decimal("x", bad)
    # ordinary numbers, including float extremes, still convert exactly
    assert to_decimal("x", " 0.5 ") == Decimal("0.5")
    assert to_decimal("x", 1e308) == Decimal("1E+308")
    assert to_decimal("x", 5e-324) == Decimal("5E-324")
    assert to_decimal("x", "1e300") == Decimal("1e300")


@settings(max_examples=300, deadline=None)
@given(data=st.data(), name=st.sampled_from(NAMES))
def test_any_in_range_value_round_trips(data: st.DataObject, name: str) -> None:
    lim = CATALOGUE[name]
    assert lim.low is not None and lim.high is not None
    if lim.integer:
        d = Decimal(data.draw(st.integers(int(lim.low), int(lim.high))))
    else:
        d = data.draw(st.decimals(min_value=lim.low, max_value=lim.high, places=4, allow_nan=False))
    if (d == lim.low and not lim.low_inclusive) or (d == lim.high and not lim.high_inclusive):
        return
    assert lim.check(d) == d
    assert lim.check(str(d)) == d
    assert lim.check(format(d, "f")) == d


def test_pydantic_field_has_the_bounds_and_the_unit() -> None:
    class Body(BaseModel):
        weight_kg: float | None = limits.limit("weight_kg").pydantic(None)
        age_years: float = limits.limit("age_years").pydantic()

    assert Body(age_years=120, weight_kg=500).weight_kg == 500
    for bad in ({"age_years": 121}, {"age_years": 30, "weight_kg": 0}, {"age_years": -1}):
        with pytest.raises(ValidationError):
            Body(**bad)
    schema = Body.model_json_schema()["properties"]
    assert schema["age_years"]["unit"] == "years" and schema["age_years"]["maximum"] == 120
    assert schema["weight_kg"]["description"] == "Body weight (kg)"


# ------------------------------------------------------------------ one value per concept, from one place
def test_field_limits_file_is_reference_data() -> None:
    d = load("field_limits")
    assert d["status"] == "UNVERIFIED"
    assert "not clinical thresholds" in d["source"] and "never dose" in d["source"]
    assert all(spec.get("note") for spec in d["limits"].values()), "each bound says where it comes from"
    kinds = load("registry_measurements")["kinds"]
    assert not set(d["limits"]) & set(kinds), "measurement kinds keep their bounds in registry_measurements"
    assert "patient" not in load("registry_measurements"), "patient limits live in field_limits only"


def test_related_units_share_one_bound() -> None:
    eos_ul, eos_l = limits.limit("eosinophils_cells_ul"), limits.limit("eosinophils_10e9_l")
    assert (eos_ul.low, eos_ul.high) == (eos_l.low * 1000, eos_l.high * 1000)  # type: ignore[operator]
    ratio, pct = limits.limit("fev1_fvc"), limits.limit("fev1_fvc_pct")
    assert (ratio.low, ratio.high) == (pct.low / 100, pct.high / 100)  # type: ignore[operator]
    assert limits.limit("fev1_l").high == limits.limit("fvc_l").high


def test_scit_bounds_follow_the_product_catalogue() -> None:
    products = load("scit_products")["products"].values()
    mi = [p["maintenance_interval_weeks"] for p in products]
    lim = limits.limit("maintenance_interval_weeks")
    assert (lim.low, lim.high) == (min(m["min"] for m in mi), max(m["max"] for m in mi))
    sq = [p for p in products if p["unit"] == "SQ-U"]
    strongest = max(Decimal(v["units_per_ml"]) for p in sq for v in p["vials"])
    assert limits.limit("dose_sq_u").high == limits.limit("dose_ml").high * strongest  # type: ignore[operator]


def test_registry_checks_use_the_catalogue() -> None:
    from immunoplan.registry import checks

    assert checks.patient_number("asthma_step", "3") == 3
    with pytest.raises(InvalidInput) as exc:
        checks.patient_number("age_years", "121")
    assert exc.value.accepted == limits.limit("age_years").accepted
    with pytest.raises(InvalidInput) as exc:
        checks.measurement("weight_kg", "0")
    assert exc.value.field == "value" and exc.value.accepted == "(0, 500] kg"


OWNED_ADAPTERS = ("cli/assess.py", "cli/omalizumab.py", "web/routes/assessment.py")
BOUND_KEYWORDS = {"ge", "gt", "le", "lt", "min", "max"}


def _is_catalogue_field(name: str) -> bool:
    """``weight_kg`` or a CLI spelling of a catalogue name (``age`` for ``age_years``, ``total_ige``)."""
    name = name.lstrip("-").replace("-", "_")
    return any(n == name or n.startswith(name + "_") for n in CATALOGUE)


def _numeric_bounds(path: Path) -> list[str]:
    """Hand-written numeric bounds for catalogue fields: ``name: float = Field(le=500)`` in a model, or a
    typer parameter ``name = typer.Option(..., "--flag", max=130)``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    named: list[tuple[str, ast.expr]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            named.append((node.target.id, node.value))
        elif (
            isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
        ):
            named.append((node.targets[0].id, node.value))
        elif isinstance(node, ast.FunctionDef):
            args = node.args.args[len(node.args.args) - len(node.args.defaults) :]
            named += [(a.arg, d) for a, d in zip(args, node.args.defaults, strict=True)]
    found = []
    for name, value in named:
        if not isinstance(value, ast.Call):
            continue
        flags = [a.value for a in value.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        if not any(_is_catalogue_field(n) for n in (name, *flags)):
            continue
        for kw in value.keywords:
            literal = kw.value.operand if isinstance(kw.value, ast.UnaryOp) else kw.value
            if (
                kw.arg in BOUND_KEYWORDS
                and isinstance(literal, ast.Constant)
                and isinstance(literal.value, (int, float))
                and not isinstance(literal.value, bool)
            ):
                found.append(f"{path.name}:{value.lineno} {name} {kw.arg}={literal.value}")
    return found


@pytest.mark.parametrize("rel", OWNED_ADAPTERS)
def test_adapters_declare_no_numeric_bound_of_their_own(rel: str) -> None:
    assert _numeric_bounds(SRC / rel) == []


def test_the_bound_detector_finds_a_hand_written_bound(tmp_path: Path) -> None:
    p = tmp_path / "m.py"
    p.write_text(
        "from pydantic import BaseModel, Field\nimport typer\n"
        "class In(BaseModel):\n    weight_kg: float = Field(gt=0, le=350)\n"
        "def cmd(age_years: float = typer.Option(..., max=130)) -> None: ...\n",
        encoding="utf-8",
    )
    assert len(_numeric_bounds(p)) == 3  # gt, le and max


# ------------------------------------------------------------------------------------------- vocabularies
def test_vocabularies_derived_from_the_reference_data() -> None:
    assert tuple(load("scit_adjustment")["local"]["rules"]) == voc.LOCAL_REACTION_SIZES
    assert voc.LOCAL_REACTIONS[0] == "none"
    assert voc.BROWN_SEVERITIES == ("mild", "moderate", "severe")
    when = {w for o in load("rdd_breakthrough")["options"] for w in o["when"].split(",")}
    assert when <= set(voc.BROWN_SEVERITIES)
    assert set(voc.premedication_symptoms()) <= set(voc.DESENSITIZATION_SYMPTOMS)
    assert set(voc.REACTION_SYMPTOMS) == set(load("grading_symptoms")["symptoms"])
    assert tuple(load("registry_measurements")["questionnaires"]) == voc.QUESTIONNAIRES
    assert voc.OMALIZUMAB_ADJUVANT_MODES == ("pre", "concurrent")


def test_the_engines_use_the_core_vocabularies() -> None:
    from immunoplan.clinical.desensitization import breakthrough
    from immunoplan.clinical.immunotherapy import adjustment
    from immunoplan.clinical.reactions import SCALES, findings

    assert breakthrough.SEVERITIES is voc.BROWN_SEVERITIES
    assert adjustment.LOCAL is voc.LOCAL_REACTIONS
    assert findings.BRONCHODILATOR is voc.BRONCHODILATOR_RESPONSES
    assert set(voc.SCIT_ADJUSTMENT_SCALES) <= set(SCALES)


@pytest.mark.parametrize(
    ("registry_name", "core_name"),
    [
        ("SEXES", "SEXES"),
        ("AGE_GROUPS", "AGE_GROUPS"),
        ("VISIT_CODES", "VISIT_CODES"),
        ("COURSE_KINDS", "COURSE_KINDS"),
        ("COURSE_STATUSES", "COURSE_STATUSES"),
        ("OMALIZUMAB_TIMINGS", "OMALIZUMAB_MODES"),
        ("INJECTION_PHASES", "INJECTION_PHASES"),
        ("REACTION_KINDS", "REACTION_KINDS"),
        ("QUESTIONNAIRES", "QUESTIONNAIRES"),
    ],
)
def test_registry_vocabularies_are_the_cores(registry_name: str, core_name: str) -> None:
    from immunoplan.registry import models

    assert tuple(getattr(models, registry_name)) == getattr(voc, core_name)
