"""Bad configs and bad input fail open with the reason; exceptions only for programmer errors."""

from __future__ import annotations

import json
import sqlite3
import types

import pytest
from conftest import PATTERN, config, override

from learnloop_overrides import ConfigError, Overrides, OverridesHandle

GOOD = config(3, [override("root", {}, 1.2)])
BAD_CONFIGS = {
    "not json": "{",
    "unknown schema": GOOD.replace('"schema_version": 1', '"schema_version": 99'),
    "lever out of bounds": config(4, [override("x", {}, 1.9)]),
    "unknown lever": config(4, [{**override("x", {}, 1.1), "levers": {"size_mul": 1.1}}]),
    "bad category": config(4, [{**override("x", {}, 1.1), "action_category": "hold"}]),
    "duplicate ids": config(4, [override("x", {}, 1.1), override("x", {"bucket": "mid"}, 1.1)]),
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_bad_config_raises_from_constructor_and_keeps_previous_in_handle(name):
    text = BAD_CONFIGS[name]
    with pytest.raises(ConfigError):
        Overrides.from_json(text)

    handle = OverridesHandle()
    assert handle.reload_json(GOOD).ok
    reload = handle.reload_json(text)
    assert not reload and reload.error and not reload.changed and reload.version == 3
    assert handle.last_error == reload.error
    d = handle.lookup(PATTERN, "add", {}, size_frac=0.5)
    assert (d.config_version, d.size_mult, d.size_frac_after, d.fallback_reason) == (3, 1.2, 0.6, None)


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_bad_config_without_previous_falls_back_with_the_reason(name):
    handle = OverridesHandle()
    reload = handle.reload_json(BAD_CONFIGS[name])
    d = handle.lookup(PATTERN, "add", {"bucket": "mid"}, size_frac=0.5)
    assert d.fell_back and d.fallback_reason == reload.error
    assert (d.config_version, d.size_mult, d.levers, d.matches, d.size_frac_after) == (None, 1.0, {}, [], 0.5)


def test_clear_forgets_an_earlier_reload_error():
    never_loaded = OverridesHandle().lookup(PATTERN, "add", {}).fallback_reason
    handle = OverridesHandle()
    assert handle.reload_json(GOOD).ok
    assert not handle.reload_json(BAD_CONFIGS["unknown schema"]).ok
    handle.clear()
    assert handle.last_error is None
    assert handle.lookup(PATTERN, "add", {}).fallback_reason == never_loaded


def test_tampered_store_row_fails_checksum_and_keeps_serving(demo_db_copy):
    handle = OverridesHandle()
    first = handle.reload_sqlite(demo_db_copy)
    assert first.ok and first.changed
    assert handle.reload_sqlite(demo_db_copy).changed is False  # polling: unchanged row
    with sqlite3.connect(demo_db_copy) as conn:
        conn.execute(
            "UPDATE learning_configs SET config_data = config_data || ' ' WHERE status = 'active'"
        )
    reload = handle.reload_sqlite(demo_db_copy)
    assert not reload and "checksum mismatch" in reload.error
    assert handle.version == first.version
    with pytest.raises(ConfigError, match="checksum mismatch"):
        Overrides.from_sqlite(demo_db_copy)


def test_missing_store_is_an_error_not_a_new_file(tmp_path):
    missing = tmp_path / "typo.db"
    handle = OverridesHandle()
    assert not handle.reload_sqlite(missing)
    with pytest.raises(ConfigError):
        Overrides.from_sqlite(missing)
    assert not missing.exists()
    d = handle.apply({"pattern_key": PATTERN, "action_category": "add", "size_frac": 0.4})
    assert d.size_frac_after == 0.4 and "typo.db" in d.decision.fallback_reason


def test_bad_action_input_falls_back():
    o = Overrides.from_json(GOOD)
    assert "unknown action category" in o.lookup(PATTERN, "hold", {}).fallback_reason
    bad_value = o.lookup(PATTERN, "add", {"bucket": ["mid"]}, size_frac=0.5)
    assert bad_value.size_frac_after == 0.5 and bad_value.config_version == 3
    assert 'dimension "bucket" has a non-categorical value' in bad_value.fallback_reason
    assert "scope keys must be str" in o.lookup(PATTERN, "add", {1: "x"}).fallback_reason
    assert "non-categorical" in o.lookup(PATTERN, "add", {"x": float("nan")}).fallback_reason
    nan = o.apply({"pattern_key": PATTERN, "action_category": "add", "size_frac": float("nan")})
    assert "invalid action input" in nan.decision.fallback_reason and not nan.changed
    exit_ = o.apply({"pattern_key": PATTERN, "action_category": "exit",
                     "decision_type": "emergency_exit", "size_frac": 1.0, "e_value": 0.3})
    assert not exit_.changed and exit_.decision.fallback_reason == "emergency exits are never resized"


def test_programmer_errors_raise():
    o = Overrides.from_json(GOOD)
    with pytest.raises(TypeError):
        o.lookup(PATTERN, "add", ["bucket", "mid"])
    with pytest.raises(KeyError):
        o.apply({"pattern_key": PATTERN, "size_frac": 0.1})
    with pytest.raises(TypeError):
        o.apply({"pattern_key": PATTERN, "action_category": "add", "size_frac": "0.1"})
    with pytest.raises(ValueError):
        o.lookup(PATTERN, "add", {}).lever("size_mul")


def test_learning_switched_off_by_config_flags():
    flags = {"learning_enabled": True, "disabled_regimes": ["Oh-Shit"], "disabled_buckets": [],
             "disabled_patterns": [], "disabled_categories": []}
    o = Overrides.from_json(config(5, [override("root", {}, 1.2)], feature_flags=flags))
    d = o.lookup(PATTERN, "add", {"macro_phase": "Oh-Shit"}, size_frac=0.5)
    assert d.size_frac_after == 0.5 and "regime" in d.fallback_reason
    assert o.lookup(PATTERN, "add", types.MappingProxyType({"macro_phase": "Good"})).size_mult == 1.2
    json.loads(d.to_json())
