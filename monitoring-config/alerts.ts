/**
 * Prometheus alert rules derived from an environment's settings (no magic numbers: every threshold is
 * computed from rpoSeconds, archive_timeout, the slot cap, the backup schedules or max_connections, or
 * is a setting of the environment's monitoring section), and promtool unit tests for each: a case
 * that fires and a case that stays quiet.
 */

import { PATRONI_SAMPLES } from "./patroni";
import { SCRAPE_INTERVAL_SECONDS } from "./prometheus";

export interface AlertInput {
  environment: string;
  rpoSeconds: number;
  archiveTimeoutSeconds: number;
  maxSlotWalKeepSizeMiB: number;
  maxWalSizeMiB: number;
  /** Longest gap between scheduled full / differential backups, seconds. */
  fullIntervalSeconds: number;
  diffIntervalSeconds: number;
  maxConnections: number;
  /** Alert this many days before a server certificate expires. */
  certificateWarningDays: number;
  /** Longest gap between scheduled restore drills, seconds (absent: drills are off). */
  drillIntervalSeconds?: number;
  /** Longest gap between scheduled logical backups, seconds (absent: none configured). */
  logicalIntervalSeconds?: number;
  /** Transaction (and multixact) ID age of a database that warns, and the one that is critical. */
  wraparoundWarningAge: number;
  wraparoundCriticalAge: number;
  /** A transaction open longer than this, seconds, alerts. */
  longTransactionSeconds: number;
  /** A table with at least deadTupleMinCount dead tuples and more than this share of dead ones alerts. */
  deadTupleRatio: number;
  deadTupleMinCount: number;
  /** Set when the environment runs Patroni: the cluster's alerts, and texts that never take the container named primary for the leader. */
  cluster?: ClusterAlertInput;
}

export interface ClusterAlertInput {
  /** `sync`: Patroni's (non-strict) synchronous mode, which PatroniSyncStandbyMissing watches. */
  mode: "async" | "sync";
}

/** A further promtool case of a rule: its series (at the rule's interval), when it is evaluated, and the labels it must fire with (absent: it must stay quiet). */
export interface AlertCase {
  name: string;
  series: Array<[string, string]>;
  /** Evaluation time(s), e.g. "90s" or "12m"; a list checks every one. */
  at: string | string[];
  fires?: Array<Record<string, string>>;
}

export interface AlertRule {
  alert: string;
  expr: string;
  /** Seconds ("30s") or minutes ("5m"). */
  for: string;
  severity: "critical" | "warning";
  summary: string;
  /** First response, for the runbook. */
  response: string;
  /** promtool cases: input series that must fire the alert (with its labels) and series that must not. */
  fires: { series: Array<[string, string]>; labels: Record<string, string>; at?: string; /** Further alerts the case fires at once (e.g. one per member). */ more?: Array<Record<string, string>> };
  quiet: { series: Array<[string, string]>; at?: string };
  /** Step of the cases' input series (default 1m; the Patroni rules' real samples are 15 s apart, Prometheus' scrape interval). */
  interval?: string;
  /** Further cases, e.g. real Patroni samples of a failover or a switchover. */
  cases?: AlertCase[];
}

const MiB = 1024 * 1024;

