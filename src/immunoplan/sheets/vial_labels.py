"""Vial labels (PDF through WeasyPrint, or HTML): one label per registered vial, with the patient (name,
birth date, MRN), the content (product, allergens), the strength (vial number) and concentration, the colour
where the product uses one (a coloured band with the colour's name in words: never colour alone), lot, expiry,
opened on, and "immunoplan" with the print date (the clinic's date).

Two layouts (`LAYOUTS`):

- ``label``: one label per page, 54 x 25 mm (2-1/8 x 1 in), the size of the Dymo 30336 "small multipurpose"
  label that LabelWriter printers take (also sold for Zebra/Brother roll printers). It is the size practice
  systems print vial labels on: 54 mm wraps around a 5 mL multi-dose allergen vial (about 23 mm across, so
  about 72 mm round) without covering the whole glass, so the liquid stays visible.
- ``a4``: an A4 sheet of 21 labels, 3 x 7 of 63.5 x 38.1 mm (the Avery L7160 / J8160 grid: 7.25 mm side
  and 15.15 mm top margins, 2.54 mm between columns, no gap between rows), for a clinic's laser printer.

Text never runs off a label: every line has a character budget per layout (the template truncates longer text
with an ellipsis) and the label box clips (``overflow: hidden``) as a second guard. The input is
`immunoplan.services.records.vials.label_rows`; nothing here checks a clinical rule (the service refuses
expired and voided vials).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from immunoplan import __version__, clock
from immunoplan.errors import InvalidInput
from immunoplan.validation import check_choice

LAYOUTS: dict[str, dict[str, Any]] = {
    "label": {
        "page": "54mm 25mm",
        "width_mm": 54,
        "height_mm": 25,
        "per_page": 1,
        "columns": 1,
        "font_pt": 6.2,
        "line_height": 1.18,
        "big_pt": 12,
        "band_mm": 10,
        "chars": 37,  # characters of one line beside the band (DejaVu Sans Condensed 6.2 pt in 40.5 mm)
        "chars_bold": 31,
    },
    "a4": {
        "page": "A4",
        "width_mm": 63.5,
        "height_mm": 38.1,
        "per_page": 21,
        "columns": 3,
        "font_pt": 7.6,
        "line_height": 1.4,
        "big_pt": 18,
        "band_mm": 12,
        "chars": 37,  # DejaVu Sans Condensed 7.6 pt in 47 mm
        "chars_bold": 31,
    },
}

#: The colour words of the product catalogue (``scit_products`` vial ``colour``) drawn as a band, with a text
#: colour readable on it. Any other value (``maintenance concentration``) is printed as words without a band.
BAND_COLOURS: dict[str, tuple[str, str]] = {
    "grey": ("#8c8c8c", "#000000"),
    "gray": ("#8c8c8c", "#000000"),
    "silver": ("#c0c0c0", "#000000"),
    "white": ("#ffffff", "#000000"),
    "green": ("#2e8540", "#ffffff"),
    "orange": ("#f28c00", "#000000"),
    "red": ("#d0021b", "#ffffff"),
    "blue": ("#1f5fbf", "#ffffff"),
    "yellow": ("#ffd60a", "#000000"),
    "purple": ("#7b3fa0", "#ffffff"),
    "black": ("#000000", "#ffffff"),
}


def _env() -> Environment:
    return Environment(
        loader=PackageLoader("immunoplan.sheets", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _band(colour: Any) -> dict[str, str] | None:
    word = str(colour or "").strip().lower()
    if word not in BAND_COLOURS:
        return None
    fill, ink = BAND_COLOURS[word]
    return {"name": word, "fill": fill, "ink": ink}


def _prepared(label: dict[str, Any]) -> dict[str, Any]:
    out = {k: ("" if v is None else v) for k, v in label.items()}
    out["band"] = _band(label.get("colour"))
    allergens, name = str(out.get("allergens") or ""), str(out.get("product_name") or "")
    out["allergens_line"] = allergens if allergens and allergens != name else ""
    return out


def vial_labels_html(labels: list[dict[str, Any]], *, layout: str) -> str:
    """HTML of the labels (`label_rows` dicts) in ``layout`` (one of `LAYOUTS`)."""
    check_choice("layout", layout, tuple(LAYOUTS))
    spec = LAYOUTS[layout]
    rows = [_prepared(x) for x in labels]
    pages = [rows[i : i + spec["per_page"]] for i in range(0, len(rows), spec["per_page"])]
    return (
        _env()
        .get_template("vial-labels.html")
        .render(
            pages=pages,
            layout=layout,
            spec=spec,
            printed_on=clock.today().isoformat(),
            version=__version__,
        )
    )


def vial_labels_pdf(labels: list[dict[str, Any]], *, layout: str) -> bytes:
    """PDF bytes of the labels (WeasyPrint): ``label`` one 54 x 25 mm label a page, ``a4`` 21 an A4 sheet."""
    from weasyprint import HTML  # imported lazily: slow to import

    return bytes(HTML(string=vial_labels_html(labels, layout=layout)).write_pdf())


def page_count(n_labels: int, layout: str) -> int:
    """Pages ``n_labels`` labels take in ``layout``."""
    check_choice("layout", layout, tuple(LAYOUTS))
    per = int(LAYOUTS[layout]["per_page"])
    return -(-n_labels // per)


def write_vial_labels(path: str | Path, labels: list[dict[str, Any]], *, layout: str) -> Path:
    """Write the labels to ``path``: ``.pdf`` -> PDF, ``.html``/``.htm`` -> HTML (as `write_sheet`)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".pdf", ".html", ".htm"):
        raise InvalidInput("out", f"unknown file type {p.suffix!r}", ".pdf, .html")
    if not p.parent.exists():
        raise InvalidInput("out", f"folder {str(p.parent)!r} does not exist", "an existing folder")
    if suffix == ".pdf":
        p.write_bytes(vial_labels_pdf(labels, layout=layout))
    else:
        p.write_text(vial_labels_html(labels, layout=layout), encoding="utf-8")
    return p
