"""The front desk on the command line (`immunoplan.services.records.front_desk`):

- ``due [--on YYYY-MM-DD] [--product P] [--status due|late] [--csv FILE] --json``: the late-shot list, who is
  due or late, how late and what the missed-dose rule will do to the next dose (``--as-of`` is the old name
  of ``--on``; ``--window-days``/``--grace-days`` are the clinic's due/late policy);
- ``no-show record --course ID [--due-on YYYY-MM-DD] [--note TEXT] --json``: the patient did not come;
- ``reminders (--ics FILE | --csv FILE) [--patient ID] [--on DATE] [--days-ahead N] --json``: reminders as an
  iCalendar file (no clinical detail: it leaves the hospital) and a CSV for a mail merge.

Dates are clinic dates (``IMMUNOPLAN_TIMEZONE``). A refusal exits 2 with one stderr line naming the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from immunoplan.cli.output import console, print_warnings
from immunoplan.cli.registry_options import COURSE_OPT, RegistryCall, id_option, reads, validated, writes
from immunoplan.errors import InvalidInput

no_show_app = typer.Typer(
    help="No-shows: record that a patient did not come to a due immunotherapy visit.", no_args_is_help=True
)


def _write_file(flag: str, path: Path, content: str | bytes) -> str:
    """Write an export; an unwritable path is one stderr line naming the option (exit 2)."""
    try:
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="")
    except OSError as exc:
        raise InvalidInput(flag, f"cannot write {str(path)[:200]!r}: {exc.strerror or exc}") from None
    return str(path)


def _dose_text(d: dict[str, Any] | None) -> str:
    if not d:
        return "-"
    return f"{d.get('dose')} {d.get('unit')} ({d.get('volume_ml')} mL)"


def _render_due(r: dict[str, Any]) -> None:
    """One line per course (a terminal is too narrow for a table of rules): who, how late, the next dose and
    the rule that fires."""
    console.print(f"[bold]injections due by {r['on']}[/bold] ({r['clinic_zone']}): {len(r['injections'])}")
    for x in r["injections"]:
        nxt = x["next"] or {}
        rule = nxt.get("rule") or {}
        who = x["pseudo_id"] + (f" ({x['display_name']})" if x.get("display_name") else "")
        dose = _dose_text(nxt.get("dose")) if nxt.get("kind") == "dose" else str(nxt.get("kind"))
        what = f"{who} course {x['course_id']} {x['product'] or x['kind']}: due {x['next_due_on']}"
        console.print(
            f"{escape(what)}, {x['days_overdue']} days overdue, [bold]{x['status']}[/bold]"
            + (" \\[no-show recorded]" if x["no_shows"] else ""),
            highlight=False,
        )
        line = f"  next dose {dose}"
        if rule:
            line += (
                f"; rule {rule.get('id')}: {rule.get('text')} [{rule.get('status')}; {rule.get('source')}]"
            )
        console.print(line, highlight=False, markup=False)
        print_warnings(nxt.get("warnings") or [])
    if r["truncated"]:
        console.print(f"[yellow]showing {len(r['injections'])} of {r['total']}: narrow the filters[/yellow]")
    if r.get("csv"):
        console.print(f"CSV written to {r['csv']}")


@reads
def due(
    on: str = typer.Option(None, "--on", "--as-of", help="Clinic date to list (YYYY-MM-DD, default today)."),
    product: str = typer.Option(None, "--product", help="Only this catalogue product (e.g. alutard-sq-hdm)."),
    status: str = typer.Option(None, "--status", help="Only due or only late."),
    window_days: int = typer.Option(
        0, "--window-days", help="Also list injections due within this many days."
    ),
    grace_days: int = typer.Option(
        0, "--grace-days", help="Days past due before an injection counts as late."
    ),
    csv: Path = typer.Option(None, "--csv", help="Also write the list as CSV to this file."),
    *,
    call: RegistryCall,
) -> None:
    """The late-shot list: due and late immunotherapy injections, how late, and the next dose the missed-dose
    rule gives if the patient comes on that date (rule id, text, source, status); no-shows recorded."""
    from immunoplan.services.records import front_desk

    listing = call.read(
        lambda reg: front_desk.late_shot_list(
            reg, on=on, product_id=product, status=status, grace_days=grace_days, window_days=window_days
        )
    )
    if csv is not None:
        listing["csv"] = _write_file("--csv", csv, front_desk.late_shot_csv(listing))
    call.emit(listing, _render_due)


def _render_no_show(r: dict[str, Any]) -> None:
    console.print(
        f"[bold]no-show {r['id']}[/bold] course {r['course_id']} ({r['pseudo_id']}) due {r['due_on']}, "
        f"recorded by {r['recorded_by']} at {r['recorded_at']}"
        + (" [replayed: already recorded with this key]" if r.get("replayed") else "")
    )
    print_warnings([] if not r.get("note") else [f"note: {r['note']}"])


@no_show_app.command("record")
@writes
def no_show_record(
    course: int = COURSE_OPT,
    due_on: str = typer.Option(
        None, "--due-on", help="The due date missed (YYYY-MM-DD, clinic date; default the course's due date)."
    ),
    note: str = typer.Option(None, "--note", help="A note (e.g. phoned, rebooked)."),
    *,
    call: RegistryCall,
) -> None:
    """Record a no-show: the patient did not come to the course's due visit (changes no dose)."""
    from immunoplan.services.records import front_desk

    data = validated(front_desk.NoShowIn, course_id=course, due_on=due_on, note=note)
    call.emit(call.write(front_desk.record_no_show, data), _render_no_show)


