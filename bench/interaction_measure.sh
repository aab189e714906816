#!/usr/bin/env bash
# Issue 11's interaction measure: +1.0 R planted on {bucket: micro, timeframe: 1h} in every
# (pattern, category) group, with weekly regime shocks; of the 27 groups with the most trades at
# that scope, in how many is the exact scope a lesson after one nightly run? Printed with the
# lesson stage's independent filter on and off (docs/statistics.md, "Measured table").
#
#   bench/interaction_measure.sh            # seeds 11..15
#   bench/interaction_measure.sh 11 12      # these seeds
#
# Needs the release binary (built if missing) and sqlite3. Scratch files go to a temp directory.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/learnloop
[ -x "$bin" ] || cargo build --release --quiet
bin=$(pwd)/$bin
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(11 12 13 14 15)
scope='{"bucket":"micro","timeframe":"1h"}'
echo '{"lessons":{"independent_filtering":false}}' > "$scratch/no-filter.json"
for seed in "${seeds[@]}"; do
  "$bin" demo --out "$scratch/set.jsonl" --cycles 8000 --clean --effects interaction-everywhere \
    --effect-sizes 1.0 --regime-shock 0.4 --seed "$seed" > /dev/null 2>&1
  for filter in on off; do
    config=()
    [ "$filter" = off ] && config=(--config "$scratch/no-filter.json")
    db="$scratch/$seed-$filter.db"
    "$bin" --db "$db" run --input "$scratch/set.jsonl" "${config[@]}" > /dev/null 2>&1
    exact=$(sqlite3 "$db" "SELECT count(*) FROM (SELECT verdict FROM lesson_candidates
      WHERE scope_values = '$scope' ORDER BY n_trades DESC, pattern_key LIMIT 27) WHERE verdict = 'lesson'")
    general=$(sqlite3 "$db" "SELECT count(*) FROM learning_lessons WHERE status = 'active'
      AND scope_values IN ('{\"bucket\":\"micro\"}', '{\"timeframe\":\"1h\"}')")
    echo "seed $seed, filter $filter: exact scope a lesson in $exact of 27 groups; $general {micro} or {1h} lessons active"
  done
done
