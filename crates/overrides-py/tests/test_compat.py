"""The drop-in for the original PM's `apply_pattern_strength_overrides`, on the demo config."""

from __future__ import annotations

import random

import pytest
from conftest import activate_copy_as_v2, active_config

from learnloop_overrides import OverridesHandle, compat


@pytest.fixture()
def demo_handle(demo_db):
    handle = OverridesHandle()
    assert handle.reload_sqlite(demo_db).ok
    compat.use_handle(handle)
    return handle


def _actions(demo_db, count=40):
    """Actions shaped like the PM's: some inside an override's scope, some not."""
    rng = random.Random(40)
    overrides = active_config(demo_db)["pattern_overrides"]
    phases = ["Euphoria", "Good", "Recover", "Dip", "Double-Dip", "Oh-Shit", "Chop"]
    for _ in range(count):
        o = rng.choice(overrides)
        scope = dict(o["scope"]) if rng.random() < 0.5 else {"macro_phase": rng.choice(phases)}
        scope.setdefault("bucket", rng.choice(["micro", "mid", "big"]))
        base = {"A_value": rng.uniform(0.2, 0.8), "E_value": rng.uniform(0.2, 0.8),
                "position_size_frac": rng.uniform(0.05, 0.5)}
        yield o["pattern_key"], o["action_category"], scope, base


def test_drop_in_moves_sizing_exactly_as_the_lookup_says(demo_db, demo_handle):
    moved = 0
    for pattern, category, scope, base in _actions(demo_db):
        a, e, size = compat.apply_pattern_strength_overrides(pattern, category, scope, base)
        d = demo_handle.lookup(pattern, category, scope, size_frac=base["position_size_frac"])
        assert size == d.size_frac_after
        assert a == pytest.approx(base["A_value"] * d.lever("entry_aggression_mult"), rel=1e-15)
        assert e == pytest.approx(base["E_value"] * d.lever("exit_aggression_mult"), rel=1e-15)
        assert compat.last_decision().decision.to_dict() == d.to_dict()
        moved += size != base["position_size_frac"]
    # Unlike the original runtime (0 of 40), the demo's lessons do move sizing.
    assert moved >= 8, moved


def test_flags_and_failures_return_the_base_values(demo_db, demo_handle):
    pattern, category, scope, base = next(
        (p, c, s, b) for p, c, s, b in _actions(demo_db)
        if demo_handle.lookup(p, c, s).size_mult != 1.0
    )
    expected = (base["A_value"], base["E_value"], base["position_size_frac"])
    for flags in ({"learning_enabled": False}, {"pattern_strength_overrides": False}):
        assert compat.apply_pattern_strength_overrides(pattern, category, scope, base, flags) == expected
    assert compat.apply_pattern_strength_overrides(pattern, category, scope, base, {"other": 1}) != expected
    assert compat.apply_pattern_strength_overrides(pattern, "emergency_exit", scope, base) == expected
    lower = {"a_value": 0.5, "size_frac": 0.2}
    a, e, size = compat.apply_pattern_strength_overrides(pattern, category, scope, lower)
    assert e is None and size != 0.2 and a is not None


def test_configure_reads_the_store_and_fails_open_without_one(demo_db, tmp_path):
    handle = compat.configure(demo_db, reload_seconds=3600)
    assert handle.version == 1
    missing = compat.configure(tmp_path / "none.db")
    assert missing.version is None and missing.last_error
    base = {"A_value": 0.5, "E_value": 0.5, "position_size_frac": 0.3}
    assert compat.apply_pattern_strength_overrides("p", "add", {}, base) == (0.5, 0.5, 0.3)


def test_configured_store_is_polled_for_a_new_version(demo_db_copy):
    handle = compat.configure(demo_db_copy, reload_seconds=0.0)
    assert handle.version == 1
    activate_copy_as_v2(demo_db_copy)
    base = {"A_value": 0.5, "E_value": 0.5, "position_size_frac": 0.3}
    compat.apply_pattern_strength_overrides("module=pm|pattern_key=uptrend.S2.add", "add", {}, base)
    assert handle.version == 2 and compat.last_decision().decision.config_version == 2


def test_unusable_input_fails_open_with_the_values_as_given(demo_db, demo_handle):
    pattern, category, scope, _ = next(_actions(demo_db))
    bad = {"A_value": "high", "E_value": 0.5, "position_size_frac": 0.3}
    assert compat.apply_pattern_strength_overrides(pattern, category, scope, bad) == ("high", 0.5, 0.3)
    assert "ValueError" in compat.last_error() and compat.last_decision() is None
    assert compat.apply_pattern_strength_overrides(pattern, category, scope, None) == (None, None, None)
    assert compat.last_error()
    good = {"A_value": 0.5, "E_value": 0.5, "position_size_frac": 0.3}
    compat.apply_pattern_strength_overrides(pattern, category, scope, good)
    assert compat.last_error() is None and compat.last_decision() is not None
