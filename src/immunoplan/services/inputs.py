"""Input models, declared once: the API bodies, the form parsers and the CLI all validate through them.

Each workflow declares a pydantic model next to its use case (field limits from `immunoplan.reference.limits`,
vocabularies from `immunoplan.clinical.vocabularies`). The edges call:

- `validate(Model, data)` -> the model, or `InvalidInput` naming the first bad field and its accepted range
  (CLI: one stderr line, exit 2; API: HTTP 422);
- `validate_form(Model, raw)` -> (model or None, {field: message}) so a page shows every message next to its
  field (HTTP 422, nothing written).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from immunoplan.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)


class InputModel(BaseModel):
    """Base of every input model: unknown fields are refused and text is stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


def _accepted(model: type[BaseModel], field: str) -> str | None:
    info = model.model_fields.get(field)
    if info is None:
        return None
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    accepted = extra.get("accepted")
    if accepted:
        return str(accepted)
    low = high = None
    lo_br, hi_br = "[", "]"
    for meta in info.metadata:
        if getattr(meta, "ge", None) is not None:
            low = meta.ge
        if getattr(meta, "gt", None) is not None:
            low, lo_br = meta.gt, "("
        if getattr(meta, "le", None) is not None:
            high = meta.le
        if getattr(meta, "lt", None) is not None:
            high, hi_br = meta.lt, ")"
        if getattr(meta, "max_length", None) is not None:
            return f"at most {meta.max_length} characters"
    if low is None and high is None:
        return None
    unit = extra.get("unit")
    text = f"{lo_br}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi_br}"
    return text + (f" {unit}" if unit else "")


def _errors(model: type[BaseModel], exc: ValidationError) -> list[InvalidInput]:
    out = []
    for e in exc.errors(include_url=False):
        loc = [str(p) for p in e.get("loc", ())]
        field = loc[0] if loc else "body"
        msg = str(e.get("msg", "invalid"))
        if e.get("type") == "extra_forbidden":
            msg = "is not a field of this form"
        raised = (e.get("ctx") or {}).get("error")
        if isinstance(raised, InvalidInput):  # a validator's own InvalidInput: keep its message and range
            out.append(InvalidInput(".".join(loc) or field, raised.reason, raised.accepted))
            continue
        out.append(InvalidInput(".".join(loc) or field, msg, _accepted(model, field)))
    return out


def _clean(data: Mapping[str, Any]) -> dict[str, Any]:
    """Empty form text means "not given"."""
    return {k: v for k, v in data.items() if not (isinstance(v, str) and v.strip() == "")}


def validate(model: type[M], data: Mapping[str, Any]) -> M:
    """``model`` built from ``data`` (empty text = not given), or `InvalidInput` for the first bad field."""
    try:
        return model.model_validate(_clean(data))
    except ValidationError as exc:
        raise _errors(model, exc)[0] from None


def validate_form(model: type[M], raw: Mapping[str, Any]) -> tuple[M | None, dict[str, str]]:
    """``model`` built from form fields, or every field's message (``{field: "message (accepted: ...)"}``)."""
    try:
        return model.model_validate(_clean(raw)), {}
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for err in _errors(model, exc):
            text = err.reason + (f" (accepted: {err.accepted})" if err.accepted else "")
            errors.setdefault(err.field.split(".")[0], text)
        return None, errors
