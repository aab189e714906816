//! Versioned migrations. Each entry runs once, in order, inside a transaction; the version reached
//! is recorded in `schema_migrations`. Never edit a released migration: append a new one.
//! Table meanings are documented in docs/tables.md.

use crate::{Result, StoreError};
use rusqlite::Connection;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, MIGRATION_1),
    (2, MIGRATION_2),
    (3, MIGRATION_3),
    (4, MIGRATION_4),
    (5, MIGRATION_5),
    (6, MIGRATION_6),
    (7, MIGRATION_7),
    (8, MIGRATION_8),
    (9, MIGRATION_9),
    (10, MIGRATION_10),
    (11, MIGRATION_11),
];

const MIGRATION_1: &str = r#"
CREATE TABLE ad_strands (
    id TEXT PRIMARY KEY,
    module TEXT NOT NULL,
    kind TEXT NOT NULL,
    symbol TEXT,
    timeframe TEXT,
    position_id TEXT,
    trade_id TEXT,
    created_at TEXT NOT NULL,
    content TEXT NOT NULL,
    regime_context TEXT
);

CREATE TABLE quarantine (
    strand_id TEXT NOT NULL,
    reason_code TEXT NOT NULL,
    reason TEXT NOT NULL,
    raw TEXT NOT NULL,
    raw_hash TEXT NOT NULL,
    source TEXT,
    ingested_at TEXT NOT NULL,
    UNIQUE (strand_id, reason_code, raw_hash)
);

CREATE TABLE pm_actions (
    strand_id TEXT PRIMARY KEY,
    module TEXT NOT NULL,
    position_id TEXT NOT NULL,
    trade_id TEXT,
    ts TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    decision_type TEXT,
    size_frac REAL,
    pattern_key TEXT,
    action_category TEXT,
    scope TEXT NOT NULL
);
CREATE INDEX pm_actions_position ON pm_actions (position_id);

CREATE TABLE position_closes (
    strand_id TEXT PRIMARY KEY,
    module TEXT NOT NULL,
    position_id TEXT NOT NULL,
    trade_id TEXT,
    created_at_ms INTEGER NOT NULL,
    entry_at_ms INTEGER,
    exit_at TEXT NOT NULL,
    exit_at_ms INTEGER NOT NULL,
    rr REAL NOT NULL,
    pnl_usd REAL,
    hold_days REAL,
    time_to_s3 REAL,
    outcome_class TEXT,
    exit_reason TEXT
);
CREATE INDEX position_closes_position ON position_closes (position_id);

CREATE TABLE trade_events (
    trade_key TEXT NOT NULL,
    position_id TEXT NOT NULL,
    trade_id TEXT,
    action_strand_id TEXT NOT NULL,
    module TEXT NOT NULL,
    pattern_key TEXT NOT NULL,
    action_category TEXT NOT NULL,
    scope TEXT NOT NULL,
    rr REAL NOT NULL,
    rr_winsorized REAL NOT NULL,
    pnl_usd REAL,
    hold_days REAL,
    time_to_s3 REAL,
    entry_at TEXT,
    exit_at TEXT NOT NULL,
    exit_at_ms INTEGER NOT NULL,
    action_at_ms INTEGER NOT NULL,
    PRIMARY KEY (trade_key, action_strand_id)
);
CREATE INDEX trade_events_position ON trade_events (position_id);

CREATE TABLE linked_trades (
    trade_key TEXT PRIMARY KEY,
    module TEXT NOT NULL,
    position_id TEXT NOT NULL,
    trade_id TEXT,
    close_strand_id TEXT NOT NULL,
    cycle_start_ms INTEGER,
    exit_at_ms INTEGER NOT NULL,
    rr REAL NOT NULL,
    rr_winsorized REAL NOT NULL,
    n_actions INTEGER NOT NULL,
    n_v5_actions INTEGER NOT NULL
);
CREATE INDEX linked_trades_position ON linked_trades (position_id);

CREATE TABLE link_anomalies (
    kind TEXT NOT NULL,
    strand_id TEXT NOT NULL,
    position_id TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (kind, strand_id)
);
CREATE INDEX link_anomalies_position ON link_anomalies (position_id);

CREATE TABLE pattern_scope_stats (
    module TEXT NOT NULL,
    pattern_key TEXT NOT NULL,
    action_category TEXT NOT NULL,
    scope_mask INTEGER NOT NULL,
    scope_values TEXT NOT NULL,
    scope_values_hash INTEGER NOT NULL,
    scope_dims INTEGER NOT NULL,
    n_trades INTEGER NOT NULL,
    n_actions INTEGER NOT NULL,
    mean_rr REAL NOT NULL,
    m2_rr REAL NOT NULL,
    var_rr REAL,
    wins INTEGER NOT NULL,
    win_rate REAL NOT NULL,
    sum_pnl REAL NOT NULL,
    mean_hold_days REAL,
    mean_time_eff REAL,
    first_exit_at TEXT,
    last_exit_at TEXT,
    dw REAL NOT NULL,
    dw2 REAL NOT NULL,
    dmean REAL NOT NULL,
    dm2 REAL NOT NULL,
    d_eff_n REAL NOT NULL,
    as_of TEXT NOT NULL,
    PRIMARY KEY (module, pattern_key, action_category, scope_mask, scope_values_hash)
) WITHOUT ROWID;

CREATE TABLE learning_runs (
    run_id TEXT PRIMARY KEY,
    command TEXT NOT NULL,
    as_of TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    counts TEXT NOT NULL DEFAULT '{}',
    config TEXT,
    error TEXT
);

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#;

