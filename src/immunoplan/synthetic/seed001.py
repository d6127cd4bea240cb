"""Seed 001 demo cohort: 37 adults, SCIT vs Omb+SCIT, Tables 1-5 matched (see docs/demo-cohorts.md)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np

from immunoplan.reference import basis
from immunoplan.synthetic.fitting import fit, fit_bounded, flags, mean_sd
from immunoplan.synthetic.rows import (
    add_injection,
    add_measurement,
    add_omalizumab_doses,
    add_patient,
    add_questionnaire,
    add_visit,
    calibration,
    graded,
    label_dose,
    limits,
    utc_at,
)
from immunoplan.synthetic.writer import Writer


def write(w: Writer, rng: np.random.Generator, actor: str) -> int:
    cal = calibration()
    c1, syn = cal["seed001"], cal["seed001_synthetic"]
    visits = c1["visits"]
    bb = [basis("registry_demo_calibration", "seed001").to_dict()]
    start0 = date.fromisoformat(syn["enrolment_from"])
    n_total = 0
    for group, g in c1["groups"].items():
        n, t1 = g["n"], c1["table1"][group]
        ages = np.rint(fit(rng.normal(size=n), *mean_sd(t1["age"]), 18, 65)).astype(int)
        sex = np.array(["male"] * t1["male"] + ["female"] * t1["female"], dtype=object)
        rng.shuffle(sex)
        cats = np.array(
            ["normal"] * t1["bmi_normal"]
            + ["overweight"] * t1["bmi_overweight"]
            + ["obese"] * t1["bmi_obese"],
            dtype=object,
        )
        rng.shuffle(cats)
        bounds = [tuple(syn["bmi_bounds"][c]) for c in cats]
        mid = np.array([(lo + hi) / 2 for lo, hi in bounds]) + rng.normal(0, 0.8, n)
        bmi = fit_bounded(mid, *mean_sd(t1["bmi"]), bounds)
        height = np.array([rng.normal(*syn["height_cm"][s]) for s in sex]).round(1)
        weight = (bmi * (height / 100) ** 2).round(1)
        smoking = np.array(
            ["never"] * t1["never"] + ["former"] * t1["former"] + ["current"] * t1["current"], dtype=object
        )
        rng.shuffle(smoking)
        treated: list[dict[str, Any]] = []
        fam, com, bio = (
            flags(n, t1[k], rng)
            for k in ("family_history_asthma", "comorbid_allergies", "previous_biologics")
        )
        # outcome trajectories: correlated within patient, fitted to each visit's mean and SD
        values: dict[str, np.ndarray] = {}
        rho = syn["visit_correlation"]
        for name, spec in c1["outcomes"].items():
            u = rng.normal(size=n)
            low, high = limits(name)
            cols = []
            for vi in range(len(visits)):
                x0 = rho * u + np.sqrt(1 - rho**2) * rng.normal(size=n)
                cols.append(np.round(fit(x0, *mean_sd(spec[group][vi]), low, high), spec["decimals"]))
            values[name] = np.array(cols).T  # patients x visits
        for i in range(n):
            n_total += 1
            pid = f"S001-{n_total:03d}"
            start = start0 + timedelta(days=int(rng.integers(0, syn["enrolment_days"])))
            birth = start - timedelta(days=int(ages[i]) * 365 + int(rng.integers(0, 365)))
            p_id = add_patient(
                w,
                pid,
                f"Demo patient {pid}",
                birth,
                int(ages[i]),
                "adult",
                sex[i],
                4,
                c1["cohort"],
                group,
                start,
                height_cm=float(height[i]),
                smoking=smoking[i],
                family_history_asthma=bool(fam[i]),
                comorbid_allergies=bool(com[i]),
                previous_biologics=bool(bio[i]),
            )
            ige0 = float(values["total_ige_iu_ml"][i, 0])
            om = label_dose(int(ages[i]), float(weight[i]), ige0) if g["with_omalizumab"] else None
            course = w.add(
                "courses",
                patient_id=p_id,
                kind="SCIT",
                product="Alutard SQ house dust mite",
                allergen="d1",
                regimen="weekly build-up (15 injections), maintenance every 4 weeks",
                product_id="alutard-sq-hdm",  # the catalogue's 15-week weekly schedule (calibration doses)
                regimen_id="conventional",
                maintenance_interval_weeks=syn["maintenance_interval_weeks"],
                with_omalizumab=g["with_omalizumab"],
                omalizumab_timing="concurrent" if g["with_omalizumab"] else "none",
                status="completed",
                started_on=start,
                ended_on=start + timedelta(weeks=48),
                target_dose=Decimal("100000"),
                dose_unit="SQ-U",
                target_reached=True,
                target_reached_on=start + timedelta(weeks=14),
                interval_days=7 * syn["maintenance_interval_weeks"],
                next_due_on=None,
                plan={
                    "source": syn["scit_build_up"],
                    "omalizumab": None if om is None else {"dose_mg": str(om[0]), "interval_weeks": om[1]},
                },
                basis=bb,
                created_at=w.now,
            )
            visit_ids = {}
            for vi, (code, week) in enumerate(visits.items()):
                day = start + timedelta(weeks=week)
                visit_ids[code] = add_visit(w, p_id, course, code, day, week, asthma_step=4)
                for name, spec in c1["outcomes"].items():
                    val = float(values[name][i, vi])
                    if spec["store"] == "questionnaire":
                        add_questionnaire(w, p_id, visit_ids[code], name, day, val)
                    else:
                        add_measurement(
                            w, p_id, visit_ids[code], name, val, day, allergen=spec.get("allergen", "")
                        )
                if vi == 0:
                    add_measurement(w, p_id, visit_ids[code], "weight_kg", float(weight[i]), day, unit="kg")
            injections = _scit_injections(w, syn, p_id, course, start, i)
            if om is not None:
                add_omalizumab_doses(
                    w, p_id, course, om, (start + timedelta(weeks=k) for k in range(0, 48, om[1]))
                )
            treated.append(
                {"patient_id": p_id, "course": course, "visits": visit_ids, "injections": injections}
            )
        _seed001_reactions(w, rng, c1, syn, group, treated)
    return n_total


def _scit_injections(
    w: Writer, syn: dict[str, Any], p_id: int, course: int, start: date, i: int
) -> list[tuple[int, int, datetime]]:
    """Weekly build-up (weeks 0-14), maintenance every N weeks to week 48: [(injection id, week, time)]."""
    out = []
    weeks = list(range(15))
    mw = syn["maintenance_interval_weeks"]
    weeks += list(range(14 + mw, 48, mw))
    for seq, week in enumerate(weeks, start=1):
        b = min(seq, 15) - 1
        when = utc_at(start + timedelta(weeks=week), 9, (i * 7) % 60)
        maint = seq > 15
        iid = add_injection(
            w,
            p_id,
            course,
            seq,
            when,
            "maintenance" if maint or seq == 15 else "build-up",
            Decimal(syn["build_up_sq_u"][b]),
            syn["build_up_vial"][b],
            Decimal(syn["build_up_ml"][b]),
            f"DEMO-{2023 + week // 40}",
        )
        out.append((iid, week, when))
    return out


def _seed001_reactions(
    w: Writer,
    rng: np.random.Generator,
    c1: dict[str, Any],
    syn: dict[str, Any],
    group: str,
    patients: list[dict[str, Any]],
) -> None:
    """Table 5: exactly the reported number of patients per class, visit window and group."""
    t5 = c1["table5"]
    gi = t5["order"].index(group)
    windows = {"week12": (-1, 12), "week24": (12, 24), "week48": (24, 48)}
    for code, (lo, hi) in windows.items():
        for cls, counts in t5[code].items():
            k = counts[gi]
            for j in rng.choice(len(patients), size=k, replace=False):
                pt = patients[int(j)]
                cands = [x for x in pt["injections"] if lo < x[1] <= hi]
                iid, _week, when = cands[int(rng.integers(0, len(cands)))]
                minutes = int(rng.integers(5, 25)) if cls != "local" else int(rng.integers(10, 240))
                onset = when + timedelta(minutes=minutes)
                first = pt["injections"][0][2]
                choices = syn["findings"][cls]
                g = graded(t5["scale"], choices[int(rng.integers(0, len(choices)))])
                if g["grade"] != cls:  # the calibration's findings must grade to the class Table 5 counts
                    raise AssertionError(f"demo findings graded {g['grade']!r}, expected {cls!r}")
                w.add(
                    "reactions",
                    patient_id=pt["patient_id"],
                    course_id=pt["course"],
                    visit_id=pt["visits"][code],
                    injection_id=iid,
                    omalizumab_administration_id=None,
                    desensitization_step_id=None,
                    kind="local" if cls == "local" else "systemic",
                    onset_at=onset,
                    minutes_after_dose=minutes,
                    days_from_first_dose=(onset.date() - first.date()).days,
                    findings=g["findings"],
                    grade=g["grade"],
                    scale=g["scale"],
                    scale_version=g["scale_version"],
                    treatment=g["treatment"],
                    outcome="resolved",
                    basis=[g["basis"], basis("registry_demo_calibration", "seed001.table5").to_dict()],
                )
