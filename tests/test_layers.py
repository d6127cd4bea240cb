"""The layers the conventions promise, checked on the source (docs/conventions.md, issue 10):

- routes and CLI commands parse, call a service and render: no module under ``web/routes/`` or ``cli/``
  imports SQLAlchemy or the registry models, and no route opens a registry session (``.session()``);
- the record services share public names only: no module under ``services/records/`` imports another
  module's private (``_name``) function or constant.

import-linter (``make lint``) enforces the layers between packages; these are the rules inside them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "immunoplan"
ADAPTERS = ("web/routes", "cli")
FORBIDDEN_IN_ADAPTERS = ("sqlalchemy", "immunoplan.registry.models")
RECORDS = "immunoplan.services.records"

#: (module path under src/immunoplan, forbidden import) -> why it is allowed for now
ALLOWED: dict[tuple[str, str], str] = {
    ("cli/registry.py", "sqlalchemy.engine"): (
        "`immunoplan registry ...` prints the database URL without its password (make_url); to move to a "
        "registry helper with the CLI refactoring"
    ),
}


def _modules(folder: str) -> list[Path]:
    return sorted((SRC / folder).rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(SRC).as_posix()


def _imported(tree: ast.AST) -> list[tuple[str, int]]:
    """Every module an import statement names (``from a.b import c`` names ``a.b`` and ``a.b.c``), at any
    depth (imports inside functions included), with its line."""
    out: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append((node.module, node.lineno))
            out += [(f"{node.module}.{a.name}", node.lineno) for a in node.names]
    return out


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def forbidden_imports(source: str, rel: str) -> list[str]:
    """The imports of ``source`` (module ``rel``) that an adapter may not make, unless `ALLOWED`."""
    found = {
        f"{rel}:{line} imports {name}"
        for name, line in _imported(ast.parse(source))
        if any(_under(name, f) for f in FORBIDDEN_IN_ADAPTERS)
        and not any(r == rel and _under(name, allowed) for r, allowed in ALLOWED)
    }
    return sorted(found)


def session_calls(source: str, rel: str) -> list[str]:
    """Calls of ``<something>.session(...)``: a route that opens a registry session."""
    return [
        f"{rel}:{node.lineno} opens a session"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "session"
    ]


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_imports(source: str, rel: str) -> list[str]:
    """Private names of one records module used by another: ``from ...records.x import _y``, or ``x._y``
    where ``x`` is a records module imported by name."""
    tree = ast.parse(source)
    found = []
    modules: set[str] = set()  # local names bound to a records module
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(RECORDS):
            for a in node.names:
                if _private(a.name):
                    found.append(f"{rel}:{node.lineno} imports {node.module}.{a.name}")
                modules.add(a.asname or a.name)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith(RECORDS):
                    modules.add(a.asname or a.name.split(".")[0])
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and _private(node.attr)
        ):
            found.append(f"{rel}:{node.lineno} uses {node.value.id}.{node.attr}")
    return sorted(set(found))


@pytest.mark.parametrize("folder", ADAPTERS)
def test_adapters_import_no_sqlalchemy_and_no_models(folder: str) -> None:
    found = [f for p in _modules(folder) for f in forbidden_imports(p.read_text(encoding="utf-8"), _rel(p))]
    assert found == [], "routes and commands call a service instead of querying the registry:\n" + "\n".join(
        found
    )


def test_routes_open_no_registry_session() -> None:
    found = [f for p in _modules("web/routes") for f in session_calls(p.read_text(encoding="utf-8"), _rel(p))]
    assert found == [], "a route calls a service read instead of opening a session:\n" + "\n".join(found)


def test_record_services_share_no_private_names() -> None:
    found = [
        f
        for p in _modules("services/records")
        for f in private_imports(p.read_text(encoding="utf-8"), _rel(p))
    ]
    assert found == [], "give the helper a public name in the module that owns it:\n" + "\n".join(found)


def test_every_allowance_is_still_needed() -> None:
    """An allowance whose import is gone is removed from `ALLOWED` (it would hide a new one)."""
    stale = []
    for rel, name in ALLOWED:
        names = [n for n, _ in _imported(ast.parse((SRC / rel).read_text(encoding="utf-8")))]
        if not any(_under(n, name) for n in names):
            stale.append(f"{rel}: {name}")
    assert stale == []


def test_the_checks_see_what_they_forbid() -> None:
    """Each check reports a planted violation (so a passing run means something)."""
    adapter = (
        "from sqlalchemy import select\n"
        "def f(reg):\n"
        "    from immunoplan.registry import models as m\n"
        "    with reg.session() as s:\n"
        "        return s.scalars(select(m.Patient))\n"
    )
    assert forbidden_imports(adapter, "web/routes/x.py") == [
        "web/routes/x.py:1 imports sqlalchemy",
        "web/routes/x.py:1 imports sqlalchemy.select",
        "web/routes/x.py:3 imports immunoplan.registry.models",
    ]
    assert session_calls(adapter, "web/routes/x.py") == ["web/routes/x.py:4 opens a session"]
    records = (
        "from immunoplan.services.records.injections.history import _given\n"
        "from immunoplan.services.records import visits\n"
        "x = visits._raw(1), visits.__name__\n"
    )
    assert private_imports(records, "services/records/x.py") == [
        "services/records/x.py:1 imports immunoplan.services.records.injections.history._given",
        "services/records/x.py:3 uses visits._raw",
    ]
