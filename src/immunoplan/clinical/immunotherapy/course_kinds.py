"""What kind of registry course (``courses.kind``, `immunoplan.clinical.vocabularies.COURSE_KINDS`) each SCIT
up-dosing regimen of ``scit_products`` is, and whether a regimen may be planned.

A vocabulary mapping, not a clinical number: a rush regimen is a rush immunotherapy course (``RIT``), a
cluster regimen a ``cluster`` course, the conventional weekly up-dosing a ``SCIT`` course (protocols.md
2.1-2.3).
Formerly ``KIND_OF_REGIMEN`` in ``web/routes/courses.py``.
"""

from __future__ import annotations

from typing import Any

from immunoplan.errors import InvalidInput

from .catalogue import DATA, product, product_ids, regimen

#: registry course kind of each ``scit_products`` regimen id
KIND_OF_REGIMEN: dict[str, str] = {"rush": "RIT", "cluster": "cluster", "conventional": "SCIT"}

#: the registry course kinds that are SCIT courses (planned with a ``scit_products`` schedule)
SCIT_COURSE_KINDS: tuple[str, ...] = tuple(dict.fromkeys(KIND_OF_REGIMEN.values()))

#: a regimen with this status has no schedule that can dose (``clinical.immunotherapy.schedule``)
UNPLANNABLE_STATUS = "UNVERIFIED"


def course_kind(regimen_id: str) -> str:
    """The registry course kind of a ``scit_products`` regimen (``rush`` -> ``RIT`` ...)."""
    try:
        return KIND_OF_REGIMEN[regimen_id]
    except KeyError:
        raise InvalidInput(
            "regimen", f"no course kind for regimen {regimen_id!r}", ", ".join(KIND_OF_REGIMEN)
        ) from None


def plannable_regimens(product_id: str) -> list[str]:
    """The regimens of ``product_id`` whose schedule can be planned (status not UNVERIFIED, rows given)."""
    regs = product(product_id)["regimens"]
    return [rid for rid, r in regs.items() if r["status"] != UNPLANNABLE_STATUS and r.get("rows")]


def check_plannable(product_id: str, regimen_id: str) -> dict[str, Any]:
    """The catalogue entry of a regimen that may be planned; `InvalidInput` naming the rule and status of one
    that may not (an UNVERIFIED schedule never doses a patient: docs/conventions.md)."""
    if product_id not in product_ids():
        raise InvalidInput("product", f"unknown product {product_id!r}", ", ".join(product_ids()))
    reg = regimen(product_id, regimen_id)
    if reg["status"] == UNPLANNABLE_STATUS or not reg.get("rows"):
        raise InvalidInput(
            "regimen",
            f"the {regimen_id} schedule of {product_id} is {reg['status']} in {DATA} "
            f"(rule '{product_id} {regimen_id}': {reg['source']}): the schedule engine answers "
            "cannot-answer, so it cannot be planned",
            ", ".join(plannable_regimens(product_id)) or "none for this product",
        )
    return reg
