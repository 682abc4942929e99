/**
 * Patroni's /metrics (its REST API on every member, plain HTTP; GET needs no authentication: Patroni
 * only authenticates unsafe methods). Each series carries Patroni's `scope` and `name` labels;
 * Prometheus adds `job="patroni"`, `instance` and `member` (prometheus.ts).
 */

/**
 * The metric names Patroni 4.0.7 served on a PostgreSQL 17 member (prototype, 2026-11-22:
 * __tests__/fixtures/patroni-metrics/metrics-pg1-final.txt). The alert rules read only these and up.
 */
export const PATRONI_METRICS: string[] = [
  "patroni_cluster_unlocked",
  "patroni_dcs_last_seen",
  "patroni_failsafe_mode_is_active",
  "patroni_is_paused",
  "patroni_pending_restart",
  "patroni_postgres_in_archive_recovery",
  "patroni_postgres_running",
  "patroni_postgres_server_version",
  "patroni_postgres_streaming",
  "patroni_postgres_timeline",
  "patroni_postmaster_start_time",
  "patroni_primary",
  "patroni_quorum_standby",
  "patroni_replica",
  "patroni_standby_leader",
  "patroni_sync_standby",
  "patroni_version",
  "patroni_xlog_location",
  "patroni_xlog_paused",
  "patroni_xlog_received_location",
  "patroni_xlog_replayed_location",
  "patroni_xlog_replayed_timestamp",
];

export { PATRONI_SAMPLES } from "./patroni-samples";