/// Lessons, their history and factors, configs, and replay evolution.
const MIGRATION_2: &str = r#"
CREATE TABLE learning_lessons (
    lesson_key TEXT PRIMARY KEY,
    module TEXT NOT NULL,
    pattern_key TEXT NOT NULL,
    action_category TEXT NOT NULL,
    scope_mask INTEGER NOT NULL,
    scope_values TEXT NOT NULL,
    scope_values_hash INTEGER NOT NULL,
    scope_dims INTEGER NOT NULL,
    n_trades INTEGER NOT NULL,
    mean_rr REAL NOT NULL,
    edge REAL NOT NULL,
    shrunk_edge REAL NOT NULL,
    t_stat REAL,
    p_value REAL,
    q_value REAL,
    half_life_hours REAL,
    latent_factor_id TEXT,
    levers TEXT NOT NULL,
    status TEXT NOT NULL,
    status_reason TEXT,
    created_at TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX learning_lessons_status ON learning_lessons (status);

CREATE TABLE lesson_candidates (
    module TEXT NOT NULL,
    pattern_key TEXT NOT NULL,
    action_category TEXT NOT NULL,
    scope_mask INTEGER NOT NULL,
    scope_values_hash INTEGER NOT NULL,
    scope_values TEXT NOT NULL,
    scope_dims INTEGER NOT NULL,
    n_trades INTEGER NOT NULL,
    mean_rr REAL NOT NULL,
    edge REAL NOT NULL,
    shrunk_edge REAL,
    t_stat REAL,
    p_value REAL,
    q_value REAL,
    parent_scope_values TEXT,
    parent_mean_rr REAL,
    min_parent_gap REAL,
    incremental_p_value REAL,
    incremental_q_value REAL,
    verdict TEXT NOT NULL,
    reason TEXT NOT NULL,
    lesson_key TEXT NOT NULL,
    as_of TEXT NOT NULL,
    PRIMARY KEY (module, pattern_key, action_category, scope_mask, scope_values_hash)
) WITHOUT ROWID;

CREATE TABLE learning_edge_history (
    lesson_key TEXT NOT NULL,
    as_of TEXT NOT NULL,
    as_of_ms INTEGER NOT NULL,
    edge REAL NOT NULL,
    shrunk_edge REAL NOT NULL,
    n_trades INTEGER NOT NULL,
    PRIMARY KEY (lesson_key, as_of_ms)
);

CREATE TABLE learning_latent_factors (
    factor_id TEXT PRIMARY KEY,
    members TEXT NOT NULL,
    representative TEXT NOT NULL,
    jaccard TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE learning_configs (
    module TEXT NOT NULL,
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    as_of TEXT NOT NULL,
    run_id TEXT,
    created_at TEXT NOT NULL,
    checksum TEXT NOT NULL,
    config_data TEXT NOT NULL,
    PRIMARY KEY (module, version)
);
CREATE INDEX learning_configs_status ON learning_configs (module, status);

CREATE TABLE lesson_evolution (
    replay_id TEXT NOT NULL,
    as_of TEXT NOT NULL,
    lesson_key TEXT NOT NULL,
    status TEXT NOT NULL,
    edge REAL,
    q_value REAL,
    half_life_hours REAL,
    size_mult REAL,
    PRIMARY KEY (replay_id, as_of, lesson_key)
);
"#;

/// Knowledge-time indexes: an incremental link looks up the strands that crossed the as-of time.
const MIGRATION_3: &str = r#"
CREATE INDEX pm_actions_created ON pm_actions (created_at_ms);
CREATE INDEX position_closes_created ON position_closes (created_at_ms);
"#;

/// Lifecycle with hysteresis (SPEC §4.8): when fresh trades last re-confirmed a lesson, the subset's
/// trade count and mean R at that run (the start of the next confirmation window), and how many
/// consecutive runs it has failed while active. A lesson active before this migration counts as
/// confirmed at its first activation, the last confirmation anyone can vouch for.
const MIGRATION_4: &str = r#"
ALTER TABLE learning_lessons ADD COLUMN confirmed_at TEXT;
ALTER TABLE learning_lessons ADD COLUMN confirmed_n_trades INTEGER;
ALTER TABLE learning_lessons ADD COLUMN confirmed_mean_rr REAL;
ALTER TABLE learning_lessons ADD COLUMN failed_runs INTEGER NOT NULL DEFAULT 0;
UPDATE learning_lessons SET confirmed_at = created_at WHERE status = 'active';
"#;

/// The dependence-aware tests' figures per candidate (SPEC §4.2–§4.5): time clusters of the
/// subset, the smallest complement within a parent (root: rest of the module), the contrast
/// (within / between clusters) and its degrees of freedom, and the hypothesis' weight in the
/// run's weighted-BH family.
const MIGRATION_5: &str = r#"
ALTER TABLE lesson_candidates ADD COLUMN clusters INTEGER;
ALTER TABLE lesson_candidates ADD COLUMN complement_trades INTEGER;
ALTER TABLE lesson_candidates ADD COLUMN contrast TEXT;
ALTER TABLE lesson_candidates ADD COLUMN contrast_df REAL;
ALTER TABLE lesson_candidates ADD COLUMN fdr_weight REAL;
"#;

/// The closed status sets (`learnloop_model::status`) enforced by the database: `CHECK`
/// constraints on lesson, config and run statuses and link anomaly kinds. SQLite adds a `CHECK`
/// only by rebuilding the table: each is copied into a constrained twin (same columns in the same
/// order, so rows keep their bytes), the original dropped, the twin renamed and its indexes made
/// again, all inside the migration's transaction.
const MIGRATION_6: &str = r#"
CREATE TABLE learning_lessons_v6 (
    lesson_key TEXT PRIMARY KEY,
    module TEXT NOT NULL,
    pattern_key TEXT NOT NULL,
    action_category TEXT NOT NULL,
    scope_mask INTEGER NOT NULL,
    scope_values TEXT NOT NULL,
    scope_values_hash INTEGER NOT NULL,
    scope_dims INTEGER NOT NULL,
    n_trades INTEGER NOT NULL,
    mean_rr REAL NOT NULL,
    edge REAL NOT NULL,
    shrunk_edge REAL NOT NULL,
    t_stat REAL,
    p_value REAL,
    q_value REAL,
    half_life_hours REAL,
    latent_factor_id TEXT,
    levers TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('candidate', 'active', 'retired')),
    status_reason TEXT,
    created_at TEXT,
    updated_at TEXT NOT NULL,
    confirmed_at TEXT,
    confirmed_n_trades INTEGER,
    confirmed_mean_rr REAL,
    failed_runs INTEGER NOT NULL DEFAULT 0
);
INSERT INTO learning_lessons_v6 SELECT * FROM learning_lessons;
DROP TABLE learning_lessons;
ALTER TABLE learning_lessons_v6 RENAME TO learning_lessons;
CREATE INDEX learning_lessons_status ON learning_lessons (status);

CREATE TABLE lesson_evolution_v6 (
    replay_id TEXT NOT NULL,
    as_of TEXT NOT NULL,
    lesson_key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('candidate', 'active', 'retired')),
    edge REAL,
    q_value REAL,
    half_life_hours REAL,
    size_mult REAL,
    PRIMARY KEY (replay_id, as_of, lesson_key)
);
INSERT INTO lesson_evolution_v6 SELECT * FROM lesson_evolution;
DROP TABLE lesson_evolution;
ALTER TABLE lesson_evolution_v6 RENAME TO lesson_evolution;

