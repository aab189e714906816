"""learnloop's runtime overrides for a Python PM.

Load a config version, look up the blended, bounded levers for an action in microseconds, apply
them, and hot-swap new versions while the PM keeps running — the same decision as
``learnloop lookup --json``, from the same Rust code (``crates/overrides``).

>>> from learnloop_overrides import OverridesHandle
>>> handle = OverridesHandle()
>>> handle.reload_sqlite("learnloop.db")            # the active "pm" config; never raises
>>> d = handle.lookup("module=pm|pattern_key=uptrend.S2.add", "add",
...                   {"macro_phase": "Good", "bucket": "mid"}, size_frac=0.2)
>>> d.size_mult, d.size_frac_after, d.fallback_reason
>>> record = d.to_dict()                             # save with the PM's decision

``learnloop_overrides.compat.apply_pattern_strength_overrides`` is a drop-in for the original
PM's function of that name.
"""

from ._native import (
    CONFIG_SCHEMA_VERSION,
    LEVERS,
    AppliedAction,
    ConfigError,
    Decision,
    Match,
    Overrides,
    OverridesHandle,
    Reload,
)
from . import compat

__all__ = [
    "CONFIG_SCHEMA_VERSION",
    "LEVERS",
    "AppliedAction",
    "ConfigError",
    "Decision",
    "Match",
    "Overrides",
    "OverridesHandle",
    "Reload",
    "compat",
]
