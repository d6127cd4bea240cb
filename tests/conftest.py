"""Shared test fixtures. Area-specific fixtures live in each test folder's conftest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from immunoplan import clock
from immunoplan.cli import main

#: Every test runs at this clinic time unless it pins its own (`clock.frozen`): no test reads the real clock.
TEST_ZONE = "Europe/Oslo"
TEST_NOW = "2026-12-01T10:00"


@pytest.fixture(autouse=True)
def clinic_clock(monkeypatch: pytest.MonkeyPatch):
    """A fixed clinic zone and a pinned clock for every test (tests may re-pin or change the zone)."""
    monkeypatch.setenv("IMMUNOPLAN_TIMEZONE", TEST_ZONE)
    with clock.frozen(TEST_NOW) as now:
        yield now


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run the immunoplan CLI in-process: ``cli("risk", "--age", "14", ...)`` -> CliResult."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run
