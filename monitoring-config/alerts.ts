/**
 * Prometheus alert rules derived from an environment's settings (no magic numbers: every threshold is
 * computed from rpoSeconds, archive_timeout, the slot cap, the backup schedules or max_connections, or
 * is a setting of the environment's monitoring section), and promtool unit tests for each: a case
 * that fires and a case that stays quiet.
 */

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
}

export interface AlertRule {
  alert: string;
  expr: string;
  for: string;
  severity: "critical" | "warning";
  summary: string;
  /** First response, for the runbook. */
  response: string;
  /** promtool cases: input series that must fire the alert (with its labels) and series that must not. */
  fires: { series: Array<[string, string]>; labels: Record<string, string> };
  quiet: { series: Array<[string, string]> };
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
  const rules: AlertRule[] = [
    {
      alert: "PostgresDown",
      expr: "pg_up == 0",
      for: "1m",
      severity: "critical",
      summary: "PostgreSQL does not answer its exporter",
      response: "Check the container (`docker ps -a`, `docker logs`) and its healthcheck; on the primary, writes are failing.",
      fires: { series: [['pg_up{instance="primary"}', "0x10"]], labels: { instance: "primary" } },
      quiet: { series: [['pg_up{instance="primary"}', "1x10"]] },
    },
    {
      alert: "ReplicaLagHigh",
      expr: `pgharbor_replication_replay_lag_seconds > ${i.rpoSeconds}`,
      for: "2m",
      severity: "warning",
      summary: `A replica replays more than rpoSeconds (${i.rpoSeconds} s) behind the primary`,
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
      response: "The replica is down or cannot connect; the primary keeps WAL for it up to the cap. Start it, or drop the slot of a replica you removed.",
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
      response: "Read the primary's log for the pgBackRest error (credentials, bucket reachability, TLS); run `backup-job.sh check` in the backup container.",
      fires: { series: [['pgharbor_archiver_failing{instance="primary"}', "1x10"]], labels: { instance: "primary" } },
      quiet: { series: [['pgharbor_archiver_failing{instance="primary"}', "0x10"]] },
    },
    {
      alert: "ArchiveStale",
      expr: `pgharbor_archiver_last_archived_age_seconds > ${staleAfter}`,
      for: "1m",
      severity: "critical",
      summary: `Nothing archived for more than 2 × archive_timeout (${staleAfter} s)`,
      response: "archive_timeout forces a segment at least every archive_timeout: silence means archiving is stuck. Check ArchivingFailing and the primary's log.",
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
      response: "WAL is retained by failing archiving or a lagging slot; fix those before the volume fills and the primary stops.",
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
  return rules.map((r) => ({ ...r, fires: { ...r.fires, labels: { ...r.fires.labels, ...env } } }));
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

/** When a case is evaluated: 12 minutes in, or 2 minutes after a longer `for` has run out (the cases' series must last that long). */
export function evalMinutes(r: AlertRule): number {
  const m = /^(\d+)m$/.exec(r.for);
  if (!m) throw new Error(`${r.alert}: for ${r.for} is not in minutes`);
  return Math.max(12, Number(m[1]) + 2);
}

/** promtool test file: each rule fires on its bad series and stays quiet on its healthy one. */
export function renderAlertTests(i: AlertInput, rulesFile: string): string {
  const out = [`rule_files: [${q(rulesFile)}]`, "evaluation_interval: 1m", "tests:"];
  for (const r of alertRules(i)) {
    for (const [kind, c] of [
      ["fires", r.fires],
      ["quiet", r.quiet],
    ] as const) {
      out.push("  - interval: 1m", `    name: ${q(`${r.alert} ${kind}`)}`, "    input_series:");
      for (const [series, values] of c.series) out.push(`      - series: ${q(series)}`, `        values: ${q(values)}`);
      out.push("    alert_rule_test:", `      - eval_time: ${evalMinutes(r)}m`, `        alertname: ${r.alert}`);
      if (kind === "quiet") {
        out.push("        exp_alerts: []");
      } else {
        out.push("        exp_alerts:", "          - exp_labels:", `              severity: ${r.severity}`);
        for (const [k, v] of Object.entries((c as AlertRule["fires"]).labels)) out.push(`              ${k}: ${q(v)}`);
        out.push("            exp_annotations:", `              summary: ${q(r.summary)}`, `              response: ${q(r.response)}`);
      }
    }
  }
  return out.join("\n") + "\n";
}
