"""The CLI's error contract: exit 2 and one stderr line for bad usage, no traceback."""

from __future__ import annotations


def test_version(cli) -> None:
    r = cli("--version")
    assert r.code == 0
    assert r.stdout.startswith("immunoplan ")


def test_unknown_option_is_exit_2_one_line(cli) -> None:
    r = cli("--no-such-option")
    assert r.code == 2
    assert r.stderr.strip().count("\n") == 0
    assert "Traceback" not in r.stderr
