"""The pre-injection check before an allergen (SCIT) injection: questions, answers, holds and warnings.

Every question, its threshold, its action (``hold``: the dose is withheld unless a clinician records a
reason; ``warn``: a warning) and its source and status live in ``reference/data/scit_preinjection.json``
(AAAAI/ACAAI practice parameter 2011 Summary Statement 32, the AAAAI administration form, the Alutard SQ SmPC
and leaflets). This module only reads answers and applies those rules: no I/O, no recording.

- `check_questions` gives the questions as data (for forms and ``--help``);
- `parse_check_answers` reads CLI ``NAME=VALUE`` pairs;
- `evaluate_check` turns answers into a `CheckOutcome` (holds, warnings, unanswered questions).

An unanswered question fires nothing: it is listed in ``to_dict()["unanswered"]``; whether a form must answer
every question is the recording service's decision.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from immunoplan import reference
from immunoplan.errors import InvalidInput
from immunoplan.reference import Basis, limits

DATA = "scit_preinjection"
ACTIONS = ("hold", "warn")
YES = ("yes", "y", "true", "1")
NO = ("no", "n", "false", "0")
YES_NO_ACCEPTED = "yes or no"

Answer = bool | Decimal


def _data() -> dict[str, Any]:
    return reference.load(DATA)


def _questions() -> dict[str, dict[str, Any]]:
    return {q["id"]: q for q in _data()["questions"]}


def _canonical(name: str) -> str:
    """A question id from user text: case-insensitive, ``-`` and ``_`` alike (``beta-blocker``)."""
    return name.strip().lower().replace("-", "_")


def _names() -> str:
    return ", ".join(_questions())


def _accepted(q: dict[str, Any]) -> str:
    if q["kind"] == "yes-no":
        return YES_NO_ACCEPTED
    return limits.limit(q["limit"]).accepted


def check_questions() -> list[dict[str, Any]]:
    """The questions in asking order, as plain data: ``id``, ``question``, ``kind`` (``yes-no`` or
    ``number``), ``unit``, ``accepted`` (values or range), ``action``, ``threshold`` (text), ``text``,
    ``status`` and ``source``. A copy: callers may change it."""
    out = []
    for q in _data()["questions"]:
        out.append(
            {
                "id": q["id"],
                "question": q["question"],
                "kind": q["kind"],
                "unit": q.get("unit", ""),
                "accepted": _accepted(q),
                "action": q["action"],
                "threshold": _threshold_text(q),
                "text": q["text"],
                "status": q["status"],
                "source": q["source"],
            }
        )
    return copy.deepcopy(out)


def _threshold_text(q: dict[str, Any]) -> str:
    fires = q["fires"]
    if "answer" in fires:
        return f"answer {fires['answer']}"
    below = fires["below"]
    unit = q.get("unit", "")
    if isinstance(below, dict):
        return (
            f"below {below['adult']} {unit} (age {fires['child_under_age_years']} or over), "
            f"below {below['child']} {unit} (under {fires['child_under_age_years']}; also when the age is "
            "not given)"
        )
    return f"below {below} {unit}"


def _normalise(q: dict[str, Any], value: Any) -> Answer:
    """One answer as ``bool`` (yes-no) or ``Decimal`` (number) inside its field limit; else `InvalidInput`
    naming the question and the accepted values or range."""
    if q["kind"] == "yes-no":
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            text = value.strip().lower()
            if text in YES:
                return True
            if text in NO:
                return False
        raise InvalidInput(q["id"], f"{value!r} is not a yes/no answer", YES_NO_ACCEPTED)
    if isinstance(value, bool):
        raise InvalidInput(q["id"], "a number is needed, not yes/no", _accepted(q))
    return limits.check(q["limit"], value, q["id"])


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def parse_check_answers(pairs: list[str]) -> dict[str, str]:
    """CLI ``--check NAME=VALUE`` pairs as ``{question id: value text}``.

    Names are case-insensitive and ``-``/``_`` alike. An unknown name, a pair without ``=``, a name given
    twice or a value the question does not accept raises ``InvalidInput("check", ..., accepted)`` naming the
    accepted names (or, for a bad value, the question and its accepted values or range)."""
    questions = _questions()
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise InvalidInput("check", f"{pair!r} is not NAME=VALUE", _names())
        qid = _canonical(name)
        if qid not in questions:
            raise InvalidInput("check", f"unknown check {name.strip()!r}", _names())
        if qid in out:
            raise InvalidInput("check", f"{qid} is given twice", _names())
        q = questions[qid]
        if _is_blank(value):
            raise InvalidInput("check", f"{qid}: no value", f"{qid}={_accepted(q)}")
        try:
            _normalise(q, value)
        except InvalidInput as exc:
            raise InvalidInput("check", f"{qid}: {exc.reason}", f"{qid}={exc.accepted}") from None
        out[qid] = value.strip()
    return out


@dataclass(frozen=True)
class FiredCheck:
    """One answer that fired its rule: the question, the normalised answer, ``hold`` or ``warn``, the text
    to show and the rule's `Basis` (table ``scit_preinjection``, rule = question id, version, source,
    status)."""

    id: str
    question: str
    answer: Answer
    action: str
    text: str
    basis: Basis

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "question": self.question,
            "answer": _answer_json(self.answer),
            "action": self.action,
            "text": self.text,
            "basis": self.basis.to_dict(),
        }


def _answer_json(a: Answer) -> bool | str:
    return a if isinstance(a, bool) else format(a, "f")


@dataclass(frozen=True)
class CheckOutcome:
    """The check's result: normalised ``answers`` (yes/no -> ``bool``, numbers -> ``Decimal``), the fired
    ``holds`` and ``warnings``, the ``unanswered`` question ids, the age the thresholds used and the table's
    `Basis`. ``hold`` is true when any answer holds the dose."""

    answers: dict[str, Answer]
    holds: list[FiredCheck]
    warnings: list[FiredCheck]
    unanswered: list[str] = field(default_factory=list)
    age_years: Decimal | None = None
    basis: Basis | None = None

    @property
    def hold(self) -> bool:
        return bool(self.holds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "hold": self.hold,
            "answers": {k: _answer_json(v) for k, v in self.answers.items()},
            "holds": [f.to_dict() for f in self.holds],
            "warnings": [f.to_dict() for f in self.warnings],
            "unanswered": list(self.unanswered),
            "age_years": None if self.age_years is None else format(self.age_years, "f"),
            "basis": None if self.basis is None else self.basis.to_dict(),
        }


def _fires(q: dict[str, Any], answer: Answer, age_years: Decimal | None) -> tuple[bool, str]:
    """Whether ``answer`` fires ``q``'s rule, and the text to show."""
    fires = q["fires"]
    if "answer" in fires:
        wanted = fires["answer"] == "yes"
        return answer == wanted, q["text"]
    assert isinstance(answer, Decimal)
    below = fires["below"]
    note = ""
    if isinstance(below, dict):
        child_under = Decimal(str(fires["child_under_age_years"]))
        if age_years is None:
            group = fires.get("age_unknown", "child")
            note = f" (age not given: the {group} limit {below[group]} % was applied)"
        else:
            group = "child" if age_years < child_under else "adult"
        threshold = Decimal(below[group])
    else:
        threshold = Decimal(below)
    unit = q.get("unit", "")
    text = f"{q['text']}: {format(answer, 'f')} {unit} < {format(threshold, 'f')} {unit}{note}"
    return answer < threshold, text