CREATE TABLE learning_configs_v6 (
    module TEXT NOT NULL,
    version INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('proposed', 'active', 'superseded', 'rolled_back')),
    as_of TEXT NOT NULL,
    run_id TEXT,
    created_at TEXT NOT NULL,
    checksum TEXT NOT NULL,
    config_data TEXT NOT NULL,
    PRIMARY KEY (module, version)
);
INSERT INTO learning_configs_v6 SELECT * FROM learning_configs;
DROP TABLE learning_configs;
ALTER TABLE learning_configs_v6 RENAME TO learning_configs;
CREATE INDEX learning_configs_status ON learning_configs (module, status);

CREATE TABLE learning_runs_v6 (
    run_id TEXT PRIMARY KEY,
    command TEXT NOT NULL,
    as_of TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL CHECK (status IN ('ok', 'rejected', 'failed')),
    counts TEXT NOT NULL DEFAULT '{}',
    config TEXT,
    error TEXT
);
INSERT INTO learning_runs_v6 SELECT * FROM learning_runs;
DROP TABLE learning_runs;
ALTER TABLE learning_runs_v6 RENAME TO learning_runs;

CREATE TABLE link_anomalies_v6 (
    kind TEXT NOT NULL CHECK (kind IN ('duplicate_close', 'late_action', 'trade_id_mismatch',
        'close_without_actions', 'open_cycle_action', 'legacy_action')),
    strand_id TEXT NOT NULL,
    position_id TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (kind, strand_id)
);
INSERT INTO link_anomalies_v6 SELECT * FROM link_anomalies;
DROP TABLE link_anomalies;
ALTER TABLE link_anomalies_v6 RENAME TO link_anomalies;
CREATE INDEX link_anomalies_position ON link_anomalies (position_id);
"#;

/// Bin edges of the numeric scope dimensions adapters cut into bins, frozen at first use: a bin
/// label means the same range on every night (rows are inserted once, never updated).
const MIGRATION_7: &str = r#"
CREATE TABLE adapter_bins (
    dim TEXT PRIMARY KEY,
    adapter TEXT NOT NULL,
    method TEXT NOT NULL,
    edges TEXT NOT NULL,
    n_values INTEGER NOT NULL,
    frozen_at TEXT NOT NULL
);
"#;

/// Which modules' actions were binned on each frozen dimension: a module's config carries the
/// edges of a dimension only when its own stored values are that dimension's bin labels (another
/// bot's module may use the same name for a category). Existing stores are filled from the stored
/// actions whose value of the dimension is a bin label (`a..b`, `..b`, `a..`).
const MIGRATION_9: &str = r#"
CREATE TABLE adapter_bin_modules (
    dim TEXT NOT NULL,
    module TEXT NOT NULL,
    PRIMARY KEY (dim, module)
) WITHOUT ROWID;
INSERT INTO adapter_bin_modules (dim, module)
SELECT DISTINCT b.dim, a.module
  FROM adapter_bins b
  JOIN pm_actions a ON json_extract(a.scope, '$."' || b.dim || '"') LIKE '%..%';
"#;

/// Which of the run's BH families a candidate's q-value is from (`first`, `deep`, `children`):
/// the children families of explained discoveries (weight 1 when this was added, like a deep
/// level; 0.5 since) and later the shared scopes' groups (weight 1) are told by neither the weight
/// nor the size.
const MIGRATION_10: &str = r#"
ALTER TABLE lesson_candidates ADD COLUMN fdr_family TEXT;
"#;

