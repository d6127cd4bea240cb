"""A patient's vials of an immunotherapy product: register one (product, strength, lot, expiry), list them,
and the checks an injection makes on the vial it is drawn from.

Rules (each refusal names the field, the rule and the accepted values):
- the product is a catalogue product (``scit_products``) and the strength one of its vials, given as the vial
  number or its concentration (``100000`` or ``100000 SQ-U/mL``); the concentration and colour are the
  catalogue's;
- an expired vial is refused: at registration (expiry before the clinic's today) and at an injection (expiry
  before the clinic date the injection is given: project rule ``vial-expired``, ``registry_recording``);
- a vial of another patient, of another product than the course's, or voided is refused at an injection;
- a change of vial or lot at the same strength makes the next dose the new-vial rule's
  (``scit_adjustment`` ``new_vial``) without anyone ticking a box: `is_new_vial`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from immunoplan import clock, reference
from immunoplan.clinical.immunotherapy import product, product_ids
from immunoplan.clinical.immunotherapy.catalogue import vials as product_vials
from immunoplan.errors import InvalidInput
from immunoplan.reference.limits import limit
from immunoplan.registry import models as m
from immunoplan.registry.db import Registry
from immunoplan.services import unit_of_work
from immunoplan.services.inputs import InputModel
from immunoplan.services.records.common import as_input, as_row, live_rows
from immunoplan.services.records.fields import ClinicDate, OptionalClinicDate
from immunoplan.services.records.patients import patient_by_id

RECORDING = "registry_recording"


class VialIn(InputModel):
    """A vial as entered: ``concentration`` is the product's vial number or its concentration."""

    patient_id: int = Field(ge=1, le=2**31 - 1)
    product_id: str = Field(min_length=1, max_length=64)
    concentration: str = Field(min_length=1, max_length=64)
    lot: str = Field(min_length=1, max_length=64)
    expiry_on: ClinicDate
    opened_on: OptionalClinicDate = None
    volume_ml: Decimal | None = limit("vial_volume_ml").pydantic(None)
    allergens: str | None = Field(None, max_length=200)

    @field_validator("lot")
    @classmethod
    def _lot(cls, value: str) -> str:
        text = " ".join(value.split())
        if not text or not text.isprintable():
            raise InvalidInput("lot", "a lot number is printable text", "the lot printed on the vial")
        return text


def vial_rule(rule_id: str) -> dict[str, Any]:
    """A vial rule of ``registry_recording`` (id, text, source, status)."""
    rules: dict[str, Any] = reference.load(RECORDING)["vial_rules"]
    return dict(rules[rule_id])


def strength_of(product_id: str, concentration: str) -> tuple[int, str, str]:
    """(vial number, concentration text, colour) of ``product_id`` for a vial number (``4``) or a
    concentration (``100000`` or ``100000 SQ-U/mL``)."""
    p = product(product_id)
    unit = str(p["unit"])
    typed = "".join(concentration.split()).lower()
    labels = []
    for v in product_vials(product_id):
        amount = f"{v.units_per_ml.normalize():f}"
        label = f"{amount} {unit}/mL"
        labels.append(f"{v.vial} = {label}")
        if typed in (str(v.vial), amount, "".join(label.split()).lower()):
            return v.vial, label, v.colour
    raise InvalidInput(
        "concentration", f"not a vial of {p['name']}: {concentration.strip()[:40]!r}", "; ".join(labels)
    )


def refuse_expired(field: str, expiry_on: date, on: date, *, what: str = "vial") -> None:
    """``registry_recording`` ``vial-expired``: a vial (or an omalizumab syringe lot, ``what``) past its
    expiry date on clinic date ``on`` is refused, naming ``field``."""
    if expiry_on < on:
        r = vial_rule("vial-expired")
        raise InvalidInput(
            field,
            f"the {what} expired on {expiry_on.isoformat()} (rule {r['id']}: {r['text']}; {r['status']}, "
            f"{r['source']})",
            f"a {what} expiring on or after {on.isoformat()}",
        )


def vial_row(v: m.Vial, on: date | None = None) -> dict[str, Any]:
    """The stored vial with ``status`` (in date / expired on ``on``, default the clinic's today) and
    ``days_to_expiry``."""
    row = as_row(v)
    row["created_at"] = clock.local(v.created_at) if v.created_at else None
    day = on or clock.today()
    row["status"] = "expired" if v.expiry_on < day else "in date"
    row["days_to_expiry"] = (v.expiry_on - day).days
    row["voided"] = v.voided
    return row


