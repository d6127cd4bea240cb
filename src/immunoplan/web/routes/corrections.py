"""Corrections, never deletions: the correction form of any recorded entry (current values, its history from
the audit trail) and the void / amend posts (`immunoplan.services.records.corrections`), with a reason.

A successful POST answers 303 back to where the user came from (``next``, a local path only) so a reload
never re-posts; the form carries an idempotency key. Permissions: ``record.amend`` (the form, amend) and
``record.void`` (void), declared in `immunoplan.web.security.PERMISSIONS`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Header, Request
from fastapi.responses import RedirectResponse, Response

from immunoplan.errors import Conflict, InvalidInput
from immunoplan.services.records import corrections as svc
from immunoplan.web import forms
from immunoplan.web.auth import permit
from immunoplan.web.deps import actor_of, found_or_404, registry_of
from immunoplan.web.rendering import render

router = APIRouter()

PAGE = "/corrections/{kind}/{record_id}"
VOID_REASON = "void_reason"  # the void form's reason (its own field id next to the amend form's)
CONTROL = ("reason", VOID_REASON, "next", forms.IDEMPOTENCY_FIELD)


def local_path(value: str | None) -> str | None:
    """``value`` when it is a path on this site (``/patients/3``), else None: never redirect elsewhere."""
    if not value or len(value) > 500:
        return None
    if not value.startswith("/") or value.startswith("//") or "\\" in value or any(c < " " for c in value):
        return None
    return value


def _view(request: Request, kind: str, record_id: int) -> dict[str, Any]:
    view = svc.correction_view(registry_of(request), kind, record_id)
    return found_or_404(view, f"no {kind} {record_id} to correct")


def _page(
    request: Request,
    kind: str,
    record_id: int,
    *,
    status: int = 200,
    amend_form: forms.FormState | None = None,
    void_form: forms.FormState | None = None,
    conflict: Conflict | None = None,
) -> Response:
    view = _view(request, kind, record_id)
    back = local_path(request.query_params.get("next"))
    for f in (amend_form, void_form):
        if f is not None and local_path(f.get("next")):
            back = f.get("next")
    ctx = {
        "title": f"Correct {kind} {record_id} · {view['pseudo_id']}",
        "view": view,
        "next": back or f"/patients/{view['patient_id']}",
        "amend_form": amend_form or forms.FormState(dict(view["fields"])),
        "void_form": void_form or forms.FormState({}),
        "conflict": conflict,
    }
    return render(request, "corrections.html", ctx, status_code=status)


def _done(f: forms.FormState, kind: str, record_id: int) -> Response:
    target = local_path(f.get("next")) or PAGE.format(kind=kind, record_id=record_id)
    return RedirectResponse(target, status_code=303)


@router.get(PAGE, dependencies=[permit("record.amend")], include_in_schema=False)
async def correction_form(request: Request, kind: str, record_id: int) -> Response:
    return _page(request, kind, record_id)


@router.post(PAGE + "/void", dependencies=[permit("record.void")], include_in_schema=False)
async def void_submit(request: Request, kind: str, record_id: int) -> Response:
    f = await forms.read_form(request)
    _view(request, kind, record_id)  # 404 for an unknown entry
    try:
        svc.void(
            registry_of(request),
            actor_of(request),
            kind,
            record_id,
            f.get(VOID_REASON),
            idempotency_key=forms.idempotency_key(request, f),
        )
    except Conflict as exc:
        return _page(request, kind, record_id, status=409, void_form=f, conflict=exc)
    except InvalidInput as exc:
        if exc.field == "reason":
            f.errors[VOID_REASON] = forms.message(exc)
        else:
            f.fail(exc)
        return _page(request, kind, record_id, status=422, void_form=f)
    return _done(f, kind, record_id)


@router.post(PAGE + "/amend", dependencies=[permit("record.amend")], include_in_schema=False)
async def amend_submit(request: Request, kind: str, record_id: int) -> Response:
    f = await forms.read_form(request)
    _view(request, kind, record_id)
    changes = {k: v for k, v in f.raw.items() if k not in CONTROL}
    try:
        svc.amend(
            registry_of(request),
            actor_of(request),
            kind,
            record_id,
            changes,
            f.get("reason"),
            idempotency_key=forms.idempotency_key(request, f),
            form_text=True,
        )
    except Conflict as exc:
        return _page(request, kind, record_id, status=409, amend_form=f, conflict=exc)
    except InvalidInput as exc:
        f.fail(exc, known=(*svc.AMENDABLE.get(kind, ()), "reason"))
        return _page(request, kind, record_id, status=422, amend_form=f)
    return _done(f, kind, record_id)


# ------------------------------------------------------------------------------------------------- JSON API

IDEMPOTENCY_HEADER = Header(
    None, alias=forms.IDEMPOTENCY_HEADER, description="a key for this write: a retry writes nothing twice"
)


def _body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInput("body", "must be a JSON object", '{"reason": ..., "changes": {...}}')
    return body


@router.post(
    "/api/corrections/{kind}/{record_id}/void", dependencies=[permit("record.void")], tags=["corrections"]
)
def api_void(
    request: Request,
    kind: str,
    record_id: int,
    body: Any = Body(None, examples=[{"reason": "recorded on the wrong patient"}]),
    idempotency_key: str | None = IDEMPOTENCY_HEADER,
) -> dict[str, Any]:
    """Void an entry (``{"reason": ...}``); 409 if it is already voided."""
    data = _body(body)
    return svc.void(
        registry_of(request), actor_of(request), kind, record_id, data.get("reason"), idempotency_key
    )


@router.post(
    "/api/corrections/{kind}/{record_id}/amend", dependencies=[permit("record.amend")], tags=["corrections"]
)
def api_amend(
    request: Request,
    kind: str,
    record_id: int,
    body: Any = Body(None, examples=[{"changes": {"lot": "L-7"}, "reason": "lot number misread"}]),
    idempotency_key: str | None = IDEMPOTENCY_HEADER,
) -> dict[str, Any]:
    """Amend an entry (``{"changes": {field: value}, "reason": ...}``), re-validated as when recording."""
    data = _body(body)
    changes = data.get("changes")
    if not isinstance(changes, dict):
        raise InvalidInput("changes", "must map field names to new values", '{"lot": "L-7"}')
    return svc.amend(
        registry_of(request), actor_of(request), kind, record_id, changes, data.get("reason"), idempotency_key
    )