/// The `pattern_scope_stats` view's columns after the scope's, and its two core tables: the
/// same in every version of the view (migrations 8 and 11), its arithmetic that of `OutcomeStats`.
macro_rules! stats_view_figures {
    () => {
        r#"s.n_trades, s.n_actions, s.mean_rr, s.m2_rr,
       CASE WHEN s.n_trades >= 2 THEN MAX(s.m2_rr / (s.n_trades - 1), 0.0) END AS var_rr,
       s.wins,
       CASE WHEN s.n_trades = 0 THEN 0.0 ELSE CAST(s.wins AS REAL) / s.n_trades END AS win_rate,
       s.sum_pnl, s.mean_hold_days, s.mean_time_eff,
       strftime('%Y-%m-%dT%H:%M:%S',
                (s.first_exit_ms - (s.first_exit_ms % 1000 + 1000) % 1000) / 1000, 'unixepoch')
           || CASE WHEN s.first_exit_ms % 1000 = 0 THEN ''
                   ELSE printf('.%03d', (s.first_exit_ms % 1000 + 1000) % 1000) END
           || 'Z' AS first_exit_at,
       strftime('%Y-%m-%dT%H:%M:%S',
                (s.last_exit_ms - (s.last_exit_ms % 1000 + 1000) % 1000) / 1000, 'unixepoch')
           || CASE WHEN s.last_exit_ms % 1000 = 0 THEN ''
                   ELSE printf('.%03d', (s.last_exit_ms % 1000 + 1000) % 1000) END
           || 'Z' AS last_exit_at,
       s.dw, s.dw2, s.dmean, s.dm2,
       CASE WHEN s.dw2 > 0 THEN s.dw * s.dw / s.dw2 ELSE 0.0 END AS d_eff_n,
       g.as_of
FROM stats_subsets s
JOIN stats_groups g ON g.group_id = s.group_id"#
    };
}

/// Each distinct scope text stored once, with its size, in `stats_scopes`, keyed by (mask, hash)
/// as the subsets already are: a night's ~500k exhaustive rows hold ~80k distinct scopes, so the
/// rows shed ~83 bytes of JSON and a column each (41 MB a night at 8,000 trades, a third of the
/// bytes written). The writer inserts only the scopes a store has not seen and deletes those no
/// row uses any more (`StatsWriter`). The view keeps `scope_values` and `scope_dims` (SPEC §10).
/// The copy fails (changing nothing) if two different texts of one mask share a hash, which the
/// subsets' key already rules out within a group.
const MIGRATION_11: &str = concat!(
    r#"
CREATE TABLE stats_scopes (
    scope_mask INTEGER NOT NULL,
    scope_values_hash INTEGER NOT NULL,
    scope_dims INTEGER NOT NULL,
    scope_values TEXT NOT NULL,
    PRIMARY KEY (scope_mask, scope_values_hash)
);

INSERT INTO stats_scopes (scope_mask, scope_values_hash, scope_dims, scope_values)
SELECT DISTINCT scope_mask, scope_values_hash, scope_dims, scope_values FROM stats_subsets
ORDER BY scope_mask, scope_values_hash;

CREATE TEMP TABLE migration_11_before AS SELECT * FROM pattern_scope_stats;

DROP VIEW pattern_scope_stats;
ALTER TABLE stats_subsets DROP COLUMN scope_values;
ALTER TABLE stats_subsets DROP COLUMN scope_dims;

CREATE VIEW pattern_scope_stats AS
SELECT g.module, g.pattern_key, g.action_category, s.scope_mask, c.scope_values,
       s.scope_values_hash, c.scope_dims, "#,
    stats_view_figures!(),
    r#"
JOIN stats_scopes c ON c.scope_mask = s.scope_mask AND c.scope_values_hash = s.scope_values_hash;

-- As in migration 8: the view must show every row exactly as before, or nothing changes.
CREATE TEMP TABLE migration_11_check (stats_rows_changed_by_the_move INTEGER
    CHECK (stats_rows_changed_by_the_move = 0));
INSERT INTO migration_11_check
SELECT (SELECT COUNT(*) FROM (SELECT * FROM migration_11_before EXCEPT SELECT * FROM pattern_scope_stats))
     + (SELECT COUNT(*) FROM (SELECT * FROM pattern_scope_stats EXCEPT SELECT * FROM migration_11_before));
DROP TABLE migration_11_check;
DROP TABLE migration_11_before;
"#
);

