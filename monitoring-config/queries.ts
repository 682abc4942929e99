/**
 * postgres_exporter custom queries (Debian trixie's 0.17.1, --extend.query-path format) and the
 * built-in collectors pgharbor turns on. Every metric the alert rules use comes from here, the probe
 * or the PgBouncer exporter, so the rule expressions and the deployed exporters agree by construction
 * (and a runtime test checks it).
 */

interface Metric {
  name: string;
  usage: "LABEL" | "GAUGE" | "COUNTER";
  description: string;
}

interface Query {
  name: string;
  query: string;
  metrics: Metric[];
}

/** What the rendered queries depend on: the environment's monitoring settings. */
export interface QueryOptions {
  /** Statements exported from pg_stat_statements per server: the top N by total execution time. */
  topStatements: number;
  /** A table counts for the dead-tuple ranking from this many dead tuples (small tables churn harmlessly). */
  deadTupleMinCount: number;
}

export const DEFAULT_QUERY_OPTIONS: QueryOptions = { topStatements: 20, deadTupleMinCount: 10000 };

/**
 * postgres_exporter's built-in collectors pgharbor enables (0.17.1 has them off by default), with the
 * metric names each one produced when 0.17.1 was run against a PostgreSQL 17 server.
 * - database_wraparound: per database that allows connections (`datname`), age(datfrozenxid) and
 *   mxid_age(datminmxid). The names end in `_seconds` but the values are transaction (multixact)
 *   counts. Chosen over a query of our own: maintained upstream, covers multixacts too, and needs no
 *   second copy of the same series.
 * - long_running_transactions: the count of non-idle transactions (idle in transaction included,
 *   autovacuum excluded) and the age of the oldest, seconds. The exporter's own query is one, so
 *   both exist from the first scrape.
 * Not stat_statements: 0.17.1 hard-codes LIMIT 100 (no `--collector.stat_statements.limit` or
 * `.include_query` flag; the exporter refuses to start with either), so the top statements come from
 * the `pgharbor_statements` query below, bounded by the environment's topStatements.
 */
export const COLLECTORS: Record<string, string[]> = {
  database_wraparound: ["pg_database_wraparound_age_datfrozenxid_seconds", "pg_database_wraparound_age_datminmxid_seconds"],
  long_running_transactions: ["pg_long_running_transactions", "pg_long_running_transactions_oldest_timestamp_seconds"],
};