export function alertRules(i: AlertInput): AlertRule[] {
  const slotCap = i.maxSlotWalKeepSizeMiB * MiB;
  const walBudget = (i.maxWalSizeMiB + i.maxSlotWalKeepSizeMiB) * MiB;
  const staleAfter = 2 * i.archiveTimeoutSeconds;
  const fullMax = Math.round(1.5 * i.fullIntervalSeconds);
  const diffMax = Math.round(1.5 * i.diffIntervalSeconds);
  const env = { environment: i.environment };
  const highRatio = Number(Math.min(0.99, i.deadTupleRatio + 0.1).toFixed(4));
  // With Patroni the container named primary may be a replica after a failover: texts say "leader"
  // and how to find it. Without it they stay as they were.
  const ha = i.cluster !== undefined;
  const whoLeads = "`npx pgharbor cluster status --env <env>` names it";
  const rules: AlertRule[] = [
    {
      alert: "PostgresDown",
      expr: "pg_up == 0",
      for: "1m",
      severity: "critical",
      summary: "PostgreSQL does not answer its exporter",
      response: ha
        ? "Check the container (`docker ps -a`, `docker logs`) and its healthcheck. `npx pgharbor cluster status --env <env>` says whether it is the leader (after a failover the container named primary may be a replica): on the leader, writes fail until Patroni fails over (see PatroniNoLeader)."
        : "Check the container (`docker ps -a`, `docker logs`) and its healthcheck; on the primary, writes are failing.",
      fires: { series: [['pg_up{instance="primary"}', "0x10"]], labels: { instance: "primary" } },
      quiet: { series: [['pg_up{instance="primary"}', "1x10"]] },
    },
    {
      alert: "ReplicaLagHigh",
      expr: `pgharbor_replication_replay_lag_seconds > ${i.rpoSeconds}`,
      for: "2m",
      severity: "warning",
      summary: `A replica replays more than rpoSeconds (${i.rpoSeconds} s) behind the ${ha ? "leader" : "primary"}`,
      response: "Reads from DATABASE_READ_URL are stale. Check the replica's CPU/IO and long queries on it (hot_standby_feedback holds vacuum back).",
      fires: { series: [['pgharbor_replication_replay_lag_seconds{application_name="replica-1"}', `${i.rpoSeconds + 30}x10`]], labels: { application_name: "replica-1" } },
      quiet: { series: [['pgharbor_replication_replay_lag_seconds{application_name="replica-1"}', "1x10"]] },
    },
    {
      alert: "ReplicaLagBytesHigh",
      expr: `pgharbor_replication_replay_lag_bytes > ${slotCap / 2}`,
      for: "2m",
      severity: "warning",
      summary: "A replica is behind by more than half the slot WAL cap",
      response: "If it keeps growing the slot will be invalidated and the replica must re-bootstrap; check the replica and the network between hosts.",
      fires: { series: [['pgharbor_replication_replay_lag_bytes{application_name="replica-1"}', `${slotCap}x10`]], labels: { application_name: "replica-1" } },
      quiet: { series: [['pgharbor_replication_replay_lag_bytes{application_name="replica-1"}', "1024x10"]] },
    },
    {
      alert: "ReplicationSlotInactive",
      expr: "pgharbor_slots_active == 0",
      for: "5m",
      severity: "warning",
      summary: "No replica streams through a replication slot",
      response: ha
        ? "The member is down or cannot connect; the leader keeps WAL for its slot up to the cap. Start it (`npx pgharbor cluster status --env <env>` shows its state). Patroni owns these slots: do not drop one by hand (it recreates a live member's slot, and drops a removed member's after member_slots_ttl)."
        : "The replica is down or cannot connect; the primary keeps WAL for it up to the cap. Start it, or drop the slot of a replica you removed.",
      fires: { series: [['pgharbor_slots_active{slot_name="pgharbor_replica_1"}', "0x10"]], labels: { slot_name: "pgharbor_replica_1" } },
      quiet: { series: [['pgharbor_slots_active{slot_name="pgharbor_replica_1"}', "1x10"]] },
    },
    {
      alert: "ReplicationSlotWalNearCap",
      expr: `pgharbor_slots_retained_bytes > ${Math.round(0.8 * slotCap)}`,
      for: "1m",
      severity: "critical",
      summary: "A slot holds back more than 80 % of max_slot_wal_keep_size",
      response: "At the cap the slot is invalidated and its replica must be rebuilt from the bucket. Bring the replica back now.",
      fires: { series: [['pgharbor_slots_retained_bytes{slot_name="pgharbor_replica_1"}', `${slotCap}x10`]], labels: { slot_name: "pgharbor_replica_1" } },
      quiet: { series: [['pgharbor_slots_retained_bytes{slot_name="pgharbor_replica_1"}', `${Math.round(0.1 * slotCap)}x10`]] },
    },
    {
      alert: "ArchivingFailing",
      expr: "pgharbor_archiver_failing == 1",
      for: "2m",
      severity: "critical",
      summary: "archive_command fails: WAL piles up in pg_wal and the RPO grows",
      response: `Read the ${ha ? `leader's log (${whoLeads})` : "primary's log"} for the pgBackRest error (credentials, bucket reachability, TLS); run \`backup-job.sh check\` in the backup container.`,
      fires: { series: [['pgharbor_archiver_failing{instance="primary"}', "1x10"]], labels: { instance: "primary" } },
      quiet: { series: [['pgharbor_archiver_failing{instance="primary"}', "0x10"]] },
    },
    {
      alert: "ArchiveStale",
      expr: `pgharbor_archiver_last_archived_age_seconds > ${staleAfter}`,
      for: "1m",
      severity: "critical",
      summary: `Nothing archived for more than 2 × archive_timeout (${staleAfter} s)`,
      response: `archive_timeout forces a segment at least every archive_timeout: silence means archiving is stuck. Check ArchivingFailing and the ${ha ? `leader's log (${whoLeads})` : "primary's log"}.`,
      fires: { series: [['pgharbor_archiver_last_archived_age_seconds{instance="primary"}', `${staleAfter + 60}x10`]], labels: { instance: "primary" } },
      quiet: { series: [['pgharbor_archiver_last_archived_age_seconds{instance="primary"}', `${Math.max(1, i.archiveTimeoutSeconds - 5)}x10`]] },
    },
    {
      alert: "FullBackupTooOld",
      expr: `time() - pgharbor_backup_last_completed_timestamp_seconds{type="full"} > ${fullMax}`,
      for: "5m",
      severity: "critical",
      summary: "No full backup within 1.5 × the full-backup schedule",
      response: "Read the backup container's log and /var/lib/pgharbor/status/full.json; run `backup-job.sh full` by hand.",
      // promtool's clock starts at 0: a completion before it is a backup that old.
      fires: { series: [['pgharbor_backup_last_completed_timestamp_seconds{type="full"}', `-${fullMax + 3600}x20`]], labels: { type: "full" } },
      quiet: { series: [['pgharbor_backup_last_completed_timestamp_seconds{type="full"}', "0x20"]] },
    },
    {
      alert: "DiffBackupTooOld",
      expr: `time() - pgharbor_backup_last_completed_timestamp_seconds{type="diff"} > ${diffMax}`,
      for: "5m",
      severity: "warning",
      summary: "No differential backup within 1.5 × its schedule",
      response: "Read the backup container's log and /var/lib/pgharbor/status/diff.json.",
      fires: { series: [['pgharbor_backup_last_completed_timestamp_seconds{type="diff"}', `-${diffMax + 3600}x20`]], labels: { type: "diff" } },
      quiet: { series: [['pgharbor_backup_last_completed_timestamp_seconds{type="diff"}', "0x20"]] },
    },
    {
      alert: "ConnectionsNearMax",
      expr: "pgharbor_connections_used / pgharbor_connections_max > 0.8",
      for: "5m",
      severity: "warning",
      summary: `More than 80 % of max_connections (${i.maxConnections}) in use`,
      response: "Find who connects around PgBouncer (pg_stat_activity by application_name); lower pool sizes or raise maxConnections with memory.",
      fires: { series: [['pgharbor_connections_used{instance="primary"}', `${i.maxConnections - 1}x10`], ['pgharbor_connections_max{instance="primary"}', `${i.maxConnections}x10`]], labels: { instance: "primary" } },
      quiet: { series: [['pgharbor_connections_used{instance="primary"}', "3x10"], ['pgharbor_connections_max{instance="primary"}', `${i.maxConnections}x10`]] },
    },
    {
      alert: "PgBouncerClientsWaiting",
      // The prometheus-community pgbouncer_exporter (Debian's prometheus-pgbouncer-exporter) from SHOW POOLS.
      expr: "pgbouncer_pools_client_waiting_connections > 0",
      for: "2m",
      severity: "warning",
      summary: "Clients wait for a server connection in PgBouncer",
      response: "The pool is saturated: long transactions or too small defaultPoolSize. Look at SHOW POOLS and slow queries.",
      fires: { series: [['pgbouncer_pools_client_waiting_connections{database="app",user="app"}', "3x10"]], labels: { database: "app", user: "app" } },
      quiet: { series: [['pgbouncer_pools_client_waiting_connections{database="app",user="app"}', "0x10"]] },
    },
    {
      alert: "PgWalFilling",
      expr: `pgharbor_wal_dir_bytes > ${Math.round(0.8 * walBudget)}`,
      for: "5m",
      severity: "critical",
      summary: "pg_wal holds more than 80 % of max_wal_size + the slot cap",
      response: `WAL is retained by failing archiving or a lagging slot; fix those before the volume fills and ${ha ? "that server" : "the primary"} stops.`,
      fires: { series: [['pgharbor_wal_dir_bytes{instance="primary"}', `${walBudget}x10`]], labels: { instance: "primary" } },
      quiet: { series: [['pgharbor_wal_dir_bytes{instance="primary"}', `${256 * MiB}x10`]] },
    },
    {
      alert: "CertificateExpiringSoon",
      expr: `pgharbor_tls_certificate_expiry_timestamp_seconds - time() < ${i.certificateWarningDays * 86400}`,
      for: "10m",
      severity: "warning",
      summary: `A server certificate expires within ${i.certificateWarningDays} days`,
      response: "Run `cdktf deploy` (the tls provider renews certificates 30 days before expiry); for a user-supplied CA, issue new certificates.",
      fires: { series: [['pgharbor_tls_certificate_expiry_timestamp_seconds{target="primary"}', "86400x20"]], labels: { target: "primary" } },
      quiet: { series: [['pgharbor_tls_certificate_expiry_timestamp_seconds{target="primary"}', `${(i.certificateWarningDays + 30) * 86400}x20`]] },
    },
    {
      alert: "RPOBreached",
      expr: `pgharbor_rpo_seconds > ${i.rpoSeconds}`,
      for: "1m",
      severity: "critical",
      summary: `The newest WAL in the bucket is older than rpoSeconds (${i.rpoSeconds} s): more data than agreed would be lost`,
      response: "Measured from the bucket with read-only credentials, whatever PostgreSQL believes. Check ArchivingFailing/ArchiveStale, the bucket and the network.",
      fires: { series: [["pgharbor_rpo_seconds", `${i.rpoSeconds + 60}x10`]], labels: {} },
      quiet: { series: [["pgharbor_rpo_seconds", `${Math.max(1, i.archiveTimeoutSeconds - 5)}x10`]] },
    },
    {
      alert: "RPOProbeFailing",
      expr: "pgharbor_probe_success == 0",
      for: "5m",
      severity: "warning",
      summary: "The bucket-side probe cannot read the archive",
      response: "Its log says why (credentials, TLS, bucket); without it RPO is not measured.",
      fires: { series: [['pgharbor_probe_success{check="archive"}', "0x10"]], labels: { check: "archive" } },
      quiet: { series: [['pgharbor_probe_success{check="archive"}', "1x10"]] },
    },
    // postgres_exporter's database_wraparound collector: one series per database and server. A
    // replica reports the primary's datfrozenxid against its own (older) next XID, so the maximum is
    // the primary's; one alert per database, whatever the number of servers. The warning's case
    // fires on the transaction ID, the critical one's on the multixact ID: both sides of the `or`.
    ...(["warning", "critical"] as const).map((severity): AlertRule => {
      const age = severity === "warning" ? i.wraparoundWarningAge : i.wraparoundCriticalAge;
      const [xid, mxid] = severity === "warning" ? [age + 1000, 1000] : [1000, age + 1000];
      const series = (x: number, m: number): Array<[string, string]> => [
        ['pg_database_wraparound_age_datfrozenxid_seconds{datname="app",instance="primary"}', `${x}x20`],
        ['pg_database_wraparound_age_datfrozenxid_seconds{datname="app",instance="replica-1"}', `${Math.max(0, x - 500)}x20`],
        ['pg_database_wraparound_age_datminmxid_seconds{datname="app",instance="primary"}', `${m}x20`],
      ];
      return {
        alert: severity === "warning" ? "WraparoundAgeHigh" : "WraparoundAgeCritical",
        expr: `max by (datname) (pg_database_wraparound_age_datfrozenxid_seconds) > ${age} or max by (datname) (pg_database_wraparound_age_datminmxid_seconds) > ${age}`,
        for: severity === "warning" ? "15m" : "5m",
        severity,
        summary: `A database's oldest unfrozen transaction (or multixact) ID is more than ${age} IDs old${severity === "critical" ? ": PostgreSQL stops writes near 2.1 billion" : ""}`,
        response:
          severity === "warning"
            ? "Autovacuum is not freezing it. Find what holds the xmin horizon back (LongTransactionOpen, pg_prepared_xacts, a replication slot's xmin, a replica's long query through hot_standby_feedback), end it, then `VACUUM (FREEZE, VERBOSE)` the database's oldest tables (`ORDER BY age(relfrozenxid) DESC` in pg_class)."
            : "Act now, before PostgreSQL refuses writes: end whatever holds the xmin horizon back (long or prepared transactions, stale slots), then `VACUUM (FREEZE, VERBOSE)` the oldest tables of that database, biggest age first; watch the age fall.",
        fires: { series: series(xid, mxid), labels: { datname: "app" } },
        quiet: { series: series(Math.round(age / 3), Math.round(age / 3)) },
      };
    }),
    {
      alert: "LongTransactionOpen",
      // postgres_exporter's long_running_transactions collector: active and idle-in-transaction
      // sessions, autovacuum excluded; per server (a replica's long query holds the primary's vacuum
      // back through hot_standby_feedback).
      expr: `pg_long_running_transactions_oldest_timestamp_seconds > ${i.longTransactionSeconds}`,
      for: "1m",
      severity: "warning",
      summary: `A transaction has been open for more than ${i.longTransactionSeconds} s`,
      response:
        "It holds back vacuum (dead tuples pile up) and freezing. Find it on that server: `SELECT pid, usename, application_name, state, now() - xact_start FROM pg_stat_activity ORDER BY xact_start LIMIT 5`; ask its owner, or `SELECT pg_terminate_backend(pid)`. A logical backup's pg_dump holds one for its whole run.",
      fires: { series: [['pg_long_running_transactions_oldest_timestamp_seconds{instance="primary"}', `${i.longTransactionSeconds + 60}x10`]], labels: { instance: "primary" } },
      quiet: { series: [['pg_long_running_transactions_oldest_timestamp_seconds{instance="primary"}', "0.002x10"]] },
    },
    {
      alert: "DeadTuplesHigh",
      // pgharbor_worst_table is the primary's table with the highest dead ratio among those with at
      // least deadTupleMinCount dead tuples (the query filters; the expression says so again).
      expr: `pgharbor_worst_table_dead_ratio > ${i.deadTupleRatio} and pgharbor_worst_table_dead_tuples >= ${i.deadTupleMinCount}`,
      for: "30m",
      severity: "warning",
      summary: `A table has held more than ${Math.round(i.deadTupleRatio * 100)} % dead tuples (at least ${i.deadTupleMinCount}) for 30 minutes`,
      response:
        "Autovacuum cannot keep up or cannot remove them: check LongTransactionOpen and slots holding xmin, then the table's `last_autovacuum` in pg_stat_user_tables; `VACUUM (VERBOSE)` it, and lower its autovacuum_vacuum_scale_factor if it churns.",
      fires: {
        series: [
          ['pgharbor_worst_table_dead_ratio{instance="primary",schemaname="public",relname="orders"}', `${highRatio}x40`],
          ['pgharbor_worst_table_dead_tuples{instance="primary",schemaname="public",relname="orders"}', `${i.deadTupleMinCount * 5}x40`],
        ],
        labels: { instance: "primary", schemaname: "public", relname: "orders" },
      },
      // A high ratio on fewer dead tuples than the minimum stays quiet (small tables churn harmlessly).
      quiet: {
        series: [
          ['pgharbor_worst_table_dead_ratio{instance="primary",schemaname="public",relname="orders"}', `${highRatio}x40`],
          ['pgharbor_worst_table_dead_tuples{instance="primary",schemaname="public",relname="orders"}', `${Math.max(0, i.deadTupleMinCount - 1)}x40`],
        ],
      },
    },
    {
      alert: "MaintenanceFailed",
      // Before the first run both are 0: a failure needs a run.
      expr: "pgharbor_maintenance_last_ok == 0 and pgharbor_maintenance_last_run_timestamp_seconds > 0",
      for: "1m",
      severity: "warning",
      summary: "The newest maintenance run (VACUUM/ANALYZE) failed",
      response: "Read its row (details says why): `SELECT * FROM pgharbor.maintenance_runs ORDER BY finished_at DESC LIMIT 1`. Statistics and visibility maps go stale until a run succeeds.",
      fires: { series: [['pgharbor_maintenance_last_ok{instance="primary"}', "0x10"], ['pgharbor_maintenance_last_run_timestamp_seconds{instance="primary"}', "1700000000x10"]], labels: { instance: "primary" } },
      quiet: { series: [['pgharbor_maintenance_last_ok{instance="primary"}', "0x10"], ['pgharbor_maintenance_last_run_timestamp_seconds{instance="primary"}', "0x10"]] },
    },
  ];
  if (i.drillIntervalSeconds !== undefined) {
    const drillMax = Math.round(1.5 * i.drillIntervalSeconds);
    rules.push(
      {
        alert: "RestoreDrillFailed",
        expr: "pgharbor_drill_last_ok == 0",
        for: "1m",
        severity: "critical",
        summary: "The last restore drill failed: the backups may not restore",
        response: "Read its evidence (`npx pgharbor drill list --env <env>`: error, checks) and the backup container's log; fix the cause, then `npx pgharbor drill now --env <env>`.",
        fires: { series: [["pgharbor_drill_last_ok", "0x10"]], labels: {} },
        quiet: { series: [["pgharbor_drill_last_ok", "1x10"]] },
      },
      {
        alert: "RestoreDrillOverdue",
        expr: `time() - pgharbor_drill_last_success_timestamp_seconds > ${drillMax}`,
        for: "5m",
        severity: "warning",
        summary: "No successful restore drill within 1.5 × the drill schedule",
        response: "Restorability is unproven. Check /var/lib/pgharbor/status/drill.json in the backup container and run `npx pgharbor drill now --env <env>`.",
        fires: { series: [["pgharbor_drill_last_success_timestamp_seconds", `-${drillMax + 3600}x20`]], labels: {} },
        quiet: { series: [["pgharbor_drill_last_success_timestamp_seconds", "0x20"]] },
      },
    );
  }
  if (i.logicalIntervalSeconds !== undefined) {
    const logicalMax = Math.round(1.5 * i.logicalIntervalSeconds);
    rules.push({
      alert: "LogicalBackupTooOld",
      expr: `time() - pgharbor_logical_backup_last_completed_timestamp_seconds > ${logicalMax}`,
      for: "5m",
      severity: "warning",
      summary: "No complete logical backup within 1.5 × its schedule",
      response: "Read /var/lib/pgharbor/status/logical.json and the backup container's log; run `npx pgharbor backup now --type logical --env <env>`.",
      fires: { series: [["pgharbor_logical_backup_last_completed_timestamp_seconds", `-${logicalMax + 3600}x20`]], labels: {} },
      quiet: { series: [["pgharbor_logical_backup_last_completed_timestamp_seconds", "0x20"]] },
    });
  }
  if (i.cluster) rules.push(...clusterRules(i.cluster));
  return rules.map((r) => ({
    ...r,
    fires: { ...r.fires, labels: { ...r.fires.labels, ...env }, more: r.fires.more?.map((l) => ({ ...l, ...env })) },
    cases: r.cases?.map((c) => (c.fires ? { ...c, fires: c.fires.map((l) => ({ ...l, ...env })) } : c)),
  }));
}

