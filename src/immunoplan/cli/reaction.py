"""``immunoplan reaction record``: a reaction to a named injection, graded from its findings on a scale the
SCIT rules read, with the next dose recomputed by the engine in the same transaction
(`immunoplan.services.records.injections.record_reaction_to_injection`).

Findings: ``--finding NAME`` for a symptom (see `immunoplan grade`), ``--finding NAME=VALUE`` for
``onset-minutes``, ``epinephrine-minutes``, ``bronchodilator-response`` and, for a local reaction,
``local-size``.
"""

from __future__ import annotations

from typing import Any

import typer

from immunoplan.cli.injection import render_reaction
from immunoplan.cli.registry_options import RegistryCall, validated, writes
from immunoplan.errors import InvalidInput

reaction_app = typer.Typer(
    help="Reactions to immunotherapy injections: graded, with the next dose.", no_args_is_help=True
)

#: ``--finding NAME=VALUE`` names -> the input model's fields
VALUED = {
    "onset-minutes": "onset_minutes",
    "epinephrine-minutes": "epinephrine_minutes",
    "bronchodilator-response": "bronchodilator_response",
    "local-size": "local_size",
}


def findings_to_fields(findings: list[str]) -> dict[str, Any]:
    """``--finding`` values as the reaction input's fields: bare names are symptoms, NAME=VALUE pairs the
    valued findings (`VALUED`); a pair with another name, or one given twice, is refused."""
    out: dict[str, Any] = {"symptoms": []}
    for f in findings:
        name, sep, value = f.partition("=")
        key = name.strip().lower().replace("_", "-")
        if not sep:
            out["symptoms"].append(name.strip().lower().replace("-", "_"))
            continue
        if key not in VALUED:
            raise InvalidInput(
                "--finding", f"{name.strip()[:40]!r} takes no value", ", ".join(f"{k}=..." for k in VALUED)
            )
        if VALUED[key] in out:
            raise InvalidInput("--finding", f"{key} given twice", "each valued finding once")
        out[VALUED[key]] = value.strip()
    return out


def _record(
    reg: Any, actor: str, injection: int, data: Any, *, idempotency_key: str | None
) -> dict[str, Any]:
    from immunoplan.services.records import injections

    try:
        return injections.record_reaction_to_injection(
            reg, actor, injection, data, idempotency_key=idempotency_key
        )
    except LookupError:
        raise InvalidInput("--injection", f"no injection {injection} in the registry (not voided)") from None


@reaction_app.command("record")
@writes
def record(
    injection: int = typer.Option(
        ..., "--injection", help="Injection id (as printed by `injection record`)."
    ),
    kind: str = typer.Option(..., "--kind", help="local or systemic."),
    finding: list[str] = typer.Option(
        None, "--finding", help="A finding NAME or NAME=VALUE (repeat); symptoms: see `immunoplan grade`."
    ),
    scale: str = typer.Option("wao2010", "--scale", help="Grading scale the SCIT rules read."),
    *,
    call: RegistryCall,
) -> None:
    """Grade and record a reaction to an injection; prints the grade and the next dose with its rule, source
    and status."""
    from immunoplan.services.records import injections

    data = validated(
        injections.InjectionReactionIn, kind=kind, scale=scale, **findings_to_fields(list(finding or []))
    )
    call.emit(call.write(_record, injection, data), render_reaction)


def register(app: typer.Typer) -> None:
    app.add_typer(reaction_app, name="reaction")
