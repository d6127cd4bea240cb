"""JSON conversion shared by every layer: results (dataclasses, Decimals, dates, enums, numpy values) as
plain JSON types. Neutral: imports nothing of immunoplan, so the core, services, web and CLI all use it."""

from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any


def to_jsonable(obj: Any) -> Any:
    """Convert results (dataclasses, Decimals, dates, enums, numpy values) to plain JSON types.

    Decimals become JSON numbers (ints when integral; floats print with the same <= 15 significant digits).
    """
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return to_jsonable(obj.to_dict())
    if is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Decimal):
        # Integral -> int; otherwise the float whose shortest repr has the same digits (<= 15 significant).
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    if isinstance(obj, Enum):
        return to_jsonable(obj.value)
    if isinstance(obj, (datetime, date, time)):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy arrays and scalars
        return obj.tolist()
    return obj


def dumps(obj: Any) -> str:
    """Serialise a result to JSON text (Decimals keep their exact digits)."""
    data = to_jsonable(obj)
    return json.dumps(data, ensure_ascii=False, default=str, allow_nan=False)
