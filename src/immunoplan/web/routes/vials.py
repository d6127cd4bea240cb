"""A patient's vials: the list (status and days to expiry on the clinic's today), registering one (product
and concentration from the catalogue, lot, expiry, opened on, volume), vial labels as a PDF (one small label
per page, or an A4 sheet), and the JSON API of the same.

Routes parse (the service's input model `VialIn`), call one service (`immunoplan.services.records.vials`) and
render; the rules (catalogue product and vial, an expired vial refused, a printable lot) live in the service.
A form POST carries an idempotency key and answers 303 to the page (a reload never re-posts); a refusal shows
next to its field with the accepted values (HTTP 422, also for htmx).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Header, Query, Request
from fastapi.responses import RedirectResponse, Response

from immunoplan.errors import InvalidInput
from immunoplan.reference.limits import limit
from immunoplan.services.inputs import validate, validate_form
from immunoplan.services.records import vials as svc
from immunoplan.sheets import vial_labels
from immunoplan.web import forms
from immunoplan.web.auth import permit
from immunoplan.web.deps import actor_of, lookup_as_404, patient_or_404, registry_of
from immunoplan.web.rendering import is_htmx, render

router = APIRouter()

PAGE = "/patients/{patient_id}/vials"
API = "/api/patients/{patient_id}/vials"
KEY = forms.IDEMPOTENCY_FIELD
FIELDS = tuple(n for n in svc.VialIn.model_fields if n != "patient_id")
#: query parameters that prefill the form (the product select reloads the form through htmx with them)
PREFILL = ("product_id", "concentration", "lot", "expiry_on", "opened_on", "volume_ml", "allergens")


def _page(
    request: Request,
    patient_id: int,
    *,
    form: forms.FormState | None = None,
    labels_error: str | None = None,
    added: Any = None,
    status: int = 200,
) -> Response:
    patient_or_404(request, patient_id)
    view = svc.vials_view(registry_of(request), patient_id)
    f = form or forms.FormState({k: v for k, v in request.query_params.items() if k in PREFILL})
    chosen = f.get("product_id") or view["default_product_id"] or ""
    product = next((p for p in view["products"] if p["id"] == chosen), None)
    ctx = {
        "title": f"Vials · {view['pseudo_id']}",
        **view,
        "form": f,
        "chosen_product": product,
        "added": added or request.query_params.get("added"),
        "labels_error": labels_error,
        "layouts": tuple(vial_labels.LAYOUTS),
        "volume_range": limit("vial_volume_ml").accepted,
    }
    # htmx posts swap the list and the form (#vials); the product select's GET picks #vial-form itself
    block = "vials" if is_htmx(request) and request.method == "POST" else None
    return render(request, "vials.html", ctx, status_code=status, block=block)


@router.get(PAGE, dependencies=[permit("patient.read")], include_in_schema=False)
async def vials_page(request: Request, patient_id: int) -> Response:
    return _page(request, patient_id)


@router.post(PAGE, dependencies=[permit("vial.register")], include_in_schema=False)
async def vial_submit(request: Request, patient_id: int) -> Response:
    f = await forms.read_form(request)
    for k in sorted(k for k in f.raw if k not in FIELDS and k != KEY):
        f.errors.setdefault("form", f"{k}: is not a field of this form")
    raw = {k: v for k, v in f.raw.items() if k in FIELDS}
    data, errors = validate_form(svc.VialIn, {**raw, "patient_id": patient_id})
    f.errors.update(errors)
    if data is None or not f.ok:
        return _page(request, patient_id, form=f, status=422)
    patient_or_404(request, patient_id)
    try:
        row = svc.add_vial(
            registry_of(request), actor_of(request), data, idempotency_key=forms.idempotency_key(request, f)
        )
    except InvalidInput as exc:
        f.fail(exc, known=FIELDS)
        return _page(request, patient_id, form=f, status=422)
    if is_htmx(request):
        return _page(request, patient_id, added=row["id"])
    return RedirectResponse(f"{PAGE.format(patient_id=patient_id)}?added={row['id']}", status_code=303)


@router.get(f"{PAGE}/labels.pdf", dependencies=[permit("vial.labels")], include_in_schema=False)
def vial_labels_pdf(
    request: Request,
    patient_id: int,
    layout: str = "label",
    vial: list[str] = Query(default=[]),
) -> Response:
    """The chosen vials' labels (none chosen: all the patient's vials in date) as a PDF download. A plain
    ``def``: FastAPI runs it in its thread pool, so rendering the PDF never blocks the event loop."""
    patient_or_404(request, patient_id)
    if layout not in vial_labels.LAYOUTS:
        message = f"layout: unknown layout {layout[:20]!r} (accepted: {', '.join(vial_labels.LAYOUTS)})"
        return _page(request, patient_id, labels_error=message, status=422)
    try:
        rows = svc.label_rows(registry_of(request), vial_ids=vial, patient_id=patient_id)
    except InvalidInput as exc:
        return _page(request, patient_id, labels_error=str(exc), status=422)
    pdf = vial_labels.vial_labels_pdf(rows, layout=layout)
    name = f"vial-labels-{patient_id}-{layout}.pdf"
    return Response(
        pdf, media_type="application/pdf", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


# ------------------------------------------------------------------------------------------------- JSON API

IDEMPOTENCY_HEADER = Header(
    None,
    alias=forms.IDEMPOTENCY_HEADER,
    description="A client key for this write: a repeat with the same key writes nothing twice.",
)


@router.get(API, dependencies=[permit("patient.read")], tags=["vials"])
def api_vials(request: Request, patient_id: int, product_id: str | None = None) -> Any:
    """The patient's vials (not voided), newest first, each with ``status`` and ``days_to_expiry`` on the
    clinic's today (as ``immunoplan vial list --json``)."""
    patient_or_404(request, patient_id)
    rows = svc.list_vials(registry_of(request), patient_id, product_id=product_id)
    return {"patient_id": patient_id, "product_id": product_id, "vials": rows}


@router.post(
    API,
    dependencies=[permit("vial.register")],
    tags=["vials"],
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": svc.VialIn.model_json_schema()}},
        }
    },
    responses={422: {"description": "invalid input or a rule refusal (e.g. an expired vial)"}},
)
def api_add_vial(
    request: Request,
    patient_id: int,
    body: Any = Body(None),
    idempotency_key: str | None = IDEMPOTENCY_HEADER,
) -> Any:
    """Register a vial (`VialIn`; ``patient_id`` from the URL): the stored vial with its ``id``. 201; 422 for
    invalid input or a refusal (unknown product, not a vial of the product, expired)."""
    if not isinstance(body, dict):
        raise InvalidInput("body", "must be a JSON object", "{...}")
    if "patient_id" in body and str(body["patient_id"]) != str(patient_id):
        raise InvalidInput("patient_id", "does not match the patient in the URL", str(patient_id))
    patient_or_404(request, patient_id)
    data = validate(svc.VialIn, {**body, "patient_id": patient_id})
    with lookup_as_404():
        return svc.add_vial(registry_of(request), actor_of(request), data, idempotency_key=idempotency_key)
