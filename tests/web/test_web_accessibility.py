"""Static accessibility checks on every page: lang, one h1, a main landmark, a skip link, and a label for
every form control (``<label for>`` or ``aria-label``)."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from web_helpers import WebClient


class Controls(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self.h1 = 0
        self.main = False
        self.lang: str | None = None
        self.skip = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        elif tag == "h1":
            self.h1 += 1
        elif tag == "main":
            self.main = True
        elif tag == "label" and a.get("for"):
            self.label_for.add(str(a["for"]))
        elif tag == "a" and a.get("href") == "#main":
            self.skip = True
        elif tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit", "button"):
            self.controls.append(a)


def _check(html: str, url: str) -> int:
    """Assert the page's landmarks and labels; returns how many form controls were checked."""
    p = Controls()
    p.feed(html)
    assert p.lang == "en" and p.h1 == 1 and p.main and p.skip, url
    for c in p.controls:
        assert c.get("aria-label") or (c.get("id") and c["id"] in p.label_for), f"{url}: unlabelled {c}"
    return len(p.controls)


def test_every_page_is_labelled(clinician: WebClient, as_role: Any) -> None:
    pid = clinician.post("/api/patients", json={"pseudo_id": "A11Y", "birth_date": "2010-01-01"}).json()["id"]
    course = {
        "product_regimen": "alutard-sq-hdm|cluster",
        "start": "2026-01-05",
        "omalizumab": "none",
        "maintenance_interval_weeks": "6",
        "action": "save",
    }
    cid = clinician.post(f"/patients/{pid}/courses", course).headers["location"].rsplit("/", 1)[1]
    clinician.post(f"/patients/{pid}/courses/{cid}/injections", {"dose": "10"})
    plan = {
        "drug": "carboplatin",
        "dose_mg": "500",
        "bag_volume_ml": "250",
        "final_rate_ml_h": "80",
        "bags": "3",
        "session_on": "2026-01-05",
        "action": "start",
    }
    sid = clinician.post(f"/patients/{pid}/desensitization", plan).headers["location"].rsplit("/", 1)[1]
    pages = [
        "/patients",
        "/patients/new",
        f"/patients/{pid}",
        f"/patients/{pid}/assess",
        f"/patients/{pid}/courses/new",
        f"/patients/{pid}/courses/{cid}",
        f"/patients/{pid}/courses/{cid}/injection-day",
        f"/patients/{pid}/desensitization/new",
        f"/desensitization/{sid}",
        f"/patients/{pid}/visits/new",
        "/account",
        "/research",
    ]
    checked = 0
    for url in pages:
        r = clinician.get(url)
        assert r.status_code == 200, url
        checked += _check(r.text, url)
    checked += _check(as_role("admin").get("/admin/users").text, "/admin/users")
    checked += _check(WebClient(clinician.http.app).http.get("/login").text, "/login")
    assert checked > 100  # the forms really were inspected


def test_the_checker_finds_an_unlabelled_control() -> None:
    page = '<html lang="en"><a href="#main">s</a><main><h1>x</h1><input id="q" name="q"></main></html>'
    with pytest.raises(AssertionError, match="unlabelled"):
        _check(page, "synthetic")
