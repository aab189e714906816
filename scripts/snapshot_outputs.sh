#!/usr/bin/env bash
# Snapshot every derived table and a replay's evolution.csv, for "outputs unchanged" checks
# (issue 10): run once with the old binary and once with the new, then `diff -r OLD NEW`.
#
# Usage: scripts/snapshot_outputs.sh LEARNLOOP_BINARY OUT_DIR
#
# Tables and views (`pattern_scope_stats` is a view since schema version 8: a build before it and
# one after differ in `schema_migrations` and in its two tables, `stats_groups` and `stats_subsets`,
# only). Two stores: the bundled sample (data/sample_strands.jsonl) and a 3000-cycle demo (`demo`),
# each `run --activate`, then replayed (the sample daily, the demo weekly). Each table is dumped with its rows sorted, leaving
# out the columns that hold the wall clock or values made from it (see WALL_CLOCK below). The
# scratch stores live in a temporary directory removed on exit.
set -euo pipefail
bin=$(realpath "$1")
out=$(realpath -m "$2")
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# table.column pairs that carry wall-clock time (or a run id built from it, or the run's timings).
WALL_CLOCK=" learning_runs.run_id learning_runs.started_at learning_runs.finished_at
 learning_runs.counts learning_configs.created_at learning_configs.run_id quarantine.ingested_at
 ad_strands.ingested_at adapter_bins.frozen_at schema_migrations.applied_at "

dump() {
  local db=$1 dest=$2
  mkdir -p "$dest"
  for table in $(sqlite3 "$db" "SELECT name FROM sqlite_master WHERE type IN ('table','view') ORDER BY name"); do
    local cols=()
    for col in $(sqlite3 "$db" "SELECT name FROM pragma_table_info('$table')"); do
      [[ " $(echo $WALL_CLOCK) " == *" $table.$col "* ]] || cols+=("\"$col\"")
    done
    local list
    list=$(IFS=,; echo "${cols[*]}")
    sqlite3 -csv -header "$db" "SELECT $list FROM \"$table\"" | { IFS= read -r header || true; echo "$header"; LC_ALL=C sort; } >"$dest/$table.csv"
  done
}

cd "$scratch"
cp "$repo/data/sample_strands.jsonl" sample.jsonl
"$bin" --db sample.db run --input sample.jsonl --activate >/dev/null
dump sample.db "$out/sample"
"$bin" --db sample.db replay --from 2026-01-15 --to 2026-04-01 --step 1d --out sample-replay >/dev/null
cp sample-replay/evolution.csv "$out/sample/evolution.csv"

"$bin" demo --out demo.jsonl >/dev/null
"$bin" --db demo.db run --input demo.jsonl --activate >/dev/null
dump demo.db "$out/demo"
"$bin" --db demo.db replay --from 2026-01-15 --to 2026-06-29 --step 7d --out demo-replay >/dev/null
cp demo-replay/evolution.csv "$out/demo/evolution.csv"
echo "snapshot in $out"
