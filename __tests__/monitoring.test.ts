import { spawnSync } from "child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { AlertInput, alertRules, casesOf, evalMinutes, metricsOf, renderAlertRules, renderAlertTests, seconds, seriesSeconds } from "../monitoring-config/alerts";
import { PATRONI_METRICS } from "../monitoring-config/patroni";
import { renderPrometheusConfig } from "../monitoring-config/prometheus";
import { COLLECTORS, queryMetricNames } from "../monitoring-config/queries";
import { Monitoring, MonitoringCluster } from "../constructs/monitoring";
import { buildApp } from "../stacks/app";
import { EnvironmentConfig } from "../stacks/environments";
import { PgharborConfigError } from "../constructs/errors";
import { buildStack, containers, dev, file, prod, staging, synthEnv, variant } from "./helpers";

describe("Monitoring (dev)", () => {
  const json = synthEnv(dev);
  const c = containers(json);

  test("an exporter per server, one for PgBouncer, the RPO probe and Prometheus", () => {
    expect(Object.keys(c).filter((n) => /exporter|probe|prometheus/.test(n)).sort()).toEqual([
      "pgharbor-dev-exporter-pgbouncer",
      "pgharbor-dev-exporter-primary",
      "pgharbor-dev-exporter-replica-1",
      "pgharbor-dev-prometheus",
      "pgharbor-dev-rpo-probe",
    ]);
  });
  test("exporters log in as the monitoring role over verified TLS", () => {
    const e = c["pgharbor-dev-exporter-primary"];
    expect(e.env).toEqual(expect.arrayContaining(["DATA_SOURCE_URI=pgharbor-dev-primary:5432/app?sslmode=verify-full&sslrootcert=/etc/postgresql/tls/ca.crt", "DATA_SOURCE_USER=pgharbor_monitor", expect.stringMatching(/^DATA_SOURCE_PASS=\$\{random_password\.primary_monitor-password_/)]));
    const pgb = c["pgharbor-dev-exporter-pgbouncer"];
    expect(pgb.command).toContain("--pgBouncer.connectionString=postgres://pgharbor_monitor@pgharbor-dev-pgbouncer:6432/pgbouncer?sslmode=verify-full&sslrootcert=/etc/postgresql/tls/ca.crt");
    expect(pgb.env).toEqual([expect.stringMatching(/^PGPASSWORD=\$\{random_password\.primary_monitor-password_[^}]+\}$/)]);
  });
  test("the probe reads the bucket with the read-only identity", () => {
    expect(c["pgharbor-dev-rpo-probe"].env).toContainEqual(expect.stringMatching(/^PGBACKREST_REPO1_S3_KEY=\$\{random_password\.archive_reader-access-key_/));
  });
  test("Prometheus scrapes every exporter and loads the generated rules", () => {
    const cfg = file(c["pgharbor-dev-prometheus"], "/etc/pgharbor/monitoring/prometheus.yml");
    for (const t of ["pgharbor-dev-exporter-primary:9187", "pgharbor-dev-exporter-replica-1:9187", "pgharbor-dev-exporter-pgbouncer:9127", "pgharbor-dev-rpo-probe:9188"]) expect(cfg).toContain(`["${t}"]`);
    expect(cfg).toContain("/etc/pgharbor/monitoring/alerts.yml");
    // Prometheus refuses to start on a job name used twice (the primary's and a replica's exporter are one job).
    const jobs = cfg.match(/job_name: .*/g) ?? [];
    expect(jobs).toEqual(['job_name: "postgres"', 'job_name: "pgbouncer"', 'job_name: "rpo-probe"']);
    expect(cfg).toMatch(/targets: \["pgharbor-dev-exporter-replica-1:9187"\]\n {8}labels:\n {10}instance: "replica-1"/);
    expect(file(c["pgharbor-dev-prometheus"], "/etc/pgharbor/monitoring/alerts.yml")).toMatch(/alert: RPOBreached/);
  });
  test("no monitoring port is published", () => {
    for (const n of Object.keys(c).filter((x) => /exporter|probe|prometheus/.test(x))) expect(c[n].ports).toBeUndefined();
  });
  test("every server's exporter turns on the wraparound and long-transaction collectors, not 0.17.1's stat_statements (fixed at 100 statements)", () => {
    for (const n of ["pgharbor-dev-exporter-primary", "pgharbor-dev-exporter-replica-1"]) {
      expect(c[n].command).toEqual(["prometheus-postgres-exporter", "--web.listen-address=:9187", "--extend.query-path=/etc/pgharbor/monitoring/queries.yaml", "--collector.database_wraparound", "--collector.long_running_transactions"]);
    }
  });
  test("the top statements: the environment's N by total execution time, grouped to one row per label set, no query text", () => {
    const q = file(c["pgharbor-dev-exporter-primary"], "/etc/pgharbor/monitoring/queries.yaml");
    const statements = /^pgharbor_statements:\n {2}query: "(.*)"$/m.exec(q)![1];
    expect(statements).toMatch(/GROUP BY s\.userid, d\.datname, s\.queryid ORDER BY sum\(s\.total_exec_time\) DESC LIMIT 20$/);
    expect(statements).not.toMatch(/\bquery\b(?!id)/);
    const prodQ = file(containers(synthEnv(variant(prod, { monitoring: { topStatements: 5 } })))["pgharbor-prod-exporter-replica-2"], "/etc/pgharbor/monitoring/queries.yaml");
    expect(prodQ).toMatch(/DESC LIMIT 5"$/m);
  });
  test("dead tuples and maintenance: primary-only (no row on a standby), one row on the primary even with nothing to report", () => {
    const q = file(c["pgharbor-dev-exporter-primary"], "/etc/pgharbor/monitoring/queries.yaml");
    for (const name of ["pgharbor_tuples", "pgharbor_worst_table", "pgharbor_maintenance"]) expect([name, new RegExp(`^${name}:\\n {2}query: ".*(WHERE|HAVING) NOT pg_is_in_recovery\\(\\)"$`, "m").test(q)]).toEqual([name, true]);
    // An aggregate without GROUP BY returns a row whatever WHERE says: the standby filter is HAVING.
    expect(q).toMatch(/FROM pg_stat_user_tables HAVING NOT pg_is_in_recovery\(\)"$/m);
    expect(q).toMatch(/FROM \(SELECT\) AS one LEFT JOIN LATERAL \(SELECT finished_at, ok, analyzed, vacuumed FROM pgharbor\.maintenance_runs ORDER BY finished_at DESC, id DESC LIMIT 1\)/);
    expect(q).toMatch(/WHERE n_dead_tup >= 10000 ORDER BY ratio DESC/);
    expect(file(containers(synthEnv(variant(dev, { monitoring: { deadTupleMinCount: 500 } })))["pgharbor-dev-exporter-primary"], "/etc/pgharbor/monitoring/queries.yaml")).toMatch(/WHERE n_dead_tup >= 500 ORDER BY/);
  });
  test("Prometheus is optional", () => {
    const { stack } = buildStack({ ...dev, monitoring: { prometheus: false } });
    expect(stack.monitoring.containers.map((x) => x.name)).not.toContain("pgharbor-dev-prometheus");
  });
});

describe("alert thresholds derive from the environment", () => {
  const rule = (env: typeof dev, name: string) => {
    const { stack } = buildStack(env);
    return alertRules(stack.monitoring.alertInput).find((r) => r.alert === name)!.expr;
  };
  test.each([
    ["ArchiveStale", "pgharbor_archiver_last_archived_age_seconds > 100", "pgharbor_archiver_last_archived_age_seconds > 40"],
    ["RPOBreached", "pgharbor_rpo_seconds > 60", "pgharbor_rpo_seconds > 30"],
    ["ReplicationSlotWalNearCap", `pgharbor_slots_retained_bytes > ${Math.round(0.8 * 4096 * 1048576)}`, `pgharbor_slots_retained_bytes > ${Math.round(0.8 * 16384 * 1048576)}`],
    ["FullBackupTooOld", `time() - pgharbor_backup_last_completed_timestamp_seconds{type="full"} > ${1.5 * 7 * 86400}`, `time() - pgharbor_backup_last_completed_timestamp_seconds{type="full"} > ${1.5 * 7 * 86400}`],
    ["DiffBackupTooOld", `time() - pgharbor_backup_last_completed_timestamp_seconds{type="diff"} > ${1.5 * 2 * 86400}`, `time() - pgharbor_backup_last_completed_timestamp_seconds{type="diff"} > ${1.5 * 2 * 86400}`],
    ["RestoreDrillOverdue", `time() - pgharbor_drill_last_success_timestamp_seconds > ${1.5 * 7 * 86400}`, `time() - pgharbor_drill_last_success_timestamp_seconds > ${1.5 * 7 * 86400}`],
    ["LogicalBackupTooOld", `time() - pgharbor_logical_backup_last_completed_timestamp_seconds > ${1.5 * 86400}`, `time() - pgharbor_logical_backup_last_completed_timestamp_seconds > ${1.5 * 86400}`],
    ["WraparoundAgeHigh", "max by (datname) (pg_database_wraparound_age_datfrozenxid_seconds) > 500000000 or max by (datname) (pg_database_wraparound_age_datminmxid_seconds) > 500000000", "max by (datname) (pg_database_wraparound_age_datfrozenxid_seconds) > 500000000 or max by (datname) (pg_database_wraparound_age_datminmxid_seconds) > 500000000"],
    ["WraparoundAgeCritical", "max by (datname) (pg_database_wraparound_age_datfrozenxid_seconds) > 1000000000 or max by (datname) (pg_database_wraparound_age_datminmxid_seconds) > 1000000000", "max by (datname) (pg_database_wraparound_age_datfrozenxid_seconds) > 1000000000 or max by (datname) (pg_database_wraparound_age_datminmxid_seconds) > 1000000000"],
    ["LongTransactionOpen", "pg_long_running_transactions_oldest_timestamp_seconds > 300", "pg_long_running_transactions_oldest_timestamp_seconds > 300"],
    ["DeadTuplesHigh", "pgharbor_worst_table_dead_ratio > 0.2 and pgharbor_worst_table_dead_tuples >= 10000", "pgharbor_worst_table_dead_ratio > 0.2 and pgharbor_worst_table_dead_tuples >= 10000"],
    ["MaintenanceFailed", "pgharbor_maintenance_last_ok == 0 and pgharbor_maintenance_last_run_timestamp_seconds > 0", "pgharbor_maintenance_last_ok == 0 and pgharbor_maintenance_last_run_timestamp_seconds > 0"],
  ])("%s: dev and prod", (name, devExpr, prodExpr) => {
    expect(rule(dev, name)).toBe(devExpr);
    expect(rule(prod, name)).toBe(prodExpr);
  });
  test("the README's alert table is dev's rules, in order, word for word", () => {
    const readme = readFileSync(join(__dirname, "..", "README.md"), "utf8");
    const table = readme.split("\n").filter((l) => /^\| [A-Z][A-Za-z]+ \| (warning|critical) \| `/.test(l));
    const { stack } = buildStack(dev);
    expect(table).toEqual(alertRules(stack.monitoring.alertInput).map((r) => `| ${r.alert} | ${r.severity} | \`${r.expr}\` for ${r.for} | ${r.summary} | ${r.response} |`));
  });
  test("every metric a rule reads is produced by a deployed exporter or the probe", () => {
    // The probe's names come from its source: a rule reading a name the probe never writes fails here.
    const probeNames = [...readFileSync(join(__dirname, "..", "images", "monitoring", "rpo_probe.py"), "utf8").matchAll(/"(pgharbor_[a-z_]+)"/g)].map((m) => m[1]);
    const produced = new Set([...queryMetricNames(), ...Object.values(COLLECTORS).flat(), "pg_up", "pgbouncer_pools_client_waiting_connections", ...probeNames]);
    const { stack } = buildStack(dev);
    for (const r of alertRules(stack.monitoring.alertInput)) {
      expect([r.alert, metricsOf(r.expr).length > 0]).toEqual([r.alert, true]);
      for (const m of metricsOf(r.expr)) expect([r.alert, m, produced.has(m)]).toEqual([r.alert, m, true]);
    }
  });
});

describe("query-insight and maintenance thresholds come from the monitoring section", () => {
  const rules = (monitoring: Record<string, unknown>) => alertRules(buildStack(variant(dev, { monitoring })).stack.monitoring.alertInput);
  const expr = (monitoring: Record<string, unknown>, name: string) => rules(monitoring).find((r) => r.alert === name)!.expr;
  test("each setting reaches its rule", () => {
    const m = { wraparoundWarningAge: 600_000_000, wraparoundCriticalAge: 1_500_000_000, longTransactionSeconds: 60, deadTupleRatio: 0.5, deadTupleMinCount: 100 };
    expect(expr(m, "WraparoundAgeHigh")).toBe("max by (datname) (pg_database_wraparound_age_datfrozenxid_seconds) > 600000000 or max by (datname) (pg_database_wraparound_age_datminmxid_seconds) > 600000000");
    expect(expr(m, "WraparoundAgeCritical")).toContain("> 1500000000");
    expect(expr(m, "LongTransactionOpen")).toBe("pg_long_running_transactions_oldest_timestamp_seconds > 60");
    expect(expr(m, "DeadTuplesHigh")).toBe("pgharbor_worst_table_dead_ratio > 0.5 and pgharbor_worst_table_dead_tuples >= 100");
  });
  test("a warning age below the defaults is allowed once autovacuum_freeze_max_age is lowered with it", () => {
    const env = variant(dev, { primary: { ...dev.primary, parameters: { autovacuum_freeze_max_age: 100_000_000, autovacuum_multixact_freeze_max_age: 150_000_000 } }, monitoring: { wraparoundWarningAge: 160_000_000 } });
    expect(alertRules(buildStack(env).stack.monitoring.alertInput).find((r) => r.alert === "WraparoundAgeHigh")!.expr).toContain("> 160000000");
  });
  // Samples every minute; the last one stands for 5 minutes (Prometheus' lookback), and a rule needs
  // its condition through the whole `for` before the evaluation.
  test("every promtool case's series reach to 2 minutes before its evaluation (a `for` longer than 10m moves it)", () => {
    for (const env of [dev, staging, prod]) {
      const input = buildStack(env).stack.monitoring.alertInput;
      for (const r of alertRules({ ...input, cluster: { mode: "sync" } })) {
        for (const c of casesOf(r)) {
          const last = Math.max(...[c.at].flat().map(seconds));
          for (const [series, values] of c.series) expect([r.alert, c.name, series, seriesSeconds(r, values) >= last - 120]).toEqual([r.alert, c.name, series, true]);
        }
      }
    }
    expect(evalMinutes(alertRules(buildStack(dev).stack.monitoring.alertInput).find((r) => r.alert === "DeadTuplesHigh")!)).toBe(32);
  });
});

/** The message pgharbor refuses `env` with (environment, field, value, problem, fix on each line). */
function refusal(env: EnvironmentConfig): string {
  try {
    buildApp({ environments: [env], outdir: "/tmp/pgharbor-monitoring-unused" });
  } catch (e) {
    expect(e).toBeInstanceOf(PgharborConfigError);
    for (const line of (e as Error).message.split("\n")) expect(line).toMatch(/^\[[a-z0-9/.-]+\] .+ = .+: .+\. Fix: .+\.$/);
    return (e as Error).message;
  }
  throw new Error("synthesised without an error");
}

describe("bad monitoring thresholds fail synth, naming environment, field, value and fix", () => {
  const m = (monitoring: Record<string, unknown>, base: EnvironmentConfig = dev) => variant(base, { monitoring });
  test.each([
    ["no statements", m({ topStatements: 0 }), /^\[dev\/monitoring\] topStatements = 0: must be a whole number of statements from 1 to 100 \(each is 6 series per server\)\. Fix: use e\.g\. 20\.$/],
    ["statements past the bound", m({ topStatements: 500 }), /^\[dev\/monitoring\] topStatements = 500: must be a whole number of statements from 1 to 100/],
    ["fractional statements", m({ topStatements: 2.5 }), /^\[dev\/monitoring\] topStatements = 2\.5: must be a whole number/],
    ["warning age past wraparound", m({ wraparoundWarningAge: 3_000_000_000 }), /^\[dev\/monitoring\] wraparoundWarningAge = 3000000000: must be a whole number of transactions from 1000000 to 2000000000\. Fix: use e\.g\. 500000000\.$/],
    ["critical age past wraparound", m({ wraparoundCriticalAge: 2_100_000_000 }), /^\[dev\/monitoring\] wraparoundCriticalAge = 2100000000: must be a whole number of transactions from 1000000 to 2000000000\. Fix: use e\.g\. 1000000000 \(PostgreSQL stops writes near 2\.1 billion\)\.$/],
    ["warning at autovacuum's own freezing age", m({ wraparoundWarningAge: 200_000_000 }), /^\[dev\/monitoring\] wraparoundWarningAge = 200000000: is not above the primary's autovacuum_multixact_freeze_max_age \(400000000\), where autovacuum starts freezing: the alert would fire in normal operation\. Fix: raise wraparoundWarningAge above 400000000, or lower autovacuum_multixact_freeze_max_age\.$/],
    ["warning below a raised autovacuum_freeze_max_age", variant(prod, { primary: { ...prod.primary, parameters: { autovacuum_freeze_max_age: 800_000_000 } } }), /^\[prod\/monitoring\] wraparoundWarningAge = 500000000: is not above the primary's autovacuum_freeze_max_age \(800000000\).*Fix: raise wraparoundWarningAge above 800000000, or lower autovacuum_freeze_max_age\.$/],
    ["critical not above warning", m({ wraparoundWarningAge: 900_000_000, wraparoundCriticalAge: 800_000_000 }), /^\[dev\/monitoring\] wraparoundCriticalAge = 800000000: is not above wraparoundWarningAge \(900000000\)\. Fix: raise wraparoundCriticalAge above 900000000, or lower wraparoundWarningAge\.$/],
    ["long transaction threshold too short", m({ longTransactionSeconds: 5 }), /^\[dev\/monitoring\] longTransactionSeconds = 5: must be a whole number of seconds from 10 to 86400\. Fix: use e\.g\. 300\.$/],
    ["dead ratio as a percentage", m({ deadTupleRatio: 20 }), /^\[dev\/monitoring\] deadTupleRatio = 20: must be a share of dead tuples above 0 and below 1\. Fix: use e\.g\. 0\.2 \(20 % of a table's tuples dead\)\.$/],
    ["dead ratio zero", m({ deadTupleRatio: 0 }), /^\[dev\/monitoring\] deadTupleRatio = 0: must be a share/],
    ["dead tuple minimum zero", m({ deadTupleMinCount: 0 }), /^\[dev\/monitoring\] deadTupleMinCount = 0: must be a whole number of dead tuples from 1 to 1000000000\. Fix: use e\.g\. 10000 \(smaller tables churn harmlessly\)\.$/],
    ["a typo", m({ longTransactionSecond: 60 }), /^\[dev\/monitoring\] longTransactionSecond = 60: .*did you mean "longTransactionSeconds"/],
    ["a string for a number", m({ deadTupleRatio: "20%" }), /^\[dev\/monitoring\] deadTupleRatio = "20%": must be a number/],
  ] as Array<[string, EnvironmentConfig, RegExp]>)("%s", (_n, env, message) => expect(refusal(env)).toMatch(message));
  test("every range problem at once, one line each", () => {
    expect(refusal(m({ topStatements: 0, longTransactionSeconds: 1, deadTupleRatio: 2 })).split("\n")).toHaveLength(3);
  });
});

describe("drill and logical-backup alerts follow the backup container's settings", () => {
  test("no drill, no logical backups: no rules reading their metrics", () => {
    const { stack } = buildStack({ ...dev, backup: { retentionDays: 7, drill: false } });
    const names = alertRules(stack.monitoring.alertInput).map((r) => r.alert);
    expect(names).not.toContain("RestoreDrillFailed");
    expect(names).not.toContain("RestoreDrillOverdue");
    expect(names).not.toContain("LogicalBackupTooOld");
  });
  test("a daily drill schedule gives a 36 h overdue threshold", () => {
    const { stack } = buildStack({ ...dev, backup: { ...dev.backup, drill: { schedule: "0 4 * * *" } } });
    expect(alertRules(stack.monitoring.alertInput).find((r) => r.alert === "RestoreDrillOverdue")!.expr).toBe(`time() - pgharbor_drill_last_success_timestamp_seconds > ${1.5 * 86400}`);
  });
});

/** A dev stack with a second Monitoring that is told the environment runs Patroni (the stack itself does not yet). */
function withCluster(cluster: MonitoringCluster, env: EnvironmentConfig = dev): Monitoring {
  const { stack } = buildStack(env);
  return new Monitoring(stack, "monitoring-ha", { primary: stack.primary, replicas: stack.replicas, pgbouncer: stack.pgbouncer, backup: stack.backup, cluster });
}
const members = (env: string, names: string[]) => names.map((name) => ({ name, containerName: `pgharbor-${env}-${name}` }));
const ASYNC: MonitoringCluster = { mode: "async", restPort: 8008, members: members("dev", ["primary", "replica-1"]) };
const SYNC: MonitoringCluster = { ...ASYNC, mode: "sync" };
const PATRONI_ALERTS = ["PatroniNoLeader", "PatroniTwoLeaders", "PatroniFailoverHappened", "PatroniMemberUnhealthy", "PatroniPendingRestart"];

describe("Monitoring of a Patroni cluster", () => {
  test("Prometheus scrapes every member's Patroni /metrics over plain HTTP, job patroni, labelled with the member's name", () => {
    const m = withCluster(ASYNC);
    expect(m.scrapeTargets.filter((t) => t.job === "patroni")).toEqual([
      { job: "patroni", target: "pgharbor-dev-primary:8008", instance: "primary", labels: { member: "primary" } },
      { job: "patroni", target: "pgharbor-dev-replica-1:8008", instance: "replica-1", labels: { member: "replica-1" } },
    ]);
    const cfg = renderPrometheusConfig("dev", m.scrapeTargets, "/r.yml");
    expect(cfg).toContain('  - job_name: "patroni"\n    static_configs:\n      - targets: ["pgharbor-dev-primary:8008"]\n        labels:\n          instance: "primary"\n          member: "primary"\n      - targets: ["pgharbor-dev-replica-1:8008"]');
    expect(cfg.match(/job_name: .*/g)).toEqual(['job_name: "postgres"', 'job_name: "pgbouncer"', 'job_name: "patroni"', 'job_name: "rpo-probe"']);
  });
  test("without a cluster: no patroni job, no Patroni rule", () => {
    const { stack } = buildStack(dev);
    expect(stack.monitoring.scrapeTargets.map((t) => t.job)).not.toContain("patroni");
    expect(stack.monitoring.alertRules).not.toMatch(/patroni/i);
  });
  test.each([
    ["async", ASYNC, PATRONI_ALERTS],
    ["sync", SYNC, [...PATRONI_ALERTS, "PatroniSyncStandbyMissing"]],
  ] as const)("%s mode: the cluster's rules follow the existing ones", (_m, cluster, names) => {
    const m = withCluster(cluster);
    const all = alertRules(m.alertInput).map((r) => r.alert);
    const { stack } = buildStack(dev);
    expect(all).toEqual([...alertRules(stack.monitoring.alertInput).map((r) => r.alert), ...names]);
    expect(m.alertRules).toContain("alert: PatroniNoLeader");
  });
  test("each cluster rule says what to do and names `npx pgharbor cluster status`; severities as agreed", () => {
    const rules = alertRules(withCluster(SYNC).alertInput).filter((r) => r.alert.startsWith("Patroni"));
    for (const r of rules) expect([r.alert, r.response]).toEqual([r.alert, expect.stringContaining("`npx pgharbor cluster status --env <env>`")]);
    expect(Object.fromEntries(rules.map((r) => [r.alert, [r.severity, r.for]]))).toEqual({
      PatroniNoLeader: ["critical", "30s"],
      PatroniTwoLeaders: ["critical", "15s"],
      PatroniFailoverHappened: ["warning", "0s"],
      PatroniMemberUnhealthy: ["warning", "1m"],
      PatroniPendingRestart: ["warning", "10m"],
      PatroniSyncStandbyMissing: ["critical", "30s"],
    });
    expect(rules.find((r) => r.alert === "PatroniSyncStandbyMissing")!.response).toMatch(/non-strict synchronous mode.*writes continue, unprotected/);
  });
  test("with a cluster no text takes the container named primary for the writer", () => {
    const input = withCluster(ASYNC).alertInput;
    const texts = alertRules(input).map((r) => `${r.summary} ${r.response}`).join("\n");
    expect(texts).not.toMatch(/on the primary|the primary's log|the primary keeps|behind the primary|the primary stops|drop the slot/);
    expect(alertRules(input).find((r) => r.alert === "ArchivingFailing")!.response).toMatch(/^Read the leader's log \(`npx pgharbor cluster status --env <env>` names it\)/);
    // The expressions are the same with or without Patroni: only texts change.
    const { stack } = buildStack(dev);
    const plain = alertRules(stack.monitoring.alertInput);
    expect(alertRules(input).slice(0, plain.length).map((r) => [r.alert, r.expr, r.for])).toEqual(plain.map((r) => [r.alert, r.expr, r.for]));
  });
  test("the cluster rules read only metrics Patroni 4.0.7 serves (and Prometheus' up)", () => {
    const produced = new Set([...PATRONI_METRICS, "up"]);
    for (const r of alertRules(withCluster(SYNC).alertInput).filter((x) => x.alert.startsWith("Patroni"))) {
      expect([r.alert, metricsOf(r.expr).length > 0]).toEqual([r.alert, true]);
      for (const m of metricsOf(r.expr)) expect([r.alert, m, produced.has(m)]).toEqual([r.alert, m, true]);
    }
  });
  test("the promtool samples are generate.py's output from the committed prototype capture (real Patroni 4.0.7)", () => {
    const gen = spawnSync("python3", [join(__dirname, "fixtures", "patroni-metrics", "generate.py")], { encoding: "utf8" });
    if (gen.error) return console.warn("NO python3: monitoring-config/patroni-samples.ts not compared with generate.py's output");
    expect(gen.stderr).toBe("");
    expect(gen.stdout).toBe(readFileSync(join(__dirname, "..", "monitoring-config", "patroni-samples.ts"), "utf8"));
  });
  test.each([
    ["an unknown mode", { ...ASYNC, mode: "quorum" }, /^\[dev\/monitoring\] cluster\.mode = "quorum": must be "async" or "sync"\. Fix: use "async" \(bounded loss\) or "sync" \(a synchronous standby\)\.$/],
    ["a port out of range", { ...ASYNC, restPort: 80080 }, /^\[dev\/monitoring\] cluster\.restPort = 80080: must be a TCP port from 1 to 65535\. Fix: use Patroni's 8008\.$/],
    ["no member", { ...ASYNC, members: [] }, /^\[dev\/monitoring\] cluster\.members = \[\]: lists no member\. Fix: list every Patroni member \(the primary and each replica\)\.$/],
    ["a member twice", { ...ASYNC, members: members("dev", ["primary", "primary"]) }, /^\[dev\/monitoring\] cluster\.members = \["primary"\]: names a member twice\. Fix: list each member once\.\n.*cluster\.members = \["pgharbor-dev-primary"\]: gives two members the same container/],
    ["a name Prometheus labels would mangle", { ...ASYNC, members: members("dev", ["Primary 1"]) }, /cluster\.members = \["Primary 1"\]: holds a name that is not lower-case/],
  ] as Array<[string, MonitoringCluster, RegExp]>)("a bad cluster is refused: %s", (_n, cluster, message) => {
    expect(() => withCluster(cluster)).toThrow(PgharborConfigError);
    expect(() => withCluster(cluster)).toThrow(message);
  });
});

/**
 * promtool: the monitoring image's (the one the runtime suite builds), or PROMTOOL, or one on PATH.
 * Without any, the cases are left to the runtime suite (which runs them for every environment).
 */
function findPromtool(): ((dir: string, args: string[]) => { code: number; out: string }) | undefined {
  const run = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 120_000 });
    return { code: r.status ?? -1, out: `${r.stdout ?? ""}${r.stderr ?? ""}` };
  };
  const local = process.env.PROMTOOL ?? (spawnSync("promtool", ["--version"]).status === 0 ? "promtool" : undefined);
  if (local) return (dir, args) => run(local, args.map((a) => (a.endsWith(".yml") ? join(dir, a) : a)));
  const images = spawnSync("docker", ["images", "--format", "{{.Repository}}:{{.Tag}}", "pgharbor/monitoring"], { encoding: "utf8" });
  const image = images.status === 0 ? images.stdout.split("\n").find((l) => l.trim() !== "") : undefined;
  if (!image) return undefined;
  return (dir, args) => run("docker", ["run", "--rm", "-v", `${dir}:/rules:ro`, "-w", "/rules", "--entrypoint", "promtool", image, ...args]);
}

describe("promtool: every rule fires on its bad case and stays quiet on its good ones", () => {
  const promtool = findPromtool();
  if (!promtool) console.warn("NO PROMTOOL (no pgharbor/monitoring image, PROMTOOL or promtool on PATH): the alert rules' promtool cases are left to the runtime suite");
  const inputs: Array<[string, () => AlertInput]> = [
    ["dev", () => buildStack(dev).stack.monitoring.alertInput],
    ["prod", () => buildStack(prod).stack.monitoring.alertInput],
    ["dev with an async cluster", () => withCluster(ASYNC).alertInput],
    ["prod with a sync cluster", () => withCluster({ ...SYNC, members: members("prod", ["primary", "replica-1", "replica-2"]) }, prod).alertInput],
  ];
  (promtool ? test.each(inputs) : test.skip.each(inputs))("%s", (_n, input) => {
    const dir = mkdtempSync(join(tmpdir(), "pgharbor-promtool-"));
    chmodSync(dir, 0o755);
    try {
      const i = input();
      writeFileSync(join(dir, "alerts.yml"), renderAlertRules(i));
      writeFileSync(join(dir, "tests.yml"), renderAlertTests(i, "alerts.yml"));
      expect(promtool!(dir, ["check", "rules", "alerts.yml"])).toEqual({ code: 0, out: expect.stringContaining(`SUCCESS: ${alertRules(i).length} rules found`) });
      const r = promtool!(dir, ["test", "rules", "tests.yml"]);
      expect(r.out).toContain("SUCCESS");
      expect(r.code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
