"""Reloads swap whole versions while 4 reader threads look up: never a torn config."""

from __future__ import annotations

import threading

from conftest import PATTERN, config, override

from learnloop_overrides import OverridesHandle

VERSIONS = 60
DIMS = ["macro_phase", "bucket", "timeframe", "A_mode"]
SCOPE = {"macro_phase": "Good", "bucket": "mid", "timeframe": "1h", "A_mode": "patient",
         "E_mode": "normal", "market_family": "sol"}


def size_mult_of(version: int) -> float:
    return round(0.7 + 0.01 * (version % 61), 2)


def version_text(version: int) -> str:
    """Every override of a version carries the same size multiplier and the version in its id:
    any mix of two versions shows as a match from another version or a blend off that value."""
    overrides = []
    for i in range(400):
        k = 1 + i % len(DIMS)
        scope = {d: SCOPE[d] if i % 3 else f"other{i}" for d in DIMS[:k]}
        overrides.append(override(f"v{version}-o{i}", scope, size_mult_of(version)))
    return config(version, overrides)


def test_readers_never_see_a_torn_config():
    texts = [version_text(v) for v in range(1, VERSIONS + 1)]
    handle = OverridesHandle()
    assert handle.reload_json(texts[0]).version == 1
    done = threading.Event()
    failures: list[str] = []
    seen: list[set] = [set() for _ in range(4)]

    def reader(slot: int) -> None:
        last = 0
        while not done.is_set():
            d = handle.lookup(PATTERN, "add", SCOPE, size_frac=0.5)
            v = d.config_version
            expected = size_mult_of(v)
            ids_ok = all(m.override_id.startswith(f"v{v}-") for m in d.matches)
            levers_ok = all(m.levers == {"size_mult": expected} for m in d.matches)
            if not (ids_ok and levers_ok and d.matches and abs(d.size_mult - expected) < 1e-12):
                failures.append(f"torn decision at v{v}: {d.to_dict()}")
                return
            if v < last:
                failures.append(f"version went back from {last} to {v}")
                return
            last = v
            seen[slot].add(v)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        for v, text in enumerate(texts[1:], start=2):
            reload = handle.reload_json(text)
            assert reload.ok and reload.changed and reload.version == v
    finally:
        done.set()
        for t in threads:
            t.join()
    assert not failures, failures[:3]
    assert handle.version == VERSIONS
    # Readers really ran across swaps.
    assert all(len(s) >= 2 for s in seen), [len(s) for s in seen]


def test_snapshot_pins_one_version_across_a_reload():
    handle = OverridesHandle()
    handle.reload_json(version_text(1))
    pinned = handle.snapshot()
    handle.reload_json(version_text(2))
    assert pinned.lookup(PATTERN, "add", SCOPE).config_version == 1
    assert handle.lookup(PATTERN, "add", SCOPE).config_version == 2
