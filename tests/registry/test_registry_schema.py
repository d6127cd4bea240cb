"""Migrations build the schema on SQLite and PostgreSQL; models match them; the audit log is append-only."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import DBAPIError

from immunoplan.errors import InvalidInput
from immunoplan.registry.db import current_revision, head_revision, open_registry, to_url
from immunoplan.registry.models import AuditEntry, Base, Course, Injection, Patient


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_migration_creates_every_table_on_an_empty_database_and_matches_models(backend, request, tmp_path):
    target = tmp_path / "new.sqlite" if backend == "sqlite" else request.getfixturevalue("empty_pg_url")
    reg = open_registry(target)
    try:
        tables = set(inspect(reg.engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        assert current_revision(reg.engine) == head_revision()
        with reg.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    finally:
        reg.dispose()


def test_exact_decimal_round_trips(registry):
    with registry.transaction("tester") as s:
        p = Patient(pseudo_id="P-dec", sex="female")
        s.add(p)
        s.flush()
        c = Course(patient_id=p.id, kind="SCIT", target_dose=Decimal("100000"))
        s.add(c)
        s.flush()
        s.add(
            Injection(
                course_id=c.id,
                patient_id=p.id,
                given_at=datetime(2025, 1, 2, 9, tzinfo=UTC),
                dose=Decimal("0.0000001"),
                dose_unit="mL",
                volume_ml=Decimal("0.10"),
            )
        )
    with registry.session() as s:
        inj = s.scalar(select(Injection))
        assert inj.dose == Decimal("0.0000001") and isinstance(inj.dose, Decimal)
        assert inj.volume_ml == Decimal("0.1")


def test_audit_records_insert_and_update_with_before_after(registry):
    with registry.transaction("nurse.kim", use_case="test") as s:
        s.add(Patient(pseudo_id="P-aud", sex="female"))
    with registry.transaction("dr.lee") as s:
        p = s.scalar(select(Patient).where(Patient.pseudo_id == "P-aud"))
        p.sex = "male"
    with registry.session() as s:
        rows = s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(r.actor, r.action, r.table_name) for r in rows] == [
        ("nurse.kim", "insert", "patients"),
        ("dr.lee", "update", "patients"),
    ]
    assert rows[0].after["pseudo_id"] == "P-aud" and rows[0].use_case == "test"
    assert rows[1].before == {"sex": "female"} and rows[1].after == {"sex": "male"}
    assert rows[1].at is not None


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"])
def test_audit_log_refuses_update_and_delete(registry, statement):
    with registry.transaction("tester") as s:
        s.add(Patient(pseudo_id="P-app", sex="female"))
    with pytest.raises(DBAPIError, match="append-only"), registry.engine.begin() as conn:
        conn.execute(text(statement))
    with registry.session() as s:
        assert s.scalar(select(AuditEntry.actor)) == "tester"


def test_failed_transaction_writes_nothing(registry):
    with pytest.raises(RuntimeError), registry.transaction("tester") as s:
        s.add(Patient(pseudo_id="P-rb", sex="female"))
        s.flush()
        raise RuntimeError("boom")
    with registry.session() as s:
        assert s.scalar(select(Patient)) is None
        assert s.scalar(select(AuditEntry)) is None


def test_transaction_requires_an_actor(registry):
    with pytest.raises(InvalidInput, match="actor"), registry.transaction("  "):
        pass


def test_sqlite_file_uses_wal_and_foreign_keys(sqlite_registry):
    with sqlite_registry.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_open_registry_creates_parent_folders_and_is_idempotent(tmp_path):
    path = tmp_path / "a" / "b" / "reg.sqlite"
    open_registry(path).dispose()
    reg = open_registry(path)
    assert current_revision(reg.engine) == head_revision()
    reg.dispose()


def test_settings_choose_the_database(monkeypatch, tmp_path):
    monkeypatch.delenv("IMMUNOPLAN_DATABASE_URL", raising=False)
    monkeypatch.setenv("IMMUNOPLAN_DB", str(tmp_path / "x.sqlite"))
    assert to_url(None) == f"sqlite:///{tmp_path / 'x.sqlite'}"
    monkeypatch.setenv("IMMUNOPLAN_DATABASE_URL", "postgresql+psycopg://u@h:5/d")
    assert to_url(None) == "postgresql+psycopg://u@h:5/d"


def test_bad_url_is_invalid_input():
    with pytest.raises(InvalidInput, match="url"):
        to_url("nonsense://")


def test_upgrade_from_the_first_revision_keeps_data(tmp_path):
    from immunoplan.registry.db import make_engine, migrate

    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    assert migrate(engine, "0001") == "0001"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO patients (pseudo_id, sex, cohort, created_at) "
                "VALUES ('OLD-1', 'male', 'clinic', '2024-01-01')"
            )
        )
        conn.execute(
            text("INSERT INTO reactions (patient_id, kind, scale_version) VALUES (1, 'local', 'v1')")
        )
    engine.dispose()
    reg = open_registry(tmp_path / "old.sqlite")  # upgrades to head (0002 rebuilds reactions in batch mode)
    with reg.session() as s:
        assert s.scalar(select(Patient.pseudo_id)) == "OLD-1"
        assert s.scalar(text("SELECT scale_version FROM reactions")) == "v1"
    assert current_revision(reg.engine) == head_revision()
    with reg.transaction("t") as s:
        s.add(Patient(pseudo_id="NEW-1", sex="female"))
    with pytest.raises(DBAPIError, match="append-only"), reg.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))  # triggers survive the batch migration
    reg.dispose()


def test_audit_trail_never_stores_password_hashes(registry):
    """Secret columns are recorded as changed ('[redacted]'), never with their value."""
    from immunoplan.registry.models import User

    with registry.transaction("admin") as s:
        s.add(User(username="kim", password_hash="$argon2id$secret-1", role="nurse"))
    with registry.transaction("admin") as s:
        u = s.scalar(select(User).where(User.username == "kim"))
        u.password_hash = "$argon2id$secret-2"
    with registry.session() as s:
        query = select(AuditEntry).where(AuditEntry.table_name == "users").order_by(AuditEntry.id)
        rows = s.scalars(query).all()
    assert [r.action for r in rows] == ["insert", "update"]
    assert rows[0].after["password_hash"] == "[redacted]" and rows[0].after["username"] == "kim"
    assert rows[1].before == {"password_hash": "[redacted]"}
    assert rows[1].after == {"password_hash": "[redacted]"}
    assert "secret" not in repr([(r.before, r.after) for r in rows])