/** Patroni's own metrics (its REST API's /metrics, Prometheus job `patroni`, one target per member labelled `member`). */
const J = '{job="patroni"}';
const STATUS = "`npx pgharbor cluster status --env <env>`";
/**
 * Members running a writable primary. patroni_primary alone is not that: a leader whose PostgreSQL
 * stopped keeps reporting 1 (Patroni 4.0.7 then reports its remembered role) with
 * patroni_postgres_running 0 (seen on the prototype, a paused cluster whose leader was stopped).
 */
const WRITABLE = `(patroni_primary${J} == 1 and patroni_postgres_running${J} == 1)`;

/**
 * The cluster's alerts, read from Patroni's /metrics on every member (names as Patroni 4.0.7 serves
 * them, monitoring-config/patroni.ts). patroni_primary is 1 on a member whose PostgreSQL is out of
 * recovery (writable), whatever its container is called.
 */
function clusterRules(c: ClusterAlertInput): AlertRule[] {
  // Real samples (monitoring-config/patroni-samples.ts): Prometheus' view of three Patroni 4.0.7
  // members on the issue 14 prototype every 15 s; the members' names are pgharbor's.
  const s = PATRONI_SAMPLES;
  const rules: AlertRule[] = [
    {
      alert: "PatroniNoLeader",
      // `or vector(0)`: with every member unreachable there is no series to count, and no leader either.
      expr: `(count${WRITABLE} or vector(0)) == 0 or max(patroni_cluster_unlocked${J}) == 1`,
      for: "30s",
      severity: "critical",
      summary: "No member of the cluster is a running leader, or the leader lock is free: writes through DATABASE_URL fail",
      response: `Run ${STATUS}. A failover normally completes within the ttl and a few seconds; if none is under way, check etcd (its containers' logs) and the members' logs: Patroni promotes no replica lagging more than maximumLagOnFailoverBytes, and none while the cluster is paused. As a last resort \`npx pgharbor cluster failover --to <member> --env <env>\` (commits that member has not received are lost).`,
      interval: "15s",
      // The cluster paused (no failover) and its leader's PostgreSQL stopped: the lock is released.
      fires: { series: s.pausedLeaderStopped, labels: {}, at: "90s" },
      quiet: { series: s.healthy, at: "3m" },
      cases: [
        { name: "four switchovers, at every evaluation", series: s.switchovers, at: everyStep("0s", "195s") },
        // The leader killed at 25 s, replica-2 promoted 22 s later (ttl 20 s). Prometheus saw no
        // writable member from the first failed scrape (30 s) until replica-2's first scrape as
        // leader (75 s): 30 s at these scrape phases, so an ordinary failover can fire it once.
        { name: "a killed leader: pending from the first failed scrape", series: s.killedLeader, at: everyStep("0s", "45s") },
        { name: "a killed leader: 30 s without a writable member seen, it fires", series: s.killedLeader, at: "60s", fires: [{}] },
        { name: "a killed leader: over at the new leader's first scrape", series: s.killedLeader, at: everyStep("75s", "135s") },
        { name: "the leader's PostgreSQL down while it keeps the lock (it still reports primary)", series: s.leaderDownLockHeld, at: "75s", fires: [{}] },
      ],
    },
    {
      alert: "PatroniTwoLeaders",
      // Held across two scrapes: in a switchover the old leader's last sample (still primary, taken
      // before it demoted) and the new leader's first can be current together for up to one scrape
      // interval. One alert per member reporting primary.
      expr: `max by (member) ${WRITABLE} and on() count${WRITABLE} > 1`,
      for: `${SCRAPE_INTERVAL_SECONDS}s`,
      severity: "critical",
      summary: "More than one member runs PostgreSQL as a writable primary: split brain, writes can diverge",
      response: `Patroni demotes a leader that loses the lock, so this must not last. ${STATUS} shows which member holds the leader lock: stop every other member reporting primary at once (\`docker stop pgharbor-<env>-<member>\`) so clients only reach the lock holder, then start it again (it rewinds and rejoins as a replica, or \`npx pgharbor cluster reinit <member> --env <env>\`). Writes the stopped one took after the split are not in the cluster: save them first if they matter.`,
      interval: "15s",
      // Synthetic: the baseline with replica-1 writable too from 30 s (Patroni makes no split brain on demand).
      fires: { series: s.twoLeaders, labels: { member: "primary" }, more: [{ member: "replica-1" }], at: "2m" },
      quiet: { series: s.healthy, at: "3m" },
      cases: [
        { name: "four switchovers (at 180 s the old and the new leader both writable), at every evaluation", series: s.switchovers, at: everyStep("0s", "195s") },
        { name: "a switchover scraped 3 s apart across the hand-over, at every evaluation", series: s.switchoverOverlap, at: everyStep("0s", "60s") },
        { name: "a stopped leader still reporting primary, at every evaluation", series: s.pausedLeaderStopped, at: everyStep("0s", "120s") },
      ],
    },
    {
      alert: "PatroniFailoverHappened",
      // The newest timeline against the oldest of the last 15 minutes (a stopped member reports 0, left
      // out); labelled with the member that leads on the new timeline. A switchover raises it too.
      expr: `max by (member) (patroni_postgres_timeline${J} and ${WRITABLE}) > on() group_left() min_over_time(max(patroni_postgres_timeline${J} > 0)[15m:])`,
      for: "0s",
      severity: "warning",
      summary: "The cluster's timeline rose within the last 15 minutes: a failover or switchover made the member in the alert's member label the leader",
      response: `If nobody switched over, find out why the old leader lost the lock (its container's log, its host, its network to etcd). ${STATUS} shows the roles now (the container named primary may be a replica): check the old leader rejoined as a replica and streams, and that archiving and the next backup run on the new leader. Switch back when convenient: \`npx pgharbor cluster switchover --to primary --env <env>\`.`,
      interval: "15s",
      fires: { series: s.killedLeader, labels: { member: "replica-2" }, at: "135s" },
      quiet: { series: s.healthy, at: "3m" },
      cases: [
        { name: "15 minutes on, it is over", series: s.killedLeaderThenSteady, at: "18m" },
        { name: "a switchover raises it too", series: s.switchovers, at: "195s", fires: [{ member: "primary" }] },
      ],
    },
    {
      alert: "PatroniMemberUnhealthy",
      expr: `max by (member) (up${J} == 0) or max by (member) (patroni_postgres_running${J} == 0)`,
      for: "1m",
      severity: "warning",
      summary: "A member's Patroni does not answer, or its PostgreSQL is not running",
      response: `${STATUS} shows its state; \`docker logs pgharbor-<env>-<member>\` says why (Patroni logs a failed start, pg_rewind or clone). Start a stopped container; a replica that cannot rejoin is re-created with \`npx pgharbor cluster reinit <member> --env <env>\`. Until it is back the cluster has one failover candidate fewer.`,
      interval: "15s",
      // The killed leader: scrapes fail for 45 s, then Patroni is back with PostgreSQL not yet running.
      fires: { series: s.killedLeader, labels: { member: "primary" }, at: "90s" },
      quiet: { series: s.healthy, at: "3m" },
      cases: [{ name: "the leader's Patroni answers while its PostgreSQL is stopped", series: s.postgresStopped, at: "90s", fires: [{ member: "replica-2" }] }],
    },
    {
      alert: "PatroniPendingRestart",
      expr: `max by (member) (patroni_pending_restart${J}) == 1`,
      for: "10m",
      severity: "warning",
      summary: "A member runs with a changed setting that only takes effect after a restart",
      response: `${STATUS} lists the pending restarts. Restart the replicas one at a time with \`npx pgharbor cluster restart <member> --env <env>\`, the leader last (a restart of the leader interrupts writes; or \`npx pgharbor cluster switchover --env <env>\` to a restarted replica first).`,
      interval: "15s",
      // max_connections raised through `patronictl edit-config`: every member pending.
      fires: { series: s.pendingRestart, labels: { member: "primary" }, more: [{ member: "replica-1" }, { member: "replica-2" }], at: "11m" },
      quiet: { series: s.healthyLong, at: "11m" },
      cases: [{ name: "not yet 10 minutes", series: s.pendingRestart, at: "9m" }],
    },
  ];
  if (c.mode === "sync") {
    rules.push({
      alert: "PatroniSyncStandbyMissing",
      expr: `count${WRITABLE} > 0 unless max(patroni_sync_standby${J}) == 1`,
      for: "30s",
      severity: "critical",
      summary: "Synchronous mode has no synchronous standby: commits are acknowledged before any replica has them",
      response: `Patroni runs non-strict synchronous mode: with no replica able to be the sync standby it empties synchronous_standby_names and writes continue, unprotected; a leader lost now loses the commits no replica received. ${STATUS} shows the replicas' state and lag: bring one back to streaming (start its container, or \`npx pgharbor cluster reinit <member> --env <env>\`) and Patroni makes it the sync standby again.`,
      interval: "15s",
      // Both replicas stopped: the leader alone, writes still accepted (the prototype committed one).
      fires: { series: s.syncNoStandby, labels: {}, at: "90s" },
      quiet: { series: s.syncHealthy, at: "3m" },
    });
  }
  return rules;
}

