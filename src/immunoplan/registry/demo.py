"""Synthetic demo cohorts calibrated to seeds 000 and 001 (no real patients).

Targets and all generator parameters are in reference data ``registry_demo_calibration`` (seed numbers marked
VERIFIED with the seed table as source; synthetic parameters UNVERIFIED). docs/demo-cohorts.md explains the
calibration. Two cohorts:

- ``seed001``: 37 adults, SCIT 18 vs Omb+SCIT 19, visits at weeks 0/12/24/48. Table 1 counts are allocated
  exactly; every Table 2-4 mean and SD is matched per group and visit by fitting correlated draws to the
  target moments inside plausible bounds (SLSQP); Table 5 reactions are allocated exactly per visit window.
- ``seed000``: 202 patients (or ``patients``), RIT 133 vs RIT+Omb-pre 69, with age strata, mite sIgE grades,
  sIgE/T-IgE ratios, systemic reactions, target-dose completion and 12-month ACQ/medication burden following
  the direction of the seed's findings (exact allocation within strata so the pattern holds at any size).

Rows are written with bulk core inserts (explicit ids, chunks) in one transaction; the audit trail gets one
``bulk_insert`` entry per table.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from scipy.optimize import minimize
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from immunoplan.errors import InvalidInput
from immunoplan.reference import basis, load
from immunoplan.registry import models as m
from immunoplan.registry.audit import record_bulk
from immunoplan.registry.db import Registry

Progress = Callable[[int, int, str], None]
TABLES = (
    "patients",
    "diagnoses",
    "courses",
    "visits",
    "measurements",
    "questionnaires",
    "risk_assessments",
    "injections",
    "omalizumab_administrations",
    "reactions",
)
MODELS = {
    t.__tablename__: t
    for t in (
        m.Patient,
        m.Diagnosis,
        m.Course,
        m.Visit,
        m.Measurement,
        m.Questionnaire,
        m.RiskAssessment,
        m.Injection,
        m.OmalizumabAdministration,
        m.Reaction,
    )
}
CHUNK_PATIENTS = 2000


def calibration() -> dict[str, Any]:
    return load("registry_demo_calibration")


class _Writer:
    """Collects rows per table with explicit ids and flushes them with bulk inserts."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self.next_id = {t: (s.scalar(select(func.max(MODELS[t].id))) or 0) + 1 for t in TABLES}
        self.rows: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES}
        self.counts = dict.fromkeys(TABLES, 0)
        self.now = datetime.now(UTC)

    def add(self, table: str, **row: Any) -> int:
        row["id"] = self.next_id[table]
        self.next_id[table] += 1
        self.rows[table].append(row)
        return int(row["id"])

    def flush(self) -> None:
        """Insert the collected rows: DBAPI executemany with SQLAlchemy's own per-column bind processors
        (the same stored values as an ORM insert, without its per-row overhead)."""
        conn = self.s.connection()
        dialect = conn.dialect
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        for t in TABLES:
            rows = self.rows[t]
            if not rows:
                continue
            cols = list(MODELS[t].__table__.columns)
            procs = [c.type._cached_bind_processor(dialect) for c in cols]
            defaults = [
                c.default.arg if c.default is not None and c.default.is_scalar else None for c in cols
            ]
            names = [c.name for c in cols]
            columns = []
            for n, d, proc in zip(names, defaults, procs, strict=True):
                values = [r.get(n, d) for r in rows]
                if proc is not None:
                    values = [None if v is None else proc(v) for v in values]
                columns.append(values)
            data = list(zip(*columns, strict=True))
            sql = f"INSERT INTO {t} ({', '.join(names)}) VALUES ({', '.join([mark] * len(names))})"
            conn.exec_driver_sql(sql, data)
            self.counts[t] += len(rows)
            self.rows[t] = []

    def finish(self, detail: dict[str, Any]) -> None:
        self.flush()
        for t, n in self.counts.items():
            if n:
                record_bulk(self.s, t, n, detail)
        if self.s.get_bind().dialect.name == "postgresql":  # explicit ids: move the sequences past them
            for t in TABLES:
                self.s.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), "
                        f"(SELECT COALESCE(MAX(id), 1) FROM {t}))"
                    )
                )


