/**
 * postgres_exporter custom queries (the Debian 0.11 build's --extend.query-path format). Every metric
 * the alert rules use comes from here, the probe or the PgBouncer exporter, so the rule expressions
 * and the deployed exporters agree by construction (and a runtime test checks it).
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

export const QUERIES: Query[] = [
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
    name: "pgharbor_wraparound",
    // Per database: the transaction-ID age autovacuum must freeze before PostgreSQL stops at 2^31.
    query: "SELECT datname, age(datfrozenxid)::bigint AS age FROM pg_database WHERE datallowconn AND NOT pg_is_in_recovery()",
    metrics: [
      { name: "datname", usage: "LABEL", description: "Database" },
      { name: "age", usage: "GAUGE", description: "Age of the database's oldest unfrozen transaction ID" },
    ],
  },
  {
    name: "pgharbor_transactions",
    query:
      "SELECT COALESCE(max(EXTRACT(EPOCH FROM now() - xact_start)), 0) AS oldest_seconds, " +
      "count(*) FILTER (WHERE state LIKE 'idle in transaction%') AS idle_in_transaction, " +
      "count(*) FILTER (WHERE cardinality(pg_blocking_pids(pid)) > 0) AS waiting_for_locks " +
      "FROM pg_stat_activity WHERE backend_type = 'client backend' AND NOT pg_is_in_recovery()",
    metrics: [
      { name: "oldest_seconds", usage: "GAUGE", description: "Age of the oldest open transaction, seconds" },
      { name: "idle_in_transaction", usage: "GAUGE", description: "Sessions idle inside a transaction" },
      { name: "waiting_for_locks", usage: "GAUGE", description: "Sessions waiting for a lock another session holds" },
    ],
  },
  {
    name: "pgharbor_dead_tuples",
    // The application database's aggregate; the worst table among those with at least 10000 dead rows.
    query:
      "SELECT COALESCE(sum(n_dead_tup), 0) AS total, COALESCE(sum(n_live_tup), 0) AS live, " +
      "COALESCE(max(n_dead_tup::float / GREATEST(n_live_tup + n_dead_tup, 1)) FILTER (WHERE n_dead_tup >= 10000), 0) AS worst_ratio " +
      "FROM pg_stat_user_tables WHERE NOT pg_is_in_recovery()",
    metrics: [
      { name: "total", usage: "GAUGE", description: "Dead rows in the application database's tables" },
      { name: "live", usage: "GAUGE", description: "Live rows in the application database's tables" },
      { name: "worst_ratio", usage: "GAUGE", description: "Highest dead/(live+dead) ratio of a table with at least 10000 dead rows" },
    ],
  },
  {
    name: "pgharbor_maintenance",
    // One row even before the first run (zeros), so the series exist from the start.
    query:
      "SELECT COALESCE(EXTRACT(EPOCH FROM max(finished_at)), 0) AS last_run_timestamp_seconds, " +
      "COALESCE((SELECT ok::int FROM pgharbor.maintenance_runs ORDER BY id DESC LIMIT 1), 1) AS last_ok, " +
      "COALESCE((SELECT analyzed FROM pgharbor.maintenance_runs ORDER BY id DESC LIMIT 1), 0) AS last_analyzed_tables, " +
      "COALESCE((SELECT vacuumed FROM pgharbor.maintenance_runs ORDER BY id DESC LIMIT 1), 0) AS last_vacuumed_tables " +
      "FROM pgharbor.maintenance_runs WHERE NOT pg_is_in_recovery() HAVING NOT pg_is_in_recovery()",
    metrics: [
      { name: "last_run_timestamp_seconds", usage: "GAUGE", description: "When the last maintenance run finished (0: never)" },
      { name: "last_ok", usage: "GAUGE", description: "1 when the last maintenance run succeeded (or none ran yet)" },
      { name: "last_analyzed_tables", usage: "GAUGE", description: "Tables the last maintenance run analysed" },
      { name: "last_vacuumed_tables", usage: "GAUGE", description: "Tables the last maintenance run vacuumed" },
    ],
  },
  {
    name: "pgharbor_heartbeat",
    query: "SELECT EXTRACT(EPOCH FROM now() - at) AS age_seconds FROM pgharbor.heartbeat",
    metrics: [{ name: "age_seconds", usage: "GAUGE", description: "Age of the heartbeat row as this server sees it (replication delay on a replica)" }],
  },
];

/** The metric names the queries produce (`<query>_<column>`). */
export function queryMetricNames(): string[] {
  return QUERIES.flatMap((q) => q.metrics.filter((m) => m.usage !== "LABEL").map((m) => `${q.name}_${m.name}`));
}

const quote = (s: string) => JSON.stringify(s);

export function renderQueriesYaml(): string {
  const out = ["# postgres_exporter queries rendered by pgharbor."];
  for (const q of QUERIES) {
    out.push(`${q.name}:`, `  query: ${quote(q.query)}`, "  master: true", "  metrics:");
    for (const m of q.metrics) out.push(`    - ${m.name}:`, `        usage: ${quote(m.usage)}`, `        description: ${quote(m.description)}`);
  }
  return out.join("\n") + "\n";
}
