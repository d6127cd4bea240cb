"""Route modules; each exposes ``router`` and guards every route with one permission of the role matrix."""

from __future__ import annotations

from fastapi import FastAPI


def include_all(app: FastAPI) -> None:
    from immunoplan.web.routes import (
        admin,
        assessment,
        corrections,
        courses,
        desensitization,
        front_desk,
        injections,
        patients,
        research,
        session,
        vials,
        visits,
    )

    for module in (
        session,
        patients,
        assessment,
        courses,
        injections,
        desensitization,
        visits,
        vials,
        front_desk,
        corrections,
        research,
        admin,
    ):
        app.include_router(module.router)
