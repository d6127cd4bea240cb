"""A session's baseline before the first step: serum tryptase (ng/mL) with its sampling time and the vital
signs (systolic/diastolic BP, heart rate, SpO2, temperature), recorded in one transaction on the session row
(a later record replaces it, audited with its before and after)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from immunoplan import clock
from immunoplan.errors import InvalidInput
from immunoplan.reference import limits
from immunoplan.registry.db import Registry
from immunoplan.services.records.common import as_input
from immunoplan.services.records.desensitization.inputs import BaselineIn
from immunoplan.services.records.desensitization.state import locked_state, write_view
from immunoplan.services.records.fields import refuse_future_instant


def record_baseline(
    reg: Registry, actor: str, data: BaselineIn | Mapping[str, Any], *, idempotency_key: Any = None
) -> dict[str, Any]:
    """Record the session's baseline tryptase and/or vital signs (at least one). Refused on a finished
    session; a tryptase sampled in the future is refused."""
    inp = as_input(BaselineIn, data)
    vitals = inp.vital_signs()
    if inp.tryptase_ng_ml is None and vitals is None:
        raise InvalidInput(
            "tryptase_ng_ml",
            "give the baseline tryptase or at least one vital sign",
            limits.limit("tryptase_ng_ml").accepted,
        )
    sampled = (inp.tryptase_at or clock.now()) if inp.tryptase_ng_ml is not None else None
    refuse_future_instant("tryptase_at", sampled)

    def run(s: Session) -> dict[str, Any]:
        sess, state, _ = locked_state(s, inp.session_id)
        if state.finished:
            raise InvalidInput("session_id", f"the session was finished ({state.status})")
        if inp.tryptase_ng_ml is not None:
            sess.baseline_tryptase_ng_ml = inp.tryptase_ng_ml
            sess.baseline_tryptase_at = sampled
        if vitals is not None:
            sess.baseline_vital_signs = {**(sess.baseline_vital_signs or {}), **vitals}
        s.flush()
        return {"session_id": sess.id, "baseline": baseline_json(sess)}

    return write_view(reg, actor, "record_desensitization_baseline", run, idempotency_key)


def baseline_json(sess: Any) -> dict[str, Any]:
    """The session's baseline as shown (times aware UTC; `view_json` makes them clinic-local)."""
    return {
        "tryptase_ng_ml": sess.baseline_tryptase_ng_ml,
        "tryptase_at": clock.to_utc_stored(sess.baseline_tryptase_at) if sess.baseline_tryptase_at else None,
        "vital_signs": sess.baseline_vital_signs or {},
    }
