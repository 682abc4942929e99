import { MONITORING_PATHS } from "../constructs/monitoring";
import { parameterInfo, parameterNames, SERVER_VERIFIED_MAJORS, SUPPORTED_MAJORS } from "../postgres-config/parameter-catalogue";
import { PG17_SETTINGS } from "../postgres-config/catalogue/pg17";
import { PGBOUNCER_SETTINGS, PGBOUNCER_VERSION } from "../review/catalogue/pgbouncer";
import { parseShowConfig, renderPgbouncerCatalogue } from "../review/catalogue/generate-pgbouncer";
import { ALERT_RULES_PATH, parseIni } from "../review/files";
import { effectOf } from "../review/provider-schemas";
import { pgbouncerClassification, postgresClassification } from "../review/settings";
import { containers, dev, file, prod, synthEnv } from "./helpers";

/** What each pg_settings context means for a value changed in postgresql.conf (PostgreSQL's docs, "Setting Parameters"). */
const NEEDS: Record<string, string> = { postmaster: "restart", sighup: "reload", superuser: "reload", user: "reload", backend: "reload", "superuser-backend": "reload", internal: "fixed" };

describe("reload or restart: the review's classification is the catalogue's pg_settings.context", () => {
  // PostgreSQL 17's catalogue is generated from a running server's pg_settings, and the images suite
  // (__tests__/runtime) compares it with the deployed image's server; this test ties the review to it,
  // so that comparison covers the review's classification too.
  test.each(SERVER_VERIFIED_MAJORS.map((m) => [m]))("PostgreSQL %i: every parameter of pg_settings", (major) => {
    expect(major).toBe(17);
    for (const [name, context] of PG17_SETTINGS) {
      const c = postgresClassification(major, name);
      expect([name, c.context, c.needs]).toEqual([name, context, NEEDS[context]]);
    }
  });
  test.each(SUPPORTED_MAJORS.filter((m) => !SERVER_VERIFIED_MAJORS.includes(m)).map((m) => [m]))("PostgreSQL %i (synth-only catalogue): every parameter", (major) => {
    for (const name of parameterNames(major)) {
      const c = postgresClassification(major, name);
      expect([name, c.context, c.needs]).toEqual([name, parameterInfo(major, name)!.context, NEEDS[parameterInfo(major, name)!.context]]);
    }
  });
  test("a parameter the catalogue does not know is assumed to need a restart, and says why", () => {
    expect(postgresClassification(17, "pg_partman_bgw.interval")).toEqual({ context: "unknown", needs: "restart", needsText: "restart, to be safe (an extension's placeholder)" });
    expect(postgresClassification(17, "vacuum_defer_cleanup_age").needsText).toBe("restart, to be safe (not in PostgreSQL 17's catalogue)");
  });
  test.each([
    ["shared_buffers", "restart"],
    ["max_wal_senders", "restart"],
    ["archive_timeout", "reload"],
    ["work_mem", "reload"],
    ["log_connections", "reload; new sessions only"],
    ["deadlock_timeout", "reload; superuser-only"],
    ["block_size", "cannot be changed (fixed at initdb or build time)"],
  ])("%s: %s", (name, text) => expect(postgresClassification(17, name).needsText).toBe(text));
});

describe("PgBouncer: reload or restart from SHOW CONFIG's changeable column", () => {
  test("the catalogue comes from the PgBouncer the images build (1.24)", () => {
    expect(PGBOUNCER_VERSION).toMatch(/^PgBouncer 1\.24\.\d+$/);
    expect(PGBOUNCER_SETTINGS.length).toBeGreaterThan(80);
  });
  test.each([dev, prod].map((e) => [e.name, e]))("%s: every setting pgbouncer.ini sets is in the catalogue; the boot-time ones are the listener's", (_n, env) => {
    const ini = parseIni(file(containers(synthEnv(env))[`pgharbor-${env.name}-pgbouncer`], "/etc/pgbouncer/pgbouncer.ini")).get("pgbouncer")!;
    const classes = [...ini.keys()].map((k) => [k, pgbouncerClassification(k).context] as const);
    expect(classes.filter(([, c]) => c === "unknown")).toEqual([]);
    expect(classes.filter(([, c]) => c === "boot").map(([k]) => k).sort()).toEqual(["listen_addr", "listen_port", "pidfile", "unix_socket_dir"]);
  });
  test("[databases] entries reload", () => expect(pgbouncerClassification("databases.app_ro").needs).toBe("reload"));
  test("the generator reads SHOW VERSION and SHOW CONFIG (tab-separated) and writes what it read", () => {
    const doc = parseShowConfig("PgBouncer 1.24.1\nlisten_port\t6499\t6432\tno\npool_mode\tsession\tsession\tyes\n");
    expect(doc).toEqual({ version: "PgBouncer 1.24.1", rows: [["listen_port", "6432", false], ["pool_mode", "session", true]] });
    expect(renderPgbouncerCatalogue(doc)).toContain('  ["listen_port","6432",false],\n  ["pool_mode","session",true],\n');
    expect(() => parseShowConfig("PgBouncer 1.24.1\nlisten_port|6499|6432|no\n")).toThrow(/not a SHOW CONFIG row/);
  });
});

describe("the review reads what the stack writes", () => {
  test("the alert rules path is the monitoring construct's", () => expect(ALERT_RULES_PATH).toBe(MONITORING_PATHS.alertRules));
  test.each([
    ["docker_container", "upload", "replace"],
    ["docker_container", "memory", "in-place"],
    ["docker_container", "cpu_quota", "state-only"],
    ["docker_container", "healthcheck", "state-only"],
    ["docker_image", "name", "replace"],
    ["docker_volume", "name", "replace"],
    ["random_password", "length", "replace"],
    ["tls_locally_signed_cert", "early_renewal_hours", "in-place"],
    ["aws_s3_bucket", "force_destroy", "in-place"],
    ["aws_s3_bucket", "bucket", "replace"],
  ])("%s.%s: %s", (type, attr, effect) => expect(effectOf(type, attr)).toBe(effect));
});
