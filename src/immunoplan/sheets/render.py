"""Render protocol sheets to HTML and PDF."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from immunoplan import __version__, clock
from immunoplan.errors import InvalidInput
from immunoplan.validation import check_choice

SHEETS = ("rdd", "rdd-pharmacy", "rdd-nursing", "scit")
PAGE_SIZES = ("A4", "Letter")


def num(value: Any, places: int = 3) -> str:
    """Format a number with at most ``places`` decimals, no trailing zeros ('' for None)."""
    if value is None:
        return ""
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    q = d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    text = format(q, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def plain(obj: Any) -> Any:
    """Result objects -> dicts/lists (Decimals kept exact), so templates see one shape from CLI and web."""
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return plain(obj.to_dict())
    if is_dataclass(obj) and not isinstance(obj, type):
        return plain({f.name: getattr(obj, f.name) for f in fields(obj)})
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


SHEET_HEADER_KEYS = (
    "patient_name",
    "pseudo_id",
    "mrn",
    "birth_date",
    "weight_kg",
    "height_cm",
    "allergy_alert",
    "date",
    "cycle",
    "session_id",
    "course_id",
)


def rdd_context(d: dict[str, Any], prepared_at: datetime | None = None) -> dict[str, Any]:
    """A desensitization plan (``DesensitizationResult.to_dict()``, as stored or fresh) with everything the
    rdd sheets print: the patient header (``sheet``: blank, labelled lines when the plan has no patient),
    the drug's diluent/limits/stability, each bag's concentration against them, the drawn-volume roundings
    above the threshold, and ``prepared`` (prepared at / use by in clinic time when ``prepared_at`` is
    given). A stored plan from before these existed is completed from the reference data."""
    from immunoplan.clinical.desensitization import drug_data

    out = dict(d)
    given = out.get("sheet") or {}
    header = {k: given.get(k) for k in SHEET_HEADER_KEYS}
    header["blank"] = not given
    header["allergy_alert"] = header["allergy_alert"] or f"drug allergy: {out.get('drug', '')}"
    out["sheet"] = header
    dp = out.get("drug_preparation")
    if not dp:
        prep_obj = drug_data.drug_preparation(str(out.get("drug", "")))
        dp = plain(prep_obj.to_dict())
        out["drug_preparation"] = dp
        out["concentration_checks"] = plain(drug_data.concentration_checks(prep_obj, out.get("bags") or []))
    if out.get("preparation") and "dose_rounding_flags" not in out:
        out["dose_rounding_flags"] = plain(drug_data.dose_rounding_flags(out["preparation"]))
    out.setdefault("concentration_checks", [])
    out.setdefault("dose_rounding_flags", [])
    if not out.get("dose_rounding_threshold"):
        threshold, basis = drug_data.rounding_threshold()
        out["dose_rounding_threshold"] = {"value_pct": threshold, "basis": basis.to_dict()}
    plaus = out.get("dose_plausibility") or {}
    out["dose_plausibility_basis"] = list(plaus.get("basis") or [])
    out.setdefault("dose_confirmation", None)
    out.setdefault("session_reactions", [])
    out.setdefault("premedication", None)
    out.setdefault("warnings", [])
    out.setdefault("basis", [])
    hours = dp.get("room_temperature_hours")
    use_by = (
        drug_data.use_by(prepared_at, Decimal(str(hours)))
        if prepared_at is not None and hours is not None
        else None
    )
    out["prepared"] = {
        "prepared_at": clock.format_local(prepared_at) if prepared_at is not None else None,
        "use_by": clock.format_local(use_by) if use_by is not None else None,
    }
    return out


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("immunoplan.sheets", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = num
    return env


def render_html(
    sheet: str,
    data: dict[str, Any],
    *,
    page_size: str = "A4",
    generated: datetime | None = None,
    prepared_at: datetime | None = None,
) -> str:
    """HTML of ``sheet`` (one of `SHEETS`) for the service result dict ``data`` (rdd sheets: `rdd_context`;
    ``prepared_at`` prints the bags' use-by time)."""
    check_choice("sheet", sheet, SHEETS)
    check_choice("page_size", page_size, PAGE_SIZES)
    template = _env().get_template(f"{sheet}.html")
    d = plain(data)
    if sheet.startswith("rdd"):
        d = rdd_context(d, prepared_at)
    return template.render(
        d=d,
        page_size=page_size,
        version=__version__,
        generated=clock.format_local(generated or clock.now()),
    )


def render_pdf(
    sheet: str,
    data: dict[str, Any],
    *,
    page_size: str = "A4",
    generated: datetime | None = None,
    prepared_at: datetime | None = None,
) -> bytes:
    """PDF bytes of ``sheet`` (WeasyPrint)."""
    from weasyprint import HTML  # imported lazily: slow to import

    html = render_html(sheet, data, page_size=page_size, generated=generated, prepared_at=prepared_at)
    return HTML(string=html).write_pdf()


def write_sheet(path: str | Path, sheet: str, data: dict[str, Any], *, page_size: str = "A4") -> Path:
    """Write ``sheet`` to ``path``: ``.pdf`` -> PDF, ``.html``/``.htm`` -> HTML."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".pdf", ".html", ".htm"):
        raise InvalidInput("sheet", f"unknown file type {p.suffix!r}", ".pdf, .html")
    if not p.parent.exists():
        raise InvalidInput("sheet", f"folder {str(p.parent)!r} does not exist", "an existing folder")
    if suffix == ".pdf":
        p.write_bytes(render_pdf(sheet, data, page_size=page_size))
    else:
        p.write_text(render_html(sheet, data, page_size=page_size), encoding="utf-8")
    return p