def add_vial(
    reg: Registry, actor: str, data: VialIn | dict[str, Any], *, idempotency_key: Any = None
) -> dict[str, Any]:
    """Register a patient's vial (module docstring: the rules). Returns the stored vial."""
    v = as_input(VialIn, data)
    if v.product_id not in product_ids():
        raise InvalidInput(
            "product_id", f"no product {v.product_id[:64]!r} in the catalogue", ", ".join(product_ids())
        )
    number, label, colour = strength_of(v.product_id, v.concentration)
    today = clock.today()
    refuse_expired("expiry_on", v.expiry_on, today)
    if v.opened_on is not None and v.opened_on > today:
        raise InvalidInput("opened_on", f"{v.opened_on.isoformat()} is in the future", "today or earlier")
    if v.opened_on is not None and v.opened_on > v.expiry_on:
        raise InvalidInput("opened_on", "is after the expiry date", f"on or before {v.expiry_on.isoformat()}")
    allergens = v.allergens or str(product(v.product_id)["name"])

    def fn(s: Session) -> dict[str, Any]:
        p = patient_by_id(s, v.patient_id)
        row = m.Vial(
            patient_id=p.id,
            product_id=v.product_id,
            strength=str(number),
            concentration=label,
            allergens=allergens,
            colour=colour,
            lot=v.lot,
            expiry_on=v.expiry_on,
            opened_on=v.opened_on,
            volume_ml=v.volume_ml,
            created_by=actor,
        )
        s.add(row)
        s.flush()
        return vial_row(row)

    return unit_of_work.write(reg, actor, "add_vial", fn, idempotency_key=idempotency_key)


def list_vials(reg: Registry, patient_id: Any, *, product_id: str | None = None) -> list[dict[str, Any]]:
    """The patient's live vials (newest first), each with its status today."""
    with reg.session() as s:
        p = patient_by_id(s, patient_id)
        where = [m.Vial.patient_id == p.id]
        if product_id:
            where.append(m.Vial.product_id == product_id)
        rows = live_rows(s, m.Vial, *where, order_by=(m.Vial.id.desc(),))
        return [vial_row(v) for v in rows]


def get_vial(reg: Registry, vial_id: Any) -> dict[str, Any]:
    """One vial (voided ones too) with its status; `LookupError` if there is none."""
    with reg.session() as s:
        v = s.get(m.Vial, int(vial_id))
        if v is None:
            raise LookupError(f"no vial {vial_id}")
        return vial_row(v)


def vial_id_of(value: Any) -> int:
    """A vial id as typed (``--vial``, a form field): a whole number from 1."""
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= 2**31 - 1:
        raise InvalidInput(
            "vial_id", f"not a vial id: {text[:20]!r}", "the id printed by `vial add` (1 or more)"
        )
    return int(text)


def vial_for_injection(s: Session, vial_id: int, course: m.Course, on: date) -> m.Vial:
    """The vial an injection of ``course`` on clinic date ``on`` is drawn from, after its checks (module
    docstring)."""
    v = s.get(m.Vial, vial_id)
    if v is None or v.patient_id != course.patient_id or v.voided:
        mine = live_rows(
            s, m.Vial, m.Vial.patient_id == course.patient_id, m.Vial.product_id == course.product_id
        )
        accepted = (
            ", ".join(f"{x.id} (strength {x.strength}, lot {x.lot})" for x in mine) or "register a vial first"
        )
        raise InvalidInput("vial_id", f"no vial {vial_id} of this patient", accepted)
    if course.product_id and v.product_id != course.product_id:
        raise InvalidInput(
            "vial_id",
            f"vial {v.id} holds {v.product_id}, the course is {course.product_id}",
            "a vial of the course's product",
        )
    refuse_expired("vial_id", v.expiry_on, on)
    return v


def live_vials(s: Session, course: m.Course) -> list[m.Vial]:
    """The patient's live vials of the course's product, newest first."""
    return live_rows(
        s,
        m.Vial,
        m.Vial.patient_id == course.patient_id,
        m.Vial.product_id == course.product_id,
        order_by=(m.Vial.id.desc(),),
    )


def patient_has_vials(s: Session, course: m.Course) -> bool:
    """True when the patient has a live vial of the course's product (then every injection names one)."""
    q = select(m.Vial.id).where(
        m.Vial.patient_id == course.patient_id,
        m.Vial.product_id == course.product_id,
        m.Vial.voided_at.is_(None),
    )
    return s.scalars(q.limit(1)).first() is not None


def is_new_vial(vial: m.Vial, earlier: list[m.Injection]) -> bool:
    """True when the last earlier injection at ``vial``'s strength was drawn from another vial (or, for an
    injection recorded without a vial, another lot): ``scit_adjustment`` ``new_vial``. False for the first
    injection at a strength (a new strength is the schedule's next step, not a new vial)."""
    same = [i for i in earlier if i.vial == vial.strength]
    if not same:
        return False
    last = same[-1]
    if last.vial_id is None:
        return bool(last.lot) and last.lot != vial.lot
    return last.vial_id != vial.id


