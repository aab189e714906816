"""Drop-in replacement for the original PM's ``pm/overrides.py``.

The original ``apply_pattern_strength_overrides`` weighted each override by
``stats.edge_raw``, ``stats.n``, ``stats.variance`` and ``lesson.strength`` — fields learnloop's
configs do not carry, so against our active config it moved sizing in 0 of 40 actions where ours
moved 8 — and its formula (tanh(|edge|) · (1 − e^(−n/25)) · 1/(1 + var) · (dims/10)^1.5 ·
strength, dropped below 0.02, multiplier capped at ±0.02) left almost every override inert. This
module keeps the function's signature and return shape and answers with learnloop's lookup (the
same decision as ``learnloop lookup --json``), so a PM switches by changing one import::

    # from pm.overrides import apply_pattern_strength_overrides
    from learnloop_overrides.compat import apply_pattern_strength_overrides

Where the config comes from: the handle given to :func:`use_handle` (the PM's own, which it
reloads itself); otherwise the active ``pm`` config of the SQLite store at ``$LEARNLOOP_DB``
(default ``./learnloop.db``), loaded on first call and re-checked every
``$LEARNLOOP_RELOAD_SECONDS`` (default 60) on the calling thread — a re-check reads the active row
and swaps only when the version changed. Set the source explicitly with :func:`configure`.

Assumptions about the original (documented because its source is not in this repository):

- ``base_levers`` is a mapping with ``A_value`` (entry aggression), ``E_value`` (exit aggression)
  and ``position_size_frac``; lower-case ``a_value``, ``e_value``, ``size_frac`` are accepted too.
  A value that is missing comes back as ``None``.
- ``feature_flags`` (optional mapping) switches the overrides off when any of
  ``learning_enabled``, ``pattern_strength_overrides``, ``enable_pattern_strength_overrides``,
  ``pattern_strength_overrides_enabled`` is present and false. The config's own feature flags
  (learning disabled globally, by regime, bucket, pattern or category) always apply.
- The result is ``(A_value, E_value, position_size_frac)``: ``A_value × entry_aggression_mult``,
  ``E_value × exit_aggression_mult``, ``clamp(position_size_frac × size_mult, 0, 1)``. Any failure
  (no config, bad input such as a value that is not a number, unknown category such as
  ``emergency_exit``) returns the base values unchanged and never raises — fail open, as the
  original did; :func:`last_error` says why when the input itself was unusable.

:func:`last_decision` gives the full decision (matches, weights, lesson keys) of the calling
thread's last call, to save with the PM's decision record.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from typing import Any, Optional, Tuple

from ._native import AppliedAction, OverridesHandle

__all__ = [
    "apply_pattern_strength_overrides",
    "configure",
    "use_handle",
    "last_decision",
    "last_error",
]

_SWITCHES = (
    "learning_enabled",
    "pattern_strength_overrides",
    "enable_pattern_strength_overrides",
    "pattern_strength_overrides_enabled",
)


class _Source:
    """The handle the drop-in reads, and how (whether) it keeps it fresh."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.handle: Optional[OverridesHandle] = None
        self.db_path: Optional[str] = None
        self.module = "pm"
        self.reload_seconds = 60.0
        self.next_check = 0.0

    def current(self) -> OverridesHandle:
        with self.lock:
            if self.handle is None:
                self._configure(
                    os.environ.get("LEARNLOOP_DB", "learnloop.db"),
                    "pm",
                    float(os.environ.get("LEARNLOOP_RELOAD_SECONDS", "60")),
                )
                assert self.handle is not None
                return self.handle
            handle, db_path, module = self.handle, self.db_path, self.module
            due = db_path is not None and time.monotonic() >= self.next_check
            if due:
                self.next_check = time.monotonic() + self.reload_seconds
        if due:
            # Outside the lock: other threads keep deciding with the current config meanwhile
            # (the handle swaps atomically).
            assert db_path is not None
            handle.reload_sqlite(db_path, module)
        return handle

    def _configure(self, db_path: str, module: str, reload_seconds: float) -> None:
        self.handle = OverridesHandle()
        self.db_path, self.module, self.reload_seconds = db_path, module, reload_seconds
        self._reload()

    def _reload(self) -> None:
        assert self.handle is not None and self.db_path is not None
        self.handle.reload_sqlite(self.db_path, self.module)
        self.next_check = time.monotonic() + self.reload_seconds


