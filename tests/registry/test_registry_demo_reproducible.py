"""Same --seed, same cohorts: the demo generator must not depend on the interpreter's hash seed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import hashlib, sqlite3, sys
from immunoplan.registry.db import open_registry
from immunoplan.synthetic import create_demo
path = sys.argv[1]
reg = open_registry(path)
create_demo(reg, seed=3, patients=120)
reg.engine.dispose()
con = sqlite3.connect(path)
h = hashlib.sha256()
for table in ("patients", "reactions", "courses", "measurements"):
    info = con.execute(f"PRAGMA table_info({table})")
    cols = [r[1] for r in info if r[1] not in ("created_at", "updated_at")]
    for row in con.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY id"):
        h.update(repr(row).encode())
print(h.hexdigest())
"""


def _digest(tmp_path: Path, hash_seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / f"demo-{hash_seed}.sqlite")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_demo_cohorts_do_not_depend_on_hash_seed(tmp_path: Path) -> None:
    assert _digest(tmp_path, "1") == _digest(tmp_path, "2") == _digest(tmp_path, "12345")
