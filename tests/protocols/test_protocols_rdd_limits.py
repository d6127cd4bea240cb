"""Typing-error guards of the desensitization planner: absurd inputs are clear errors, never a hang."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        (["--final-rate-ml-h", "0.000001"], "final_rate_ml_h"),  # would run for millennia (the engine hung)
        (["--final-rate-ml-h", "80", "--dose-mg", "1e300"], "dose_mg"),  # overflowed exact arithmetic
        (["--final-rate-ml-h", "80", "--bag-volume-ml", "1e300"], "bag_volume_ml"),
        (["--final-rate-ml-h", "1e300"], "final_rate_ml_h"),
    ],
)
def test_absurd_inputs_exit_2_naming_the_field(cli, extra: list[str], field: str) -> None:
    base = {"--drug": "x", "--dose-mg": "100", "--bag-volume-ml": "250", "--bags": "3"}
    for i in range(0, len(extra), 2):
        base[extra[i]] = extra[i + 1]
    args = ["desensitization", *[t for kv in base.items() for t in kv], "--json"]
    r = cli(*args)
    assert r.code == 2
    assert r.stdout == ""
    assert r.stderr.startswith(f"error: {field}:")
    assert r.stderr.count("\n") == 1


def test_protocol_longer_than_a_week_is_refused_by_the_engine() -> None:
    from decimal import Decimal

    from immunoplan.clinical.desensitization import RddRequest, generate
    from immunoplan.errors import InvalidInput

    with pytest.raises(InvalidInput, match="at most 7 days"):
        generate(
            RddRequest(
                drug="x",
                target_mg=Decimal(100),
                bag_volume_ml=Decimal(250),
                final_rate_ml_h=Decimal("0.1"),
                bags=3,
            )
        )
