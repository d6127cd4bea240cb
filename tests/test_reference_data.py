"""Every shipped reference file loads, has id/version/source/status, and uses only the known status words."""

from __future__ import annotations

import pytest

from immunoplan import reference
from immunoplan.errors import ReferenceDataError


@pytest.mark.parametrize("name", reference.available())
def test_reference_file_valid(name: str) -> None:
    data = reference.load(name)
    for key in reference.REQUIRED_KEYS:
        assert data[key], f"{name}: empty {key}"
    assert data["status"] in reference.STATUSES


def test_unknown_reference_file_is_an_error() -> None:
    with pytest.raises(ReferenceDataError):
        reference.load("no-such-table")