/// `pattern_scope_stats` as a view over a compact layout (issue 12's "compact row layout"): the
/// group's module, pattern, category and as-of once per group in `stats_groups`, the subsets
/// keyed by a small group id in `stats_subsets`, exit times as epoch milliseconds, and the figures
/// derived from others (`var_rr`, `win_rate`, `d_eff_n`) computed by the view, with the same
/// floating-point operations as `OutcomeStats`. Half the bytes of the old table per row, so the
/// nightly write and its commit move half as many pages. The view keeps the contract's names and
/// columns (SPEC §10) for every reader; the rows are copied over, not recomputed, and the
/// migration fails (changing nothing) unless the view shows every old row exactly. The view's
/// time text matches `Timestamp::to_rfc3339` for years 0000–9999 (strands are held to 2000–2100).
const MIGRATION_8: &str = concat!(
    r#"
CREATE TABLE stats_groups (
    group_id INTEGER PRIMARY KEY,
    module TEXT NOT NULL,
    pattern_key TEXT NOT NULL,
    action_category TEXT NOT NULL,
    as_of TEXT NOT NULL,
    UNIQUE (module, pattern_key, action_category)
);

CREATE TABLE stats_subsets (
    group_id INTEGER NOT NULL,
    scope_mask INTEGER NOT NULL,
    scope_values_hash INTEGER NOT NULL,
    scope_dims INTEGER NOT NULL,
    scope_values TEXT NOT NULL,
    n_trades INTEGER NOT NULL,
    n_actions INTEGER NOT NULL,
    mean_rr REAL NOT NULL,
    m2_rr REAL NOT NULL,
    wins INTEGER NOT NULL,
    sum_pnl REAL NOT NULL,
    mean_hold_days REAL,
    mean_time_eff REAL,
    first_exit_ms INTEGER,
    last_exit_ms INTEGER,
    dw REAL NOT NULL,
    dw2 REAL NOT NULL,
    dmean REAL NOT NULL,
    dm2 REAL NOT NULL,
    PRIMARY KEY (group_id, scope_mask, scope_values_hash)
) WITHOUT ROWID;

INSERT INTO stats_groups (module, pattern_key, action_category, as_of)
SELECT module, pattern_key, action_category, MAX(as_of)
FROM pattern_scope_stats
GROUP BY module, pattern_key, action_category
ORDER BY module, pattern_key, action_category;

INSERT INTO stats_subsets
SELECT g.group_id, s.scope_mask, s.scope_values_hash, s.scope_dims, s.scope_values, s.n_trades,
       s.n_actions, s.mean_rr, s.m2_rr, s.wins, s.sum_pnl, s.mean_hold_days, s.mean_time_eff,
       unixepoch(substr(s.first_exit_at, 1, 19)) * 1000
           + CASE WHEN length(s.first_exit_at) = 24 THEN CAST(substr(s.first_exit_at, 21, 3) AS INTEGER) ELSE 0 END,
       unixepoch(substr(s.last_exit_at, 1, 19)) * 1000
           + CASE WHEN length(s.last_exit_at) = 24 THEN CAST(substr(s.last_exit_at, 21, 3) AS INTEGER) ELSE 0 END,
       s.dw, s.dw2, s.dmean, s.dm2
FROM pattern_scope_stats s
JOIN stats_groups g USING (module, pattern_key, action_category)
ORDER BY g.group_id, s.scope_mask, s.scope_values_hash;

ALTER TABLE pattern_scope_stats RENAME TO pattern_scope_stats_v7;

CREATE VIEW pattern_scope_stats AS
SELECT g.module, g.pattern_key, g.action_category, s.scope_mask, s.scope_values,
       s.scope_values_hash, s.scope_dims, "#,
    stats_view_figures!(),
    r#";

-- Nothing may change silently: the view must show every old row exactly (a time text not in the
-- canonical form the code writes, or two as-of times in one group, would not survive the copy).
-- A failed CHECK aborts the whole migration, which leaves the store as it was.
CREATE TEMP TABLE migration_8_check (stats_rows_changed_by_the_copy INTEGER
    CHECK (stats_rows_changed_by_the_copy = 0));
INSERT INTO migration_8_check
SELECT (SELECT COUNT(*) FROM (SELECT * FROM pattern_scope_stats_v7 EXCEPT SELECT * FROM pattern_scope_stats))
     + (SELECT COUNT(*) FROM (SELECT * FROM pattern_scope_stats EXCEPT SELECT * FROM pattern_scope_stats_v7));
DROP TABLE migration_8_check;
DROP TABLE pattern_scope_stats_v7;
"#
);

/// The schema version this build migrates to.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}

const CREATE_MIGRATIONS_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)";

/// The schema version recorded in the store (0 for a new, empty file).
pub fn current_version(conn: &Connection) -> Result<i64> {
    if !has_table(conn, "schema_migrations")? {
        return Ok(0);
    }
    Ok(conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?)
}

fn has_table(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
        [name],
        |r| r.get(0),
    )?)
}

fn table_count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        [],
        |r| r.get(0),
    )?)
}

/// Bring the schema up to date. The version is read and every pending migration applied inside
/// one `BEGIN IMMEDIATE` transaction, so processes opening a new file at the same moment queue on
/// the write lock and only the first applies anything (the others then find the schema current).
pub fn migrate(conn: &Connection) -> Result<()> {
    let supported = latest_version();
    // The common case, a current store, needs no write lock at all.
    if has_table(conn, "schema_migrations")? && current_version(conn)? == supported {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    match apply_pending(conn, supported) {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(e) => {
            // Best effort: the migration's own error is the one to report.
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    Ok(())
}

fn apply_pending(conn: &Connection, supported: i64) -> Result<()> {
    if !has_table(conn, "schema_migrations")? && table_count(conn)? > 0 {
        return Err(StoreError::NotAStore {
            path: conn.path().unwrap_or("the database").to_string(),
            why: "it has tables but no schema_migrations table (not created by learnloop, or that table was dropped)".into(),
        });
    }
    conn.execute_batch(CREATE_MIGRATIONS_TABLE)?;
    let found = current_version(conn)?;
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        conn.execute_batch(sql)?;
        conn.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, datetime('now'))",
            [version],
        )?;
        tracing::info!(version, "applied schema migration");
    }
    Ok(())
}

/// What a read-only open requires: a learnloop store at exactly this build's schema version.
pub fn check_readable(conn: &Connection) -> Result<()> {
    let path = || conn.path().unwrap_or("the database").to_string();
    if !has_table(conn, "schema_migrations")? {
        let why = if table_count(conn)? == 0 {
            "it is empty (no learnloop command has written it yet)"
        } else {
            "it has no schema_migrations table"
        };
        return Err(StoreError::NotAStore {
            path: path(),
            why: why.into(),
        });
    }
    let (found, supported) = (current_version(conn)?, latest_version());
    match found.cmp(&supported) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => Err(StoreError::SchemaTooNew { found, supported }),
        std::cmp::Ordering::Less => Err(StoreError::SchemaTooOld { found, supported }),
    }
}

