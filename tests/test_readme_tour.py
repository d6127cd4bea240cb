"""The README's CLI tour stays true: every command shown runs, exits 0 and (with --json) prints one object.

Commands that need a prepared registry or input file (demo, report, serve, next-dose) are exercised by their
own area's tests; they are listed in SKIP so a new README line is tested unless it is skipped on purpose.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = ("immunoplan demo ", "immunoplan report ", "immunoplan serve ", "immunoplan scit next-dose ")


def _tour_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## A short tour of the CLI.*?```sh\n(.*?)```", text, re.S)
    assert block, "README.md has no CLI tour block"
    joined = block.group(1).replace("\\\n", " ")
    cmds = []
    for line in joined.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("immunoplan ") and not line.startswith(SKIP):
            cmds.append(line)
    return cmds


COMMANDS = _tour_commands()


def test_tour_is_not_empty() -> None:
    assert len(COMMANDS) >= 10


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_runs(command: str, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    examples = str(ROOT / "docs" / "examples") + os.sep
    args = [a.replace("docs/examples/", examples) for a in shlex.split(command)][1:]
    wants_json = "--help" not in args
    if wants_json and "--json" not in args:
        args.append("--json")
    r = cli(*args)
    assert r.code == 0, r.stderr
    if wants_json:
        assert isinstance(json.loads(r.stdout), dict)


def _recording_tour() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Recording care from the command line.*?```sh\n(.*?)```", text, re.S)
    assert block, "README.md has no recording tour block"
    joined = block.group(1).replace("\\\n", " ")
    return [ln.split("  #", 1)[0].strip() for ln in joined.splitlines() if ln.startswith("immunoplan ")]


def test_recording_tour_runs_in_order(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's recording commands, one after another on one registry, as a user types them (the test
    clock is the clinic day of the tour)."""
    from immunoplan import clock

    monkeypatch.chdir(tmp_path)
    commands = _recording_tour()
    assert len(commands) >= 6
    outputs = []
    with clock.frozen("2026-06-15T09:10"):
        for command in commands:
            r = cli(*shlex.split(command)[1:], "--json")
            assert r.code == 0, f"{command}: {r.stderr}"
            outputs.append(json.loads(r.stdout))
    recorded = next(o for c, o in zip(commands, outputs, strict=True) if " injection record " in f" {c} ")
    assert recorded["dose"] == 10 and recorded["lot"] == "H1234"
    voided = next(o for c, o in zip(commands, outputs, strict=True) if c.startswith("immunoplan void "))
    assert voided["void_reason"] == "entered on the wrong patient"