# --------------------------------------------------------------------------------------------- helpers
def _moment_match(
    start: np.ndarray, mean: float, sd: float, low: np.ndarray, high: np.ndarray
) -> np.ndarray | None:
    """Alternate exact standardisation and clipping; None when it does not settle inside the bounds."""
    x = start.astype(float)
    for _ in range(2000):
        x = mean + sd * (x - x.mean()) / (x.std(ddof=1) or 1.0)
        clipped = np.clip(x, low, high)
        if np.allclose(clipped, x, atol=1e-10, rtol=0):
            return clipped
        x = clipped
    return None


def _slsqp(start: np.ndarray, mean: float, sd: float, bounds: list[tuple[float, float]]) -> np.ndarray:
    res = minimize(
        lambda v: float(((v - start) ** 2).sum()),
        start,
        method="SLSQP",
        bounds=bounds,
        constraints=[
            {"type": "eq", "fun": lambda v: v.mean() - mean},
            {"type": "eq", "fun": lambda v: v.std(ddof=1) - sd},
        ],
        options={"maxiter": 500, "ftol": 1e-12},
    )
    lo, hi = np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])
    return np.clip(res.x, lo, hi)


def _fit(x0: np.ndarray, mean: float, sd: float, low: float, high: float) -> np.ndarray:
    """Values near ``x0`` with sample mean ``mean`` and SD ``sd`` (ddof=1), each within [low, high]."""
    n = len(x0)
    z = (x0 - x0.mean()) / (x0.std(ddof=1) or 1.0)
    start = np.clip(mean + sd * z, low, high)
    got = _moment_match(start, mean, sd, np.full(n, low), np.full(n, high))
    return got if got is not None else _slsqp(start, mean, sd, [(low, high)] * n)


def _fit_bounded(x0: np.ndarray, mean: float, sd: float, bounds: list[tuple[float, float]]) -> np.ndarray:
    """Like `_fit` with one [low, high] per element (used for BMI within its Table 1 category)."""
    lo, hi = np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])
    start = np.clip(x0, lo, hi)
    got = _moment_match(start, mean, sd, lo, hi)
    return got if got is not None else _slsqp(start, mean, sd, bounds)


def _ms(pair: list[Any]) -> tuple[float, float]:
    """(mean, SD) from a calibration ``[mean, sd]`` pair."""
    return float(pair[0]), float(pair[1])


def _allocate(n: int, shares: dict[str, float], rng: np.random.Generator) -> np.ndarray:
    """Exactly round(n * share) of each label (largest remainder), in random order."""
    keys = list(shares)
    raw = np.array([shares[k] for k in keys]) * n / sum(shares.values())
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts))[: n - counts.sum()]:
        counts[i] += 1
    labels = np.repeat(np.array(keys, dtype=object), counts)
    rng.shuffle(labels)
    return labels