/** Metric names an expression reads. */
export function metricsOf(expr: string): string[] {
  return [...new Set((expr.match(/\b[a-z_][a-z0-9_]*(?=\s*(\{|>|<|=|\/|\)|-|\+|\*|$))/g) ?? []).filter((m) => m !== "time" && /_/.test(m)))];
}

const q = (s: string) => JSON.stringify(s);

export function renderAlertRules(i: AlertInput): string {
  const out = ["# Alert rules rendered by pgharbor from the environment's settings.", "groups:", `  - name: pgharbor-${i.environment}`, "    rules:"];
  for (const r of alertRules(i)) {
    out.push(
      `      - alert: ${r.alert}`,
      `        expr: ${q(r.expr)}`,
      `        for: ${r.for}`,
      "        labels:",
      `          severity: ${r.severity}`,
      `          environment: ${i.environment}`,
      "        annotations:",
      `          summary: ${q(r.summary)}`,
      `          response: ${q(r.response)}`,
    );
  }
  return out.join("\n") + "\n";
}

/** Seconds of a duration written as pgharbor writes them: "30s", "5m", "4m30s". */
export function seconds(d: string): number {
  const m = /^(?:(\d+)m)?(?:(\d+)s)?$/.exec(d);
  if (!m || d === "") throw new Error(`${d} is not a duration in minutes and seconds`);
  return Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0);
}

