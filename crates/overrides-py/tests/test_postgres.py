"""`Overrides.from_postgres` / `OverridesHandle.reload_postgres` against the real PostgreSQL server
`.ci/run` starts (LEARNLOOP_TEST_PG_URL): the row `learnloop config publish --to` wrote gives the
same decisions as the store it came from; polling is cheap; every failure fails open with the
reason, and no reason or exception shows the password."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import PATTERN, activate_copy_as_v2

from learnloop_overrides import ConfigError, Overrides, OverridesHandle

DIMS = {
    "macro_phase": ["Good", "Dip", "Bad", None],
    "bucket": ["low", "mid", "high"],
    "timeframe": ["1m", "15m", "1h", "4h"],
    "A_mode": ["patient", "normal", "aggressive"],
    "E_mode": ["normal", "tight"],
    "market_family": ["sol", "eth", "btc"],
}


@pytest.fixture(scope="session")
def pg_url() -> str:
    url = os.environ.get("LEARNLOOP_TEST_PG_URL", "")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI must provide a PostgreSQL server (LEARNLOOP_TEST_PG_URL, see .ci/pg.sh)")
        pytest.skip(
            "*** SKIPPED: LEARNLOOP_TEST_PG_URL is not set; PostgreSQL tests need a server "
            "(source .ci/pg.sh; pg_prepare; pg_start) ***"
        )
    return url


def password_of(url: str) -> str:
    return urlsplit(url).password or ""


def psql(url: str, sql: str) -> None:
    """Run SQL on the test server (psql comes with the server's Debian package)."""
    binary = shutil.which("psql") or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))), "psql"
    )
    subprocess.run([binary, "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql], check=True,
                   capture_output=True)


def publish(learnloop_bin: Path, db: Path, url: str, table: str) -> None:
    out = subprocess.run(
        [learnloop_bin, "--db", db, "config", "publish", "--to", url, "--table", table],
        capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != "PGPASSWORD"},
    )
    assert out.returncode == 0, out.stderr


@pytest.fixture()
def table(pg_url: str):
    """A fresh table name, dropped after the test."""
    name = f"py_configs_{uuid.uuid4().hex[:12]}"
    yield name
    psql(pg_url, f'DROP TABLE IF EXISTS "{name}"')


def random_scopes(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [
        {d: rng.choice(values) for d, values in DIMS.items() if rng.random() < 0.8}
        for _ in range(n)
    ]


def test_published_config_decides_like_the_store(pg_url, table, learnloop_bin, demo_db_copy):
    publish(learnloop_bin, demo_db_copy, pg_url, table)
    local = Overrides.from_sqlite(demo_db_copy)
    remote = Overrides.from_postgres(pg_url, table=table)
    assert (remote.module, remote.version, remote.checksum, remote.as_of, len(remote)) == (
        local.module, local.version, local.checksum, local.as_of, len(local))
    assert len(remote) > 0
    for scope in random_scopes(200, seed=7):
        for category in ("entry", "add", "trim"):
            assert remote.lookup(PATTERN, category, scope, size_frac=0.2).to_dict() == \
                local.lookup(PATTERN, category, scope, size_frac=0.2).to_dict()


@pytest.mark.skipif(not os.environ.get("LEARNLOOP_TEST_PG_TLS"), reason="the test server has no TLS")
def test_sslmode_require_is_encrypted(pg_url, table, learnloop_bin, demo_db_copy):
    publish(learnloop_bin, demo_db_copy, pg_url, table)
    tls_url = pg_url.replace("sslmode=disable", "sslmode=require")
    assert "sslmode=require" in tls_url
    assert Overrides.from_postgres(tls_url, table=table).version == 1
    # verify-full against the self-signed test certificate must refuse, not fall back to plain.
    with pytest.raises(ConfigError):
        Overrides.from_postgres(pg_url.replace("sslmode=disable", "sslmode=verify-full"), table=table)


def test_reload_polls_cheaply_and_swaps_a_new_version(pg_url, table, learnloop_bin, demo_db_copy):
    publish(learnloop_bin, demo_db_copy, pg_url, table)
    handle = OverridesHandle()
    first = handle.reload_postgres(pg_url, table=table)
    assert first and first.changed and first.version == 1 and handle.last_error is None
    again = handle.reload_postgres(pg_url, table=table)
    assert again and not again.changed and again.version == 1
    activate_copy_as_v2(demo_db_copy)
    publish(learnloop_bin, demo_db_copy, pg_url, table)
    swapped = handle.reload_postgres(pg_url, table=table)
    assert swapped and swapped.changed and swapped.version == 2
    assert handle.lookup(PATTERN, "add", {}).config_version == 2


def test_failures_fail_open_with_the_reason_and_never_the_password(
    pg_url, table, learnloop_bin, demo_db_copy
):
    secret = password_of(pg_url)
    assert secret
    publish(learnloop_bin, demo_db_copy, pg_url, table)
    handle = OverridesHandle()
    assert handle.reload_postgres(pg_url, table=table).version == 1

    wrong_password = pg_url.replace(f":{secret}@", ":not-the-password@")
    unreachable = pg_url.replace(urlsplit(pg_url).netloc.split("@")[1], "127.0.0.1:1")
    failures = {
        "no such table": (pg_url, "no_such_table_here", "pm"),
        "no active row": (pg_url, table, "other_module"),
        "wrong password": (wrong_password, table, "pm"),
        "server down": (unreachable, table, "pm"),
        "bad url": (pg_url.replace("postgresql://", "mysql://"), table, "pm"),
        "bad table name": (pg_url, "x; DROP TABLE y", "pm"),
    }
    for name, (url, tbl, module) in failures.items():
        reload = handle.reload_postgres(url, module=module, table=tbl)
        assert not reload and not reload.changed and reload.version == 1, name
        assert reload.error and secret not in reload.error, (name, reload.error)
        assert "not-the-password" not in reload.error, (name, reload.error)
        assert handle.last_error == reload.error
        with pytest.raises(ConfigError) as raised:
            Overrides.from_postgres(url, module=module, table=tbl)
        assert secret not in str(raised.value) and "not-the-password" not in str(raised.value)
        # Still serving the config loaded before.
        assert handle.lookup(PATTERN, "add", {}).config_version == 1
    assert "127.0.0.1:1" in handle.reload_postgres(unreachable, table=table).error


def test_an_edited_row_is_refused(pg_url, table, learnloop_bin, demo_db_copy):
    publish(learnloop_bin, demo_db_copy, pg_url, table)
    handle = OverridesHandle()
    assert handle.reload_postgres(pg_url, table=table)
    # A hand edit of the published text: the checksum no longer matches, a new version is refused.
    psql(pg_url, f"""UPDATE "{table}" SET version = 7,
                     config_text = replace(config_text, '"version":1', '"version":7'),
                     config_data = replace(config_text, '"version":1', '"version":7')::jsonb""")
    reload = handle.reload_postgres(pg_url, table=table)
    assert not reload and "checksum" in reload.error and reload.version == 1
    with pytest.raises(ConfigError, match="checksum"):
        Overrides.from_postgres(pg_url, table=table)
