"""A PM tick loop with learnloop's overrides: `python pm_loop.py learnloop.db [ticks]`."""

import sys
import time

from learnloop_overrides import OverridesHandle

db, ticks = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3
handle = OverridesHandle()
print("loaded:", handle.reload_sqlite(db))  # never raises: a bad config is served as "none"

for tick in range(ticks):
    # Pick up a newly activated version (`learnloop config activate V`); cheap when unchanged.
    reload = handle.reload_sqlite(db)
    if reload.changed:
        print(f"tick {tick}: now serving config v{reload.version}")
    elif not reload:
        print(f"tick {tick}: still v{handle.version}, reload failed: {reload.error}")

    config = handle.snapshot()  # one version for the whole tick
    action = {
        "pattern_key": "module=pm|pattern_key=uptrend.S3.add",
        "action_category": "add",
        "scope": {"macro_phase": "Euphoria", "bucket": "micro", "timeframe": "1h"},
        "size_frac": 0.20,
        "a_value": 0.5,
    }
    applied = (config or handle).apply(action)
    print(f"tick {tick}: size_frac {applied.size_frac_before} -> {applied.size_frac_after:.4f}"
          f" (x{applied.decision.size_mult:.3f}, {len(applied.decision.matches)} overrides)"
          + (f", unchanged: {applied.decision.fallback_reason}" if applied.decision.fell_back else ""))
    record = applied.to_dict()  # save with the PM's decision, to reproduce it later
    time.sleep(0.1)
