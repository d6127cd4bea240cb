"""The `immunoplan desensitization` CLI contract, re-planning and bad input (exit 2, one line)."""

from __future__ import annotations

import pytest

BASE = [
    "desensitization",
    "--drug",
    "ceftazidime",
    "--dose-mg",
    "2000",
    "--bag-volume-ml",
    "250",
    "--final-rate-ml-h",
    "80",
]


def test_json_contract(cli) -> None:
    r = cli(*BASE, "--bags", "3", "--start", "09:00", "--json")
    assert r.code == 0, r.stderr
    d = r.json
    assert set(d["bags"][0]) >= {
        "bag",
        "dilution",
        "volume_ml",
        "concentration_mg_ml",
        "mg_in_bag",
        "volume_infused_ml",
    }
    assert set(d["steps"][0]) >= {
        "step",
        "bag",
        "rate_ml_h",
        "minutes",
        "volume_ml",
        "dose_mg",
        "cumulative_mg",
    }
    assert d["total_minutes"] == 339.375
    assert d["steps"][-1]["cumulative_mg"] == 2000
    assert d["steps"][8]["dose_mg"] == 19.8426
    assert d["bags"][2]["concentration_mg_ml"] == 7.93704
    assert d["steps"][11]["start_clock"] == "11:45" and d["end_clock"] == "14:39"
    assert d["kind"] == "plan" and d["basis"]
    assert d["totals"] == {"dose_mg": 2000, "volume_ml": 278, "minutes": 339.375, "steps": 12}


def test_dilution_bag_volume_and_human_output(cli) -> None:
    r = cli(*BASE, "--dilution-bag-volume-ml", "50", "--json")
    assert r.code == 0
    assert [b["volume_ml"] for b in r.json["bags"]] == [50, 50, 250]
    h = cli(*BASE, "--stock-mg-ml", "100")
    assert h.code == 0 and "total_minutes: 339.375" in h.stdout and "Preparation" in h.stdout


def test_four_bags_needs_override_then_records_it(cli) -> None:
    r = cli(*BASE, "--bags", "4", "--json")
    assert r.code == 0 and r.json["kind"] == "needs-override" and r.json["dosing_allowed"] is False
    r = cli(*BASE, "--bags", "4", "--override-unverified", "prior BTR at step 12", "--json")
    assert r.json["kind"] == "plan" and r.json["override"]["reason"] == "prior BTR at step 12"
    assert len(r.json["steps"]) == 16


def test_replan_mild_resumes_one_step_back(cli) -> None:
    r = cli(*BASE, "--reaction-step", "10", "--severity", "mild", "--minutes-into-step", "5", "--json")
    assert r.code == 0, r.stderr
    rp = r.json["replan"]
    assert "resume-steps-back" in rp["applied"]
    assert rp["resumption"]["restart_at_step"] == 9
    # restarting inside the final bag adds no drug: the final bag is still emptied exactly once
    assert rp["resumption"]["excess_over_target_mg"] == 0
    unverified = [o for o in rp["options"] if o["basis"]["status"] == "UNVERIFIED"]
    assert unverified and all(o["clinician_choice_only"] and not o["applied"] for o in unverified)


def test_replan_next_premedication_follows_symptoms(cli) -> None:
    r = cli(
        *BASE,
        "--reaction-step",
        "6",
        "--severity",
        "mild",
        "--reaction-symptom",
        "flushing",
        "--reaction-symptom",
        "wheeze",
        "--json",
    )
    drugs = [i["drug"] for i in r.json["replan"]["next_premedication"]]
    assert drugs == ["aspirin", "montelukast"]
    r = cli(*BASE, "--reaction-step", "6", "--severity", "mild", "--reaction-symptom", "urticaria", "--json")
    assert r.json["replan"]["next_premedication"] == []


