"""Shared fixtures: the `learnloop` binary, a demo store with an active config, config builders."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from learnloop_overrides import Overrides

REPO = Path(__file__).resolve().parents[3]
PATTERN = "module=pm|pattern_key=uptrend.S2.add"


def _find_binary() -> Path:
    """`$LEARNLOOP_BIN`, else the workspace's build (release first); built when absent."""
    if os.environ.get("LEARNLOOP_BIN"):
        return Path(os.environ["LEARNLOOP_BIN"])
    for profile in ("release", "debug"):
        candidate = REPO / "target" / profile / "learnloop"
        if candidate.exists():
            return candidate
    subprocess.run(
        ["cargo", "build", "--locked", "-p", "learnloop-cli"], cwd=REPO, check=True
    )
    return REPO / "target" / "debug" / "learnloop"


@pytest.fixture(scope="session")
def learnloop_bin() -> Path:
    return _find_binary()


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory, learnloop_bin: Path) -> Path:
    """A store after `learnloop demo` + `run --activate`: the demo config, version 1, active."""
    work = tmp_path_factory.mktemp("demo")
    strands, db = work / "demo.jsonl", work / "demo.db"
    subprocess.run([learnloop_bin, "demo", "--out", strands], check=True, capture_output=True)
    subprocess.run(
        [learnloop_bin, "--db", db, "run", "--input", strands, "--activate"],
        check=True,
        capture_output=True,
    )
    return db


@pytest.fixture()
def demo_db_copy(demo_db: Path, tmp_path: Path) -> Path:
    """A private copy of the demo store, for tests that edit it."""
    copy = tmp_path / "copy.db"
    shutil.copyfile(demo_db, copy)
    return copy


def active_config(db: Path, module: str = "pm") -> dict:
    with sqlite3.connect(db) as conn:
        (text,) = conn.execute(
            "SELECT config_data FROM learning_configs WHERE module = ? AND status = 'active' "
            "ORDER BY version DESC LIMIT 1",
            (module,),
        ).fetchone()
    return json.loads(text)


def override(override_id: str, scope: dict, size_mult: float, **extra) -> dict:
    """One override of `PATTERN`/add with the fields the schema requires."""
    return {
        "override_id": override_id,
        "pattern_key": PATTERN,
        "action_category": "add",
        "scope": scope,
        "levers": {"size_mult": size_mult, **extra},
        "confidence": 0.5,
        "q_value": 0.01,
        "n_trades": 40,
        "lesson_keys": [f"lk-{override_id}"],
        "factor_id": None,
    }


def config(version: int, overrides: list[dict], **fields) -> str:
    data = {
        "schema_version": 1,
        "module": "pm",
        "version": version,
        "as_of": "2026-06-01T00:00:00Z",
        "pattern_overrides": overrides,
        **fields,
    }
    return json.dumps(data)


def activate_copy_as_v2(db: Path) -> None:
    """What `learnloop config activate` leaves behind: a new active row, the old superseded."""
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT module, as_of, run_id, created_at, config_data FROM learning_configs "
            "WHERE status = 'active'"
        ).fetchone()
        data = json.loads(row[4])
        data["version"] = 2
        text = json.dumps(data)
        checksum = Overrides.from_json(text).checksum
        conn.execute("UPDATE learning_configs SET status = 'superseded' WHERE status = 'active'")
        conn.execute(
            "INSERT INTO learning_configs (module, version, status, as_of, run_id, created_at, "
            "checksum, config_data) VALUES (?, 2, 'active', ?, ?, ?, ?, ?)",
            (row[0], row[1], row[2], row[3], checksum, text),
        )