_source = _Source()
_last = threading.local()


def configure(db_path: str | os.PathLike[str], module: str = "pm", reload_seconds: float = 60.0) -> OverridesHandle:
    """Read the active config of ``module`` from the SQLite store at ``db_path`` now, and
    re-check it every ``reload_seconds``. Returns the handle (its ``last_error`` says why a load
    failed; lookups fail open meanwhile)."""
    with _source.lock:
        _source._configure(os.fspath(db_path), module, reload_seconds)
        assert _source.handle is not None
        return _source.handle


def use_handle(handle: OverridesHandle) -> None:
    """Answer from ``handle`` (the PM reloads it itself; no polling here)."""
    with _source.lock:
        _source.handle, _source.db_path = handle, None


def last_decision() -> Optional[AppliedAction]:
    """The full result of this thread's last call, or ``None`` before the first one."""
    return getattr(_last, "applied", None)


def _base(base_levers: Mapping[str, Any], name: str, alias: str) -> Optional[float]:
    value = base_levers.get(name, base_levers.get(alias))
    return None if value is None else float(value)


def _switched_off(feature_flags: Optional[Mapping[str, Any]]) -> bool:
    if not feature_flags:
        return False
    return any(name in feature_flags and not feature_flags[name] for name in _SWITCHES)


def last_error() -> Optional[str]:
    """Why this thread's last call returned the base values because of bad input (a value that
    is not a number, ``base_levers`` that is not a mapping, a broken ``$LEARNLOOP_RELOAD_SECONDS``),
    or ``None``. A fallback decided by the lookup itself is in :func:`last_decision`."""
    return getattr(_last, "error", None)


def _raw_base(base_levers: Any) -> Tuple[Any, Any, Any]:
    """The base values exactly as given, for a call that cannot be decided."""
    if not isinstance(base_levers, Mapping):
        return None, None, None
    return tuple(  # type: ignore[return-value]
        base_levers.get(name, base_levers.get(alias))
        for name, alias in (("A_value", "a_value"), ("E_value", "e_value"), ("position_size_frac", "size_frac"))
    )


def apply_pattern_strength_overrides(
    pattern_key: str,
    action_category: str,
    scope: Mapping[str, Any],
    base_levers: Mapping[str, Any],
    feature_flags: Optional[Mapping[str, Any]] = None,
) -> Tuple[Optional[float], Optional[float], Optional[float]]:
    """``(A_value, E_value, position_size_frac)`` after learnloop's overrides for this action.
    Never raises: on any failure the base values come back as given (see :func:`last_error`)."""
    _last.error = None
    try:
        return _apply(pattern_key, action_category, scope, base_levers, feature_flags)
    except BaseException as e:  # fail open, as the original did: a sizing aid must not stop the PM
        # pyo3 raises a Rust panic as PanicException, a BaseException; any other BaseException
        # (KeyboardInterrupt, SystemExit, asyncio's CancelledError) is the caller's and goes on.
        if not isinstance(e, Exception) and type(e).__name__ != "PanicException":
            raise
        _last.applied = None
        _last.error = f"{type(e).__name__}: {e}"
        return _raw_base(base_levers)


def _apply(
    pattern_key: str,
    action_category: str,
    scope: Mapping[str, Any],
    base_levers: Mapping[str, Any],
    feature_flags: Optional[Mapping[str, Any]],
) -> Tuple[Optional[float], Optional[float], Optional[float]]:
    a_value = _base(base_levers, "A_value", "a_value")
    e_value = _base(base_levers, "E_value", "e_value")
    size_frac = _base(base_levers, "position_size_frac", "size_frac")
    if _switched_off(feature_flags):
        _last.applied = None
        return a_value, e_value, size_frac
    applied = _source.current().apply(
        {
            "pattern_key": pattern_key,
            "action_category": action_category,
            "scope": scope,
            "size_frac": 0.0 if size_frac is None else size_frac,
            "a_value": a_value,
            "e_value": e_value,
        }
    )
    _last.applied = applied
    return (
        applied.a_value_after,
        applied.e_value_after,
        None if size_frac is None else applied.size_frac_after,
    )
