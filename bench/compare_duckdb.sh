#!/usr/bin/env bash
# Side-by-side: learnloop's aggregate stage vs the same per-trade subset statistics in DuckDB SQL.
#
#   bench/compare_duckdb.sh            # defaults below
#   CYCLES=5000 bench/compare_duckdb.sh
#
# Steps: throwaway venv with duckdb (bench/.venv) -> learnloop release binary (built if missing)
# -> `learnloop demo --clean` -> `learnloop run` into a fresh DB -> LL_REPS separate
# `learnloop --json aggregate` runs (learnloop's time = median of their durations_ms.aggregate:
# the stage from reading the events to the last row written into the run's transaction, without
# the commit, as DuckDB's result stays in memory; the report also gives each run's wall time as a
# process, commit included, and that ratio) -> export trade_events / pattern_scope_stats as CSV
# -> bench/compare_duckdb.py: DuckDB SQL over exploded subsets (timed; the CSV load is timed
# separately and is not in the ratio), row-by-row check, report. Exits non-zero on any mismatch.
#
# Environment:
#   CYCLES=8000      closed trade cycles of the demo data set (issue 12's comparison; ~7.3
#                    actions each, ~5,500 exploded subset updates per trade). At 25000 DuckDB's
#                    aggregate SQL takes ~1.5 minutes and ~11 GiB peak RSS on a quiet 2-core
#                    machine; its time and memory grow linearly, so the 100k-trade set of
#                    `learnloop bench aggregate` would need ~45 GiB: too big here.
#   SEED=7  DAYS=180 demo seed and period length
#   ENUMERATION=pruned  pruned: learnloop's default nightly enumeration (subsets of at most two
#                    dims, each kept with at least lessons.min_support[k] trades); DuckDB
#                    explodes the same subsets and keeps the same rows.
#                    exhaustive: `--k-max K_MAX --store-min-trades MIN_TRADES` on both sides.
#   MIN_TRADES=10    exhaustive only: --store-min-trades (rows kept: n_trades >= MIN_TRADES,
#                    plus every root)
#   K_MAX=           exhaustive only: subset size limit (default: learnloop's configured k_max,
#                    or the dimension count when it has none)
#   LL_REPS=3        separate learnloop aggregate runs (median is reported)
#   INTERLEAVE=1     1: run the learnloop aggregate runs between DuckDB's (before the first and after
#                    each, ceil(LL_REPS / (DUCKDB_REPS + 1)) at a time), so that both sides are timed
#                    in the same stretch of the machine's speed, which drifts by ±15 % or more within
#                    minutes on a virtual machine; 0: all of them before DuckDB's
#   DUCKDB_REPS=3    runs of DuckDB's aggregate SQL on the loaded events (median is reported: on
#                    the 2-core virtual machine one run moved between 18 and 30 s)
#   DUCKDB_KEY=auto  auto|packed|columns: subset key as one packed BIGINT or one column per dim
#   FLATTEN=auto     auto|sql|python: scope JSON via DuckDB's json extension or Python
#   DUCKDB_VERSION=  pin the duckdb wheel (default: latest)
#   LEARNLOOP_BIN=   use this binary instead of target/release/learnloop
#   BUILD=0          1: always run `cargo build --release` (default: only if the binary is missing)
#   MAX_LOAD=        wait (up to 10 min) for the 1-minute load average to drop below this
#                    before timing anything
#   KEEP_WORK=0      1: keep the scratch directory under bench/work
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"

CYCLES="${CYCLES:-8000}"
SEED="${SEED:-7}"
DAYS="${DAYS:-180}"
ENUMERATION="${ENUMERATION:-pruned}"
MIN_TRADES="${MIN_TRADES:-10}"
K_MAX="${K_MAX:-}"
LL_REPS="${LL_REPS:-3}"
DUCKDB_REPS="${DUCKDB_REPS:-3}"
DUCKDB_KEY="${DUCKDB_KEY:-auto}"
FLATTEN="${FLATTEN:-auto}"
DUCKDB_VERSION="${DUCKDB_VERSION:-}"
BUILD="${BUILD:-0}"
MAX_LOAD="${MAX_LOAD:-}"
KEEP_WORK="${KEEP_WORK:-0}"
INTERLEAVE="${INTERLEAVE:-1}"
BIN="${LEARNLOOP_BIN:-$ROOT/target/release/learnloop}"
VENV="$BENCH_DIR/.venv"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'compare_duckdb: error: %s\n' "$*" >&2; exit 1; }