def test_replan_clinician_choices_are_recorded(cli) -> None:
    r = cli(*BASE, "--reaction-step", "11", "--severity", "moderate", "--choose", "next-add-step", "--json")
    rp = r.json["replan"]
    assert rp["chosen"] == "next-add-step" and len(rp["next_course"]["steps"]) == 13
    assert rp["next_course"]["steps"][-1]["cumulative_mg"] == 2000
    assert any("UNVERIFIED" in w for w in rp["warnings"])
    r = cli(
        *BASE,
        "--reaction-step",
        "12",
        "--severity",
        "mild",
        "--minutes-into-step",
        "60",
        "--choose",
        "slow-final-step",
        "--json",
    )
    res = r.json["replan"]["resumption"]
    assert res["steps"][-1]["rate_ml_h"] == 40 and res["total_dose_mg"] == 2000
    r = cli(*BASE, "--reaction-step", "3", "--severity", "mild", "--choose", "next-add-bag", "--json")
    assert r.json["replan"]["next_course"]["kind"] == "needs-override"


def test_replan_severe_stops(cli) -> None:
    r = cli(*BASE, "--reaction-step", "12", "--severity", "severe", "--json")
    rp = r.json["replan"]
    assert rp["applied"][0] == "stop" and rp["resumption"] is None


def test_sheet_pdf_and_html(cli, tmp_path) -> None:
    pdf = tmp_path / "s.pdf"
    r = cli(
        *BASE,
        "--start",
        "08:30",
        "--stock-mg-ml",
        "100",
        "--premedication",
        "uptodate-platinum",
        "--sheet",
        str(pdf),
        "--json",
    )
    assert r.code == 0, r.stderr
    assert pdf.read_bytes()[:5] == b"%PDF-"
    html = tmp_path / "s.html"
    r = cli(*BASE, "--sheet", str(html), "--page-size", "Letter", "--json")
    text = html.read_text()
    assert "size: Letter" in text and "1845.3618" in text and "7.93704" in text


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--dose-mg", "0"], "dose_mg"),
        (["--dose-mg", "abc"], "dose_mg"),
        (["--final-rate-ml-h", "0"], "final_rate_ml_h"),
        (["--bags", "7"], "bags"),
        (["--bag-volume-ml", "10", "--dilution-bag-volume-ml", "250"], "bag_volume_ml"),
        (["--dilution-bag-volume-ml", "5"], "dilution_bag_volume_ml"),
        (["--start", "25:99"], "start"),
        (["--stock-mg-ml", "0.001"], "stock_mg_ml"),
        (["--premedication", "nope"], "premedication"),
        (["--reaction-step", "13", "--severity", "mild"], "reaction_step"),
        (["--reaction-step", "3"], "--severity"),
        (["--reaction-step", "3", "--severity", "mild", "--choose", "slow-final-step"], "chosen"),
        (["--reaction-step", "12", "--severity", "mild"], "minutes_into_step"),
        (["--sheet", "/nonexistent-dir/x.pdf"], "sheet"),
        (["--sheet", "x.docx"], "sheet"),
    ],
)
def test_bad_input_exit_2_one_line(cli, args, field) -> None:
    r = cli(*BASE, *args, "--json")
    assert r.code == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and field in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(("size", "points"), [("A4", (595, 842)), ("Letter", (612, 792))])
def test_sheet_page_size_and_text(tmp_path, size, points) -> None:
    """The PDF pages have the requested paper size and carry the plan's numbers as text."""
    import pypdfium2 as pdfium  # a test dependency (pyproject [test]): missing is a broken setup, not a skip

    from immunoplan.services.protocols import plan_desensitization
    from immunoplan.sheets import write_sheet

    r = plan_desensitization(
        drug="ceftazidime", dose_mg=2000, bag_volume_ml=250, final_rate_ml_h=80, start="09:00"
    )
    path = write_sheet(tmp_path / "s.pdf", "rdd", r.to_dict(), page_size=size)
    doc = pdfium.PdfDocument(str(path))
    w, h = doc[0].get_size()
    assert (round(w), round(h)) == points
    text = "".join(doc[i].get_textpage().get_text_range() for i in range(len(doc)))
    assert "7.93704" in text and "1845.3618" in text and "14:39" in text
