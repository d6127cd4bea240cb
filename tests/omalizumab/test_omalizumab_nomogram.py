"""Nomogram builder: label agreement table, hyper-IgE unreachable (seed 003), reproducibility, CLI."""

from __future__ import annotations

import pytest

from immunoplan.clinical.omalizumab.nomogram import _agreement, label_cells
from immunoplan.services import omalizumab as svc


@pytest.fixture(scope="module")
def small_nomogram():
    return svc.build_nomogram(patients_per_cell=40, seed=1, extra_ige_iu_ml=(48_000,))


def test_cells_cover_the_us_grid_plus_extra_rows() -> None:
    cells = label_cells((48_000,))
    assert len(cells) == 28 + 4
    assert cells[0].ige_band == "≥30-100" and cells[0].weight_band == "30-60"


def test_agreement_table_shape_and_labels(small_nomogram) -> None:
    d = small_nomogram.to_dict()
    rows = d["rows"]
    assert len(rows) == 32
    labels = [r["label"] for r in rows[:28]]
    assert labels.count("DND") == 7 and labels[0] == "150q4" and labels[7] == "225q2"
    assert sum(d["agreement_counts"].values()) == 32
    # the model is built to reproduce the label's logic: most dosed cells agree exactly
    assert d["agreement_counts"].get("same", 0) >= 10
    for r in rows:
        if r["model"] != "unreachable":
            assert r["fraction_at_target"] >= 0.5
            assert r["model_dose_mg"] % 75 == 0
            assert r["model_interval_weeks"] == 2 or r["model_dose_mg"] <= 300


def test_hyper_ige_is_unreachable_within_600_mg_every_2_weeks(small_nomogram) -> None:
    hyper = [r.to_dict() for r in small_nomogram.rows if r.cell.ige_band == "48000"]
    assert len(hyper) == 4 and all(r["model"] == "unreachable" for r in hyper)
    assert any("extrapolate" in w for w in small_nomogram.warnings)


def test_reproducible_with_seed() -> None:
    a = svc.build_nomogram(patients_per_cell=20, seed=5, weeks=8).to_dict()
    b = svc.build_nomogram(patients_per_cell=20, seed=5, weeks=8).to_dict()
    assert a == b


@pytest.mark.parametrize(
    ("model", "label", "expected"),
    [
        ("150q4", "150q4", "same"),
        ("450q4", "225q2", "same mg per 4 weeks, other interval"),
        ("300q2", "225q2", "model higher"),
        ("225q4", "300q4", "model lower"),
        ("unreachable", "DND", "label do-not-dose; model unreachable"),
        ("450q2", "DND", "label do-not-dose; model doses"),
        ("unreachable", "300q2", "model unreachable"),
        ("unreachable", "-", "no label cell"),
    ],
)
def test_agreement_categories(model, label, expected) -> None:
    assert _agreement(model, label) == expected


def test_cli_nomogram_json(cli) -> None:
    r = cli(
        "omalizumab", "nomogram", "--patients-per-cell", "10", "--weeks", "8", "--extra-ige", "", "--json"
    )
    assert r.code == 0, r.stderr
    d = r.json
    assert len(d["rows"]) == 28 and d["settings"]["max_dose_mg"] == {
        "every 4 weeks": 300,
        "every 2 weeks": 600,
    }


@pytest.mark.parametrize(
    "bad", [["--fraction", "0"], ["--extra-ige", "abc"], ["--patients-per-cell", "1"], ["--model", "pk"]]
)
def test_cli_nomogram_bad_input(cli, bad) -> None:
    r = cli("omalizumab", "nomogram", *bad, "--json")
    assert r.code == 2 and r.stdout == ""


def test_only_every_4_weeks_leaves_high_ige_cells_unreachable(cli) -> None:
    r = cli(
        "omalizumab",
        "nomogram",
        "--patients-per-cell",
        "10",
        "--weeks",
        "8",
        "--extra-ige",
        "",
        "--intervals",
        "4",
        "--json",
    )
    assert r.code == 0, r.stderr
    rows = r.json["rows"]
    assert r.json["settings"]["intervals_weeks"] == [4]
    assert all(row["model_interval_weeks"] in (4, None) for row in rows)
    assert rows[-1]["model"] == "unreachable"  # >600-700 IU/mL, >90-150 kg needs more than 300 mg q4w
    assert cli("omalizumab", "nomogram", "--intervals", "3", "--json").code == 2