for v in CYCLES SEED DAYS MIN_TRADES LL_REPS DUCKDB_REPS INTERLEAVE; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done
[[ -z "$K_MAX" || "$K_MAX" =~ ^[0-9]+$ ]] || die "K_MAX must be an integer (got '$K_MAX')"
(( CYCLES > 0 )) || die "CYCLES must be positive"
[[ "$ENUMERATION" == pruned || "$ENUMERATION" == exhaustive ]] \
  || die "ENUMERATION must be pruned or exhaustive (got '$ENUMERATION')"

# ---- 1. venv with duckdb -----------------------------------------------------------------------
if ! [[ -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import duckdb' 2>/dev/null \
   || { [[ -n "$DUCKDB_VERSION" ]] && [[ "$("$VENV/bin/python" -c 'import duckdb; print(duckdb.__version__)')" != "$DUCKDB_VERSION" ]]; }; then
  say "creating $VENV and installing duckdb${DUCKDB_VERSION:+==$DUCKDB_VERSION}"
  command -v python3 >/dev/null || die "python3 not found"
  python3 -m venv "$VENV" || die "python3 -m venv failed (apt-get install python3-venv?)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "duckdb${DUCKDB_VERSION:+==$DUCKDB_VERSION}" \
    || die "pip install duckdb failed"
fi
PY="$VENV/bin/python"
say "duckdb $("$PY" -c 'import duckdb; print(duckdb.__version__)') in $VENV"

# ---- 2. learnloop binary and data set ----------------------------------------------------------
if [[ "$BUILD" == 1 || ! -x "$BIN" ]]; then
  [[ -z "${LEARNLOOP_BIN:-}" ]] || die "LEARNLOOP_BIN=$BIN is not executable"
  say "building learnloop (cargo build --release)"
  (cd "$ROOT" && cargo build --release --bin learnloop) || die "cargo build failed"
fi
[[ -x "$BIN" ]] || die "no binary at $BIN"

mkdir -p "$BENCH_DIR/work"
WORK="$(mktemp -d "$BENCH_DIR/work/compare.XXXXXX")"
cleanup() {
  if [[ "$KEEP_WORK" == 1 ]]; then say "scratch kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
DB="$WORK/learnloop.db"
LL=("$BIN" --db "$DB" --log-format human)

read -r DIMS CFG_KMAX MIN_SUPPORT < <("$BIN" --json show-config | "$PY" -c '
import json, sys
c = json.load(sys.stdin)
k = c["aggregate"]["k_max"]
print(",".join(c["dims"]), len(c["dims"]) if k is None else k,
      ",".join(str(t) for t in c["lessons"]["min_support"]))') || die "learnloop show-config failed"
if [[ "$ENUMERATION" == pruned ]]; then
  # learnloop stores subsets of at most two dims by default (deeper ones are computed by the
  # lesson stage under its discoveries: docs/scale.md).
  K_MAX=2
  LL_ENUM=()
  PY_KEEP=(--min-support "$MIN_SUPPORT")
else
  K_MAX="${K_MAX:-$CFG_KMAX}"
  LL_ENUM=(--store-min-trades "$MIN_TRADES" --k-max "$K_MAX")
  PY_KEEP=(--min-trades "$MIN_TRADES")
fi

say "generating $CYCLES cycles (seed $SEED, $DAYS days, --clean) into $WORK"
"$BIN" demo --out "$WORK/strands.jsonl" --cycles "$CYCLES" --seed "$SEED" --days "$DAYS" --clean --json \
  >"$WORK/demo.json" || die "learnloop demo failed"

wait_for_load() {
  [[ -n "$MAX_LOAD" ]] || return 0
  local waited=0 load
  while :; do
    load="$(cut -d' ' -f1 /proc/loadavg)"
    awk -v l="$load" -v m="$MAX_LOAD" 'BEGIN { exit !(l < m) }' && break
    (( waited >= 600 )) && { say "load still $load after 10 min; measuring anyway"; break; }
    (( waited == 0 )) && say "load average $load >= $MAX_LOAD; waiting"
    sleep 15; waited=$((waited + 15))
  done
}

# ---- 3. learnloop: run, then timed aggregate runs ---------------------------------------------
say "learnloop run (ingest, link, aggregate; $ENUMERATION enumeration ${LL_ENUM[*]})"
"${LL[@]}" --json run --input "$WORK/strands.jsonl" ${LL_ENUM[@]+"${LL_ENUM[@]}"} \
  >"$WORK/run.json" 2>"$WORK/run.log" || { cat "$WORK/run.log" >&2; die "learnloop run failed"; }

wait_for_load
say "load average before timing: $(cut -d' ' -f1-3 /proc/loadavg)"
AGG_ARGS=()
LL_AGGREGATE=("${LL[@]}" --json aggregate ${LL_ENUM[@]+"${LL_ENUM[@]}"})
if (( INTERLEAVE )); then
  # One untimed run first: the exported table is then what the timed runs write (the `run` also
  # stored the lesson stage's deeper subsets, which the aggregate stage replaces).
  "${LL_AGGREGATE[@]}" >"$WORK/aggregate.0.json" 2>"$WORK/aggregate.0.log" \
    || { cat "$WORK/aggregate.0.log" >&2; die "learnloop aggregate failed"; }
  slots=$((DUCKDB_REPS > 0 ? DUCKDB_REPS + 1 : 2))
  INTERLEAVE_ARGS=(--ll-reps $(((LL_REPS + slots - 1) / slots)))
  for word in "${LL_AGGREGATE[@]}"; do INTERLEAVE_ARGS+=("--ll-arg=$word"); done
  LL_REPS=0
else
  INTERLEAVE_ARGS=()
fi
for ((i = 1; i <= LL_REPS; i++)); do
  started_ns="$(date +%s%N)"
  "${LL_AGGREGATE[@]}" >"$WORK/aggregate.$i.json" 2>"$WORK/aggregate.$i.log" \
    || { cat "$WORK/aggregate.$i.log" >&2; die "learnloop aggregate failed"; }
  AGG_ARGS+=(--agg-json "$WORK/aggregate.$i.json"
             --agg-process-ms "$(( ($(date +%s%N) - started_ns) / 1000000 ))")
done

# ---- 4. exports --------------------------------------------------------------------------------
say "exporting trade_events and pattern_scope_stats"
"${LL[@]}" export trade_events --format csv --out "$WORK/trade_events.csv" || die "export trade_events failed"
"${LL[@]}" export pattern_scope_stats --format csv --out "$WORK/pattern_scope_stats.csv" \
  || die "export pattern_scope_stats failed"

# ---- 5./6. DuckDB, comparison, report ----------------------------------------------------------
wait_for_load
say "DuckDB (load average now $(cut -d' ' -f1-3 /proc/loadavg))"
status=0
"$PY" "$BENCH_DIR/compare_duckdb.py" \
  --events "$WORK/trade_events.csv" --stats "$WORK/pattern_scope_stats.csv" \
  --dims "$DIMS" --k-max "$K_MAX" "${PY_KEEP[@]}" \
  --run-json "$WORK/run.json" "${AGG_ARGS[@]}" --work "$WORK" \
  --key "$DUCKDB_KEY" --flatten "$FLATTEN" --reps "$DUCKDB_REPS" \
  ${INTERLEAVE_ARGS[@]+"${INTERLEAVE_ARGS[@]}"} || status=$?
say "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
if (( status != 0 )); then
  printf 'compare_duckdb: FAILED (exit %d)\n' "$status" >&2
fi
exit "$status"
