"""Printable sheets (HTML and PDF) for protocols: pharmacy bag preparation and nursing step timeline.

Jinja2 templates in ``sheets/templates``; PDF through WeasyPrint (A4 or Letter). The web app reuses
`render_html` for the same pages. Input is the ``to_dict()`` of a service result, so a sheet shows what
the CLI/API returned, including the basis and warnings.
"""

from .render import SHEETS, render_html, render_pdf, write_sheet

__all__ = ["SHEETS", "render_html", "render_pdf", "write_sheet"]