def evaluate_check(answers: Mapping[str, Any], *, age_years: Any = None) -> CheckOutcome:
    """Apply the pre-injection rules of ``scit_preinjection.json`` to ``answers`` (question id -> value:
    ``bool`` or yes/no text for yes-no questions, a number or number text for numeric ones; ``None`` or blank
    text = unanswered). ``age_years`` (optional) picks the adult or child FEV1 limit; without it the stricter
    child limit applies and the answer says so.

    An unknown question id raises ``InvalidInput("check", ...)`` naming the accepted ids; a bad value raises
    `InvalidInput` naming the question and its accepted values or range (numbers: the field-limit catalogue).
    """
    questions = _questions()
    given: dict[str, Any] = {}
    for name, value in answers.items():
        qid = _canonical(str(name))
        if qid not in questions:
            raise InvalidInput("check", f"unknown check {name!r}", _names())
        if qid in given:
            raise InvalidInput("check", f"{qid} is given twice", _names())
        given[qid] = value
    age = limits.check_optional("age_years", age_years)
    data = _data()
    normalised: dict[str, Answer] = {}
    holds: list[FiredCheck] = []
    warnings: list[FiredCheck] = []
    unanswered: list[str] = []
    for qid, q in questions.items():
        value = given.get(qid)
        if _is_blank(value):
            unanswered.append(qid)
            continue
        answer = _normalise(q, value)
        normalised[qid] = answer
        fired, text = _fires(q, answer, age)
        if not fired:
            continue
        if q["action"] not in ACTIONS:  # pragma: no cover - the data test checks the actions
            raise ValueError(f"{DATA}: {qid} has action {q['action']!r}")
        fc = FiredCheck(
            id=qid,
            question=q["question"],
            answer=answer,
            action=q["action"],
            text=text,
            basis=reference.basis(DATA, qid, status=q["status"], source=q["source"]),
        )
        (holds if q["action"] == "hold" else warnings).append(fc)
    return CheckOutcome(
        answers=normalised,
        holds=holds,
        warnings=warnings,
        unanswered=unanswered,
        age_years=age,
        basis=reference.basis(DATA, status=data["status"]),
    )