def label_rows(
    reg: Registry, *, vial_ids: Sequence[Any] = (), patient_id: Any = None
) -> list[dict[str, Any]]:
    """What each vial label shows (`immunoplan.sheets.vial_labels`): the patient (name, else pseudonym; birth
    date; MRN), the product and allergens, the strength (vial number), concentration and colour, lot, expiry
    and opened on, and ``printed_on`` (the clinic's today).

    ``vial_ids``: those vials (each of ``patient_id`` when that is given too); else ``patient_id``: the
    patient's live vials in date. A label is not printed for an expired or voided vial (rule
    ``vial-expired``): naming one is refused (``vial_id``)."""
    if not vial_ids and patient_id in (None, ""):
        raise InvalidInput("vial_id", "which vials?", "one or more vial ids, or a patient")
    most = int(limit("vial_labels_per_print").high or 0)
    if len(vial_ids) > most:
        raise InvalidInput(
            "vial_id", f"{len(vial_ids)} labels asked for in one print", f"1 to {most} vial ids"
        )
    today = clock.today()
    with reg.session() as s:
        owner = None if patient_id in (None, "") else patient_by_id(s, patient_id)
        if vial_ids:
            chosen = []
            for raw in vial_ids:
                vid = vial_id_of(raw)
                v = s.get(m.Vial, vid)
                if v is None or v.voided or (owner is not None and v.patient_id != owner.id):
                    whose = f" of patient {owner.id}" if owner is not None else ""
                    raise InvalidInput("vial_id", f"no vial {vid}{whose}", "a vial id printed by `vial list`")
                refuse_expired("vial_id", v.expiry_on, today)
                chosen.append(v)
        else:
            assert owner is not None
            chosen = [
                v
                for v in live_rows(s, m.Vial, m.Vial.patient_id == owner.id, order_by=(m.Vial.id.desc(),))
                if v.expiry_on >= today
            ]
            if not chosen:
                raise InvalidInput(
                    "patient", f"patient {owner.id} has no vial in date", "register a vial first (`vial add`)"
                )
        out = []
        for v in chosen:
            p = s.get(m.Patient, v.patient_id)
            assert p is not None
            name = str(product(v.product_id)["name"]) if v.product_id in product_ids() else v.product_id
            out.append(
                {
                    "vial_id": v.id,
                    "patient_id": p.id,
                    "patient_name": p.display_name or p.pseudo_id,
                    "pseudo_id": p.pseudo_id,
                    "birth_date": p.birth_date.isoformat() if p.birth_date else None,
                    "mrn": p.mrn,
                    "product_id": v.product_id,
                    "product_name": name,
                    "allergens": v.allergens,
                    "strength": v.strength,
                    "concentration": v.concentration,
                    "colour": v.colour,
                    "lot": v.lot,
                    "expiry_on": v.expiry_on.isoformat(),
                    "opened_on": v.opened_on.isoformat() if v.opened_on else None,
                    "volume_ml": v.volume_ml,
                    "printed_on": today.isoformat(),
                }
            )
        return out


def product_choices() -> list[dict[str, Any]]:
    """The catalogue products a vial can be registered for, each with its vials (number, concentration as
    `strength_of` accepts and stores it, colour): the choices of a vial form."""
    out = []
    for pid in product_ids():
        p = product(pid)
        unit = str(p["unit"])
        out.append(
            {
                "id": pid,
                "name": str(p["name"]),
                "unit": unit,
                "vials": [
                    {
                        "vial": v.vial,
                        "concentration": f"{v.units_per_ml.normalize():f} {unit}/mL",
                        "colour": v.colour,
                    }
                    for v in product_vials(pid)
                ],
            }
        )
    return out


def vials_view(reg: Registry, patient_id: Any) -> dict[str, Any]:
    """A patient's vials page: the patient (name, MRN, birth date), the live vials with their status today
    (newest first, each with its product's name), the catalogue choices (`product_choices`) and the product
    of the patient's newest immunotherapy course with a catalogue product (the form's default)."""
    ids = product_ids()
    with reg.session() as s:
        p = patient_by_id(s, patient_id)
        rows = live_rows(s, m.Vial, m.Vial.patient_id == p.id, order_by=(m.Vial.id.desc(),))
        courses = sorted(p.courses, key=lambda c: (c.created_at, c.id), reverse=True)
        default = next((c.product_id for c in courses if c.product_id in ids), None)
        vials = []
        for v in rows:
            row = vial_row(v)
            row["product_name"] = str(product(v.product_id)["name"]) if v.product_id in ids else v.product_id
            vials.append(row)
        return {
            "patient_id": p.id,
            "pseudo_id": p.pseudo_id,
            "display_name": p.display_name,
            "mrn": p.mrn,
            "birth_date": p.birth_date,
            "on": clock.today(),
            "vials": vials,
            "products": product_choices(),
            "default_product_id": default or (ids[0] if ids else None),
        }