/// The derived tables whose bytes must not depend on how or how often the loop ran (the inputs
/// normalised, links, statistics, lessons): what idempotence and crash tests compare.
pub const DERIVED_TABLES: &[&str] = &[
    "pm_actions",
    "position_closes",
    "linked_trades",
    "trade_events",
    "link_anomalies",
    "pattern_scope_stats",
    "learning_lessons",
    "lesson_candidates",
    "learning_edge_history",
    "learning_latent_factors",
];

/// Every table and view of a migrated store, sorted: the names `export` accepts (checked while the command
/// line is parsed, so a misspelt name is a usage error before any store is opened).
pub const TABLES: &[&str] = &[
    "ad_strands",
    "adapter_bin_modules",
    "adapter_bins",
    "learning_configs",
    "learning_edge_history",
    "learning_latent_factors",
    "learning_lessons",
    "learning_runs",
    "lesson_candidates",
    "lesson_evolution",
    "link_anomalies",
    "linked_trades",
    "meta",
    "pattern_scope_stats",
    "pm_actions",
    "position_closes",
    "quarantine",
    "schema_migrations",
    "stats_groups",
    "stats_scopes",
    "stats_subsets",
    "trade_events",
];

/// Tables (and views, such as `pattern_scope_stats`) a user may export or dump, in a stable order.
pub fn user_tables(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'
         ORDER BY name",
    )?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_idempotent_and_versioned() {
        let conn = crate::open_in_memory().unwrap();
        assert_eq!(current_version(&conn).unwrap(), latest_version());
        migrate(&conn).unwrap();
        assert_eq!(current_version(&conn).unwrap(), latest_version());
        let tables = user_tables(&conn).unwrap();
        for t in [
            "ad_strands",
            "quarantine",
            "trade_events",
            "pattern_scope_stats",
            "learning_runs",
        ] {
            assert!(tables.iter().any(|n| n == t), "{t} missing");
        }
    }

    #[test]
    fn the_table_list_names_every_table_of_a_migrated_store() {
        let conn = crate::open_in_memory().unwrap();
        assert_eq!(user_tables(&conn).unwrap(), TABLES);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let conn = crate::open_in_memory().unwrap();
        conn.execute("INSERT INTO schema_migrations VALUES (999, 'x')", [])
            .unwrap();
        assert!(matches!(
            migrate(&conn),
            Err(StoreError::SchemaTooNew { found: 999, .. })
        ));
    }

    /// Migration 9 links each frozen dimension to the modules whose stored actions hold its bin
    /// labels, and not to a module that uses the same name for a category.
    #[test]
    fn migration_9_links_frozen_bins_to_the_modules_binned_on_them() {
        let conn = store_at_version(8);
        conn.execute_batch(
            r#"INSERT INTO adapter_bins VALUES ('x', 'mini', 'fixed', '[10,30]', 0, 't');
               INSERT INTO pm_actions (strand_id, module, position_id, ts, ts_ms, created_at_ms, scope)
               VALUES ('a1', 'mini', 'p1', 't', 0, 0, '{"x":"10..30"}'),
                      ('a2', 'mini', 'p2', 't', 0, 0, '{"x":"..10"}'),
                      ('a3', 'other', 'p3', 't', 0, 0, '{"x":"1"}'),
                      ('a4', 'third', 'p4', 't', 0, 0, '{"y":"..10"}');"#,
        )
        .unwrap();
        migrate(&conn).unwrap();
        let rows: Vec<(String, String)> = conn
            .prepare("SELECT dim, module FROM adapter_bin_modules")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(rows, [("x".to_string(), "mini".to_string())]);
    }

    /// A store as the schema before the status constraints left it: migrations 1–5 only.
    fn store_at_version_5() -> Connection {
        store_at_version(5)
    }

    /// A store as migrations 1 to `last` left it.
    fn store_at_version(last: i64) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(CREATE_MIGRATIONS_TABLE).unwrap();
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v <= last) {
            conn.execute_batch(sql).unwrap();
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, 'then')",
                [version],
            )
            .unwrap();
        }
        conn
    }

    const STATUS_TABLES: [&str; 5] = [
        "learning_lessons",
        "lesson_evolution",
        "learning_configs",
        "learning_runs",
        "link_anomalies",
    ];

    /// Every row of `table`, each column quoted by SQLite, in rowid-independent order.
    fn rows(conn: &Connection, table: &str) -> Vec<String> {
        let cols: Vec<String> = conn
            .prepare(&format!(
                "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
            ))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let quoted: Vec<String> = cols.iter().map(|c| format!("quote({c})")).collect();
        let sql = format!(
            "SELECT {} FROM {table} ORDER BY 1",
            quoted.join(" || ',' || ")
        );
        let mut out = vec![cols.join(",")];
        out.extend(
            conn.prepare(&sql)
                .unwrap()
                .query_map([], |r| r.get::<_, String>(0))
                .unwrap()
                .map(|r| r.unwrap()),
        );
        out
    }

    fn indexes(conn: &Connection) -> Vec<String> {
        conn.prepare(
            "SELECT name || ' ' || tbl_name FROM sqlite_master WHERE type = 'index' ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
    }

    const SEED_ROWS: &str = r#"
        INSERT INTO learning_lessons VALUES ('k1', 'pm', 'p', 'add', 3, '{"a":"1"}', -5, 2, 40,
            0.5, 0.2, 0.15, 2.5, 0.01, 0.05, NULL, 'f1', '{"size_mult":1.1}', 'active', NULL,
            '2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z', '2026-01-01T00:00:00Z', 40, 0.5, 1);
        INSERT INTO learning_lessons VALUES ('k2', 'pm', 'p', 'trim', 0, '{}', 7, 0, 10,
            -0.5, -0.2, -0.1, NULL, NULL, NULL, 12.5, NULL, '{}', 'retired', 'sign change',
            NULL, '2026-01-02T00:00:00Z', NULL, NULL, NULL, 0);
        INSERT INTO lesson_evolution VALUES ('r', '2026-01-01T00:00:00Z', 'k1', 'candidate', 0.1, NULL, NULL, 1.05);
        INSERT INTO learning_configs VALUES ('pm', 1, 'superseded', 'a', NULL, 'c', 'x', '{}');
        INSERT INTO learning_configs VALUES ('pm', 2, 'active', 'a', 'run-1', 'c', 'y', '{}');
        INSERT INTO learning_configs VALUES ('pm', 3, 'rolled_back', 'a', NULL, 'c', 'z', '{}');
        INSERT INTO learning_configs VALUES ('pm', 4, 'proposed', 'a', NULL, 'c', 'w', '{}');
        INSERT INTO learning_runs VALUES ('run-1', 'run', 'a', 's', 'f', 'ok', '{"n":1}', NULL, NULL);
        INSERT INTO learning_runs VALUES ('run-2', 'run', 'a', 's', NULL, 'failed', '{}', '{}', 'disk full');
        INSERT INTO learning_runs VALUES ('run-3', 'run', 'a', 's', 'f', 'rejected', '{}', NULL, '--strict');
        INSERT INTO link_anomalies VALUES ('open_cycle_action', 's1', 'pos1', 'waits');
        INSERT INTO link_anomalies VALUES ('duplicate_close', 's2', 'pos1', 'same exit');
    "#;

    #[test]
    fn upgrading_a_version_5_store_keeps_rows_and_indexes() {
        let conn = store_at_version_5();
        conn.execute_batch(SEED_ROWS).unwrap();
        let before: Vec<_> = STATUS_TABLES.iter().map(|t| rows(&conn, t)).collect();
        let indexes_before = indexes(&conn);
        migrate(&conn).unwrap();
        assert_eq!(current_version(&conn).unwrap(), latest_version());
        let after: Vec<_> = STATUS_TABLES.iter().map(|t| rows(&conn, t)).collect();
        assert_eq!(before, after);
        // Tables that later migrations create bring indexes of their own.
        let indexes_after: Vec<String> = indexes(&conn)
            .into_iter()
            .filter(|i| {
                ![
                    " adapter_bins",
                    " adapter_bin_modules",
                    " stats_groups",
                    " stats_scopes",
                ]
                .iter()
                .any(|t| i.ends_with(t))
            })
            .collect();
        assert_eq!(indexes_before, indexes_after);
        assert_eq!(after[0].len(), 3, "header and both lessons");
        let tables = user_tables(&conn).unwrap();
        assert!(!tables.iter().any(|t| t.ends_with("_v6")), "{tables:?}");
    }

    /// Rows of the version-7 `pattern_scope_stats` table: two groups, exit times with and without
    /// milliseconds and before 1970, absent figures, one row below two trades.
    const VERSION_7_STATS: &str = r#"
        INSERT INTO pattern_scope_stats VALUES ('pm', 'p.S1', 'add', 0, '{}', -77, 0, 12, 30,
            0.25, 3.5, 0.3181818181818182, 5, 0.4166666666666667, 120.5, 2.5, NULL,
            '2026-01-01T02:06:11Z', '2026-02-01T00:00:00.250Z', 10.5, 9.25, 0.2, 3.1,
            11.918918918918919, '2026-03-01T00:00:00Z');
        INSERT INTO pattern_scope_stats VALUES ('pm', 'p.S1', 'add', 3, '{"a":"1","b":"x"}', 991, 2,
            1, 1, -1.5, 0.0, NULL, 0, 0.0, -3.0, NULL, 0.5,
            '1969-12-31T23:59:58.500Z', '1969-12-31T23:59:59Z', 1.0, 1.0, -1.5, 0.0, 1.0,
            '2026-03-01T00:00:00Z');
        INSERT INTO pattern_scope_stats VALUES ('pm', 'a.S2', 'trim', 0, '{}', 5, 0, 0, 0,
            0.0, 0.0, NULL, 0, 0.0, 0.0, NULL, NULL, NULL, NULL, 0.0, 0.0, 0.0, 0.0, 0.0,
            '2026-03-01T00:00:00Z');
    "#;

    /// A store at `version` with `rows`, upgraded: the view shows `expected_rows` rows, each as
    /// before. Returns the upgraded store.
    fn upgrade_keeping_the_stats_view(
        version: i64,
        rows: &str,
        expected_rows: usize,
    ) -> Connection {
        let conn = store_at_version(version);
        conn.execute_batch(rows).unwrap();
        let dump =
            |c: &Connection| crate::export::dump_tables(c, &["pattern_scope_stats"]).unwrap();
        let before = dump(&conn);
        migrate(&conn).unwrap();
        assert_eq!(dump(&conn), before);
        assert_eq!(
            before.lines().count(),
            2 + expected_rows,
            "title, header and the rows: {before}"
        );
        conn
    }

    fn count_rows(conn: &Connection, table: &str) -> i64 {
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn upgrading_a_version_7_store_keeps_every_stats_row_as_it_read() {
        let conn = upgrade_keeping_the_stats_view(7, VERSION_7_STATS, 3);
        assert_eq!(count_rows(&conn, "stats_groups"), 2);
    }

    #[test]
    fn a_version_7_row_the_copy_would_change_stops_the_migration() {
        let conn = store_at_version(7);
        conn.execute_batch(VERSION_7_STATS).unwrap();
        // Half a second written without its trailing zeros: not the text the code writes.
        conn.execute_batch(
            "UPDATE pattern_scope_stats SET last_exit_at = '2026-02-01T00:00:00.5Z'
             WHERE scope_mask = 0 AND pattern_key = 'p.S1'",
        )
        .unwrap();
        let dump =
            |c: &Connection| crate::export::dump_tables(c, &["pattern_scope_stats"]).unwrap();
        let before = dump(&conn);
        let err = migrate(&conn).unwrap_err();
        assert!(
            err.to_string().contains("stats_rows_changed_by_the_copy"),
            "{err}"
        );
        assert_eq!(current_version(&conn).unwrap(), 7, "nothing applied");
        assert_eq!(dump(&conn), before, "the old table as it was");
        assert!(!has_table(&conn, "stats_subsets").unwrap());
    }

    /// Version-10 rows: two groups sharing the root and one other scope text.
    const VERSION_10_STATS: &str = r#"
        INSERT INTO stats_groups VALUES (1, 'pm', 'p.S1', 'add', '2026-03-01T00:00:00Z');
        INSERT INTO stats_groups VALUES (2, 'pm', 'a.S2', 'trim', '2026-03-01T00:00:00Z');
        INSERT INTO stats_subsets VALUES (1, 0, -77, 0, '{}', 12, 30, 0.25, 3.5, 5, 120.5, 2.5,
            NULL, 1767232800000, 1769904000250, 10.5, 9.25, 0.2, 3.1);
        INSERT INTO stats_subsets VALUES (1, 3, 991, 2, '{"a":"1","b":"x"}', 1, 1, -1.5, 0.0, 0,
            -3.0, NULL, 0.5, -1500, -1000, 1.0, 1.0, -1.5, 0.0);
        INSERT INTO stats_subsets VALUES (2, 0, -77, 0, '{}', 0, 0, 0.0, 0.0, 0, 0.0, NULL, NULL,
            NULL, NULL, 0.0, 0.0, 0.0, 0.0);
        INSERT INTO stats_subsets VALUES (2, 3, 991, 2, '{"a":"1","b":"x"}', 4, 4, 1.0, 2.0, 3,
            8.0, 1.0, 0.25, 0, 1000, 2.0, 1.5, 0.9, 0.4);
    "#;

    #[test]
    fn upgrading_a_version_10_store_stores_each_scope_text_once_and_every_row_reads_alike() {
        let conn = upgrade_keeping_the_stats_view(10, VERSION_10_STATS, 4);
        assert_eq!(count_rows(&conn, "stats_scopes"), 2);
        let moved: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('stats_subsets')
                 WHERE name IN ('scope_values', 'scope_dims')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(moved, 0, "the rows no longer hold the scope's text or size");
    }

    #[test]
    fn two_texts_under_one_scope_key_stop_the_migration() {
        let conn = store_at_version(10);
        conn.execute_batch(VERSION_10_STATS).unwrap();
        conn.execute_batch(
            r#"UPDATE stats_subsets SET scope_values = '{"a":"2","b":"x"}'
               WHERE group_id = 2 AND scope_mask = 3"#,
        )
        .unwrap();
        let err = migrate(&conn).unwrap_err();
        assert!(err.to_string().contains("UNIQUE"), "{err}");
        assert_eq!(current_version(&conn).unwrap(), 10, "nothing applied");
        assert!(!has_table(&conn, "stats_scopes").unwrap());
    }

    #[test]
    fn the_database_refuses_a_status_outside_the_closed_sets() {
        let conn = crate::open_in_memory().unwrap();
        conn.execute_batch(SEED_ROWS).unwrap();
        for bad in [
            "UPDATE learning_lessons SET status = 'Active' WHERE lesson_key = 'k1'",
            "UPDATE lesson_evolution SET status = 'gone'",
            "UPDATE learning_configs SET status = 'live' WHERE version = 4",
            "UPDATE learning_runs SET status = 'placebo' WHERE run_id = 'run-1'",
            "UPDATE link_anomalies SET kind = 'orphan' WHERE strand_id = 's1'",
        ] {
            let err = conn.execute_batch(bad).unwrap_err();
            assert!(
                err.to_string().contains("CHECK constraint failed"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn every_status_the_code_writes_is_admitted() {
        use learnloop_model::{AnomalyKind, ConfigStatus, LessonStatus, RunStatus};
        let conn = crate::open_in_memory().unwrap();
        conn.execute_batch(SEED_ROWS).unwrap();
        let set = |sql: &str, text: &str| conn.execute(sql, [text]).unwrap();
        for s in LessonStatus::ALL {
            set("UPDATE learning_lessons SET status = ?1", s.as_str());
            set("UPDATE lesson_evolution SET status = ?1", s.as_str());
        }
        for s in ConfigStatus::ALL {
            set(
                "UPDATE learning_configs SET status = ?1 WHERE version = 4",
                s.as_str(),
            );
        }
        for s in RunStatus::ALL {
            set("UPDATE learning_runs SET status = ?1", s.as_str());
        }
        for k in AnomalyKind::ALL {
            set(
                "UPDATE link_anomalies SET kind = ?1 WHERE strand_id = 's1'",
                k.as_str(),
            );
        }
    }
}
