"""Registry loader, figures and the `immunoplan report` command end to end on a small registry."""

from __future__ import annotations

import hashlib

import pytest
from markupsafe import escape

from immunoplan.analysis import figures
from immunoplan.analysis.report import methods_paragraph, parse_formats
from immunoplan.analysis.stats import TESTS
from immunoplan.analysis.tables import all_tables
from immunoplan.errors import InvalidInput
from immunoplan.services.analysis import load_cohort


def test_registry_round_trip(registry_file, small_cohort):
    data = load_cohort(str(registry_file))
    assert data.cohorts() == ["clinic", "seed000", "seed001"]
    one = load_cohort(str(registry_file), "seed001")
    assert len(one.patients) == 24 and one.groups == ["SCIT", "Omb+SCIT"]
    assert set(one.outcomes["measure"]) >= {"act", "acq", "aqlq", "fev1_pct_pred", "medication_score"}
    assert one.patients["bmi_kg_m2"].notna().all()
    assert one.patients["follow_up_days"].max() > 0
    assert set(one.reactions["kind"]) <= {"local", "systemic"}
    seed0 = data.select("seed000")
    assert seed0.groups == ["RIT", "RIT+Omb-pre"]
    assert seed0.patients["omalizumab"].sum() == 15
    with pytest.raises(InvalidInput):
        load_cohort(str(registry_file), "nope")
    with pytest.raises(InvalidInput):
        load_cohort(str(registry_file.parent / "missing.sqlite"))


def test_figures_are_deterministic(small_cohort, tmp_path):
    """Two independent builds of the forest plot and the KM figure give identical PNG and SVG bytes."""
    strat = next(t for t in all_tables(small_cohort) if t.id == "stratified")
    files = []
    for run in ("a", "b"):
        paths = figures.save(figures.forest(strat), tmp_path / run, "forest")
        fig, logrank = figures.km(small_cohort)
        paths += figures.save(fig, tmp_path / run, "km")
        files.append([hashlib.sha256(p.read_bytes()).hexdigest() for p in paths])
    assert files[0] == files[1]
    assert logrank.test == "log-rank" and 0 <= logrank.p <= 1
    svg = (tmp_path / "a" / "km.svg").read_text()
    assert "<dc:date>" not in svg and "Matplotlib v" not in svg


def test_methods_paragraph_names_tests():
    text = methods_paragraph(["student", "fisher", "rm-anova-gg"])
    assert TESTS["student"] in text and "Greenhouse-Geisser" in text and TESTS["welch"] not in text


def test_parse_formats():
    assert parse_formats("pdf, html") == ["html", "pdf"]
    with pytest.raises(InvalidInput):
        parse_formats("html,docx")


@pytest.mark.slow
def test_cli_report_pdf_load_cohort(cli, registry_file, tmp_path):
    import pypdfium2
    from openpyxl import load_workbook

    out = tmp_path / "rep"
    r = cli("report", "--db", registry_file, "--out", out, "--json")
    assert r.code == 0, r.stderr
    d = r.json
    assert [c["name"] for c in d["cohorts"]] == ["seed000", "seed001"]
    assert d["skipped_cohorts"] == ["clinic"]
    assert {"table1", "table5", "stratified", "repeated"} <= set(d["cohorts"][1]["tables"])
    assert {"figure1", "km"} <= set(d["cohorts"][0]["figures"])
    pdf = pypdfium2.PdfDocument(str(out / "report.pdf"))
    assert len(pdf) >= 4
    text = pdf[0].get_textpage().get_text_range()
    assert "Methods" in text and "Shapiro-Wilk" in text
    assert (out / "figures" / "seed001-figure1.svg").exists()
    html = (out / "report.html").read_text()
    for t in d["tests"]:
        assert escape(TESTS[t]) in html  # the methods paragraph names every test used
    assert "statsmodels" in html and "figures/seed000-km.png" in html
    sheets = load_workbook(out / "tables.xlsx").sheetnames
    assert len(sheets) == sum(len(c["tables"]) for c in d["cohorts"]) and "seed001-table1" in sheets


def test_report_one_cohort_html_progress_stages(registry_file, tmp_path):
    from immunoplan.services.analysis import cohort_report

    steps: list[str] = []
    totals: list[int] = []
    res = cohort_report(
        registry_file, tmp_path / "r", "seed001", "html", step=steps.append, stages=totals.append
    )
    assert [s.name for s in res.sections] == ["seed001"]
    assert res.files[-1].name == "report.html"
    assert totals == [len(steps)]  # the progress bar's total matches the stages reported
    assert steps[0] == "loading registry" and steps[-1] == "report.html"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--cohort", "nope"], "cohort"),
        (["--format", "docx"], "--format"),
    ],
)
def test_cli_report_bad_input(cli, registry_file, tmp_path, args, field):
    r = cli("report", "--db", registry_file, "--out", tmp_path / "o", *args, "--json")
    assert r.code == 2 and r.stdout == "" and f"error: {field}" in r.stderr
    assert r.stderr.count("\n") == 1


def test_cli_report_missing_db_and_out_is_file(cli, tmp_path):
    r = cli("report", "--db", tmp_path / "missing.sqlite", "--out", tmp_path / "o", "--json")
    assert r.code == 2 and "error: db" in r.stderr
    assert not (tmp_path / "missing.sqlite").exists()
