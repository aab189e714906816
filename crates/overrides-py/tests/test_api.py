"""Normalisation, blending and application seen from Python, against hand-computed values."""

from __future__ import annotations

import math
from collections import UserDict

import pytest
from conftest import PATTERN, config, override

from learnloop_overrides import LEVERS, Overrides, OverridesHandle


@pytest.fixture()
def two_level() -> Overrides:
    """A root override and a 2-dim one, both with confidence 0.5 (alpha 1.5)."""
    return Overrides.from_json(
        config(
            7,
            [
                override("root", {}, 1.2, entry_aggression_mult=1.1),
                override("mid-good", {"bucket": "mid", "macro_phase": "Good"}, 0.8,
                         exit_aggression_mult=0.9),
            ],
        )
    )


def test_blend_is_the_confidence_and_specificity_weighted_mean(two_level):
    d = two_level.lookup(PATTERN, "add", {"macro_phase": "Good", "bucket": "mid", "x": "y"}, 0.5)
    w_root, w_mid = 0.5 * 1.0**1.5, 0.5 * 3.0**1.5
    expected = (w_root * 1.2 + w_mid * 0.8) / (w_root + w_mid)
    assert d.size_mult == pytest.approx(expected, abs=1e-12)
    assert d.size_frac_after == pytest.approx(0.5 * expected, abs=1e-12)
    assert [m.override_id for m in d.matches] == ["mid-good", "root"]
    assert [m.weight for m in d.matches] == pytest.approx([w_mid, w_root])
    assert d.matches[0].scope == {"bucket": "mid", "macro_phase": "Good"}
    assert d.matches[0].lesson_keys == ["lk-mid-good"] and d.matches[0].factor_id is None
    assert (d.matches[0].confidence, d.matches[0].q_value, d.matches[0].n_trades) == (0.5, 0.01, 40)
    # A lever carried by one override only is that override's value.
    assert d.levers["entry_aggression_mult"] == pytest.approx(1.1)
    assert d.lever("exit_aggression_mult") == pytest.approx(0.9)
    assert d.lever("trail_mult") == 1.0 and "trail_mult" in LEVERS


@pytest.mark.parametrize(
    "scope",
    [
        {"macro_phase": "Good", "bucket": "mid"},
        {" macro_phase ": " Good ", "bucket": "mid", "meso_phase": None, "micro_phase": "",
         "E_mode": "Unknown", "": "x"},
        UserDict({"macro_phase": "Good", "bucket": "mid"}),
    ],
)
def test_scope_is_normalised_like_ingest(two_level, scope):
    assert two_level.lookup(PATTERN, "add", scope).matches[0].override_id == "mid-good"


@pytest.mark.parametrize("value", [2, 2.0, "2", " 2 ", True])
def test_numbers_and_booleans_render_canonically(value):
    expected = "true" if value is True else "2"
    o = Overrides.from_json(config(1, [override("n", {"rank": expected}, 1.25)]))
    assert o.lookup(PATTERN, "add", {"rank": value}).size_mult == 1.25


@pytest.mark.parametrize("value,text", [(0.5, "0.5"), (0.50, "0.5"), (1e20, "100000000000000000000"),
                                        (2**70, "1180591620717411300000"), (-0.0, "0")])
def test_floats_render_in_shortest_round_trip_form(value, text):
    o = Overrides.from_json(config(1, [override("f", {"x": text}, 1.25)]))
    assert o.lookup(PATTERN, "add", {"x": value}).size_mult == 1.25


def test_apply_scales_size_and_aggression_and_clamps(two_level):
    action = {"pattern_key": PATTERN, "action_category": "add", "scope": {"bucket": "small"},
              "size_frac": 0.9, "a_value": 0.4, "e_value": 0.6}
    applied = two_level.apply(action)
    assert applied.size_frac_after == 1.0  # 0.9 × 1.2 clamped
    assert applied.a_value_after == pytest.approx(0.44) and applied.e_value_after == 0.6
    assert applied.changed and applied.decision.size_frac_before == 0.9
    d = applied.to_dict()
    assert d["size_frac_after"] == 1.0 and d["a_value_before"] == 0.4 and d["e_value_after"] == 0.6
    assert d["matches"][0]["scope"] == {}
    untouched = two_level.apply({**action, "pattern_key": "module=pm|pattern_key=other"})
    assert not untouched.changed and untouched.decision.matches == []


def test_size_frac_is_shown_only_when_given(two_level):
    d = two_level.lookup(PATTERN, "add", {})
    assert d.size_frac_before is None and d.to_dict()["size_frac_after"] is None


def test_config_metadata_and_handle_install(two_level):
    assert (two_level.module, two_level.version, len(two_level)) == ("pm", 7, 2)
    assert two_level.as_of == "2026-06-01T00:00:00Z" and len(two_level.checksum) > 0
    handle = OverridesHandle(two_level)
    assert handle.version == 7 and handle.last_error is None
    handle.clear()
    assert handle.version is None and handle.snapshot() is None
    assert handle.lookup(PATTERN, "add", {}).fallback_reason == "no learning config loaded"
    handle.install(two_level)
    assert handle.snapshot().version == 7
    assert not math.isnan(handle.lookup(PATTERN, "add", {}).size_mult)
    assert "Decision(" in repr(handle.lookup(PATTERN, "add", {})) and "Overrides(" in repr(two_level)
