"""Vial labels rendered (`immunoplan.sheets.vial_labels`): PDF bytes, page count and page size per layout,
every character inside its label (long text cut with an ellipsis, never running off), the lines that must
never be cut kept whole (expiry, birth date, concentration), and the colour band drawn in its colour."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pypdfium2 as pdfium
import pytest

from immunoplan.errors import InvalidInput
from immunoplan.sheets.vial_labels import (
    BAND_COLOURS,
    LAYOUTS,
    page_count,
    vial_labels_html,
    vial_labels_pdf,
)

MM = 72 / 25.4  # points per millimetre

LABEL: dict[str, Any] = {
    "vial_id": 1,
    "patient_id": 1,
    "patient_name": "Kari Nordmann",
    "pseudo_id": "P-1",
    "birth_date": "1990-01-01",
    "mrn": "12345678",
    "product_id": "alutard-sq-hdm",
    "product_name": "Alutard SQ house dust mite (ALK)",
    "allergens": "Alutard SQ house dust mite (ALK)",
    "strength": "4",
    "concentration": "100000 SQ-U/mL",
    "colour": "red",
    "lot": "ALK-2026-0042",
    "expiry_on": "2027-06-30",
    "opened_on": "2026-11-20",
    "volume_ml": Decimal("5"),
    "printed_on": "2026-12-01",
}
LONG = {
    **LABEL,
    "vial_id": 2,
    "patient_name": "Maximiliane Wilhelmina von Hohenzollern-Sigmaringen Østergaard-Wennerström",
    "mrn": "W" * 64,
    "allergens": "W" * 200,
    "lot": "W" * 64,
    "opened_on": None,
    "birth_date": "1931-12-31",
}
ULTRA = {
    **LABEL,
    "vial_id": 3,
    "product_id": "hdm-tyrosine-ultrarush",
    "product_name": "Tyrosine-adsorbed house dust mite extract, 1-day ultra-rush (Lee 2019)",
    "allergens": "Tyrosine-adsorbed house dust mite extract, 1-day ultra-rush (Lee 2019)",
    "strength": "1",
    "concentration": "1 mL of maintenance concentration/mL",
    "colour": "maintenance concentration",
    "mrn": None,
}


def _doc(labels: list[dict[str, Any]], layout: str) -> pdfium.PdfDocument:
    pdf = vial_labels_pdf(labels, layout=layout)
    assert pdf.startswith(b"%PDF")
    return pdfium.PdfDocument(pdf)


def _text(page: Any) -> str:
    return str(page.get_textpage().get_text_range()).replace("\r\n", "\n")


def _char_boxes(page: Any) -> list[tuple[str, tuple[float, float, float, float]]]:
    tp = page.get_textpage()
    out = []
    for i in range(tp.count_chars()):
        ch = tp.get_text_range(i, 1)
        if ch.strip():
            out.append((ch, tp.get_charbox(i)))
    return out


def test_label_layout_is_one_label_a_page_at_the_dymo_size() -> None:
    doc = _doc([LABEL, LONG, ULTRA], "label")
    assert len(doc) == 3 == page_count(3, "label")
    for page in doc:
        w, h = page.get_size()
        assert (round(w / MM), round(h / MM)) == (54, 25)


def test_a4_layout_is_21_labels_a_sheet() -> None:
    labels = [{**LABEL, "vial_id": i, "lot": f"LOT-{i:02d}"} for i in range(1, 23)]
    doc = _doc(labels, "a4")
    assert len(doc) == 2 == page_count(22, "a4") and page_count(21, "a4") == 1
    assert [round(x) for x in doc[0].get_size()] == [595, 842]
    first, second = _text(doc[0]), _text(doc[1])
    assert first.count("Kari Nordmann") == 21 and "LOT-21" in first and "LOT-22" not in first
    assert second.count("Kari Nordmann") == 1 and "LOT-22" in second


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_character_stays_inside_its_label(layout: str) -> None:
    labels = [LABEL, LONG, ULTRA] * (7 if layout == "a4" else 1)
    spec = LAYOUTS[layout]
    w, h = spec["width_mm"] * MM, spec["height_mm"] * MM
    for page in _doc(labels, layout):
        _, page_h = page.get_size()
        boxes = _char_boxes(page)
        assert boxes
        for ch, (left, bottom, right, top) in boxes:
            if layout == "label":
                cells = [(0.0, 0.0)]
            else:  # the Avery L7160 grid: 7.25 mm side, 15.15 mm top margin, 66.04 mm column pitch
                cells = [
                    ((7.25 + c * 66.04) * MM, (15.15 + r * 38.1) * MM) for r in range(7) for c in range(3)
                ]
            inside = any(
                x - 0.01 <= left
                and right <= x + w + 0.01
                and y - 0.01 <= page_h - top
                and page_h - bottom <= y + h + 0.01
                for x, y in cells
            )
            assert inside, (layout, ch, (left, bottom, right, top))


def test_long_text_is_cut_with_an_ellipsis_and_what_must_not_be_cut_is_whole() -> None:
    long_page, ultra_page = _doc([LONG, ULTRA], "label")
    text = _text(long_page)
    assert "Maximiliane" in text and "Wennerström" not in text and "…" in text
    assert "W" * 40 not in text  # the 64-character lot and MRN are cut, the label is not overrun
    assert "Exp 2027-06-30" in text and "born 1931-12-31" in text and "opened ____" in text
    assert "100000 SQ-U/mL" in text and "immunoplan · printed 2026-12-01" in text
    ultra = " ".join(_text(ultra_page).split())
    assert "1 mL of maintenance concentration/mL" in ultra  # wrapped over two lines, not cut
    assert "MRN —" in ultra and "marking" not in ultra  # the 'colour' is already in the concentration


def test_the_band_is_drawn_in_its_colour_with_the_colour_named_in_words() -> None:
    doc = _doc(
        [LABEL, {**LABEL, "strength": "2", "concentration": "1000 SQ-U/mL", "colour": "green"}], "label"
    )
    for page, colour in zip(doc, ("red", "green"), strict=True):
        assert colour.upper() in _text(page)
        image = page.render(scale=4).to_pil().convert("RGB")
        band_x, band_y = int(5 * MM * 4), int(22 * MM * 4)  # inside the band, below its text
        fill = BAND_COLOURS[colour][0]
        expected = tuple(int(fill[i : i + 2], 16) for i in (1, 3, 5))
        got = image.getpixel((band_x, band_y))
        assert all(abs(a - b) <= 8 for a, b in zip(got, expected, strict=True)), (colour, got)
    plain = _doc([ULTRA], "label")[0]
    image = plain.render(scale=4).to_pil().convert("RGB")
    assert image.getpixel((int(5 * MM * 4), int(22 * MM * 4))) == (255, 255, 255)  # no colour: no band fill


def test_html_variant_and_an_unknown_layout() -> None:
    html = vial_labels_html([LABEL], layout="a4")
    assert 'data-vial="1"' in html and "RED" not in html and ">red<" in html  # upper-cased by CSS only
    with pytest.raises(InvalidInput) as e:
        vial_labels_html([LABEL], layout="poster")
    assert e.value.field == "layout"
