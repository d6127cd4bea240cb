"""``immunoplan vial add|list|show|label``: a patient's vials of an immunotherapy product through the service
layer (`immunoplan.services.records.vials`), and their labels (`immunoplan.sheets.vial_labels`).

The rules are the service's: the product is a catalogue product and the concentration one of its vials
(the vial number or its concentration), an expired vial is refused, and so on. A refusal exits 2 with one
stderr line naming the field and the accepted values. Dates are clinic dates (``IMMUNOPLAN_TIMEZONE``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from immunoplan.cli.output import console
from immunoplan.cli.registry_options import (
    PATIENT_OPT,
    RegistryCall,
    id_option,
    not_blank,
    reads,
    validated,
    writes,
)
from immunoplan.errors import InvalidInput

vial_app = typer.Typer(
    help="A patient's vials (product, strength, lot, expiry): register, list, show, print labels.",
    no_args_is_help=True,
)

VIAL_OPT = id_option("--vial", "Vial id (as printed by `vial add` / `vial list`).")


def _render_vial(v: dict[str, Any]) -> None:
    flag = "[bold red]expired[/bold red]" if v["status"] == "expired" else v["status"]
    console.print(
        f"[bold]vial {v['id']}[/bold] patient {v['patient_id']} · {v['product_id']} strength {v['strength']} "
        f"({v['concentration']}, {v['colour'] or 'no colour'}) · lot {v['lot']} · expires {v['expiry_on']} "
        f"({flag}, {v['days_to_expiry']} days)"
        + (f" · opened {v['opened_on']}" if v.get("opened_on") else "")
        + (" [replayed: already registered with this key]" if v.get("replayed") else "")
    )


@vial_app.command("add")
@writes
def add(
    patient: int = PATIENT_OPT,
    product: str = typer.Option(
        ...,
        "--product",
        help="Catalogue product id (scit_products, e.g. alutard-sq-hdm).",
        callback=not_blank,
    ),
    concentration: str = typer.Option(
        ...,
        "--concentration",
        help="The vial number (4) or its concentration (100000 SQ-U/mL).",
        callback=not_blank,
    ),
    lot: str = typer.Option(..., "--lot", help="Lot number printed on the vial.", callback=not_blank),
    expiry: str = typer.Option(
        ..., "--expiry", help="Expiry date printed on the vial (YYYY-MM-DD).", callback=not_blank
    ),
    opened_on: str = typer.Option(None, "--opened-on", help="Date the vial was opened (YYYY-MM-DD)."),
    volume_ml: str = typer.Option(None, "--volume-ml", help="Fill volume of the vial (mL)."),
    allergens: str = typer.Option(None, "--allergens", help="Allergen(s) (default: the product's name)."),
    *,
    call: RegistryCall,
) -> None:
    """Register a patient's vial; prints the stored vial with its ``id``, ``status``, ``days_to_expiry``."""
    from immunoplan.services.records import vials

    data = validated(
        vials.VialIn,
        patient_id=patient,
        product_id=product.strip(),
        concentration=concentration,
        lot=lot,
        expiry_on=expiry,
        opened_on=opened_on,
        volume_ml=volume_ml,
        allergens=allergens,
    )
    call.emit(call.write(vials.add_vial, data), _render_vial)


def _render_list(r: dict[str, Any]) -> None:
    t = Table(title=f"Vials of patient {r['patient_id']} (clinic date {r['on']})")
    for col in ("id", "strength", "concentration", "colour", "lot", "expiry", "days left", "status"):
        t.add_column(col, no_wrap=col in ("id", "strength", "expiry", "days left", "status"))
    for v in r["vials"]:
        expired = v["status"] == "expired"
        t.add_row(
            str(v["id"]),
            f"vial {v['strength']}",
            v["concentration"] or "",
            v["colour"] or "",
            v["lot"],
            v["expiry_on"],
            str(v["days_to_expiry"]),
            "[bold red]EXPIRED[/bold red]" if expired else "in date",
        )
    console.print(t if r["vials"] else f"patient {r['patient_id']} has no vials registered")


def _list(reg: Any, patient: int, product: str | None) -> dict[str, Any]:
    from immunoplan import clock
    from immunoplan.services.records import vials

    rows = vials.list_vials(reg, patient, product_id=product)
    return {"patient_id": patient, "product_id": product, "on": clock.today(), "vials": rows}


@vial_app.command("list")
@reads
def list_cmd(
    patient: int = PATIENT_OPT,
    product: str = typer.Option(None, "--product", help="Only this product's vials."),
    *,
    call: RegistryCall,
) -> None:
    """A patient's vials (not voided), newest first, each with its status on the clinic's today."""
    call.emit(call.read(_list, patient, product), _render_list)


def _show(reg: Any, vial: int) -> dict[str, Any]:
    from immunoplan.services.records import vials

    try:
        return vials.get_vial(reg, vial)
    except LookupError:
        raise InvalidInput(
            "--vial", f"no vial {vial} in the registry", "a vial id printed by `vial list`"
        ) from None


@vial_app.command("show")
@reads
def show(vial: int = VIAL_OPT, *, call: RegistryCall) -> None:
    """One vial (voided ones too) with its status on the clinic's today."""
    call.emit(call.read(_show, vial), _render_vial)


def _labels(reg: Any, vial_ids: list[str], patient: int | None, layout: str, out: Path) -> dict[str, Any]:
    from immunoplan.services.records import vials
    from immunoplan.sheets import vial_labels

    if layout not in vial_labels.LAYOUTS:
        raise InvalidInput("--layout", f"unknown layout {layout!r}", ", ".join(vial_labels.LAYOUTS))
    rows = vials.label_rows(reg, vial_ids=vial_ids, patient_id=patient)
    path = vial_labels.write_vial_labels(out, rows, layout=layout)
    return {
        "out": str(path),
        "layout": layout,
        "labels": len(rows),
        "pages": vial_labels.page_count(len(rows), layout),
        "vial_ids": [r["vial_id"] for r in rows],
    }


@vial_app.command("label")
@reads
def label(
    vial: list[str] = typer.Option(None, "--vial", help="Vial id (repeat for several)."),
    patient: int = id_option("--patient", "All of this patient's vials in date.", required=False),
    layout: str = typer.Option(
        "label", "--layout", help="label: one 54 x 25 mm label per page; a4: 21 per A4."
    ),
    out: Path = typer.Option(..., "--out", help="File to write: .pdf (or .html)."),
    *,
    call: RegistryCall,
) -> None:
    """Print vial labels (patient, content, strength and colour, lot, expiry) for the vials given, or for all
    of a patient's vials in date. Expired and voided vials get no label."""
    if not vial and patient is None:
        raise InvalidInput("--vial", "which vials?", "--vial ID (repeat), or --patient ID")
    result = call.read(_labels, list(vial or []), patient, layout, out)
    call.emit(result, lambda r: console.print(f"{r['labels']} label(s), {r['pages']} page(s): {r['out']}"))


def register(app: typer.Typer) -> None:
    app.add_typer(vial_app, name="vial")
