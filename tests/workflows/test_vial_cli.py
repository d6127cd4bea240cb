"""``immunoplan vial add|list|show|label``: one JSON object with --json, exit 0 on success, exit 2 with one
stderr line naming the field (an expired vial, an unknown product, a concentration that is not a vial of the
product, a control character in the lot), a repeat with the same idempotency key writes one vial, and the
label PDF is written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from immunoplan import clock
from immunoplan.registry import models as m
from immunoplan.registry.db import open_registry
from immunoplan.services import records as rec


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("IMMUNOPLAN_TIMEZONE", "Europe/Oslo")
    path = tmp_path / "vials.sqlite"
    reg = open_registry(path)
    rec.register_patient(
        reg,
        "dr.a",
        pseudo_id="VC-1",
        mrn="77",
        display_name="Ola Nordmann",
        sex="male",
        birth_date="1980-05-05",
    )
    reg.dispose()
    with clock.frozen("2026-03-10T09:05"):
        yield path


def _vials(db: Path) -> int:
    reg = open_registry(db)
    try:
        with reg.session() as s:
            return int(s.scalar(select(func.count()).select_from(m.Vial)) or 0)
    finally:
        reg.dispose()


def _add(cli: Any, db: Path, *extra: Any, **opts: str) -> Any:
    args = {"--patient": "1", "--product": "alutard-sq-hdm", "--concentration": "4", "--lot": "ALK-1"}
    args.update({"--expiry": "2027-01-31"})
    args.update({f"--{k.replace('_', '-')}": v for k, v in opts.items()})
    flat = [x for kv in args.items() for x in kv]
    return cli("vial", "add", "--db", db, "--by", "nurse.kim", "--json", *flat, *extra)


def test_add_prints_the_stored_vial_with_its_id(cli: Any, db: Path) -> None:
    r = _add(cli, db, "--opened-on", "2026-03-01", "--volume-ml", "5", "--allergens", "D. pteronyssinus")
    assert r.code == 0, r.stderr
    j = r.json
    assert j["id"] == 1 and (j["strength"], j["concentration"], j["colour"]) == ("4", "100000 SQ-U/mL", "red")
    assert (j["lot"], j["expiry_on"], j["opened_on"], j["volume_ml"]) == (
        "ALK-1",
        "2027-01-31",
        "2026-03-01",
        5,
    )
    assert (
        j["allergens"] == "D. pteronyssinus" and j["created_by"] == "nurse.kim" and j["status"] == "in date"
    )


def test_the_same_idempotency_key_writes_one_vial(cli: Any, db: Path) -> None:
    first = _add(cli, db, "--idempotency-key", "vial-cli-key-1")
    again = _add(cli, db, "--idempotency-key", "vial-cli-key-1")
    assert first.code == again.code == 0 and first.json["id"] == again.json["id"]
    assert _vials(db) == 1


@pytest.mark.parametrize(
    ("opts", "field", "words"),
    [
        ({"expiry": "2026-03-09"}, "expiry_on", ["expired on 2026-03-09", "vial-expired", "2026-03-10"]),
        ({"product": "alutard-sq-grass"}, "product_id", ["alutard-sq-hdm", "hdm-tyrosine-ultrarush"]),
        ({"concentration": "50000"}, "concentration", ["4 = 100000 SQ-U/mL"]),
        ({"lot": "A\x01B"}, "lot", ["printable"]),
        ({"expiry": "31.01.2027"}, "expiry_on", []),
        ({"volume_ml": "0"}, "volume_ml", ["100"]),
        ({"lot": ""}, "--lot", []),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_the_field(
    cli: Any, db: Path, opts: dict[str, str], field: str, words: list[str]
) -> None:
    r = _add(cli, db, **opts)
    assert r.code == 2 and r.stdout == "" and r.stderr.count("\n") == 1, (r.stdout, r.stderr)
    assert r.stderr.startswith(f"error: {field}"), r.stderr
    assert all(w in r.stderr for w in words), r.stderr
    assert _vials(db) == 0


def test_an_unknown_patient_exits_2(cli: Any, db: Path) -> None:
    r = _add(cli, db, **{"patient": "9"})
    assert r.code == 2 and "patient" in r.stderr and r.stderr.count("\n") == 1


def test_list_and_show(cli: Any, db: Path) -> None:
    _add(cli, db, expiry="2026-03-20", lot="SOON")
    _add(cli, db, concentration="2", lot="G-2")
    with clock.frozen("2026-03-25T09:00"):
        r = cli("vial", "list", "--patient", 1, "--db", db, "--json")
        assert r.code == 0, r.stderr
        j = r.json
        assert j["patient_id"] == 1 and [v["lot"] for v in j["vials"]] == ["G-2", "SOON"]
        assert [(v["status"], v["days_to_expiry"]) for v in j["vials"]] == [("in date", 312), ("expired", -5)]
        table = cli("vial", "list", "--patient", 1, "--db", db)
        assert (
            table.code == 0 and "EXPIRED" in table.stdout and "-5" in table.stdout and "G-2" in table.stdout
        )
        shown = cli("vial", "show", "--vial", 1, "--db", db, "--json")
        assert shown.code == 0 and shown.json["status"] == "expired" and shown.json["lot"] == "SOON"
    r = cli("vial", "list", "--patient", 1, "--product", "hdm-tyrosine-ultrarush", "--db", db, "--json")
    assert r.code == 0 and r.json["vials"] == []
    r = cli("vial", "show", "--vial", 99, "--db", db, "--json")
    assert r.code == 2 and r.stderr.startswith("error: --vial: no vial 99")


def test_label_writes_a_pdf_in_either_layout(cli: Any, db: Path, tmp_path: Path) -> None:
    import pypdfium2 as pdfium

    for lot in ("L-1", "L-2", "L-3"):
        _add(cli, db, lot=lot)
    out = tmp_path / "labels.pdf"
    r = cli(
        "vial", "label", "--vial", 1, "--vial", 3, "--layout", "label", "--out", out, "--db", db, "--json"
    )
    assert r.code == 0, r.stderr
    assert r.json == {"out": str(out), "layout": "label", "labels": 2, "pages": 2, "vial_ids": [1, 3]}
    assert out.read_bytes().startswith(b"%PDF") and len(pdfium.PdfDocument(out)) == 2
    sheet = tmp_path / "sheet.pdf"
    r = cli("vial", "label", "--patient", 1, "--layout", "a4", "--out", sheet, "--db", db, "--json")
    assert r.code == 0 and r.json["labels"] == 3 and r.json["pages"] == 1
    text = pdfium.PdfDocument(sheet)[0].get_textpage().get_text_range()
    assert "Ola Nordmann" in text and "MRN 77" in text and "L-2" in text


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((), "--vial"),
        (("--vial", "1", "--layout", "poster"), "--layout"),
        (("--vial", "7"), "vial_id"),
        (("--vial", "x"), "vial_id"),
        (("--patient", "1", "--out-of", "x"), ""),
    ],
)
def test_label_refusals_exit_2(cli: Any, db: Path, tmp_path: Path, args: tuple[str, ...], field: str) -> None:
    _add(cli, db)
    out = tmp_path / "x.pdf"
    r = cli("vial", "label", *args, "--out", out, "--db", db, "--json")
    assert r.code == 2 and r.stderr.count("\n") == 1 and r.stderr.startswith(f"error: {field}"), r.stderr
    assert not out.exists()


def test_label_refuses_an_expired_vial_and_a_missing_folder(cli: Any, db: Path, tmp_path: Path) -> None:
    _add(cli, db, expiry="2026-03-11")
    with clock.frozen("2026-03-12T09:00"):
        r = cli("vial", "label", "--vial", 1, "--out", tmp_path / "x.pdf", "--db", db)
    assert r.code == 2 and "vial-expired" in r.stderr
    r = cli("vial", "label", "--vial", 1, "--out", tmp_path / "no" / "x.pdf", "--db", db)
    assert r.code == 2 and r.stderr.startswith("error: out: folder")
