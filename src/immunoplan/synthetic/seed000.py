"""Seed 000 demo cohort: RIT vs RIT+Omb-pre with the directions of the seed's findings at any size."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import numpy as np

from immunoplan.reference import basis, load
from immunoplan.synthetic.fitting import allocate, mean_sd
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
    utc_at,
)
from immunoplan.synthetic.writer import CHUNK_PATIENTS, Progress, Writer


def _class_bounds() -> tuple[np.ndarray, dict[int, tuple[float, float | None]]]:
    classes = load("assess_biomarkers")["sige_classes"]["classes"]
    lowers = np.array([float(c["lower"]) for c in classes if c["lower"] is not None])
    spans = {
        int(c["class"]): (float(c["lower"] or 0), None if c["upper"] is None else float(c["upper"]))
        for c in classes
    }
    return lowers, spans


def _seed000_arrays(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    cal = calibration()
    s0, syn = cal["seed000"], cal["seed000_synthetic"]
    counts = s0["counts"]
    group = allocate(n, {g: float(c) for g, c in counts.items()}, rng)
    omb = group == "RIT+Omb-pre"
    age_group = allocate(n, {k: v["p"] for k, v in syn["age_groups"].items()}, rng)
    age = np.empty(n, dtype=int)
    weight = np.empty(n)
    for k, v in syn["age_groups"].items():
        sel = age_group == k
        age[sel] = rng.integers(v["ages"][0], v["ages"][1] + 1, sel.sum())
        lo, hi = syn["weight_kg"][k]
        weight[sel] = rng.uniform(lo, hi, sel.sum()).round(1)
    lowers, spans = _class_bounds()
    cls = allocate(n, {k: v for k, v in syn["sige_class_p"].items()}, rng).astype(int)
    sige = np.empty(n)
    for c in np.unique(cls):
        lo, hi = spans[int(c)]
        hi = hi if hi is not None else float(syn["sige_class6_cap_kua_l"])
        sel = cls == c
        sige[sel] = np.exp(rng.uniform(np.log(lo), np.log(hi), sel.sum()))
    sige = np.clip(sige.round(2), 0.35, None)
    cls = np.searchsorted(lowers, sige, side="right")  # class from the rounded value (lower-inclusive)
    rp = syn["ratio_pct_lognormal"]
    med = np.array([rp["median_by_class"][str(c)] for c in cls], dtype=float)
    ratio = np.clip(np.exp(np.log(med) + rng.normal(0, rp["sigma"], n)), *rp["clip"])
    tige = np.maximum((sige / ratio * 100).round(1), 1.0)
    ratio = sige / tige * 100
    pediatric = age_group != "adult"
    low_risk = (cls <= 2) & (ratio < 10)
    high_risk = (cls >= 3) & (ratio >= 10)
    stratum = np.where(low_risk, "low_risk", np.where(high_risk, "high_risk", "intermediate"))
    sr_p = syn["sr_rate"]
    p = np.array([sr_p[s] for s in stratum]) + sr_p["pediatric_extra"] * pediatric
    p = np.where(omb & ~low_risk, p * sr_p["omalizumab_factor_high_risk"], p)
    sr = np.zeros(n, dtype=bool)
    for key in sorted(set(zip(stratum, pediatric, omb, strict=True))):
        idx = np.flatnonzero((stratum == key[0]) & (pediatric == key[1]) & (omb == key[2]))
        k = int(np.floor(len(idx) * p[idx[0]] + rng.random()))  # unbiased exact-count allocation per cell
        if k:
            sr[rng.choice(idx, size=min(k, len(idx)), replace=False)] = True
    completed = np.zeros(n, dtype=bool)
    for g, rate in syn["completion"].items():
        idx = np.flatnonzero(group == g)
        k = int(round(len(idx) * rate))
        wts = np.where(sr[idx], 1.0, 3.0)
        completed[rng.choice(idx, size=k, replace=False, p=wts / wts.sum())] = True
    ai, mi = syn["acq_improvement"], syn["medication_improvement"]
    gt16 = ratio > 16
    acq0 = np.clip(rng.normal(*mean_sd(syn["acq_baseline"]), n), 0.2, 6).round(2)
    acq12 = np.clip(
        acq0
        - (ai["base"] + ai["ratio_gt16"] * gt16 + ai["pediatric"] * pediatric + rng.normal(0, ai["sd"], n)),
        0,
        6,
    ).round(2)
    med0 = np.clip(rng.normal(*mean_sd(syn["medication_baseline"]), n), 0.5, None).round(1)
    med12 = np.clip(
        med0
        - (mi["base"] + mi["ratio_gt16"] * gt16 + mi["pediatric"] * pediatric + rng.normal(0, mi["sd"], n)),
        0,
        None,
    ).round(1)
    return dict(
        group=group,
        omb=omb,
        age_group=age_group,
        age=age,
        weight=weight,
        sige=sige,
        cls=cls,
        tige=tige,
        ratio=ratio,
        stratum=stratum,
        sr=sr,
        completed=completed,
        acq0=acq0,
        acq12=acq12,
        med0=med0,
        med12=med12,
        sex=np.where(rng.random(n) < syn["male_share"], "male", "female"),
        start=rng.integers(0, syn["enrolment_days"], n),
        stop_at=rng.integers(6, 11, n),
        sr_grade=np.where(rng.random(n) < syn["sr_grade2_share"], "2", "1"),
    )


def write(w: Writer, rng: np.random.Generator, n: int, actor: str, progress: Progress | None) -> None:
    cal = calibration()
    syn = cal["seed000_synthetic"]
    a = _seed000_arrays(n, rng)
    start0 = date.fromisoformat(syn["enrolment_from"])
    rush = syn["rush_schedule"]
    day_of = np.repeat(np.arange(len(rush["days"])), rush["days"])
    slot = np.concatenate([np.arange(k) for k in rush["days"]])
    bb_cal = [basis("registry_demo_calibration", "seed000_synthetic").to_dict()]
    bb_bio = [basis("assess_biomarkers", "sige_classes").to_dict()]
    om_cache: dict[tuple[int, float, float], Any] = {}
    rush_dose = [Decimal(x) for x in syn["rush_doses_sq_u"]]
    rush_ml = [Decimal(x) for x in syn["rush_doses_ml"]]
    for i in range(n):
        pid = f"S000-{i + 1:06d}"
        enrol = start0 + timedelta(days=int(a["start"][i]))
        age = int(a["age"][i])
        birth = enrol - timedelta(days=age * 365 + int(rng.integers(0, 365)))
        p_id = add_patient(
            w,
            pid,
            f"Demo patient {pid}",
            birth,
            age,
            str(a["age_group"][i]),
            str(a["sex"][i]),
            3,
            "seed000",
            str(a["group"][i]),
            enrol,
        )
        omb = bool(a["omb"][i])
        rit_start = enrol + timedelta(weeks=syn["omalizumab_pretreatment_weeks"] if omb else 0)
        done = bool(a["completed"][i])
        n_inj = len(syn["rush_doses_sq_u"]) if done else int(a["stop_at"][i])
        last_day = rit_start + timedelta(days=int(day_of[n_inj - 1]))
        course = w.add(
            "courses",
            patient_id=p_id,
            kind="RIT",
            product="house dust mite extract (demo)",
            allergen="d1",
            regimen="synthetic 3-day rush to 100000 SQ-U",
            with_omalizumab=omb,
            omalizumab_timing="pre" if omb else "none",
            status="completed" if done else "stopped",
            started_on=rit_start,
            ended_on=last_day,
            stop_reason=None if done else "target peak dose not reached",
            target_dose=Decimal("100000"),
            dose_unit="SQ-U",
            target_reached=done,
            target_reached_on=last_day if done else None,
            interval_days=None,
            next_due_on=None,
            plan={"source": syn["rush_dose_source"]},
            basis=bb_cal,
            created_at=w.now,
        )
        v0 = add_visit(w, p_id, course, "baseline", enrol, 0, 3, float(a["med0"][i]))
        v12_day = rit_start + timedelta(days=365)
        v12 = add_visit(w, p_id, course, "month12", v12_day, 52, None, float(a["med12"][i]))
        for kind, val, allergen in (
            ("total_ige_iu_ml", a["tige"][i], ""),
            ("sige_kua_l", a["sige"][i], "d1"),
            ("weight_kg", a["weight"][i], ""),
        ):
            method = "ImmunoCAP" if "ige" in kind else None
            add_measurement(w, p_id, v0, kind, float(val), enrol, allergen=allergen, method=method)
        add_questionnaire(w, p_id, v0, "ACQ-7", enrol, float(a["acq0"][i]))
        add_questionnaire(w, p_id, v12, "ACQ-7", v12_day, float(a["acq12"][i]))
        w.add(
            "risk_assessments",
            patient_id=p_id,
            course_id=course,
            assessed_at=utc_at(enrol, 10),
            actor=actor,
            age_group=str(a["age_group"][i]),
            sige_kua_l=float(a["sige"][i]),
            total_ige_iu_ml=float(a["tige"][i]),
            sige_class=int(a["cls"][i]),
            sige_total_ratio_pct=round(float(a["ratio"][i]), 2),
            risk_tier=None,
            advice=None,
            inputs={
                "age_years": age,
                "sige_kua_l": float(a["sige"][i]),
                "total_ige_iu_ml": float(a["tige"][i]),
            },
            result={"generator_stratum": str(a["stratum"][i]), "note": "demo generator, not a clinical tier"},
            basis=bb_bio,
        )
        inj_ids = []
        for k in range(n_inj):
            when = utc_at(rit_start + timedelta(days=int(day_of[k])), 9) + timedelta(
                minutes=int(slot[k]) * rush["minutes_between_doses"]
            )
            iid = add_injection(
                w,
                p_id,
                course,
                k + 1,
                when,
                "build-up",
                rush_dose[k],
                syn["rush_vial"][k],
                rush_ml[k],
                "DEMO-RIT",
            )
            inj_ids.append((iid, when))
        if omb:
            key = (age, float(a["weight"][i]), float(a["tige"][i]))
            om = om_cache.get(key) or label_dose(*key)
            om_cache[key] = om
            if om is not None:
                weeks = range(0, syn["omalizumab_pretreatment_weeks"], om[1])
                add_omalizumab_doses(w, p_id, course, om, (enrol + timedelta(weeks=k) for k in weeks))
        if a["sr"][i]:
            k = int(rng.integers(max(0, n_inj - 5), n_inj))
            iid, when = inj_ids[k]
            minutes = int(rng.integers(5, 120))
            onset = when + timedelta(minutes=minutes)
            choices = syn["sr_findings"][str(a["sr_grade"][i])]
            g = graded(syn["sr_scale"]["scale"], choices[int(rng.integers(0, len(choices)))])
            w.add(
                "reactions",
                patient_id=p_id,
                course_id=course,
                visit_id=None,
                injection_id=iid,
                omalizumab_administration_id=None,
                desensitization_step_id=None,
                kind="systemic",
                onset_at=onset,
                minutes_after_dose=minutes,
                days_from_first_dose=(onset.date() - inj_ids[0][1].date()).days,
                findings=g["findings"],
                grade=g["grade"],
                scale=g["scale"],
                scale_version=g["scale_version"],
                treatment=g["treatment"],
                outcome="resolved",
                basis=[g["basis"], *bb_cal],
            )
        if (i + 1) % CHUNK_PATIENTS == 0:
            w.flush()
            if progress:
                progress(CHUNK_PATIENTS, n, "seed000")
    w.flush()
    if progress and n % CHUNK_PATIENTS:
        progress(n % CHUNK_PATIENTS, n, "seed000")
