"""Label table lookups: every US asthma >=12 cell and band edge (golden:
the team's research note omalizumab_dosing.md section 1.1, three agreeing copies of the US label), the four
result kinds, overrides, injections."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from immunoplan.clinical.omalizumab import lookup_dose, split_injections
from immunoplan.clinical.omalizumab.tables import ResultKind
from immunoplan.errors import InvalidInput

# Golden grid as printed (rows IgE >=30-100 ... >600-700; columns 30-60, >60-70, >70-90, >90-150 kg).
US_GRID = [
    ["150q4", "150q4", "150q4", "300q4"],
    ["300q4", "300q4", "300q4", "225q2"],
    ["300q4", "225q2", "225q2", "300q2"],
    ["225q2", "225q2", "300q2", "DND"],
    ["300q2", "300q2", "375q2", "DND"],
    ["300q2", "375q2", "DND", "DND"],
    ["375q2", "DND", "DND", "DND"],
]
IGE_EDGES = [(30, 100), (100, 200), (200, 300), (300, 400), (400, 500), (500, 600), (600, 700)]
WT_EDGES = [(30, 60), (60, 70), (70, 90), (90, 150)]


def _points(edges: list[tuple[int, int]], i: int) -> list[Decimal]:
    lo, hi = edges[i]
    inner_low = Decimal(lo) if i == 0 else Decimal(lo) + Decimal("0.5")
    return [inner_low, (Decimal(lo) + Decimal(hi)) / 2, Decimal(hi)]


def _as_code(r) -> str:
    if r.status is ResultKind.DO_NOT_DOSE:
        return "DND"
    assert r.status is ResultKind.DOSE, r
    return f"{r.dose_mg}q{r.interval_weeks}"


@pytest.mark.parametrize("i", range(7))
@pytest.mark.parametrize("j", range(4))
def test_every_us_asthma_cell_at_its_edges_and_middle(i: int, j: int) -> None:
    for ige in _points(IGE_EDGES, i):
        for wt in _points(WT_EDGES, j):
            r = lookup_dose("asthma", "us", 30, wt, ige)
            assert _as_code(r) == US_GRID[i][j], (ige, wt)
            assert r.basis is not None and r.basis.status == "VERIFIED"
            assert r.table == {"id": "omalizumab_us_asthma_12plus", "version": r.table["version"]}


@pytest.mark.parametrize(
    ("ige", "wt", "expected"),
    [
        (100, 65, "150q4"),
        (101, 65, "300q4"),
        (Decimal("100.5"), 65, "300q4"),
        (250, 60, "300q4"),
        (250, Decimal("60.5"), "225q2"),
        (30, 30, "150q4"),
        (700, 30, "375q2"),
        (700, 150, "DND"),
        (200, 90, "300q4"),
        (200, Decimal("90.1"), "225q2"),
    ],
)
def test_band_edges_open_and_closed_as_printed(ige, wt, expected) -> None:
    assert _as_code(lookup_dose("asthma", "us", 12, wt, ige)) == expected


@pytest.mark.parametrize(
    ("ige", "wt"), [(29, 65), (701, 65), (250, 29), (250, Decimal("150.1")), (Decimal("29.9"), 65)]
)
def test_outside_table(ige, wt) -> None:
    r = lookup_dose("asthma", "us", 30, wt, ige)
    assert r.status is ResultKind.OUTSIDE_TABLE
    assert r.dose_mg is None and r.injections == []
    assert "insufficient data" in r.reason


def test_no_table_below_age_6_and_food_allergy_not_an_eu_indication() -> None:
    assert lookup_dose("asthma", "us", 5, 20, 200).status is ResultKind.OUTSIDE_TABLE
    assert lookup_dose("food-allergy", "eu", 10, 30, 200).status is ResultKind.OUTSIDE_TABLE
    assert lookup_dose("crswnp", "us", 17, 70, 200).status is ResultKind.OUTSIDE_TABLE


@pytest.mark.parametrize(
    ("indication", "region", "age"),
    [
        ("asthma", "us", 8),
        ("crswnp", "us", 40),
        ("food-allergy", "us", 5),
    ],
)
def test_unverified_tables_refuse_even_with_override(indication, region, age) -> None:
    r = lookup_dose(indication, region, age, 30, 250)
    assert r.status is ResultKind.UNVERIFIED_TABLE and r.dose_mg is None
    r2 = lookup_dose(indication, region, age, 30, 250, override_reason="checked the label PDF")
    assert r2.status is ResultKind.UNVERIFIED_TABLE and r2.dose_mg is None
    assert r2.override == {"reason": "checked the label PDF", "applied": False}


def test_pediatric_envelope_is_verified_so_outside_is_outside() -> None:
    assert lookup_dose("asthma", "us", 8, 30, 1301).status is ResultKind.OUTSIDE_TABLE
    assert lookup_dose("asthma", "us", 8, 19, 300).status is ResultKind.OUTSIDE_TABLE
    assert lookup_dose("asthma", "us", 8, 20, 1300).status is ResultKind.UNVERIFIED_TABLE


def test_eu_unverified_cell_needs_override_and_echoes_it() -> None:
    r = lookup_dose("asthma", "eu", 30, 65, 350)
    assert r.status is ResultKind.UNVERIFIED_TABLE and r.dose_mg is None
    r2 = lookup_dose("asthma", "eu", 30, 65, 350, override_reason="SmPC PDF checked by pharmacist")
    assert r2.status is ResultKind.DOSE and r2.dose_mg == 450 and r2.interval_weeks == 4
    assert r2.override == {"reason": "SmPC PDF checked by pharmacist", "applied": True}
    assert any("override" in w for w in r2.warnings)
    assert r2.basis is not None and r2.basis.status == "UNVERIFIED"
    blank = lookup_dose("asthma", "eu", 30, 65, 350, override_reason="   ")
    assert blank.status is ResultKind.UNVERIFIED_TABLE  # a whitespace-only reason is no override


def test_eu_secondary_rows_dose_without_override_and_unknown_cells_never_dose() -> None:
    r = lookup_dose("asthma", "eu", 30, 65, 150)
    assert r.status is ResultKind.DOSE and r.dose_mg == 300 and r.interval_weeks == 4
    assert r.basis is not None and r.basis.status == "SECONDARY"
    unknown = lookup_dose("asthma", "eu", 30, 100, 900, override_reason="x")
    assert unknown.status is ResultKind.UNVERIFIED_TABLE and unknown.dose_mg is None
    assert lookup_dose("asthma", "eu", 30, 20, 150).status is ResultKind.OUTSIDE_TABLE  # >20-25: 20 excluded
    assert lookup_dose("asthma", "eu", 30, 65, 1501).status is ResultKind.OUTSIDE_TABLE


def test_eu_low_ige_warning() -> None:
    assert any("76" in w for w in lookup_dose("asthma", "eu", 30, 65, 50).warnings)
    assert not any("76" in w for w in lookup_dose("asthma", "eu", 30, 65, 150).warnings)


def test_csu_fixed_dose() -> None:
    r = lookup_dose("csu", "us", 30, 65, 5000)
    assert r.status is ResultKind.DOSE and r.dose_mg == 300 and r.interval_weeks == 4
    assert lookup_dose("csu", "us", 30, 65, 5000, csu_dose_mg=150).dose_mg == 150
    with pytest.raises(InvalidInput):
        lookup_dose("csu", "us", 30, 65, 100, csu_dose_mg=225)
    assert lookup_dose("csu", "us", 11, 40, 100).status is ResultKind.OUTSIDE_TABLE


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("indication", {"indication": "eczema"}),
        ("region", {"region": "jp"}),
        ("age_years", {"age_years": -1}),
        ("weight_kg", {"weight_kg": 0}),
        ("weight_kg", {"weight_kg": "abc"}),
        ("total_ige_iu_ml", {"total_ige_iu_ml": float("nan")}),
        ("total_ige_iu_ml", {"total_ige_iu_ml": -3}),
    ],
)
def test_invalid_input_names_the_field(field, kwargs) -> None:
    args = {"indication": "asthma", "region": "us", "age_years": 30, "weight_kg": 65, "total_ige_iu_ml": 250}
    args.update(kwargs)
    with pytest.raises(InvalidInput) as exc:
        lookup_dose(**args)
    assert exc.value.field == field


@pytest.mark.parametrize(
    ("dose", "syringes"),
    [
        (75, [75]),
        (150, [150]),
        (225, [150, 75]),
        (300, [150, 150]),
        (375, [150, 150, 75]),
        (450, [150, 150, 150]),
        (525, [150, 150, 150, 75]),
        (600, [150, 150, 150, 150]),
    ],
)
def test_syringe_split_matches_eu_conversion_table(dose, syringes) -> None:
    assert [i.syringe_mg for i in split_injections(dose)] == syringes


@settings(max_examples=200, deadline=None)
@given(
    ige=st.decimals(min_value=30, max_value=700, places=1),
    wt=st.decimals(min_value=30, max_value=150, places=1),
    age=st.integers(12, 90),
)
def test_in_envelope_us_answers_are_dose_or_dnd_and_split_is_exact(ige, wt, age) -> None:
    r = lookup_dose("asthma", "us", age, wt, ige)
    assert r.status in (ResultKind.DOSE, ResultKind.DO_NOT_DOSE)
    if r.status is ResultKind.DOSE:
        assert sum(r.injections) == r.dose_mg
        assert all(s <= 150 for s in r.injections)
        assert r.interval_weeks in (2, 4)
        assert Decimal(150) <= r.dose_mg <= Decimal(375)


@settings(max_examples=100, deadline=None)
@given(ige=st.decimals(min_value=30, max_value=700, places=0), wt=st.decimals(min_value=30, max_value=149))
def test_monotone_in_weight_per_4_weeks(ige, wt) -> None:
    """Heavier patients never get less drug per 4 weeks (a property of the printed table)."""
    a, b = lookup_dose("asthma", "us", 30, wt, ige), lookup_dose("asthma", "us", 30, wt + 1, ige)
    if a.status is ResultKind.DOSE and b.status is ResultKind.DOSE:
        assert b.dose_mg * 4 / b.interval_weeks >= a.dose_mg * 4 / a.interval_weeks
    if a.status is ResultKind.DO_NOT_DOSE:
        assert b.status is ResultKind.DO_NOT_DOSE


@settings(max_examples=150, deadline=None)
@given(
    indication=st.sampled_from(["asthma", "crswnp", "food-allergy", "csu"]),
    region=st.sampled_from(["us", "eu"]),
    age=st.integers(0, 90),
    wt=st.decimals(min_value=5, max_value=200, places=1),
    ige=st.decimals(min_value=5, max_value=3000, places=0),
)
def test_unverified_data_never_doses_without_override(indication, region, age, wt, ige) -> None:
    r = lookup_dose(indication, region, age, wt, ige)
    if r.status is ResultKind.DOSE:
        assert r.basis is not None and r.basis.status != "UNVERIFIED"
        assert r.override is None
    else:
        assert r.dose_mg is None and r.injections == []
