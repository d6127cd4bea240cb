"""Rapid drug desensitization: plan generator, preparation, premedication, breakthrough re-planning.

Public API re-exported from the private modules; see each module for its rules and sources.
"""

from .plan import Bag, RddPlan, RddRequest, Step, generate, parse_rates
from .preparation import Preparation, prepare

__all__ = ["Bag", "Preparation", "RddPlan", "RddRequest", "Step", "generate", "parse_rates", "prepare"]