/** When a case is evaluated: 12 minutes in, or 2 minutes after a longer `for` has run out (the cases' series must last that long). */
export function evalMinutes(r: AlertRule): number {
  return Math.max(12, Math.ceil(seconds(r.for) / 60) + 2);
}

/** How long a case's series last, at the rule's interval: each `a+bxN` is N + 1 samples, any other value (`_`, `stale` too) one. */
export function seriesSeconds(r: AlertRule, values: string): number {
  const samples = values
    .trim()
    .split(/\s+/)
    .reduce((n, v) => n + (/x(\d+)$/.test(v) ? Number(/x(\d+)$/.exec(v)![1]) + 1 : 1), 0);
  return (samples - 1) * seconds(r.interval ?? "1m");
}

/** Every evaluation (15 s) from `from` to `until`: a case that must hold at each. */
export function everyStep(from: string, until: string): string[] {
  const out: string[] = [];
  for (let t = seconds(from); t <= seconds(until); t += SCRAPE_INTERVAL_SECONDS) out.push(`${t}s`);
  return out;
}

/** Every promtool case of a rule: its fire and quiet cases, then its further ones. */
export function casesOf(r: AlertRule): AlertCase[] {
  const at = `${evalMinutes(r)}m`;
  return [
    { name: "fires", series: r.fires.series, at: r.fires.at ?? at, fires: [r.fires.labels, ...(r.fires.more ?? [])] },
    { name: "quiet", series: r.quiet.series, at: r.quiet.at ?? at },
    ...(r.cases ?? []),
  ];
}

