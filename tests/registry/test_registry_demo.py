"""Demo cohorts: summary statistics within tolerance of seed 001 Tables 1-5 and seed 000's counts/patterns."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import select

from immunoplan.errors import InvalidInput
from immunoplan.reference import load
from immunoplan.registry import models as m
from immunoplan.registry.db import open_registry
from immunoplan.synthetic import create_demo

CAL = load("registry_demo_calibration")
T1 = CAL["seed001"]["table1"]
OUTCOMES = CAL["seed001"]["outcomes"]
VISITS = list(CAL["seed001"]["visits"])


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    reg = open_registry(tmp_path_factory.mktemp("demo") / "demo.sqlite")
    summary = create_demo(reg, seed=7)
    with reg.engine.connect() as conn:
        frames = {
            t: pd.read_sql_table(t, conn)
            for t in (
                "patients",
                "visits",
                "measurements",
                "questionnaires",
                "reactions",
                "courses",
                "risk_assessments",
                "injections",
                "omalizumab_administrations",
            )
        }
    yield summary, frames, reg
    reg.dispose()


def _within(mean, sd, target_mean, target_sd, *, rel=0.05, abs_tol=0.0):
    assert abs(mean - target_mean) <= rel * target_sd + abs_tol, (mean, target_mean)
    assert abs(sd - target_sd) <= rel * target_sd + abs_tol, (sd, target_sd)


def test_cohort_sizes(demo):
    summary, f, _ = demo
    p = f["patients"]
    assert summary["cohorts"] == {"seed001": 37, "seed000": 202}
    assert p[p.cohort == "seed001"].study_group.value_counts().to_dict() == {"Omb+SCIT": 19, "SCIT": 18}
    assert p[p.cohort == "seed000"].study_group.value_counts().to_dict() == {"RIT": 133, "RIT+Omb-pre": 69}


@pytest.mark.parametrize("group", ["SCIT", "Omb+SCIT"])
def test_seed001_table1(demo, group):
    _, f, _ = demo
    p = f["patients"]
    g = p[(p.cohort == "seed001") & (p.study_group == group)]
    t = T1[group]
    _within(g.age_years.mean(), g.age_years.std(), *t["age"], abs_tol=0.5)
    assert (g.sex == "male").sum() == t["male"] and (g.sex == "female").sum() == t["female"]
    w = f["measurements"]
    wt = w[w.kind == "weight_kg"].set_index("patient_id").value
    bmi = wt.loc[g.id].to_numpy() / (g.height_cm.to_numpy() / 100) ** 2
    _within(bmi.mean(), bmi.std(ddof=1), *t["bmi"], abs_tol=0.05)
    assert (bmi < 24.9).sum() == t["bmi_normal"]
    assert ((bmi >= 25) & (bmi < 30)).sum() == t["bmi_overweight"]
    assert (bmi >= 30).sum() == t["bmi_obese"]
    assert g.smoking.value_counts().to_dict() == {k: t[k] for k in ("never", "former", "current")}
    for flag in ("family_history_asthma", "comorbid_allergies", "previous_biologics"):
        assert int(g[flag].sum()) == t[flag]


def _long(f):
    """(group, visit, name) -> values, from questionnaires and measurements joined to visits."""
    p = f["patients"].set_index("id")
    v = f["visits"].set_index("id")
    q = f["questionnaires"].rename(columns={"instrument": "name", "score": "value"})
    ms = f["measurements"].rename(columns={"kind": "name"})
    both = pd.concat(
        [q[["patient_id", "visit_id", "name", "value"]], ms[["patient_id", "visit_id", "name", "value"]]]
    )
    both["group"] = p.loc[both.patient_id, "study_group"].to_numpy()
    both["cohort"] = p.loc[both.patient_id, "cohort"].to_numpy()
    both["visit"] = v.loc[both.visit_id, "code"].to_numpy()
    return both[both.cohort == "seed001"]


@pytest.mark.parametrize("name", list(OUTCOMES))
def test_seed001_tables_2_to_4_means_and_sds(demo, name):
    _, f, _ = demo
    data = _long(f)
    spec = OUTCOMES[name]
    unit = 10.0 ** -spec["decimals"]
    for group in ("SCIT", "Omb+SCIT"):
        for vi, visit in enumerate(VISITS):
            x = data[(data.group == group) & (data.visit == visit) & (data.name == name)].value
            assert len(x) == CAL["seed001"]["groups"][group]["n"]
            _within(x.mean(), x.std(ddof=1), *spec[group][vi], abs_tol=unit)


def test_seed001_table5_reactions(demo):
    _, f, _ = demo
    r = f["reactions"].merge(f["visits"][["id", "code"]], left_on="visit_id", right_on="id", how="left")
    p = f["patients"].set_index("id")
    r["group"] = p.loc[r.patient_id, "study_group"].to_numpy()
    r = r[r.scale == "seed001"]
    t5 = CAL["seed001"]["table5"]
    for code in ("week12", "week24", "week48"):
        for cls, counts in t5[code].items():
            for gi, group in enumerate(t5["order"]):
                sel = r[(r.code == code) & (r.grade == cls) & (r.group == group)]
                assert sel.patient_id.nunique() == counts[gi], (code, cls, group)
    assert (r.minutes_after_dose >= 0).all() and r.injection_id.notna().all()


def _seed000(f):
    p = f["patients"]
    p = p[p.cohort == "seed000"].set_index("id")
    ra = f["risk_assessments"].set_index("patient_id")
    c = f["courses"].set_index("patient_id")
    sr_patients = set(f["reactions"][f["reactions"].scale == "wao2010"].patient_id)
    df = pd.DataFrame(
        {
            "group": p.study_group,
            "age_group": p.age_group,
            "grade_high": ra.loc[p.index, "sige_class"].to_numpy() >= 3,
            "ratio_high": ra.loc[p.index, "sige_total_ratio_pct"].to_numpy() >= 10,
            "ratio_gt16": ra.loc[p.index, "sige_total_ratio_pct"].to_numpy() > 16,
            "completed": c.loc[p.index, "target_reached"].astype(bool).to_numpy(),
        },
        index=p.index,
    )
    df["sr"] = df.index.isin(sr_patients)
    return df


def test_seed000_patterns(demo):
    _, f, _ = demo
    d = _seed000(f)
    rate = lambda sel: d[sel].sr.mean()  # noqa: E731
    assert rate(d.age_group != "adult") > rate(d.age_group == "adult")
    assert rate(d.grade_high) > rate(~d.grade_high)
    assert rate(d.ratio_high) > rate(~d.ratio_high)
    assert rate(d.group == "RIT+Omb-pre") < rate(d.group == "RIT")
    high = d.grade_high & d.ratio_high
    low = ~d.grade_high & ~d.ratio_high
    assert rate(high & (d.group == "RIT+Omb-pre")) < 0.6 * rate(high & (d.group == "RIT"))
    assert abs(rate(low & (d.group == "RIT+Omb-pre")) - rate(low & (d.group == "RIT"))) < 0.15
    assert d[d.group == "RIT+Omb-pre"].completed.mean() > d[d.group == "RIT"].completed.mean()
    r = f["reactions"]
    assert set(r[r.scale == "wao2010"].grade) <= {"1", "2"}  # no grade >= 3 SR (seed 000)


def test_seed000_one_year_outcomes(demo):
    _, f, _ = demo
    d = _seed000(f)
    q = f["questionnaires"].merge(f["visits"][["id", "code"]], left_on="visit_id", right_on="id")
    acq = q.pivot_table(index="patient_id", columns="code", values="score").loc[d.index]
    d["acq_gain"] = acq["baseline"] - acq["month12"]
    v = f["visits"].pivot_table(index="patient_id", columns="code", values="medication_score").loc[d.index]
    d["med_gain"] = v["baseline"] - v["month12"]
    for col in ("acq_gain", "med_gain"):
        assert d[d.ratio_gt16][col].mean() > d[~d.ratio_gt16][col].mean()
        assert d[d.age_group != "adult"][col].mean() > d[d.age_group == "adult"][col].mean()


def test_omalizumab_doses_come_from_the_label_service(demo):
    _, f, _ = demo
    om = f["omalizumab_administrations"]
    p = f["patients"].set_index("id")
    assert set(p.loc[om.patient_id, "study_group"]) <= {"Omb+SCIT", "RIT+Omb-pre"}
    assert om.basis.map(lambda b: b[0]["id"].startswith("omalizumab_us_asthma")).all()


def test_demo_refuses_a_registry_that_already_has_it(demo):
    _, _, reg = demo
    with pytest.raises(InvalidInput, match="already holds"):
        create_demo(reg, seed=1)


def test_demo_is_audited_as_bulk_inserts(demo):
    _, _, reg = demo
    with reg.session() as s:
        rows = s.scalars(select(m.AuditEntry).where(m.AuditEntry.action == "bulk_insert")).all()
    assert {r.table_name for r in rows} >= {"patients", "injections", "reactions"}
    assert all(r.actor == "demo" and r.after["seed"] == 7 for r in rows)


@pytest.mark.postgres
def test_demo_on_postgres_then_ordinary_inserts_continue(pg_url):
    from immunoplan.services import records as rec

    reg = open_registry(pg_url)
    summary = create_demo(reg, seed=3, patients=20)
    assert summary["rows"]["patients"] == 57
    # explicit ids were used for the bulk load: the sequences must have moved past them
    p = rec.register_patient(reg, "t", pseudo_id="AFTER-DEMO", sex="female")
    assert p["id"] == 58
    with reg.session() as s:
        inj = s.scalar(select(m.Injection).where(m.Injection.sequence == 15))
        assert inj.dose == 100000 and str(inj.volume_ml) == "1.0"
    reg.dispose()


def test_clinic_list_has_due_and_late_injections(tmp_path):
    from datetime import date

    from immunoplan.services.records import list_due_injections

    reg = open_registry(tmp_path / "clinic.sqlite")
    create_demo(reg, seed=5, patients=2, today=date(2026, 3, 2), clinic=True)
    due = list_due_injections(reg, as_of="2026-03-02", window_days=7)
    assert {d["status"] for d in due} == {"due", "late"}
    assert all(d["pseudo_id"].startswith("CLINIC-") for d in due)
    reg.dispose()
