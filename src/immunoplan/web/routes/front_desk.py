"""The front desk (nurse, clinician, admin): the late-shot list filtered by clinic date, product and status,
its printable page and CSV download, a "No-show" button per row, and reminders (.ics per patient, CSV for a
mail merge). Everything comes from `immunoplan.services.records.front_desk`; routes parse, call one service
and render.

Filters are validated by the service's input model (`LateListQuery`): a hostile query answers 422 with the
message next to the filter, never 500. The no-show form carries an idempotency key and answers 303 back to
the list it came from (POST/redirect/GET); a refusal shows the list again with the message (422, or 409 for
a no-show already recorded). Permissions: ``front_desk.read`` and ``front_desk.record``
(`immunoplan.web.security.PERMISSIONS`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from immunoplan import clock
from immunoplan.errors import Conflict, InvalidInput
from immunoplan.services.inputs import validate_form
from immunoplan.services.records import front_desk as svc
from immunoplan.web import forms
from immunoplan.web.auth import permit
from immunoplan.web.deps import actor_of, registry_of
from immunoplan.web.rendering import render

router = APIRouter()

PAGE = "/front-desk"
FILTERS = ("on", "product_id", "status")
NO_SHOW_FIELDS = tuple(svc.NoShowIn.model_fields)
KEY = forms.IDEMPOTENCY_FIELD


def when(iso: str | None) -> str:
    """A service's clinic-local ISO time as pages show it (with the zone)."""
    return clock.format_local(datetime.fromisoformat(iso)) if iso else ""


def _filters(raw: dict[str, str]) -> tuple[dict[str, Any] | None, forms.FormState]:
    """The filter values as typed (only `FILTERS`), validated by `LateListQuery`: (values, form state)."""
    f = forms.FormState({k: str(raw.get(k, "")) for k in FILTERS})
    data, errors = validate_form(svc.LateListQuery, {k: v for k, v in f.raw.items()})
    f.errors.update(errors)
    if data is None:
        return None, f
    return {"on": data.on, "product_id": data.product_id, "status": data.status}, f


def _query(f: forms.FormState, **extra: Any) -> str:
    """The list's query string (the filters as typed, without empty ones)."""
    values = {k: f.get(k) for k in FILTERS if f.get(k)} | {k: v for k, v in extra.items() if v}
    return urlencode(values)


def _page(
    request: Request,
    raw: dict[str, str],
    *,
    printable: bool = False,
    status: int = 200,
    no_show: forms.FormState | None = None,
    conflict: Conflict | None = None,
) -> Response:
    filters, f = _filters(raw)
    listing = None
    if filters is not None:
        try:
            listing = svc.late_shot_list(registry_of(request), **filters)
        except InvalidInput as exc:
            f.fail(exc, known=FILTERS)
    ctx = {
        "title": "Front desk: late-shot list" + (" (print)" if printable else ""),
        "form": f,
        "listing": listing,
        "products": svc.product_choices(),
        "statuses": ("due", "late"),
        "printable": printable,
        "query": _query(f),
        "recorded": request.query_params.get("recorded"),
        "no_show": no_show or forms.FormState({}),
        "conflict": conflict,
        "when": when,
        "reminder_days": svc.DEFAULT_DAYS_AHEAD,
    }
    code = status if f.ok else 422
    return render(request, "front_desk.html", ctx, status_code=code)


@router.get(PAGE, dependencies=[permit("front_desk.read")], include_in_schema=False)
async def front_desk_page(request: Request) -> Response:
    return _page(request, dict(request.query_params))


@router.get(PAGE + "/print", dependencies=[permit("front_desk.read")], include_in_schema=False)
async def front_desk_print(request: Request) -> Response:
    return _page(request, dict(request.query_params), printable=True)


def _attachment(content: str | bytes, media_type: str, filename: str) -> Response:
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


@router.get(PAGE + "/late-shots.csv", dependencies=[permit("front_desk.read")], include_in_schema=False)
async def late_shots_csv(request: Request) -> Response:
    filters, f = _filters(dict(request.query_params))
    if filters is None:
        raise InvalidInput(*next(iter(f.errors.items())))
    listing = svc.late_shot_list(registry_of(request), **filters)
    return _attachment(
        svc.late_shot_csv(listing), "text/csv; charset=utf-8", f"late-shots-{listing['on']}.csv"
    )


def _reminder_args(request: Request) -> dict[str, Any]:
    q = request.query_params
    return {"on": q.get("on") or None, "days_ahead": q.get("days_ahead") or svc.DEFAULT_DAYS_AHEAD}


@router.get(PAGE + "/reminders.csv", dependencies=[permit("front_desk.read")], include_in_schema=False)
async def reminders_csv(request: Request) -> Response:
    text = svc.reminders_csv(registry_of(request), **_reminder_args(request))
    return _attachment(text, "text/csv; charset=utf-8", "reminders.csv")


@router.get(
    PAGE + "/patients/{patient_id}/reminders.ics",
    dependencies=[permit("front_desk.read")],
    include_in_schema=False,
)
async def patient_reminders_ics(request: Request, patient_id: int) -> Response:
    try:
        data = svc.reminders_ics(registry_of(request), patient_id=patient_id, **_reminder_args(request))
    except InvalidInput as exc:
        if exc.field == "patient_id":
            raise HTTPException(404, f"no patient {patient_id}") from None
        raise
    return _attachment(data, "text/calendar; charset=utf-8", f"reminders-patient-{patient_id}.ics")


@router.post(PAGE + "/no-shows", dependencies=[permit("front_desk.record")], include_in_schema=False)
async def no_show_submit(request: Request) -> Response:
    f = await forms.read_form(request)
    back = {k: f.get(k) for k in FILTERS}  # the list the form was posted from (hidden fields)
    fields = {k: f.get(k) for k in NO_SHOW_FIELDS if k in f.raw}
    data, errors = validate_form(svc.NoShowIn, fields)
    f.errors.update(errors)
    if data is None or not f.ok:
        return _page(request, back, status=422, no_show=f)
    try:
        row = svc.record_no_show(
            registry_of(request), actor_of(request), data, idempotency_key=forms.idempotency_key(request, f)
        )
    except Conflict as exc:
        return _page(request, back, status=409, no_show=f, conflict=exc)
    except InvalidInput as exc:
        f.fail(exc, known=NO_SHOW_FIELDS)
        return _page(request, back, status=422, no_show=f)
    query = urlencode({k: v for k, v in back.items() if v} | {"recorded": row["id"]})
    return RedirectResponse(f"{PAGE}?{query}", status_code=303)