/**
 * promtool test file: each rule fires on its bad series and stays quiet on its healthy one (and its
 * further cases). Rules are evaluated every 15 s, as Prometheus does (prometheus.ts).
 */
export function renderAlertTests(i: AlertInput, rulesFile: string): string {
  const out = [`rule_files: [${q(rulesFile)}]`, `evaluation_interval: ${SCRAPE_INTERVAL_SECONDS}s`, "tests:"];
  for (const r of alertRules(i)) {
    for (const c of casesOf(r)) {
      out.push(`  - interval: ${r.interval ?? "1m"}`, `    name: ${q(`${r.alert} ${c.name}`)}`, "    input_series:");
      for (const [series, values] of c.series) out.push(`      - series: ${q(series)}`, `        values: ${q(values)}`);
      out.push("    alert_rule_test:");
      for (const at of typeof c.at === "string" ? [c.at] : c.at) {
        out.push(`      - eval_time: ${at}`, `        alertname: ${r.alert}`);
        if (!c.fires) {
          out.push("        exp_alerts: []");
        } else {
          out.push("        exp_alerts:");
          for (const labels of c.fires) {
            out.push("          - exp_labels:", `              severity: ${r.severity}`);
            for (const [k, v] of Object.entries(labels)) out.push(`              ${k}: ${q(v)}`);
            out.push("            exp_annotations:", `              summary: ${q(r.summary)}`, `              response: ${q(r.response)}`);
          }
        }
      }
    }
  }
  return out.join("\n") + "\n";
}
