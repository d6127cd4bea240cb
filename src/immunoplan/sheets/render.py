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
    sheet: str, data: dict[str, Any], *, page_size: str = "A4", generated: datetime | None = None
) -> str:
    """HTML of ``sheet`` (one of `SHEETS`) for the service result dict ``data``."""
    check_choice("sheet", sheet, SHEETS)
    check_choice("page_size", page_size, PAGE_SIZES)
    template = _env().get_template(f"{sheet}.html")
    return template.render(
        d=plain(data),
        page_size=page_size,
        version=__version__,
        generated=clock.format_local(generated or clock.now()),
    )


def render_pdf(
    sheet: str, data: dict[str, Any], *, page_size: str = "A4", generated: datetime | None = None
) -> bytes:
    """PDF bytes of ``sheet`` (WeasyPrint)."""
    from weasyprint import HTML  # imported lazily: slow to import

    html = render_html(sheet, data, page_size=page_size, generated=generated)
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