export function queries(o: QueryOptions = DEFAULT_QUERY_OPTIONS): Query[] {
  return [
    {
      name: "pgharbor_archiver",
      // Only a primary archives: on a standby the query returns no row.
      query:
        "SELECT archived_count, failed_count, COALESCE(EXTRACT(EPOCH FROM now() - last_archived_time), 1e9) AS last_archived_age_seconds, " +
        "(COALESCE(last_failed_time, 'epoch') > COALESCE(last_archived_time, 'epoch'))::int AS failing FROM pg_stat_archiver WHERE NOT pg_is_in_recovery()",
      metrics: [
        { name: "archived_count", usage: "COUNTER", description: "WAL segments archived since the statistics reset" },
        { name: "failed_count", usage: "COUNTER", description: "Failed archive attempts since the statistics reset" },
        { name: "last_archived_age_seconds", usage: "GAUGE", description: "Seconds since the last segment was archived" },
        { name: "failing", usage: "GAUGE", description: "1 when the last archive attempt failed" },
      ],
    },
    {
      name: "pgharbor_replication",
      query:
        "SELECT application_name, COALESCE(EXTRACT(EPOCH FROM replay_lag), 0) AS replay_lag_seconds, " +
        "COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0) AS replay_lag_bytes FROM pg_stat_replication WHERE NOT pg_is_in_recovery()",
      metrics: [
        { name: "application_name", usage: "LABEL", description: "Replica name" },
        { name: "replay_lag_seconds", usage: "GAUGE", description: "Replay lag of the replica, seconds" },
        { name: "replay_lag_bytes", usage: "GAUGE", description: "WAL the replica has not replayed, bytes" },
      ],
    },
    {
      name: "pgharbor_slots",
      query:
        "SELECT slot_name, active::int AS active, COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0) AS retained_bytes " +
        "FROM pg_replication_slots WHERE NOT pg_is_in_recovery()",
      metrics: [
        { name: "slot_name", usage: "LABEL", description: "Replication slot" },
        { name: "active", usage: "GAUGE", description: "1 when a replica streams through the slot" },
        { name: "retained_bytes", usage: "GAUGE", description: "WAL the slot holds back on the primary, bytes" },
      ],
    },
    {
      name: "pgharbor_connections",
      query: "SELECT count(*) AS used, current_setting('max_connections')::int AS max FROM pg_stat_activity WHERE backend_type = 'client backend'",
      metrics: [
        { name: "used", usage: "GAUGE", description: "Client connections" },
        { name: "max", usage: "GAUGE", description: "max_connections" },
      ],
    },
    {
      name: "pgharbor_wal",
      query: "SELECT COALESCE(sum(size), 0) AS dir_bytes FROM pg_ls_waldir()",
      metrics: [{ name: "dir_bytes", usage: "GAUGE", description: "Size of pg_wal, bytes" }],
    },
    {
      name: "pgharbor_heartbeat",
      query: "SELECT EXTRACT(EPOCH FROM now() - at) AS age_seconds FROM pgharbor.heartbeat",
      metrics: [{ name: "age_seconds", usage: "GAUGE", description: "Age of the heartbeat row as this server sees it (replication delay on a replica)" }],
    },
    {
      // Top statements by total execution time, on every server (a replica's reads are its own).
      // Grouped because pg_stat_statements.track = all gives a statement a row per nesting level, and
      // the exporter fails the whole scrape on two series with the same labels. Bounded: no query text
      // (it can hold literals), the queryid, database and role only.
      name: "pgharbor_statements",
      query:
        'SELECT pg_get_userbyid(s.userid) AS "user", d.datname, s.queryid::text AS queryid, sum(s.calls) AS calls_total, ' +
        "sum(s.total_exec_time) / 1000 AS exec_seconds_total, sum(s.rows) AS rows_total, sum(s.shared_blks_hit) AS shared_blks_hit_total, " +
        "sum(s.shared_blks_read) AS shared_blks_read_total, sum(s.temp_blks_written) AS temp_blks_written_total " +
        `FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid GROUP BY s.userid, d.datname, s.queryid ORDER BY sum(s.total_exec_time) DESC LIMIT ${o.topStatements}`,
      metrics: [
        { name: "user", usage: "LABEL", description: "Role that ran the statement" },
        { name: "datname", usage: "LABEL", description: "Database" },
        { name: "queryid", usage: "LABEL", description: "pg_stat_statements queryid (the text: SELECT query FROM pg_stat_statements WHERE queryid = …)" },
        { name: "calls_total", usage: "COUNTER", description: "Times executed" },
        { name: "exec_seconds_total", usage: "COUNTER", description: "Total execution time, seconds" },
        { name: "rows_total", usage: "COUNTER", description: "Rows retrieved or affected" },
        { name: "shared_blks_hit_total", usage: "COUNTER", description: "Shared buffer hits" },
        { name: "shared_blks_read_total", usage: "COUNTER", description: "Shared blocks read (from the OS cache or disk)" },
        { name: "temp_blks_written_total", usage: "COUNTER", description: "Temporary blocks written (work_mem too small)" },
      ],
    },
    {
      // The app database's user tables, on the primary (a standby's counters only see its own
      // activity). HAVING, not WHERE: an aggregate returns its row of zeros even when WHERE drops all.
      name: "pgharbor_tuples",
      query: "SELECT COALESCE(sum(n_dead_tup), 0) AS dead, COALESCE(sum(n_live_tup), 0) AS live FROM pg_stat_user_tables HAVING NOT pg_is_in_recovery()",
      metrics: [
        { name: "dead", usage: "GAUGE", description: "Dead tuples in the app database's tables" },
        { name: "live", usage: "GAUGE", description: "Live tuples in the app database's tables" },
      ],
    },
    {
      // One row, the table with the highest dead ratio among those with enough dead tuples to matter,
      // so the cardinality stays at one series per metric; zeros and no table when none qualifies,
      // so the series exist from the start.
      name: "pgharbor_worst_table",
      query:
        "SELECT COALESCE(w.schemaname, '') AS schemaname, COALESCE(w.relname, '') AS relname, COALESCE(w.n_dead_tup, 0) AS dead_tuples, " +
        "COALESCE(w.n_live_tup, 0) AS live_tuples, COALESCE(w.ratio, 0) AS dead_ratio FROM (SELECT) AS one LEFT JOIN LATERAL (" +
        "SELECT schemaname, relname, n_dead_tup, n_live_tup, n_dead_tup::float8 / (n_live_tup + n_dead_tup) AS ratio FROM pg_stat_user_tables " +
        `WHERE n_dead_tup >= ${o.deadTupleMinCount} ORDER BY ratio DESC, n_dead_tup DESC LIMIT 1) AS w ON true WHERE NOT pg_is_in_recovery()`,
      metrics: [
        { name: "schemaname", usage: "LABEL", description: "Schema of the table" },
        { name: "relname", usage: "LABEL", description: "Table" },
        { name: "dead_tuples", usage: "GAUGE", description: "Dead tuples in the table" },
        { name: "live_tuples", usage: "GAUGE", description: "Live tuples in the table" },
        { name: "dead_ratio", usage: "GAUGE", description: "Dead / (live + dead) tuples of the table" },
      ],
    },
    {
      // The newest maintenance run (pgharbor.maintenance_runs), on the primary. Zeros before the first
      // run, so the series exist from the start; alerts tell a failed run from none by the timestamp.
      name: "pgharbor_maintenance",
      query:
        "SELECT COALESCE(EXTRACT(EPOCH FROM r.finished_at), 0) AS last_run_timestamp_seconds, COALESCE(r.ok::int, 0) AS last_ok, " +
        "COALESCE(r.analyzed, 0) AS last_analyzed_tables, COALESCE(r.vacuumed, 0) AS last_vacuumed_tables FROM (SELECT) AS one LEFT JOIN LATERAL (" +
        "SELECT finished_at, ok, analyzed, vacuumed FROM pgharbor.maintenance_runs ORDER BY finished_at DESC, id DESC LIMIT 1) AS r ON true WHERE NOT pg_is_in_recovery()",
      metrics: [
        { name: "last_run_timestamp_seconds", usage: "GAUGE", description: "When the newest maintenance run finished, Unix time (0: none yet)" },
        { name: "last_ok", usage: "GAUGE", description: "1 when the newest maintenance run succeeded (0 when it failed or none ran)" },
        { name: "last_analyzed_tables", usage: "GAUGE", description: "Tables the newest maintenance run analyzed" },
        { name: "last_vacuumed_tables", usage: "GAUGE", description: "Tables the newest maintenance run vacuumed" },
      ],
    },
  ];
}

/** The metric names the queries produce (`<query>_<column>`). */
export function queryMetricNames(o: QueryOptions = DEFAULT_QUERY_OPTIONS): string[] {
  return queries(o).flatMap((q) => q.metrics.filter((m) => m.usage !== "LABEL").map((m) => `${q.name}_${m.name}`));
}

const quote = (s: string) => JSON.stringify(s);

/** The exporter's command-line flags turning on COLLECTORS. */
export function collectorFlags(): string[] {
  return Object.keys(COLLECTORS).map((c) => `--collector.${c}`);
}

export function renderQueriesYaml(o: QueryOptions = DEFAULT_QUERY_OPTIONS): string {
  const out = ["# postgres_exporter queries rendered by pgharbor."];
  for (const q of queries(o)) {
    out.push(`${q.name}:`, `  query: ${quote(q.query)}`, "  master: true", "  metrics:");
    for (const m of q.metrics) out.push(`    - ${m.name}:`, `        usage: ${quote(m.usage)}`, `        description: ${quote(m.description)}`);
  }
  return out.join("\n") + "\n";
}
