"""The CLI's error contract: exit 2 and one stderr line for bad usage, no traceback."""

from __future__ import annotations

import pytest


def test_version(cli) -> None:
    r = cli("--version")
    assert r.code == 0
    assert r.stdout.startswith("immunoplan ")


def test_unknown_option_is_exit_2_one_line(cli) -> None:
    r = cli("--no-such-option")
    assert r.code == 2
    assert r.stderr.strip().count("\n") == 0
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "args, option",
    [
        (("injection", "record", "--course", "1", "--dose-ml", "0.1"), "--given-at"),
        (("patient", "add", "--mrn", "5", "--birth-date", "1990-01-01", "--sex", "female"), "--name"),
    ],
)
def test_a_missing_required_option_is_named_in_one_line(cli, args, option) -> None:
    r = cli(*args)
    assert r.code == 2
    assert r.stderr.strip() == f"error: {option}: missing (required)"