def _render_reminders(r: dict[str, Any]) -> None:
    console.print(
        f"[bold]{r['count']} reminder(s)[/bold] due {r['from']} to {r['to']} ({r['clinic_zone']})"
        + "".join(f"; {k} written to {r[k]}" for k in ("ics", "csv") if r.get(k))
    )


@reads
def reminders(
    ics: Path = typer.Option(None, "--ics", help="Write an iCalendar file (one all-day event per visit)."),
    csv: Path = typer.Option(None, "--csv", help="Write a CSV for a mail merge."),
    patient: int = id_option("--patient", "Only this patient (registry id).", required=False),
    on: str = typer.Option(None, "--on", help="From this clinic date (YYYY-MM-DD, default today)."),
    days_ahead: int = typer.Option(14, "--days-ahead", help="Visits due up to this many days after --on."),
    *,
    call: RegistryCall,
) -> None:
    """Reminders of due immunotherapy visits: an .ics file (per patient with --patient; no clinical detail)
    and/or a mail-merge CSV (docs/injection-day.md lists its columns)."""
    from datetime import timedelta

    from immunoplan import clock
    from immunoplan.services.records import front_desk

    if ics is None and csv is None:
        raise InvalidInput("--ics", "give --ics FILE and/or --csv FILE", "--ics FILE, --csv FILE")

    def read(reg: Any) -> dict[str, Any]:
        try:
            rows = front_desk.reminder_rows(reg, patient_id=patient, on=on, days_ahead=days_ahead)
            out: dict[str, Any] = {}
            if ics is not None:
                data = front_desk.reminders_ics(reg, patient_id=patient, on=on, days_ahead=days_ahead)
                out["ics"] = _write_file("--ics", ics, data)
        except InvalidInput as exc:
            flag = {"patient_id": "--patient", "days_ahead": "--days-ahead", "on": "--on"}.get(exc.field)
            if flag is None:
                raise
            raise InvalidInput(flag, exc.reason, exc.accepted) from None
        if csv is not None:
            out["csv"] = _write_file("--csv", csv, front_desk.reminders_csv_text(rows))
        start = clock.parse_date("--on", on) if on else clock.today()
        return {
            "from": start.isoformat(),
            "to": (start + timedelta(days=days_ahead)).isoformat(),
            "clinic_zone": clock.zone_name(),
            "patient_id": patient,
            "count": len(rows),
            **out,
            "reminders": rows,
        }

    call.emit(call.read(read), _render_reminders)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    app.command("due")(due)
    app.add_typer(no_show_app, name="no-show")
    app.command("reminders")(reminders)
