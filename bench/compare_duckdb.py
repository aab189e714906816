#!/usr/bin/env python3
"""DuckDB side of bench/compare_duckdb.sh.

Recomputes learnloop's per-trade subset statistics (SPEC §3, the statistics columns of
`pattern_scope_stats`) from an exported `trade_events` CSV with plain DuckDB SQL over exploded
subsets, checks them row by row against learnloop's exported `pattern_scope_stats` CSV, and prints
the timings of both.

Phases of the DuckDB side (timed separately):
  load       read the trade_events CSV, flatten the scope JSON into one column per dimension
             (json extension, or Python when the wheel has no json extension), and dictionary-encode
             trades, (module, pattern, category) groups and dimension values as integers;
  aggregate  the measured part, all DuckDB SQL: join every event with the subset masks whose
             dimensions are all present in it (and at most k_max of them), build the subset key
             (the value codes packed into one BIGINT, or one column per dimension), de-duplicate
             to one row per (trade, group, mask, key) with the trade's R and its action count,
             GROUP BY to n_trades / n_actions / mean / sample variance / wins (with a grand-total
             grouping set: the number of exploded observations), keep the rows with
             n_trades >= the threshold of their size (and every root, mask 0), and decode their
             keys to strings.
The comparison afterwards is not timed.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import time

try:
    import duckdb
except ImportError:  # pragma: no cover - the shell script installs it
    sys.exit("compare_duckdb.py: the duckdb module is missing (run bench/compare_duckdb.sh)")

csv.field_size_limit(sys.maxsize)


def log(msg: str) -> None:
    print(f"[compare] {msg}", file=sys.stderr, flush=True)


def sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def json_path(dim: str) -> str:
    return sql_str('$."' + dim.replace('"', '\\"') + '"')


def has_json_extension(con) -> bool:
    try:
        con.execute("""SELECT json_extract_string('{"a":"b"}', '$.a')""").fetchone()
        return True
    except duckdb.Error:
        return False


# ----------------------------------------------------------------------------------------------
# DuckDB: load
# ----------------------------------------------------------------------------------------------

def load_events(con, events_csv: str, dims: list[str], flatten: str, work: str) -> str:
    """Creates table `ev(trade_key, module, pattern_key, action_category, r, d0..dN-1)`.
    Returns how the scope JSON was flattened."""
    nd = len(dims)
    forced = flatten == "python"
    if flatten == "auto":
        flatten = "sql" if has_json_extension(con) else "python"
    if flatten == "sql":
        cols = ",\n  ".join(f"json_extract_string(scope, {json_path(d)}) AS d{i}" for i, d in enumerate(dims))
        con.execute(f"""
            CREATE TABLE ev AS
            SELECT trade_key, module, pattern_key, action_category,
                   CAST(rr_winsorized AS DOUBLE) AS r,
                   {cols}
            FROM read_csv({sql_str(events_csv)}, header = true, all_varchar = true)""")
        return "DuckDB json extension (json_extract_string)"
    # Python fallback: flatten the scope JSON into a CSV with one column per dimension.
    flat = os.path.join(work, "trade_events_flat.csv")
    with open(events_csv, newline="") as src, open(flat, "w", newline="") as dst:
        reader = csv.DictReader(src)
        writer = csv.writer(dst)
        writer.writerow(["trade_key", "module", "pattern_key", "action_category", "rr_winsorized"]
                        + [f"d{i}" for i in range(nd)])
        for row in reader:
            scope = json.loads(row["scope"]) if row["scope"] else {}
            vals = []
            for d in dims:
                v = scope.get(d)
                vals.append("" if v is None else str(v))
            writer.writerow([row["trade_key"], row["module"], row["pattern_key"],
                             row["action_category"], row["rr_winsorized"]] + vals)
    dcols = ", ".join(f"NULLIF(d{i}, '') AS d{i}" for i in range(nd))
    con.execute(f"""
        CREATE TABLE ev AS
        SELECT trade_key, module, pattern_key, action_category,
               CAST(rr_winsorized AS DOUBLE) AS r, {dcols}
        FROM read_csv({sql_str(flat)}, header = true, all_varchar = true)""")
    return "Python json module, " + ("as asked (--flatten python)" if forced else "as the wheel has no json extension")


def encode_events(con, nd: int) -> list[int]:
    """Dictionary-encodes `ev` into `evc(t, g, r, present, c0..cN-1)` plus the decode tables
    `grp(g, module, pattern_key, action_category)` and `dv(dim, val, code)`; code 0 = absent.
    Returns the number of distinct values of each dimension."""
    con.execute("""
        CREATE TABLE grp AS
        SELECT (row_number() OVER (ORDER BY module, pattern_key, action_category))::INTEGER AS g,
               module, pattern_key, action_category
        FROM (SELECT DISTINCT module, pattern_key, action_category FROM ev)""")
    con.execute("""
        CREATE TABLE trd AS
        SELECT (row_number() OVER (ORDER BY trade_key))::INTEGER AS t, trade_key
        FROM (SELECT DISTINCT trade_key FROM ev)""")
    distinct = " UNION ALL ".join(
        f"SELECT DISTINCT {i} AS dim, d{i} AS val FROM ev WHERE d{i} IS NOT NULL" for i in range(nd))
    con.execute(f"""
        CREATE TABLE dv AS
        SELECT dim, val, (row_number() OVER (PARTITION BY dim ORDER BY val))::INTEGER AS code
        FROM ({distinct})""")
    present = " | ".join(f"(CASE WHEN e.d{i} IS NOT NULL THEN {1 << i} ELSE 0 END)" for i in range(nd))
    codes = ", ".join(f"coalesce(v{i}.code, 0)::INTEGER AS c{i}" for i in range(nd))
    joins = "\n".join(f"LEFT JOIN dv v{i} ON v{i}.dim = {i} AND v{i}.val = e.d{i}" for i in range(nd))
    con.execute(f"""
        CREATE TABLE evc AS
        SELECT trd.t, grp.g, e.r, ({present})::BIGINT AS present, {codes}
        FROM ev e
        JOIN trd USING (trade_key)
        JOIN grp USING (module, pattern_key, action_category)
        {joins}""")
    card = dict(con.execute("SELECT dim, count(*) FROM dv GROUP BY dim").fetchall())
    return [int(card.get(i, 0)) for i in range(nd)]


# ----------------------------------------------------------------------------------------------
# DuckDB: aggregate (the measured part)
# ----------------------------------------------------------------------------------------------

def threshold_sql(thresholds: list[int]) -> str:
    """The fewest trades a kept subset has, by its size (bit_count of its mask)."""
    arms = " ".join(f"WHEN {k} THEN {t}" for k, t in enumerate(thresholds))
    return f"(CASE bit_count(mask) {arms} ELSE {thresholds[-1]} END)"


def aggregate_sql(nd: int, k_max: int, thresholds: list[int], key_mode: str, widths: list[int]) -> list[str]:
    """The statements of the measured part. `thresholds[k]`: the fewest trades a kept subset of
    k dims has. key_mode 'packed' packs the subset's value codes into one BIGINT (bit widths
    `widths`); 'columns' keeps one key column per dimension."""
    stmts = [f"""
        CREATE TABLE masks AS
        SELECT range::BIGINT AS mask FROM range({1 << nd}) WHERE bit_count(range) <= {k_max}"""]
    if key_mode == "packed":
        shifts, s = [], 0
        for w in widths:
            shifts.append(s)
            s += w
        key_expr = " + ".join(
            f"((CASE WHEN m.mask & {1 << i} <> 0 THEN e.c{i} ELSE 0 END)::BIGINT << {shifts[i]})"
            for i in range(nd)) + " AS key"
        key_cols = "key"
        decode = ", ".join(
            f"CASE WHEN a.mask & {1 << i} <> 0 THEN ((a.key >> {shifts[i]}) & {(1 << widths[i]) - 1})::INTEGER END AS c{i}"
            for i in range(nd))
    else:
        key_expr = ", ".join(f"(CASE WHEN m.mask & {1 << i} <> 0 THEN e.c{i} ELSE 0 END)::INTEGER AS k{i}"
                             for i in range(nd))
        key_cols = ", ".join(f"k{i}" for i in range(nd))
        decode = ", ".join(f"CASE WHEN a.mask & {1 << i} <> 0 THEN a.k{i} END AS c{i}" for i in range(nd))
    stmts.append(f"""
        CREATE TABLE agg AS
        WITH exploded AS (          -- one row per (action, subset of its present dims)
            SELECT e.t, e.g, e.r, m.mask, {key_expr}
            FROM evc e JOIN masks m ON (m.mask & e.present) = m.mask
        ),
        per_trade AS (              -- one observation per (trade, group, subset)
            SELECT g, mask, {key_cols}, t, any_value(r) AS r, count(*) AS n_act
            FROM exploded
            GROUP BY g, mask, {key_cols}, t
        )
        SELECT grouping(g) AS is_total, g, mask, {key_cols},
               count(*) AS n_trades, sum(n_act)::BIGINT AS n_actions,
               avg(r) AS mean_rr, var_samp(r) AS var_rr, count_if(r > 0) AS wins
        FROM per_trade
        -- the () set is the grand total: the number of exploded (trade, subset) observations
        GROUP BY GROUPING SETS ((g, mask, {key_cols}), ())
        HAVING count(*) >= {threshold_sql(thresholds)} OR mask = 0 OR grouping(g) = 1""")
    vals = ", ".join(f"v{i}.val AS v{i}" for i in range(nd))
    vjoins = "\n".join(f"LEFT JOIN dv v{i} ON v{i}.dim = {i} AND v{i}.code = k.c{i}" for i in range(nd))
    stmts.append(f"""
        CREATE TABLE res AS
        WITH kept AS (
            SELECT a.g, a.mask, a.n_trades, a.n_actions, a.mean_rr, a.var_rr, a.wins, {decode}
            FROM agg a
            WHERE a.is_total = 0
        )
        SELECT grp.module, grp.pattern_key, grp.action_category, k.mask, {vals},
               k.n_trades, k.n_actions, k.mean_rr, k.var_rr, k.wins
        FROM kept k JOIN grp USING (g)
        {vjoins}""")
    return stmts


# ----------------------------------------------------------------------------------------------
# Comparison
# ----------------------------------------------------------------------------------------------

def close(a, b, rel: float, abs_floor: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= max(rel * max(abs(a), abs(b)), abs_floor)


def opt_float(s: str):
    s = s.strip()
    if s == "" or s.lower() in ("null", "none"):
        return None
    return float(s)


def load_learnloop_rows(stats_csv: str, dims: list[str], problems: list[str]):
    """learnloop's rows keyed by (module, pattern_key, action_category, mask, values in bit order).
    Also checks the scope_values contract: a JSON object with sorted keys and string values whose
    keys are exactly the dims of scope_mask."""
    rows = {}
    index = {d: i for i, d in enumerate(dims)}
    with open(stats_csv, newline="") as f:
        for rec in csv.DictReader(f):
            mask = int(rec["scope_mask"])
            raw = rec["scope_values"]
            where = f"{rec['module']} | {rec['pattern_key']} | {rec['action_category']} | mask {mask} | {raw}"
            try:
                pairs = json.loads(raw, object_pairs_hook=list)
            except json.JSONDecodeError as e:
                problems.append(f"learnloop row with unparsable scope_values ({e}): {where}")
                continue
            keys = [k for k, _ in pairs]
            obj = dict(pairs)
            expect_keys = sorted(d for i, d in enumerate(dims) if mask >> i & 1)
            if keys != sorted(keys) or len(set(keys)) != len(keys):
                problems.append(f"learnloop scope_values keys not sorted/unique: {where}")
            if sorted(keys) != expect_keys:
                problems.append(f"learnloop scope_values keys {sorted(keys)} != dims of mask {expect_keys}: {where}")
                continue
            if not all(isinstance(v, str) for v in obj.values()):
                problems.append(f"learnloop scope_values has a non-string value: {where}")
            rendered = json.dumps({k: obj[k] for k in sorted(obj)}, separators=(",", ":"), ensure_ascii=False)
            if rendered != raw:
                problems.append(f"learnloop scope_values not canonical JSON (expected {rendered}): {where}")
            values = tuple(str(obj[d]) for d in sorted(keys, key=index.get))
            key = (rec["module"], rec["pattern_key"], rec["action_category"], mask, values)
            if key in rows:
                problems.append(f"learnloop has a duplicate row: {where}")
            rows[key] = (int(rec["n_trades"]), int(rec["n_actions"]), opt_float(rec["mean_rr"]),
                         opt_float(rec["var_rr"]), int(rec["wins"]), raw)
    return rows


def describe(key, dims) -> str:
    module, pattern, cat, mask, values = key
    names = [d for i, d in enumerate(dims) if mask >> i & 1]
    scope = ", ".join(f"{n}={v}" for n, v in zip(names, values)) or "(root)"
    return f"{module} | {pattern} | {cat} | mask {mask} | {scope}"


def compare(con, ll_rows, dims, rel, abs_floor, problems, skips_duplicates):
    """Row by row. With `skips_duplicates` (learnloop's default enumeration), a DuckDB row that
    learnloop lacks is expected when it holds exactly the actions of one of its parents (a 1-dim
    subset with all of its group's actions, a 2-dim one with as many as one of its 1-dim parents:
    SPEC §12, each action set stored once). Returns (DuckDB rows, rows that agree, such
    duplicates)."""
    nd = len(dims)
    cur = con.execute("SELECT * FROM res")
    matched = 0
    duck_rows = 0
    only_duck = []
    actions_of = {}  # (module, pattern, category, mask, values) -> n_actions, masks of <= 1 dim
    while True:
        batch = cur.fetchmany(100_000)
        if not batch:
            break
        for row in batch:
            duck_rows += 1
            module, pattern, cat, mask = row[0], row[1], row[2], int(row[3])
            vals = row[4:4 + nd]
            n_trades, n_actions, mean_rr, var_rr, wins = row[4 + nd:]
            values = tuple(vals[i] for i in range(nd) if mask >> i & 1)
            key = (module, pattern, cat, mask, values)
            if bin(mask).count("1") <= 1:
                actions_of[key] = n_actions
            ll = ll_rows.pop(key, None)
            if ll is None:
                only_duck.append((key, n_trades, n_actions))
                continue
            l_trades, l_actions, l_mean, l_var, l_wins, _raw = ll
            diffs = []
            if l_trades != n_trades:
                diffs.append(f"n_trades {l_trades} vs {n_trades}")
            if l_actions != n_actions:
                diffs.append(f"n_actions {l_actions} vs {n_actions}")
            if l_wins != wins:
                diffs.append(f"wins {l_wins} vs {wins}")
            if not close(l_mean, mean_rr, rel, abs_floor):
                diffs.append(f"mean_rr {l_mean!r} vs {mean_rr!r}")
            # Sample variance of one trade is undefined: DuckDB gives NULL, accept NULL or 0.
            if n_trades < 2 and var_rr is None and (l_var is None or l_var == 0.0):
                pass
            elif not close(l_var, var_rr, rel, abs_floor):
                diffs.append(f"var_rr {l_var!r} vs {var_rr!r}")
            if diffs:
                problems.append(f"values differ (learnloop vs DuckDB: {'; '.join(diffs)}): {describe(key, dims)}")
            else:
                matched += 1
    duplicates = 0
    for key, n_trades, n_actions in only_duck:
        if skips_duplicates and n_actions in parents_actions(key, actions_of):
            duplicates += 1
        else:
            problems.append(f"only in DuckDB (n_trades={n_trades}): {describe(key, dims)}")
    for key, ll in ll_rows.items():
        problems.append(f"only in learnloop (n_trades={ll[0]}): {describe(key, dims)}")
    return duck_rows, matched, duplicates


def parents_actions(key, actions_of) -> list:
    """The action counts of a subset's parents of one dim fewer (for subsets of 1 or 2 dims)."""
    module, pattern, cat, mask, values = key
    bits = [i for i in range(mask.bit_length()) if mask >> i & 1]
    if len(bits) == 1:
        parents = [(module, pattern, cat, 0, ())]
    elif len(bits) == 2:
        parents = [(module, pattern, cat, 1 << b, (v,)) for b, v in zip(bits, values)]
    else:
        parents = []
    return [actions_of[p] for p in parents if p in actions_of]


# ----------------------------------------------------------------------------------------------

def fmt_s(ms: float) -> str:
    return f"{ms / 1000:.2f} s"


def fmt_rate(n: int, ms: float) -> str:
    return f"{n / (ms / 1000) / 1e6:.2f} M/s" if ms > 0 else "n/a"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", required=True, help="trade_events CSV exported by learnloop")
    ap.add_argument("--stats", required=True, help="pattern_scope_stats CSV exported by learnloop")
    ap.add_argument("--dims", required=True, help="comma-separated dimension list, bit order")
    ap.add_argument("--k-max", type=int, required=True)
    ap.add_argument("--min-trades", type=int, help="keep subsets with at least this many trades")
    ap.add_argument("--min-support", help="comma-separated fewest trades by subset size 0, 1, 2, …"
                    " (the last repeats): learnloop's default, pruned enumeration")
    ap.add_argument("--run-json", required=True, help="learnloop --json run output")
    ap.add_argument("--agg-json", action="append", default=[], help="learnloop --json aggregate output (repeatable)")
    ap.add_argument("--agg-process-ms", action="append", type=float, default=[],
                    help="wall time of the process that wrote each --agg-json, in ms (same order)")
    ap.add_argument("--work", required=True, help="scratch directory (DuckDB spill files)")
    ap.add_argument("--key", choices=["auto", "packed", "columns"], default="auto")
    ap.add_argument("--flatten", choices=["auto", "sql", "python"], default="auto")
    ap.add_argument("--rel-tol", type=float, default=1e-9)
    ap.add_argument("--abs-tol", type=float, default=1e-12,
                    help="absolute floor for means/variances that cancel to ~0")
    ap.add_argument("--show", type=int, default=10, help="mismatches printed")
    ap.add_argument("--reps", type=int, default=1,
                    help="times the aggregate SQL runs (its median is the ratio's DuckDB time)")
    ap.add_argument("--ll-arg", action="append", default=[],
                    help="one word of the `learnloop --json aggregate` command to run between the"
                         " DuckDB runs (repeat for each word; with --ll-reps)")
    ap.add_argument("--ll-reps", type=int, default=0,
                    help="learnloop runs before the first DuckDB run and after each one, so that both"
                         " sides are timed in the same stretch of the machine's drifting speed")
    a = ap.parse_args()

    dims = [d for d in a.dims.split(",") if d]
    nd = len(dims)
    if nd == 0 or nd > 20:
        sys.exit(f"compare_duckdb.py: {nd} dims is not supported here (1..20)")
    k_max = min(a.k_max, nd)
    if (a.min_trades is None) == (a.min_support is None):
        sys.exit("compare_duckdb.py: give exactly one of --min-trades and --min-support")
    if a.min_support is not None:
        by_size = [int(x) for x in a.min_support.split(",") if x]
        thresholds = [by_size[min(k, len(by_size) - 1)] for k in range(nd + 1)]
        kept_rule = "n_trades >= min_support(size): " + a.min_support
    else:
        thresholds = [a.min_trades] * (nd + 1)
        kept_rule = f"n_trades >= {a.min_trades}"

    run = json.load(open(a.run_json))
    aggs = [json.load(open(p)) for p in a.agg_json]
    process_ms = list(a.agg_process_ms)

    con = duckdb.connect()  # in memory; default thread count
    con.execute(f"SET temp_directory = {sql_str(os.path.join(a.work, 'duckdb_tmp'))}")
    threads, mem_limit = con.execute(
        "SELECT current_setting('threads'), current_setting('memory_limit')").fetchone()

    # ---- load (timed separately) ----
    log("DuckDB: loading trade_events.csv ...")
    t0 = time.perf_counter()
    flatten_how = load_events(con, a.events, dims, a.flatten, a.work)
    t1 = time.perf_counter()
    card = encode_events(con, nd)
    t2 = time.perf_counter()
    load_csv_ms, encode_ms = (t1 - t0) * 1e3, (t2 - t1) * 1e3
    n_actions_total, n_trades_total = con.execute("SELECT count(*), count(DISTINCT t) FROM evc").fetchone()

    widths = [max(1, c.bit_length()) for c in card]  # codes 1..c, 0 = absent
    key_mode = a.key
    if key_mode == "auto":
        key_mode = "packed" if sum(widths) <= 62 else "columns"
    elif key_mode == "packed" and sum(widths) > 62:
        sys.exit(f"compare_duckdb.py: the value codes need {sum(widths)} bits, more than a BIGINT key holds")

    # ---- aggregate (the measured part) ----
    log(f"DuckDB: aggregating ({n_actions_total} actions, {key_mode} key, {threads} threads) ...")
    stmts = aggregate_sql(nd, k_max, thresholds, key_mode, widths)
    duck_runs_ms = []
    interleaved: list[dict] = []
    for rep in range(max(1, a.reps)):
        interleaved += run_learnloop(a.ll_arg, a.ll_reps, process_ms)
        if rep:
            # The same statements again, on the same loaded events: the run-to-run spread of this
            # virtual machine is as large as the differences measured.
            con.execute("DROP TABLE IF EXISTS res; DROP TABLE IF EXISTS agg; DROP TABLE IF EXISTS masks")
        t3 = time.perf_counter()
        for s in stmts:
            con.execute(s)
        t4 = time.perf_counter()
        duck_runs_ms.append((t4 - t3) * 1e3)
    interleaved += run_learnloop(a.ll_arg, a.ll_reps, process_ms)
    aggs += interleaved
    duck_ms = statistics.median(duck_runs_ms)

    total = con.execute("SELECT n_trades, n_actions FROM agg WHERE is_total = 1").fetchone() or (0, 0)
    exploded_trade, exploded_action = int(total[0] or 0), int(total[1] or 0)

    # ---- compare (not timed) ----
    log("comparing with learnloop's pattern_scope_stats ...")
    problems: list[str] = []
    ll_rows = load_learnloop_rows(a.stats, dims, problems)
    ll_count = len(ll_rows) + sum(1 for p in problems if p.startswith("learnloop has a duplicate"))
    small = [k for k, v in ll_rows.items() if v[0] < thresholds[bin(k[3]).count("1")] and k[3] != 0]
    for k in small:
        problems.append(f"learnloop stored a non-root row below its size's threshold: {describe(k, dims)}")
    duck_rows, matched, duplicates = compare(con, ll_rows, dims, a.rel_tol, a.abs_tol, problems,
                                             skips_duplicates=a.min_support is not None)

    # ---- learnloop figures ----
    run_agg = run.get("aggregate") or {}
    run_ms = float((run.get("durations_ms") or {}).get("aggregate", float("nan")))
    agg_ms = [float(x["durations_ms"]["aggregate"]) for x in aggs]
    agg_parts = [(x["aggregate"]["load_ms"], x["aggregate"]["compute_write_ms"]) for x in aggs]
    if agg_ms:
        ll_ms = statistics.median(agg_ms)
        when = (f", {len(interleaved)} of them between the DuckDB runs" if interleaved else "")
        ll_src = (f"median of {len(agg_ms)} separate `learnloop --json aggregate` runs after `run`{when}, "
                  f"durations_ms.aggregate: the stage, from reading the events to the last row written into "
                  f"the run's transaction; the commit that follows it is not in this figure")
    else:
        ll_ms = run_ms
        ll_src = ("durations_ms.aggregate of the `run` itself: the stage, from reading the events to the last "
                  "row written into the run's transaction, without the commit")
    performed = (run_agg.get("counters") or {}).get("subset_updates")
    ll_trades = run_agg.get("trades")
    ll_events = run_agg.get("trade_events")

    # ---- report ----
    out = []
    p = out.append
    p("")
    p("== learnloop vs DuckDB: per-trade subset statistics (pattern_scope_stats) ==")
    p(f"dataset                      : {n_trades_total} trades, {n_actions_total} actions (trade_events rows)"
      + (f"; learnloop saw {ll_trades} trades, {ll_events} events" if ll_trades is not None else ""))
    p(f"dims / k_max / kept          : {nd} / {k_max} / {kept_rule}")
    p(f"exploded subset updates      : {exploded_trade} (trade x subset observations = rows of the de-duplicated explode;"
      f" learnloop's 'exploded' definition)")
    p(f"  action-level explode rows  : {exploded_action} (action x subset, before de-duplication)")
    if performed is not None:
        p(f"  learnloop performed        : {performed} updates (with support pruning)")
    p(f"rows compared                : learnloop {ll_count}, DuckDB {duck_rows} ({kept_rule}, plus roots)")
    if duplicates:
        p(f"  DuckDB rows with a parent's exact actions (learnloop stores each action set once): {duplicates}")
    p("")
    p(f"DuckDB {duckdb.__version__} ({threads} threads, memory_limit {mem_limit}), in-memory database")
    p(f"  load (not in the ratio)    : {fmt_s(load_csv_ms + encode_ms)} = CSV read + scope flatten {fmt_s(load_csv_ms)}"
      f" [{flatten_how}] + integer encoding {fmt_s(encode_ms)}")
    p(f"  aggregate SQL              : {fmt_s(duck_ms)}  ({key_mode} subset key)  -> {fmt_rate(exploded_trade, duck_ms)} exploded updates")
    if len(duck_runs_ms) > 1:
        p(f"  runs (median above)        : {', '.join(fmt_s(m) for m in duck_runs_ms)}")
    p(f"learnloop ({ll_src})")
    p(f"  aggregate                  : {fmt_s(ll_ms)}  -> {fmt_rate(exploded_trade, ll_ms)} exploded updates")
    if agg_ms:
        parts = ", ".join(f"{fmt_s(m)} (load {l} ms + compute/write {c} ms)" for m, (l, c) in zip(agg_ms, agg_parts))
        p(f"  separate runs              : {parts}")
    p(f"  inside `run`               : {fmt_s(run_ms)} (load {run_agg.get('load_ms')} ms + compute/write {run_agg.get('compute_write_ms')} ms)")
    process_median = statistics.median(process_ms) if len(process_ms) == len(agg_ms) and agg_ms else None
    if process_median is not None:
        p(f"  as a process               : {fmt_s(process_median)} median wall time of the same runs (start-up, the stage,"
          f" the commit: WAL write and checkpoint, exit)")
    p("")
    p(f"time ratio DuckDB/learnloop  : {duck_ms / ll_ms:.1f}x  (DuckDB aggregate SQL into an in-memory table, vs learnloop's"
      f" aggregate stage: load from SQLite, compute, write, uncommitted)")
    p(f"  incl. DuckDB load          : {(duck_ms + load_csv_ms + encode_ms) / ll_ms:.1f}x")
    if process_median is not None:
        p(f"  vs learnloop as a process  : {duck_ms / process_median:.1f}x  (with its commit to disk; DuckDB's result is not persisted)")
    p("")
    if problems:
        p(f"MISMATCH: {len(problems)} problem(s); {matched} rows agreed. First {min(a.show, len(problems))}:")
        for line in problems[: a.show]:
            p(f"  - {line}")
    else:
        p(f"OK: all {matched} rows agree (same key set; n_trades, n_actions, wins equal; "
          f"mean_rr, var_rr within {a.rel_tol:g} relative, {a.abs_tol:g} absolute floor)")
    print("\n".join(out), flush=True)
    return 1 if problems else 0


def run_learnloop(argv: list[str], reps: int, process_ms: list[float]) -> list[dict]:
    """`reps` runs of the learnloop aggregate command, their --json reports; each run's wall time
    as a process is appended to `process_ms`."""
    reports = []
    for _ in range(reps if argv else 0):
        started = time.perf_counter()
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        process_ms.append((time.perf_counter() - started) * 1e3)
        if done.returncode != 0:
            sys.exit(f"compare_duckdb.py: learnloop aggregate failed ({done.returncode}):\n{done.stderr}")
        reports.append(json.loads(done.stdout))
    return reports


if __name__ == "__main__":
    sys.exit(main())
