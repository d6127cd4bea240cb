"""Research page: de-identified aggregate tables of the demo cohorts, figures, CSV/XLSX exports."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from web_helpers import WebClient, password_for

from immunoplan.registry.users import open_storage
from immunoplan.services.analysis import cohort_tables
from immunoplan.services.auth import ROLES, Passwords, add_user
from immunoplan.web.app import create_app
from immunoplan.web.settings import WebSettings


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo registry (`immunoplan.synthetic.create_demo`, 40 seed-000 patients) with role accounts."""
    from immunoplan.synthetic import create_demo

    path = tmp_path_factory.mktemp("research") / "demo.sqlite"
    registry, users = open_storage(str(path))
    create_demo(registry, seed=1, patients=40, actor="test")
    pw = Passwords(fast=True)
    for role in ROLES:
        add_user(users, pw, f"{role}1", password_for(role), role, "test-setup")
    registry.dispose()
    return path


@pytest.fixture
def research_app(demo_template: Path, tmp_path: Path) -> Any:
    db = tmp_path / "demo.sqlite"
    shutil.copy(demo_template, db)
    app = create_app(WebSettings(db=str(db), secret_key="k" * 40, fast_password_hashing=True))
    yield app
    app.state.ctx.registry.dispose()


def test_research_page_shows_the_analysis_tables_without_identifiers(research_app: Any) -> None:
    c = WebClient(research_app).login_as("researcher")
    r = c.get("/research?cohort=seed001")
    assert r.status_code == 200
    expected = cohort_tables(research_app.state.ctx.registry.url, "seed001")
    for t in expected:
        assert t["title"] in r.text
    assert expected[0]["rows"][0]["variable"] in r.text
    from sqlalchemy import select

    from immunoplan.registry import models as m

    with research_app.state.ctx.registry.session() as s:
        codes = list(s.scalars(select(m.Patient.pseudo_id).limit(20)))
    assert not any(code in r.text for code in codes)  # no patient codes on the research page
    assert c.get("/patients").status_code == 403  # and no way into identifiable pages


def test_csv_export_and_bad_cohort(research_app: Any) -> None:
    c = WebClient(research_app).login_as("researcher")
    r = c.get("/research/export/table1.csv?cohort=seed000")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.text.splitlines()[0].startswith("variable,level")
    assert c.get("/research/export/nope.csv?cohort=seed000").status_code == 404
    assert c.get("/research?cohort=unknown").status_code == 404
    assert c.get("/research?cohort=../../etc").status_code == 422
    assert c.get("/api/research/cohorts").json() == ["seed000", "seed001"]


@pytest.mark.slow
def test_figures_and_xlsx_export(research_app: Any) -> None:
    c = WebClient(research_app).login_as("researcher")
    r = c.get("/research/figures?cohort=seed001", headers={"HX-Request": "true"})
    assert r.status_code == 200 and "<img" in r.text
    src = r.text.split('src="', 1)[1].split('"', 1)[0]
    img = c.get(src)
    assert img.status_code == 200 and img.content[:8] == b"\x89PNG\r\n\x1a\n"
    x = c.get("/research/export/tables.xlsx?cohort=seed001")
    assert x.status_code == 200 and x.content[:2] == b"PK"
