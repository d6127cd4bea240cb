"""``immunoplan void`` and ``immunoplan amend``: corrections, never deletions, through the service layer
(`immunoplan.services.records.corrections`).

- ``void --kind K --id N --reason TEXT``: the entry stays in the registry, voided (who, when, why); analyses,
  exports, next-dose rules and due lists ignore it. A voided visit voids its results with it.
- ``amend --kind K --id N --set field=value [--set ...] --reason TEXT``: the fields change in place,
  re-validated as when recording; the original stays in the audit trail.

``K`` is injection, visit, reaction, omalizumab, step, measurement or questionnaire. A refusal (no reason, an
unknown field, a value out of its limit, an entry already voided) exits 2 with one stderr line.
"""

from __future__ import annotations

from typing import Any

import typer

from immunoplan.cli.output import console
from immunoplan.cli.registry_options import RegistryCall, id_option, writes
from immunoplan.errors import InvalidInput

KINDS_HELP = "injection, visit, reaction, omalizumab, step, measurement or questionnaire"
KIND_OPT = typer.Option(..., "--kind", help=f"What to correct: {KINDS_HELP}.")
ID_OPT = id_option("--id", "The entry's id (as printed when it was recorded).")
REASON_OPT = typer.Option(..., "--reason", help="Why (required; stored with the correction).")


def parse_sets(sets: list[str]) -> dict[str, str]:
    """``["lot=L-7", "site=left arm"]`` -> ``{"lot": "L-7", "site": "left arm"}`` (``field=`` clears)."""
    out: dict[str, str] = {}
    for item in sets:
        field, sep, value = item.partition("=")
        field = field.strip()
        if not sep or not field:
            raise InvalidInput("--set", f"cannot read {item[:60]!r}", "field=value, e.g. --set lot=L-7")
        if field in out:
            raise InvalidInput("--set", f"{field} is given twice", "each field once")
        out[field] = value.strip()
    if not out:
        raise InvalidInput("--set", "give at least one field to change", "field=value")
    return out


def _print_course_and_replay(r: dict[str, Any]) -> None:
    """The tail of a correction: the course's recomputed next due date, and a replay notice."""
    if r.get("course"):
        console.print(f"  course {r['course']['course_id']}: next due {r['course']['next_due_on']}")
    if r.get("replayed"):
        console.print("[yellow]already done with this idempotency key: nothing written[/yellow]")


def _render_voided(r: dict[str, Any]) -> None:
    console.print(f"[bold]{r['kind']} {r['id']} voided[/bold] by {r['voided_by']} at {r['voided_at']}")
    for x in r.get("also_voided") or []:
        console.print(f"  also voided: {x}")
    _print_course_and_replay(r)


def _render_amended(r: dict[str, Any]) -> None:
    console.print(f"[bold]{r['kind']} {r['id']} amended[/bold] by {r['amended_by']} at {r['amended_at']}")
    for field, ch in {**(r.get("changed") or {}), **(r.get("results") or {})}.items():
        console.print(f"  {field}: {ch['before']} -> {ch['after']}")
    _print_course_and_replay(r)


@writes
def void_cmd(
    kind: str = KIND_OPT, record_id: int = ID_OPT, reason: str = REASON_OPT, *, call: RegistryCall
) -> None:
    """Void a recorded entry with a reason (it stays in the record, struck through)."""
    from immunoplan.services.records import corrections

    with call.registry() as reg:
        result = corrections.void(reg, call.by, kind, record_id, reason, call.idempotency_key)
    call.emit(result, _render_voided)


@writes
def amend_cmd(
    kind: str = KIND_OPT,
    record_id: int = ID_OPT,
    sets: list[str] = typer.Option(..., "--set", help="field=value (repeat for several fields)."),
    reason: str = REASON_OPT,
    *,
    call: RegistryCall,
) -> None:
    """Amend fields of a recorded entry with a reason (re-validated as when recording)."""
    from immunoplan.services.records import corrections

    changes = parse_sets(sets)
    with call.registry() as reg:
        result = corrections.amend(reg, call.by, kind, record_id, changes, reason, call.idempotency_key)
    call.emit(result, _render_amended)


def register(app: typer.Typer) -> None:
    app.command("void")(void_cmd)
    app.command("amend")(amend_cmd)
