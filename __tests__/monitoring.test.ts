import { spawnSync } from "child_process";
import { mkdtempSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { alertRules, metricsOf, renderAlertRules, renderAlertTests } from "../monitoring-config/alerts";
import { queryMetricNames } from "../monitoring-config/queries";
import { renderProbe } from "../monitoring-config/probe";
import { buildStack, containers, dev, file, prod, synthEnv } from "./helpers";
import { ENVIRONMENTS } from "../stacks/environments";

const hasPromtool = spawnSync("sh", ["-c", "command -v promtool"]).status === 0;

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
    expect(c["pgharbor-dev-exporter-pgbouncer"].env).toEqual(expect.arrayContaining(["PGSSLMODE=verify-full", expect.stringMatching(/^PGPASSWORD=\$\{random_password\.primary_monitor-password_/)]));
  });
  test("the probe reads the bucket with the read-only identity", () => {
    expect(c["pgharbor-dev-rpo-probe"].env).toContainEqual(expect.stringMatching(/^PGBACKREST_REPO1_S3_KEY=\$\{random_password\.archive_reader-access-key_/));
  });
  test("Prometheus scrapes every exporter and loads the generated rules", () => {
    const cfg = file(c["pgharbor-dev-prometheus"], "/etc/pgharbor/monitoring/prometheus.yml");
    for (const t of ["pgharbor-dev-exporter-primary:9187", "pgharbor-dev-exporter-replica-1:9187", "pgharbor-dev-exporter-pgbouncer:9127", "pgharbor-dev-rpo-probe:9188"]) expect(cfg).toContain(`["${t}"]`);
    expect(cfg).toContain("/etc/pgharbor/monitoring/alerts.yml");
    expect(file(c["pgharbor-dev-prometheus"], "/etc/pgharbor/monitoring/alerts.yml")).toMatch(/alert: RPOBreached/);
  });
  test("no monitoring port is published", () => {
    for (const n of Object.keys(c).filter((x) => /exporter|probe|prometheus/.test(x))) expect(c[n].ports).toBeUndefined();
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
  ])("%s: dev and prod", (name, devExpr, prodExpr) => {
    expect(rule(dev, name)).toBe(devExpr);
    expect(rule(prod, name)).toBe(prodExpr);
  });
  test("every metric a rule reads is produced by a deployed exporter or the probe", () => {
    // The probe's names come from its source: a rule reading a name the probe never writes fails here.
    const probeNames = renderProbe().match(/pgharbor_[a-z_]+(?=[ {\\])/g) ?? [];
    const produced = new Set([...queryMetricNames(), "pg_up", "pgbouncer_waiting_clients", ...probeNames]);
    const { stack } = buildStack(dev);
    for (const r of alertRules(stack.monitoring.alertInput)) {
      expect([r.alert, metricsOf(r.expr).length > 0]).toEqual([r.alert, true]);
      for (const m of metricsOf(r.expr)) expect([r.alert, m, produced.has(m)]).toEqual([r.alert, m, true]);
    }
  });
});

(hasPromtool || process.env.CI === "true" ? describe : describe.skip)("promtool: every rule fires on its bad case and stays quiet on its good one", () => {
  test.each(ENVIRONMENTS.map((e) => [e.name, e] as const))("%s", (_n, env) => {
    const { stack } = buildStack(env);
    const dir = mkdtempSync(join(tmpdir(), "pgharbor-rules-"));
    writeFileSync(join(dir, "alerts.yml"), renderAlertRules(stack.monitoring.alertInput));
    writeFileSync(join(dir, "tests.yml"), renderAlertTests(stack.monitoring.alertInput, "alerts.yml"));
    const checked = spawnSync("promtool", ["check", "rules", "alerts.yml"], { cwd: dir, encoding: "utf8" });
    expect({ code: checked.status, out: checked.stdout + checked.stderr }).toEqual({ code: 0, out: expect.stringContaining(`SUCCESS: ${alertRules(stack.monitoring.alertInput).length} rules found`) });
    const tested = spawnSync("promtool", ["test", "rules", "tests.yml"], { cwd: dir, encoding: "utf8" });
    expect({ code: tested.status, out: tested.stdout + tested.stderr }).toEqual({ code: 0, out: expect.stringContaining("SUCCESS") });
    expect((renderAlertTests(stack.monitoring.alertInput, "alerts.yml").match(/^ {4}name: /gm) ?? []).length).toBe(2 * alertRules(stack.monitoring.alertInput).length);
  });
});
if (!hasPromtool && process.env.CI !== "true") {
  console.warn("\nPROMTOOL TESTS SKIPPED: promtool missing. Install it: apt-get install prometheus\n");
}

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
