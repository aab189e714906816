"""The type stubs describe what the extension really exports, and the example runs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import learnloop_overrides
from conftest import activate_copy_as_v2

from learnloop_overrides import Overrides, _native

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "learnloop_overrides"


def _stub_members() -> dict[str, set[str]]:
    tree = ast.parse((PACKAGE / "_native.pyi").read_text())
    members = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            members[node.name] = {
                n.name for n in node.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")
            }
    return members


def test_every_public_class_member_is_in_the_stubs():
    stubs = _stub_members()
    for name in learnloop_overrides.__all__:
        obj = getattr(_native, name, None)
        if not isinstance(obj, type) or name == "ConfigError":
            continue
        runtime = {m for m in dir(obj) if not m.startswith("_")}
        assert runtime == stubs[name], (name, runtime ^ stubs[name])


def test_package_is_typed():
    assert (PACKAGE / "py.typed").exists()


def test_example_pm_loop_picks_up_a_newly_activated_version(demo_db_copy):
    example = Path(__file__).resolve().parents[1] / "examples" / "pm_loop.py"
    proc = subprocess.Popen([sys.executable, example, demo_db_copy, "30"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lines = [proc.stdout.readline(), proc.stdout.readline()]
    activate_copy_as_v2(demo_db_copy)
    lines += proc.stdout.readlines()
    assert proc.wait(timeout=60) == 0
    out = "".join(lines)
    assert lines[0].startswith("loaded: Reload(ok=True, version=1")
    # The example's action under the demo config, as the runtime decides it.
    expected = Overrides.from_sqlite(demo_db_copy).lookup(
        "module=pm|pattern_key=uptrend.S3.add", "add",
        {"macro_phase": "Euphoria", "bucket": "micro", "timeframe": "1h"}, 0.2)
    assert expected.size_mult != 1.0, "the demo config moves the example's action"
    assert f"tick 0: size_frac 0.2 -> {expected.size_frac_after:.4f}" in out, out
    assert "now serving config v2" in out, out
