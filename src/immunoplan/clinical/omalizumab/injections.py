"""Split an omalizumab dose into 75/150 mg syringes, one injection site per syringe.

Rule (US label, via xolairhcp.com): doses above 150 mg are divided among more than one injection site, at most
150 mg per site. Syringe strengths 75 and 150 mg (EU SmPC Table 1, which the split reproduces for 75-600 mg).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from immunoplan import reference
from immunoplan.errors import InvalidInput


@dataclass(frozen=True)
class Injection:
    """One subcutaneous injection: syringe strength (mg) at its own site (numbered from 1)."""

    site: int
    syringe_mg: int

    def to_dict(self) -> dict[str, int]:
        return {"site": self.site, "syringe_mg": self.syringe_mg}


def _admin() -> dict:
    return reference.load("omalizumab_administration")


def split_injections(dose_mg: Decimal | int) -> list[Injection]:
    """Largest syringes first: n x 150 mg plus one 75 mg when the dose is an odd multiple of 75 mg."""
    admin = _admin()
    small, large = sorted(admin["syringe_strengths_mg"])
    per_site = admin["max_mg_per_injection_site"]
    dose = Decimal(dose_mg)
    if dose <= 0 or dose % small != 0:
        raise InvalidInput(
            "dose_mg",
            f"{dose} mg cannot be given with {small}/{large} mg syringes",
            f"a positive multiple of {small} mg",
        )
    n_large, rest = divmod(int(dose), large)
    syringes = [large] * n_large + ([small] if rest else [])
    assert all(s <= per_site for s in syringes)
    return [Injection(site=i + 1, syringe_mg=s) for i, s in enumerate(syringes)]
