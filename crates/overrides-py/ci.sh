#!/usr/bin/env bash
# CI for the Python package (called by .ci/run): format and lint its crate, install it into a
# fresh venv with the README's command, run its pytest suite. Needs `target/debug/learnloop`
# (built by the workspace's `cargo test`) or $LEARNLOOP_BIN for the CLI-equality tests.
set -euo pipefail
cd "$(dirname "$0")"

# A fresh machine may lack Python or its venv module (Debian splits them out).
if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    apt-get update -qq
    apt-get install -y -qq python3 python3-venv python3-dev python3-pip >/dev/null
fi
python3 --version

cargo fmt -- --check
cargo clippy --locked --all-targets -- -D warnings

# Everything this script makes outside the repository goes in one directory, removed at exit.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
venv="$work/venv"
python3 -m venv "$venv"
export PATH="$venv/bin:$PATH" # maturin's build backend runs the `maturin` it finds on PATH
"$venv/bin/pip" install -q --disable-pip-version-check maturin pytest
# The README's install command (its build backend, maturin, already in the venv).
"$venv/bin/pip" install -q --disable-pip-version-check --no-build-isolation .
"$venv/bin/python" -c 'import learnloop_overrides'

status=0
"$venv/bin/python" -m pytest -p no:cacheprovider --basetemp "$work/pytest" tests || status=$?
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: failing (the Python suite must run)" >&2
    exit 1
fi
exit "$status"