def _flags(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[rng.choice(n, size=k, replace=False)] = True
    return out


def _label_dose(age: int, weight: float, ige: float) -> tuple[Decimal, int, Any] | None:
    """Omalizumab label dose from the omalizumab service (US asthma tables); None when it gives no dose."""
    from immunoplan.services.omalizumab import label_dose

    try:
        r = label_dose("asthma", "us", age, round(weight, 1), round(ige, 1))
    except InvalidInput:
        return None
    d = r.to_dict()
    if d.get("status") != "dose":
        return None
    return Decimal(str(d["dose_mg"])), int(d["interval_weeks"]), d.get("basis")


def _limits(kind: str) -> tuple[float, float]:
    lim = load("registry_measurements")
    spec = lim["kinds"].get(kind) or lim["questionnaires"][kind]
    return float(spec["low"]), float(spec["high"])


# --------------------------------------------------------------------------------------------- seed 001
def _seed001(w: _Writer, rng: np.random.Generator, actor: str) -> int:
    cal = calibration()
    c1, syn = cal["seed001"], cal["seed001_synthetic"]
    visits = c1["visits"]
    bb = [basis("registry_demo_calibration", "seed001").to_dict()]
    start0 = date.fromisoformat(syn["enrolment_from"])
    n_total = 0
    for group, g in c1["groups"].items():
        n, t1 = g["n"], c1["table1"][group]
        ages = np.rint(_fit(rng.normal(size=n), *_ms(t1["age"]), 18, 65)).astype(int)
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
        bmi = _fit_bounded(mid, *_ms(t1["bmi"]), bounds)
        height = np.array([rng.normal(*syn["height_cm"][s]) for s in sex]).round(1)
        weight = (bmi * (height / 100) ** 2).round(1)
        smoking = np.array(
            ["never"] * t1["never"] + ["former"] * t1["former"] + ["current"] * t1["current"], dtype=object
        )
        rng.shuffle(smoking)
        treated: list[dict[str, Any]] = []
        fam, com, bio = (
            _flags(n, t1[k], rng)
            for k in ("family_history_asthma", "comorbid_allergies", "previous_biologics")
        )
        # outcome trajectories: correlated within patient, fitted to each visit's mean and SD
        values: dict[str, np.ndarray] = {}
        rho = syn["visit_correlation"]
        for name, spec in c1["outcomes"].items():
            u = rng.normal(size=n)
            low, high = _limits(name)
            cols = []
            for vi in range(len(visits)):
                x0 = rho * u + np.sqrt(1 - rho**2) * rng.normal(size=n)
                cols.append(np.round(_fit(x0, *_ms(spec[group][vi]), low, high), spec["decimals"]))
            values[name] = np.array(cols).T  # patients x visits
        for i in range(n):
            n_total += 1
            pid = f"S001-{n_total:03d}"
            start = start0 + timedelta(days=int(rng.integers(0, syn["enrolment_days"])))
            birth = start - timedelta(days=int(ages[i]) * 365 + int(rng.integers(0, 365)))
            p_id = _enrol(
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
            om = _label_dose(int(ages[i]), float(weight[i]), ige0) if g["with_omalizumab"] else None
            course = w.add(
                "courses",
                patient_id=p_id,
                kind="SCIT",
                product="Alutard SQ house dust mite",
                allergen="d1",
                regimen="weekly build-up (15 injections), maintenance every 4 weeks",
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
                visit_ids[code] = _visit(w, p_id, course, code, day, week, asthma_step=4)
                for name, spec in c1["outcomes"].items():
                    val = float(values[name][i, vi])
                    if spec["store"] == "questionnaire":
                        _questionnaire(w, p_id, visit_ids[code], name, day, val)
                    else:
                        _measurement(
                            w, p_id, visit_ids[code], name, val, day, allergen=spec.get("allergen", "")
                        )
                if vi == 0:
                    _measurement(w, p_id, visit_ids[code], "weight_kg", float(weight[i]), day, unit="kg")
            injections = _scit_injections(w, syn, p_id, course, start, i)
            if om is not None:
                _omalizumab_doses(
                    w, p_id, course, om, (start + timedelta(weeks=k) for k in range(0, 48, om[1]))
                )
            treated.append(
                {"patient_id": p_id, "course": course, "visits": visit_ids, "injections": injections}
            )
        _seed001_reactions(w, rng, c1, syn, group, treated)
    return n_total


def _enrol(
    w: _Writer,
    pid: str,
    display_name: str,
    birth_date: date,
    age: int,
    age_group: str,
    sex: str,
    asthma_step: int,
    cohort: str,
    study_group: str | None,
    enrolled_on: date,
    *,
    height_cm: float | None = None,
    smoking: str | None = None,
    family_history_asthma: bool | None = None,
    comorbid_allergies: bool | None = None,
    previous_biologics: bool | None = None,
) -> int:
    """A demo patient (height, smoking and history flags where the cohort has them) with the enrolment
    diagnosis; returns the patient id."""
    p_id = w.add(
        "patients",
        pseudo_id=pid,
        display_name=display_name,
        birth_date=birth_date,
        age_years=age,
        age_group=age_group,
        sex=sex,
        height_cm=height_cm,
        smoking=smoking,
        family_history_asthma=family_history_asthma,
        comorbid_allergies=comorbid_allergies,
        previous_biologics=previous_biologics,
        asthma_step=asthma_step,
        cohort=cohort,
        study_group=study_group,
        enrolled_on=enrolled_on,
        created_at=w.now,
    )
    _diagnose(w, p_id, enrolled_on)
    return p_id


def _diagnose(w: _Writer, p_id: int, day: date) -> None:
    """Both seeds enrolled house-dust-mite allergic asthma (D. pteronyssinus, ImmunoCAP d1)."""
    w.add(
        "diagnoses",
        patient_id=p_id,
        code="allergic_asthma",
        system="immunoplan",
        label="Allergic asthma, house dust mite",
        allergen="d1",
        severity=None,
        onset_on=None,
    )


_GRADES: dict[tuple[str, tuple[str, ...], tuple[str, ...]], dict[str, Any]] = {}


def _graded(scale: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Grade a synthetic reaction with the clinical grading engine (cached per finding set)."""
    from immunoplan.clinical.reactions import Findings, grade

    symptoms, treatments = tuple(spec["symptoms"]), tuple(spec.get("treatments", ()))
    key = (scale, symptoms, treatments)
    if key not in _GRADES:
        g = grade(scale, Findings(symptoms=frozenset(symptoms), treatments=frozenset(treatments)))
        _GRADES[key] = {
            "grade": g.grade,
            "scale": g.scale,
            "scale_version": g.scale_version,
            "basis": g.basis.to_dict(),
            "findings": list(symptoms),
            "treatment": ", ".join(treatments) or None,
        }
    return _GRADES[key]


def _unit(kind: str) -> str:
    return str(load("registry_measurements")["kinds"][kind]["unit"])


def _visit(
    w: _Writer,
    p_id: int,
    course: int,
    code: str,
    day: date,
    week: int,
    asthma_step: int | None,
    medication_score: float | None = None,
) -> int:
    return w.add(
        "visits",
        patient_id=p_id,
        course_id=course,
        code=code,
        visit_on=day,
        week=week,
        asthma_step=asthma_step,
        medication_score=medication_score,
        notes=None,
    )


def _measurement(
    w: _Writer,
    p_id: int,
    visit_id: int,
    kind: str,
    value: float,
    day: date,
    *,
    allergen: str = "",
    unit: str | None = None,
    method: str | None = None,
) -> None:
    """One result (unit: the registry's unit for ``kind`` unless given)."""
    w.add(
        "measurements",
        patient_id=p_id,
        visit_id=visit_id,
        kind=kind,
        allergen=allergen,
        value=value,
        unit=_unit(kind) if unit is None else unit,
        measured_on=day,
        pct_predicted=None,
        z_score=None,
        reference_equation=None,
        method=method,
    )


def _questionnaire(w: _Writer, p_id: int, visit_id: int, instrument: str, day: date, score: float) -> None:
    w.add(
        "questionnaires",
        patient_id=p_id,
        visit_id=visit_id,
        instrument=instrument,
        completed_on=day,
        items=None,
        score=score,
    )


def _injection(
    w: _Writer,
    p_id: int,
    course: int,
    sequence: int,
    when: datetime,
    phase: str,
    dose: Decimal,
    vial: Any,
    volume_ml: Decimal,
    lot: str,
) -> int:
    """One SQ-U allergen injection in the upper arm, observed 30 minutes."""
    return w.add(
        "injections",
        course_id=course,
        patient_id=p_id,
        sequence=sequence,
        given_at=when,
        phase=phase,
        dose=dose,
        dose_unit="SQ-U",
        vial=str(vial),
        volume_ml=volume_ml,
        site="upper arm",
        lot=lot,
        observed_minutes=30,
        given_by="demo",
    )


def _omalizumab_doses(
    w: _Writer, p_id: int, course: int, om: tuple[Decimal, int, Any], days: Iterable[date]
) -> None:
    """Label-dose omalizumab (``om`` from `_label_dose`) at 08:30 on each of ``days``."""
    for day in days:
        w.add(
            "omalizumab_administrations",
            patient_id=p_id,
            course_id=course,
            given_at=_at(day, 8, 30),
            dose_mg=om[0],
            interval_weeks=om[1],
            site="upper arm",
            lot=None,
            basis=[om[2]] if om[2] else None,
        )


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def _scit_injections(
    w: _Writer, syn: dict[str, Any], p_id: int, course: int, start: date, i: int
) -> list[tuple[int, int, datetime]]:
    """Weekly build-up (weeks 0-14), maintenance every N weeks to week 48: [(injection id, week, time)]."""
    out = []
    weeks = list(range(15))
    mw = syn["maintenance_interval_weeks"]
    weeks += list(range(14 + mw, 48, mw))
    for seq, week in enumerate(weeks, start=1):
        b = min(seq, 15) - 1
        when = _at(start + timedelta(weeks=week), 9, (i * 7) % 60)
        maint = seq > 15
        iid = _injection(
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
    w: _Writer,
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
                g = _graded(t5["scale"], choices[int(rng.integers(0, len(choices)))])
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


# --------------------------------------------------------------------------------------------- seed 000
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
    group = _allocate(n, {g: float(c) for g, c in counts.items()}, rng)
    omb = group == "RIT+Omb-pre"
    age_group = _allocate(n, {k: v["p"] for k, v in syn["age_groups"].items()}, rng)
    age = np.empty(n, dtype=int)
    weight = np.empty(n)
    for k, v in syn["age_groups"].items():
        sel = age_group == k
        age[sel] = rng.integers(v["ages"][0], v["ages"][1] + 1, sel.sum())
        lo, hi = syn["weight_kg"][k]
        weight[sel] = rng.uniform(lo, hi, sel.sum()).round(1)
    lowers, spans = _class_bounds()
    cls = _allocate(n, {k: v for k, v in syn["sige_class_p"].items()}, rng).astype(int)
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
    acq0 = np.clip(rng.normal(*_ms(syn["acq_baseline"]), n), 0.2, 6).round(2)
    acq12 = np.clip(
        acq0
        - (ai["base"] + ai["ratio_gt16"] * gt16 + ai["pediatric"] * pediatric + rng.normal(0, ai["sd"], n)),
        0,
        6,
    ).round(2)
    med0 = np.clip(rng.normal(*_ms(syn["medication_baseline"]), n), 0.5, None).round(1)
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


def _seed000(w: _Writer, rng: np.random.Generator, n: int, actor: str, progress: Progress | None) -> None:
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
        p_id = _enrol(
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
        v0 = _visit(w, p_id, course, "baseline", enrol, 0, 3, float(a["med0"][i]))
        v12_day = rit_start + timedelta(days=365)
        v12 = _visit(w, p_id, course, "month12", v12_day, 52, None, float(a["med12"][i]))
        for kind, val, allergen in (
            ("total_ige_iu_ml", a["tige"][i], ""),
            ("sige_kua_l", a["sige"][i], "d1"),
            ("weight_kg", a["weight"][i], ""),
        ):
            method = "ImmunoCAP" if "ige" in kind else None
            _measurement(w, p_id, v0, kind, float(val), enrol, allergen=allergen, method=method)
        _questionnaire(w, p_id, v0, "ACQ-7", enrol, float(a["acq0"][i]))
        _questionnaire(w, p_id, v12, "ACQ-7", v12_day, float(a["acq12"][i]))
        w.add(
            "risk_assessments",
            patient_id=p_id,
            course_id=course,
            assessed_at=_at(enrol, 10),
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
            when = _at(rit_start + timedelta(days=int(day_of[k])), 9) + timedelta(
                minutes=int(slot[k]) * rush["minutes_between_doses"]
            )
            iid = _injection(
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
            om = om_cache.get(key) or _label_dose(*key)
            om_cache[key] = om
            if om is not None:
                weeks = range(0, syn["omalizumab_pretreatment_weeks"], om[1])
                _omalizumab_doses(w, p_id, course, om, (enrol + timedelta(weeks=k) for k in weeks))
        if a["sr"][i]:
            k = int(rng.integers(max(0, n_inj - 5), n_inj))
            iid, when = inj_ids[k]
            minutes = int(rng.integers(5, 120))
            onset = when + timedelta(minutes=minutes)
            choices = syn["sr_findings"][str(a["sr_grade"][i])]
            g = _graded(syn["sr_scale"]["scale"], choices[int(rng.integers(0, len(choices)))])
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


# --------------------------------------------------------------------------------------------- clinic list
def _clinic(w: _Writer, rng: np.random.Generator, today: date) -> int:
    """Active SCIT build-up courses whose next weekly injection is due, late or ahead on ``today``."""
    cal = calibration()
    syn, c1 = cal["clinic_synthetic"], cal["seed001_synthetic"]
    lo, hi = syn["days_since_last_injection"]
    doses = [Decimal(x) for x in c1["build_up_sq_u"]]
    vols = [Decimal(x) for x in c1["build_up_ml"]]
    bb = [basis("registry_demo_calibration", "clinic_synthetic").to_dict()]
    for i in range(syn["patients"]):
        pid = f"CLINIC-{i + 1:03d}"
        given = int(rng.integers(1, len(doses)))  # injections so far (never the whole build-up)
        last = today - timedelta(days=int(rng.integers(lo, hi + 1)))
        start = last - timedelta(weeks=given - 1)
        age = int(rng.integers(18, 65))
        birth = start - timedelta(days=age * 365)
        sex = "female" if i % 2 else "male"
        p_id = _enrol(
            w, pid, f"Demo clinic patient {i + 1}", birth, age, "adult", sex, 3, "clinic", None, start
        )
        course = w.add(
            "courses",
            patient_id=p_id,
            kind="SCIT",
            product="Alutard SQ house dust mite",
            allergen="d1",
            regimen="weekly build-up (15 injections)",
            with_omalizumab=False,
            omalizumab_timing="none",
            status="active",
            started_on=start,
            ended_on=None,
            stop_reason=None,
            target_dose=Decimal("100000"),
            dose_unit="SQ-U",
            target_reached=False,
            target_reached_on=None,
            interval_days=syn["interval_days"],
            next_due_on=last + timedelta(days=syn["interval_days"]),
            plan={"source": syn["note"]},
            basis=bb,
            created_at=w.now,
        )
        _visit(w, p_id, course, "baseline", start, 0, asthma_step=3)
        for k in range(given):
            when = _at(start + timedelta(weeks=k), 10)
            _injection(
                w,
                p_id,
                course,
                k + 1,
                when,
                "build-up",
                doses[k],
                c1["build_up_vial"][k],
                vols[k],
                "DEMO-CLINIC",
            )
    return int(syn["patients"])


# --------------------------------------------------------------------------------------------- entry
def create_demo(
    reg: Registry,
    *,
    seed: int = 0,
    patients: int | None = None,
    actor: str = "demo",
    progress: Progress | None = None,
    today: date | None = None,
    clinic: bool = False,
) -> dict[str, Any]:
    """Create the demo cohorts in one transaction. ``patients`` sizes the seed-000 cohort (default 202, as in
    the seed); seed 001 always has its 37 patients (its tables are per-patient statistics). With ``clinic`` a
    small ``clinic`` list with active build-up courses relative to ``today`` makes due/late injections visible
    (the ``immunoplan demo`` command adds it unless ``--no-clinic``)."""
    cal = calibration()
    n0 = sum(cal["seed000"]["counts"].values()) if patients is None else int(patients)
    if n0 < 2 or n0 > 10**6:
        raise InvalidInput("patients", f"{n0} is outside the accepted range", "[2, 1000000]")
    if seed < 0:
        raise InvalidInput("seed", "must not be negative", "[0, inf)")
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    with reg.transaction(actor, "demo") as s:
        existing = s.scalar(
            select(func.count())
            .select_from(m.Patient)
            .where(m.Patient.cohort.in_(("seed000", "seed001")) | (m.Patient.pseudo_id == "CLINIC-001"))
        )
        if existing:
            raise InvalidInput("db", "already holds the demo cohorts; use a new database")
        w = _Writer(s)
        n1 = _seed001(w, rng, actor)
        w.flush()
        if progress:
            progress(0, n0, "seed001 done")
        _seed000(w, rng, n0, actor, progress)
        n_clinic = _clinic(w, rng, today or date.today()) if clinic else 0
        w.finish(
            {"generator": "immunoplan.registry.demo", "seed": seed, "calibration_version": cal["version"]}
        )
        counts = dict(w.counts)
    return {
        "seed": seed,
        "cohorts": {"seed001": n1, "seed000": n0, **({"clinic": n_clinic} if clinic else {})},
        "rows": counts,
        "calibration": basis("registry_demo_calibration").to_dict(),
        "seconds": round(time.perf_counter() - t0, 2),
    }
