"""Type stubs of the compiled extension (``crates/overrides-py/src``)."""

from collections.abc import Mapping
from os import PathLike
from typing import Any, Final, Optional

CONFIG_SCHEMA_VERSION: Final[int]
"""The ``config_data`` schema version this build reads."""

LEVERS: Final[list[str]]
"""The lever vocabulary, in the order decisions list them."""

ScopeValue = str | int | float | bool | None
"""A scope value; normalised like ingest (trimmed; None, "" and "unknown" mean absent)."""

class ConfigError(ValueError):
    """A config could not be loaded; raised only by the ``Overrides.from_*`` constructors."""

class Match:
    """One override that matched an action, with its blend weight."""

    @property
    def override_id(self) -> str: ...
    @property
    def scope(self) -> dict[str, str]: ...
    @property
    def weight(self) -> float:
        """``confidence × (1 + dims)^alpha``."""
    @property
    def levers(self) -> dict[str, float]:
        """The override's own levers, before blending."""
    @property
    def lesson_keys(self) -> list[str]: ...
    @property
    def factor_id(self) -> Optional[str]: ...
    @property
    def confidence(self) -> float: ...
    @property
    def q_value(self) -> float: ...
    @property
    def n_trades(self) -> int: ...
    def to_dict(self) -> dict[str, Any]:
        """This match as in ``Decision.to_dict()["matches"]``."""

class Decision:
    """The runtime decision for one action, as ``learnloop lookup --json`` reports it."""

    @property
    def config_version(self) -> Optional[int]: ...
    @property
    def size_mult(self) -> float: ...
    @property
    def levers(self) -> dict[str, float]:
        """Every blended lever (only those some match carries)."""
    @property
    def size_frac_before(self) -> Optional[float]: ...
    @property
    def size_frac_after(self) -> Optional[float]: ...
    @property
    def matches(self) -> list[Match]:
        """Most specific first, then by override id."""
    @property
    def fallback_reason(self) -> Optional[str]:
        """Why the action was left unchanged, else None."""
    @property
    def fell_back(self) -> bool: ...
    def lever(self, name: str) -> float:
        """A blended lever, or its neutral value; ValueError for an unknown name."""
    def to_dict(self) -> dict[str, Any]:
        """Equal to the ``learnloop lookup --json`` object."""
    def to_json(self) -> str:
        """The ``learnloop lookup --json`` object as compact JSON text."""

class AppliedAction:
    """An action after learning, with the decision that explains it."""

    @property
    def size_frac_before(self) -> float: ...
    @property
    def size_frac_after(self) -> float: ...
    @property
    def a_value_before(self) -> Optional[float]: ...
    @property
    def a_value_after(self) -> Optional[float]: ...
    @property
    def e_value_before(self) -> Optional[float]: ...
    @property
    def e_value_after(self) -> Optional[float]: ...
    @property
    def changed(self) -> bool: ...
    @property
    def decision(self) -> Decision: ...
    def to_dict(self) -> dict[str, Any]:
        """The decision's ``lookup --json`` object plus a/e values before and after."""

class Overrides:
    """One validated, indexed config version; immutable and thread-safe."""

    @staticmethod
    def from_json(text: str) -> Overrides:
        """Parse ``config_data`` text; raises ConfigError."""
    @staticmethod
    def from_file(path: str | PathLike[str]) -> Overrides:
        """Load ``config_data`` from a file; raises ConfigError."""
    @staticmethod
    def from_sqlite(path: str | PathLike[str], module: str = "pm") -> Overrides:
        """The active config of ``module`` in a learnloop store (read-only); raises ConfigError."""
    @staticmethod
    def from_postgres(
        url: str, module: str = "pm", table: str = "learning_configs"
    ) -> Overrides:
        """The active config of ``module`` published by ``learnloop config publish --to url``
        (``postgresql://USER:PASSWORD@HOST:PORT/DB?sslmode=require``; the password may come
        from ``PGPASSWORD``), verified like ``from_sqlite``; raises ConfigError, whose message
        never holds the password."""
    @property
    def module(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def as_of(self) -> str: ...
    @property
    def checksum(self) -> str: ...
    def __len__(self) -> int: ...
    def lookup(
        self,
        pattern_key: str,
        category: str,
        scope: Mapping[str, ScopeValue] | None,
        size_frac: Optional[float] = None,
    ) -> Decision:
        """The decision for an action; fails open (TypeError only for a non-mapping scope)."""
    def apply(self, action: Mapping[str, Any]) -> AppliedAction:
        """Apply to an action mapping: pattern_key, action_category, size_frac, and optional
        scope, decision_type, a_value, e_value. KeyError/TypeError for a missing or mistyped
        field; everything else fails open."""

class Reload:
    """What a reload did; truthy when it succeeded."""

    @property
    def ok(self) -> bool: ...
    @property
    def version(self) -> Optional[int]:
        """The version served after the reload."""
    @property
    def changed(self) -> bool:
        """True when a new config was swapped in."""
    @property
    def error(self) -> Optional[str]: ...
    def __bool__(self) -> bool: ...

class OverridesHandle:
    """The config the PM serves, hot-swapped atomically; never raises on a bad config."""

    def __init__(self, overrides: Optional[Overrides] = None) -> None: ...
    def reload_json(self, text: str) -> Reload: ...
    def reload_file(self, path: str | PathLike[str]) -> Reload: ...
    def reload_sqlite(self, path: str | PathLike[str], module: str = "pm") -> Reload:
        """Swap in the active config of ``module`` unless it is already served."""
    def reload_postgres(
        self, url: str, module: str = "pm", table: str = "learning_configs"
    ) -> Reload:
        """Swap in the active config of ``module`` published in PostgreSQL unless its version
        and checksum are already served (then only those are read). Never raises."""
    def install(self, overrides: Overrides) -> None: ...
    def clear(self) -> None: ...
    def snapshot(self) -> Optional[Overrides]:
        """The config being served, to pin one version for a whole tick."""
    @property
    def version(self) -> Optional[int]: ...
    @property
    def last_error(self) -> Optional[str]:
        """Why the last reload failed, else None."""
    def lookup(
        self,
        pattern_key: str,
        category: str,
        scope: Mapping[str, ScopeValue] | None,
        size_frac: Optional[float] = None,
    ) -> Decision: ...
    def apply(self, action: Mapping[str, Any]) -> AppliedAction: ...
