/**
 * The dev stack, run for real: PostgreSQL primary and replica, PgBouncer, pgBackRest against an
 * S3 server over HTTPS, the backup container's jobs. One harness; the scenarios run in order and
 * build on each other (the bucket fills up as they go).
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { ageIdentity, describeRuntime, Harness, harnessExecutor } from "./harness";
import { dev, variant } from "../helpers";
import { CONTAINER_PATHS as P } from "../../postgres-config/paths";
import { alertRules, metricsOf } from "../../monitoring-config/alerts";
import { EXPORTER_PORTS } from "../../constructs/monitoring";
import { buildStack } from "../helpers";
import { main as cliMain } from "../../cli/main";

jest.setTimeout(300_000);

describeRuntime("runtime: dev stack", (tools) => {
  // Logical backups are encrypted to a key made for this run; its identity stays in the test's temp dir.
  const keys = mkdtempSync(join(tmpdir(), "pgharbor-age-"));
  const recipient = ageIdentity(keys, "restore.key");
  ageIdentity(keys, "stranger.key");
  const env = variant(dev, {
    primary: { ...dev.primary, majorVersion: tools.major },
    // The scenarios start from an empty bucket (a replica's pg_basebackup bootstrap first);
    // first-start.runtime.test.ts covers the default first full backup.
    backup: { retentionFullBackups: 2, retentionDays: undefined, logical: { recipients: [recipient], retentionDays: 7 }, initialFullBackup: false },
  });
  let h: Harness;
  const timings: Record<string, number> = {};
  const timed = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
    const t = Date.now();
    try {
      return await f();
    } finally {
      timings[name] = Math.round((Date.now() - t) / 100) / 10;
    }
  };

  /** psql through PgBouncer as the application role (SCRAM), from outside the containers. */
  const app = (db: string, query: string) => {
    const r = h.exec("pgbouncer", ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-c", query], {
      env: { PGHOST: h.ip("pgbouncer"), PGPORT: "6432", PGDATABASE: db, PGUSER: "app", PGPASSWORD: h.secret("primary_app-password"), PGSSLMODE: "verify-full", PGSSLROOTCERT: h.hostPath(h.name("pgbouncer"), P.pgbouncerTlsCa) },
    });
    if (r.code !== 0) throw new Error(`app query on ${db} failed: ${r.stderr}`);
    return r.stdout.trim();
  };
  /** The backup container's crontab command for a job, minus the redirect to PID 1's stdout. */
  const cronJob = (job: string): string[] => {
    const tab = h.uploaded("backup", P.crontab);
    const line = tab.split("\n").find((l) => new RegExp(`backup-job\\.sh ${job}\\b`).test(l))!;
    const cmd = line.split(/\s+/).slice(6).join(" ").replace(/\s*>\/proc\/1\/fd\/1 2>&1$/, "");
    return cmd.split(" ");
  };
  const info = () => JSON.parse(h.run("backup", ["pgbackrest", `--config=${P.pgbackrestConf}`, "--stanza=pgharbor", "--output=json", "info"]))[0];
  const walKeys = () => h.bucketKeys("pgharbor/dev/archive/").filter((k) => /\/[0-9A-F]{24}-[0-9a-f]{40}/.test(k));
  const lsnOf = (role: string, fn: string) => h.sql(role, `SELECT ${fn}`);

  beforeAll(async () => {
    h = new Harness(env, tools);
    await h.startArchiveAndPrimary();
  });

  afterAll(async () => {
    console.log(`runtime scenario timings (s): ${JSON.stringify(timings)}`);
    await h?.teardown();
    rmSync(keys, { recursive: true, force: true });
  });

  test("backup container starts: roles reconciled, stanza created, pgbackrest check passes", async () => {
    await timed("backup-start", async () => {
      // The container's entrypoint, in the background as Docker runs it (it ends in cron and keeps the heartbeat going).
      h.start("backup");
      await h.waitFor("backup container up", () => /cron stand-in/.test(h.log("backup")), 180_000, 200);
      const log = h.log("backup");
      expect(log).toContain("roles reconciled");
      expect(log).toContain("stanza-create succeeded");
      expect(log).toContain("check succeeded");
      expect(log.indexOf("roles reconciled")).toBeLessThan(log.indexOf("stanza-create succeeded"));
      const beat = h.sql("primary", "SELECT at FROM pgharbor.heartbeat", "app");
      await h.waitFor("heartbeat moves", () => h.sql("primary", "SELECT at FROM pgharbor.heartbeat", "app") !== beat, 15_000, 500);
      const status = JSON.parse(readFileSync(h.hostPath(h.name("backup"), `${P.statusDir}/stanza-create.json`), "utf8"));
      expect(status).toEqual(expect.objectContaining({ job: "stanza-create", ok: true, exitCode: 0 }));
    });
  });

  test("primary: data checksums, roles as declared, no superuser but postgres", () => {
    expect(h.sql("primary", "SHOW data_checksums")).toBe("on");
    expect(h.sql("primary", "SELECT string_agg(rolname || ':' || rolsuper || ':' || rolreplication, ',' ORDER BY rolname) FROM pg_roles WHERE rolname IN ('app','replicator','pgharbor_pgbouncer','pgharbor_backup','pgharbor_monitor')")).toBe(
      "app:false:false,pgharbor_backup:false:false,pgharbor_monitor:false:false,pgharbor_pgbouncer:false:false,replicator:false:true",
    );
  });

  test("scenario 5b + 1: replica bootstraps by pg_basebackup while the bucket has no backup, and streams", async () => {
    await timed("replica-basebackup", async () => {
      h.start("replica-1");
      await h.waitReady("replica-1", 120_000);
      const marker = h.hostPath(h.name("replica-1"), `${P.dataDir}/.pgharbor-bootstrap`);
      expect(readFileSync(marker, "utf8").trim()).toBe("basebackup");
      expect(h.log("replica-1")).toContain("no backup in the archive: pg_basebackup");
      await h.waitFor("slot active", () => h.sql("primary", "SELECT active FROM pg_replication_slots WHERE slot_name = 'pgharbor_replica_1'") === "t", 30_000);
      expect(h.sql("replica-1", "SELECT pg_is_in_recovery()")).toBe("t");
    });
  });

  test("scenario 1: topology through PgBouncer", async () => {
    await timed("topology", async () => {
      h.start("pgbouncer");
      await h.waitFor("PgBouncer listening", () => /listening on .*6432/.test(h.log("pgbouncer")), 20_000);
      app("app", "CREATE TABLE IF NOT EXISTS items (id bigint PRIMARY KEY, note text, at timestamptz DEFAULT now())");
      // Write through the read-write database: lands on the primary.
      expect(app("app", "INSERT INTO items (id, note) VALUES (1, 'via pgbouncer') RETURNING pg_is_in_recovery()")).toBe("f");
      expect(h.sql("primary", "SELECT note FROM items WHERE id = 1", "app")).toBe("via pgbouncer");
      // Read through the read-only database: served by a replica.
      expect(app("app_ro", "SELECT pg_is_in_recovery()")).toBe("t");
      expect(() => app("app_ro", "INSERT INTO items (id) VALUES (99)")).toThrow(/read-only transaction/);
      // A committed row is visible on the replica within 1 s.
      app("app", "INSERT INTO items (id, note) VALUES (2, 'replicated')");
      const ms = await h.waitFor("row on the replica", () => app("app_ro", "SELECT count(*) FROM items WHERE id = 2") === "1", 1_000, 20);
      expect(ms).toBeLessThanOrEqual(1_000);
      expect(h.sql("primary", "SELECT active FROM pg_replication_slots WHERE slot_name = 'pgharbor_replica_1'")).toBe("t");
    });
  });

  test("scenario 2: archiving, pgbackrest check, encryption at rest", async () => {
    await timed("archiving", async () => {
      const marker = `PGHARBOR-PLAINTEXT-${Date.now()}`;
      app("app", `INSERT INTO items (id, note) VALUES (3, '${marker}')`);
      const segment = lsnOf("primary", "pg_walfile_name(pg_current_wal_lsn())");
      h.sql("primary", "SELECT pg_switch_wal()");
      const archiveTimeout = Number(/^archive_timeout = (\d+)$/m.exec(readFileSync(h.hostPath(h.name("primary"), P.postgresqlConf), "utf8"))![1]);
      const ms = await h.waitFor(`segment ${segment} in the bucket`, () => walKeys().some((k) => k.includes(`/${segment}-`)), (archiveTimeout + 10) * 1000, 200);
      timings["segment-in-bucket"] = ms / 1000;
      h.run("backup", [`${P.scriptsDir}/backup-job.sh`, "check"]);
      // The marker is in the local WAL in clear (so this test can fail) but nowhere in the bucket.
      const walDir = h.hostPath(h.name("primary"), `${P.dataDir}/pg_wal`);
      const inWal = readdirSync(walDir).some((f) => /^[0-9A-F]{24}$/.test(f) && readFileSync(join(walDir, f)).includes(marker));
      expect(inWal).toBe(true);
      const objects = h.bucketKeys();
      expect(objects.length).toBeGreaterThan(0);
      const leaked = objects.filter((k) => readFileSync(join(h.bucketDir(), `${k}._S3rver_object`)).includes(marker));
      expect(leaked).toEqual([]);
    });
  });

  test("scenario 3: full and differential backups, info, expiry honours retention", async () => {
    await timed("backups", async () => {
      h.run("backup", cronJob("full"), { timeoutMs: 240_000 });
      app("app", "INSERT INTO items (id, note) VALUES (4, 'after full 1')");
      h.run("backup", cronJob("diff"), { timeoutMs: 240_000 });
      let backups = info().backup as Array<{ label: string; type: string }>;
      expect(backups.map((b) => b.type)).toEqual(["full", "diff"]);
      const firstFull = backups[0].label;
      h.run("backup", cronJob("full"), { timeoutMs: 240_000 });
      expect((info().backup as unknown[]).length).toBe(3);
      // A third full backup with retentionFullBackups = 2: pgBackRest expires after each backup, and
      // the scheduled expire job applies the same rule.
      h.run("backup", cronJob("full"), { timeoutMs: 240_000 });
      h.run("backup", cronJob("expire"));
      backups = info().backup;
      expect(backups.map((b) => b.type)).toEqual(["full", "full"]);
      expect(backups.map((b) => b.label)).not.toContain(firstFull);
      const status = JSON.parse(readFileSync(h.hostPath(h.name("backup"), `${P.statusDir}/full.json`), "utf8"));
      expect(status).toEqual(expect.objectContaining({ job: "full", ok: true }));
    });
  });

  test("monitoring: the exporters and the RPO probe run and expose every metric the alert rules read", async () => {
    await timed("monitoring", async () => {
      for (const role of ["exporter-primary", "exporter-replica-1", "exporter-pgbouncer", "rpo-probe"]) h.start(role);
      const scrape = async () => [
        await h.metrics("exporter-primary", EXPORTER_PORTS.postgres),
        await h.metrics("exporter-replica-1", EXPORTER_PORTS.postgres),
        await h.metrics("exporter-pgbouncer", EXPORTER_PORTS.pgbouncer),
        await h.metrics("rpo-probe", EXPORTER_PORTS.probe),
      ].join("\n");
      const { stack } = buildStack(env);
      // Drill and logical-backup metrics appear once those have run: checked in the drill test.
      const needed = [...new Set(alertRules(stack.monitoring.alertInput).flatMap((r) => metricsOf(r.expr)))].filter((m) => !/^pgharbor_(drill|logical)_/.test(m));
      let text = "";
      const start = Date.now();
      for (;;) {
        text = await scrape().catch((e) => String(e));
        const missing = needed.filter((m) => !new RegExp(`^${m}[{ ]`, "m").test(text));
        if (!missing.length) break;
        if (Date.now() - start > 60_000) throw new Error(`metrics never exported: ${missing.join(", ")}\n${text.slice(0, 3000)}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
      expect(text).toMatch(/^pg_up 1$/m);
      expect(text).toMatch(/^pgharbor_slots_active\{.*slot_name="pgharbor_replica_1".*\} 1$/m);
      expect(text).toMatch(/^pgharbor_probe_success\{check="archive"\} 1$/m);
      for (const target of ["primary", "replica-1", "pgbouncer", "s3"]) expect(text).toMatch(new RegExp(`^pgharbor_probe_success\\{check="tls-${target}"\\} 1$`, "m"));
      expect(text).toMatch(/^pgharbor_backup_last_completed_timestamp_seconds\{type="full"\} \d{10}$/m);
    });
  });

  test("scenario 4: point-in-time recovery with the project's restore script", async () => {
    await timed("pitr", async () => {
      app("app", "INSERT INTO items (id, note) VALUES (100, 'row A')");
      await new Promise((r) => setTimeout(r, 1100));
      const t = h.sql("primary", "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'");
      await new Promise((r) => setTimeout(r, 1100));
      app("app", "INSERT INTO items (id, note) VALUES (101, 'row B')");
      const segment = lsnOf("primary", "pg_walfile_name(pg_current_wal_lsn())");
      h.sql("primary", "SELECT pg_switch_wal()");
      await h.waitFor("row B's segment archived", () => walKeys().some((k) => k.includes(`/${segment}-`)), 60_000, 200);
      const into = `${P.restoreScratchDir}/pitr`;
      const r = h.exec("backup", [`${P.scriptsDir}/restore.sh`, "--to", t, "--into", into], { timeoutMs: 240_000 });
      expect({ code: r.code, err: r.stderr.slice(-1500) }).toEqual({ code: 0, err: expect.stringContaining("restore complete") });
      const ip = h.ip("backup");
      const pg = h.spawnIn("backup", ["postgres", "-D", into, "-c", "port=5433", "-c", `listen_addresses=${ip}`, "-c", `unix_socket_directories=${P.restoreScratchDir}`, "-c", `hba_file=${into}/pg_hba.conf`]);
      try {
        const q = (sql: string) => h.run("backup", ["psql", "-X", "-At", "-h", P.restoreScratchDir, "-p", "5433", "-U", "postgres", "-d", "app", "-c", sql]).trim();
        await h.waitFor("restored copy promoted", () => q("SELECT pg_is_in_recovery()") === "f", 120_000, 500);
        expect(q("SELECT string_agg(note, ',' ORDER BY id) FROM items WHERE id IN (100, 101)")).toBe("row A");
        expect(Number(q("SELECT timeline_id FROM pg_control_checkpoint()"))).toBeGreaterThan(Number(h.sql("primary", "SELECT timeline_id FROM pg_control_checkpoint()")));
        expect(q("SHOW archive_mode")).toBe("off");
      } finally {
        process.kill(-pg.pid!, "SIGINT");
        await new Promise((r) => pg.once("exit", r));
      }
    });
  });

  test("scenario 5a: a fresh replica bootstraps from the bucket, not pg_basebackup, and streams", async () => {
    await timed("replica-from-bucket", async () => {
      await h.stop("replica-1");
      const data = h.hostPath(h.name("replica-1"), P.dataDir);
      for (const f of readdirSync(data)) rmSync(join(data, f), { recursive: true, force: true });
      const before = h.log("replica-1").length;
      h.start("replica-1");
      await h.waitReady("replica-1", 180_000);
      const log = h.log("replica-1").slice(before);
      expect(log).toContain("backup found in the archive: restoring as a standby from the bucket");
      expect(log).not.toContain("pg_basebackup from");
      expect(readFileSync(join(data, ".pgharbor-bootstrap"), "utf8").trim()).toBe("bucket");
      app("app", "INSERT INTO items (id, note) VALUES (5, 'after bucket bootstrap')");
      await h.waitFor("streaming again", () => h.sql("replica-1", "SELECT count(*) FROM items WHERE id = 5", "app") === "1", 30_000, 200);
      await h.waitFor("slot active", () => h.sql("primary", "SELECT active FROM pg_replication_slots WHERE slot_name = 'pgharbor_replica_1'") === "t", 30_000);
    });
  });

  const pgbench = (seconds: number) => h.spawnIn("primary", ["pgbench", "-h", P.socketDir, "-U", "postgres", "-n", "-c", "2", "-T", String(seconds), "-P", "5", "app"]);
  const finish = (p: ReturnType<typeof pgbench>) =>
    new Promise<{ code: number; out: string }>((resolve) => {
      let out = "";
      p.stdout!.on("data", (d) => (out += d));
      p.stderr!.on("data", (d) => (out += d));
      p.on("exit", (code) => resolve({ code: code ?? -1, out }));
    });

  test("scenario 6: replica outage under write load, catch-up through its slot", async () => {
    await timed("replica-outage", async () => {
      h.run("primary", ["pgbench", "-i", "-s", "2", "-q", "-h", P.socketDir, "-U", "postgres", "app"], { timeoutMs: 120_000 });
      const load = pgbench(35);
      const result = finish(load);
      await new Promise((r) => setTimeout(r, 5_000));
      await h.stop("replica-1");
      const retainedWhileDown = () => h.sql("primary", "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) FROM pg_replication_slots WHERE slot_name = 'pgharbor_replica_1'");
      expect(h.sql("primary", "SELECT active FROM pg_replication_slots WHERE slot_name = 'pgharbor_replica_1'")).toBe("f");
      await new Promise((r) => setTimeout(r, 20_000));
      expect(Number(retainedWhileDown())).toBeGreaterThan(0);
      const before = h.log("replica-1").length;
      h.start("replica-1");
      await h.waitReady("replica-1", 120_000);
      const bench = await result;
      expect(bench.code).toBe(0);
      const target = h.sql("primary", "SELECT pg_current_wal_lsn()");
      await h.waitFor("replica caught up", () => h.sql("replica-1", `SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '${target}') >= 0`) === "t", 60_000, 250);
      await h.waitFor("slot active", () => h.sql("primary", "SELECT active FROM pg_replication_slots WHERE slot_name = 'pgharbor_replica_1'") === "t", 30_000);
      // Connection attempts while it starts (healthcheck probes) are refused with FATAL by design; anything else is an error.
      const errors = h
        .log("replica-1")
        .slice(before)
        .split("\n")
        .filter((l) => /\b(ERROR|FATAL|PANIC):/.test(l) && !/the database system is (starting up|not yet accepting connections)/.test(l));
      expect(errors).toEqual([]);
      expect(h.sql("primary", "SELECT count(*) FROM pgbench_history", "app")).toBe(h.sql("replica-1", "SELECT count(*) FROM pgbench_history", "app"));
    });
  });

  test("scenario 7: bucket outage under write load, archive catches up without a gap", async () => {
    await timed("bucket-outage", async () => {
      const failedBefore = Number(h.sql("primary", "SELECT failed_count FROM pg_stat_archiver"));
      const load = pgbench(75);
      const result = finish(load);
      await new Promise((r) => setTimeout(r, 3_000));
      const rpo = async () => Number(/^pgharbor_rpo_seconds (\d+)$/m.exec(await h.metrics("rpo-probe", EXPORTER_PORTS.probe))![1]);
      const archiveTimeout = Number(/^archive_timeout = (\d+)$/m.exec(readFileSync(h.hostPath(h.name("primary"), P.postgresqlConf), "utf8"))![1]);
      const underLoad = await rpo();
      timings["rpo-seconds-under-load"] = underLoad;
      expect(underLoad).toBeLessThanOrEqual(archiveTimeout + 15);
      await h.stopS3();
      const downAt = Date.now();
      h.sql("primary", "SELECT pg_switch_wal()");
      // The primary keeps taking writes while the bucket is away.
      await new Promise((r) => setTimeout(r, 30_000));
      app("app", "INSERT INTO items (id, note) VALUES (7, 'during bucket outage')");
      const switched = h.sql("primary", "SELECT pg_walfile_name(pg_current_wal_lsn())");
      h.sql("primary", "SELECT pg_switch_wal()");
      await new Promise((r) => setTimeout(r, Math.max(0, 60_000 - (Date.now() - downAt))));
      const pending = h.sql("primary", "SELECT pg_walfile_name(pg_current_wal_lsn())");
      const waiting = h.sql("primary", "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'");
      // The outage was real: the segments switched during it are waiting, not in the bucket.
      expect(Number(waiting)).toBeGreaterThan(0);
      expect(walKeys().some((k) => k.includes(`/${switched}-`))).toBe(false);
      expect(app("app", "SELECT note FROM items WHERE id = 7")).toBe("during bucket outage");
      timings["archiver-failures-during-outage"] = Number(h.sql("primary", "SELECT failed_count FROM pg_stat_archiver")) - failedBefore;
      const duringOutage = await rpo();
      timings["rpo-seconds-after-60s-outage"] = duringOutage;
      // The bucket-side RPO grows while the bucket is away, whatever PostgreSQL believes.
      expect(duringOutage).toBeGreaterThan(underLoad + 30);
      await h.startS3();
      const backAt = Date.now();
      const bench = await result;
      expect(bench.code).toBe(0);
      h.sql("primary", "SELECT pg_switch_wal()");
      await h.waitFor("archive caught up", () => [switched, pending].every((seg) => walKeys().some((k) => k.includes(`/${seg}-`))), 120_000, 200);
      timings["bucket-catch-up-after-return"] = (Date.now() - backAt) / 1000;
      // Continuity: every segment from the oldest backup's start to the newest archived one is in the bucket.
      const names = [...new Set(walKeys().map((k) => /\/([0-9A-F]{24})-/.exec(k)![1]))].filter((n) => n.startsWith("00000001")).sort();
      const seg = (n: string) => parseInt(n.slice(8, 16), 16) * 256 + parseInt(n.slice(16, 24), 16);
      const oldest = info().backup[0].archive.start as string;
      const wanted = names.filter((n) => n >= oldest);
      const gaps = wanted.slice(1).filter((n, i) => seg(n) !== seg(wanted[i]) + 1);
      // The range spans the outage: it holds the segments switched while the bucket was away.
      expect(wanted).toEqual(expect.arrayContaining([switched, pending]));
      expect(gaps).toEqual([]);
      expect(wanted.length).toBe(seg(wanted[wanted.length - 1]) - seg(wanted[0]) + 1);
      const verify = h.exec("backup", ["pgbackrest", `--config=${P.pgbackrestConf}`, "--stanza=pgharbor", "verify"], { timeoutMs: 240_000 });
      expect({ code: verify.code, out: verify.stdout + verify.stderr }).toEqual({ code: 0, out: expect.not.stringMatching(/missing|invalid|ERROR/) });
    });
  });

  test("scenario 8: the rendered files are accepted by the real binaries without warnings", () => {
    for (const role of ["primary", "replica-1"]) {
      const log = h.log(role);
      expect([role, log.match(/.*(unrecognized configuration parameter|invalid value for parameter|configuration file .* contains errors|WARNING:).*/g) ?? []]).toEqual([role, []]);
    }
    const bouncer = h.log("pgbouncer");
    expect(bouncer).toMatch(/process up: PgBouncer/);
    // Configuration complaints only: "got packet 'E' from server when not linked" is a replica being restarted on purpose.
    expect(bouncer.match(/.*(unknown parameter|syntax error|invalid value|unknown config|ignoring).*/gi) ?? []).toEqual([]);
    // pgBackRest parses its file on every call: an unknown option would have failed the scenarios above.
    expect(existsSync(h.hostPath(h.name("backup"), P.pgbackrestConf))).toBe(true);
    expect(statSync(h.hostPath(h.name("primary"), `${P.scriptsDir}/primary-entrypoint.sh`)).mode & 0o111).toBeTruthy();
  });

  describe("security", () => {
    /** A libpq connection from outside, straight to a server (not through PgBouncer). */
    const connect = (role: string, port: number, conn: Record<string, string>, query = "SELECT 1") =>
      h.exec(role, ["psql", "-X", "-At", "-c", query], {
        env: { PGHOST: h.ip(role), PGPORT: String(port), PGCONNECT_TIMEOUT: "5", PGSSLROOTCERT: h.hostPath(h.name(role), role === "pgbouncer" ? P.pgbouncerTlsCa : P.tlsCa), ...conn },
      });
    const appPw = () => h.secret("primary_app-password");
    const roPw = () => h.secret("primary_app-ro-password");

    test("a connection without TLS is rejected by PostgreSQL and by PgBouncer", () => {
      const pg = connect("primary", 5432, { PGSSLMODE: "disable", PGUSER: "app", PGPASSWORD: appPw(), PGDATABASE: "app" });
      expect(pg.code).not.toBe(0);
      expect(pg.stderr).toMatch(/pg_hba.conf rejects connection .* no encryption/);
      const bouncer = connect("pgbouncer", 6432, { PGSSLMODE: "disable", PGUSER: "app", PGPASSWORD: appPw(), PGDATABASE: "app" });
      expect(bouncer.code).not.toBe(0);
      expect(bouncer.stderr).toMatch(/SSL required/);
    });

    test("TLS below the configured minimum (1.3) is refused", () => {
      const r = connect("primary", 5432, { PGSSLMODE: "require", PGSSLMAXPROTOCOLVERSION: "TLSv1.2", PGUSER: "app", PGPASSWORD: appPw(), PGDATABASE: "app" });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/protocol version|unsupported protocol|no protocols available/i);
    });

    test("a wrong password and an md5-stored password are rejected", () => {
      const wrong = connect("primary", 5432, { PGSSLMODE: "verify-full", PGUSER: "app", PGPASSWORD: "not-the-password", PGDATABASE: "app" });
      expect(wrong.stderr).toMatch(/password authentication failed for user "app"/);
      h.sql("primary", "SET password_encryption = 'md5'; DROP ROLE IF EXISTS legacy_md5; CREATE ROLE legacy_md5 LOGIN PASSWORD 'legacy-password-1'; GRANT CONNECT ON DATABASE app TO legacy_md5");
      expect(h.sql("primary", "SELECT left(rolpassword, 3) FROM pg_authid WHERE rolname = 'legacy_md5'")).toBe("md5");
      const md5 = connect("primary", 5432, { PGSSLMODE: "verify-full", PGUSER: "legacy_md5", PGPASSWORD: "legacy-password-1", PGDATABASE: "app" });
      expect(md5.code).not.toBe(0);
      expect(md5.stderr).toMatch(/password authentication failed for user "legacy_md5"/);
      const viaBouncer = connect("pgbouncer", 6432, { PGSSLMODE: "verify-full", PGUSER: "legacy_md5", PGPASSWORD: "legacy-password-1", PGDATABASE: "app" });
      expect(viaBouncer.code).not.toBe(0);
    });

    test("SCRAM through PgBouncer works for both application roles, over verified TLS", () => {
      const rw = connect("pgbouncer", 6432, { PGSSLMODE: "verify-full", PGUSER: "app", PGPASSWORD: appPw(), PGDATABASE: "app" }, "SELECT current_user");
      expect(rw).toEqual(expect.objectContaining({ code: 0, stdout: "app\n" }));
      const ro = connect("pgbouncer", 6432, { PGSSLMODE: "verify-full", PGUSER: "app_ro", PGPASSWORD: roPw(), PGDATABASE: "app_ro" }, "SELECT current_user, pg_is_in_recovery(), count(*) FROM items");
      expect(ro.code).toBe(0);
      expect(ro.stdout).toMatch(/^app_ro\|t\|\d+$/m);
      expect(h.log("pgbouncer")).toMatch(/login attempt: db=app user=app tls=TLSv1\.3/);
    });

    test("the read-only role cannot write, even on the primary", () => {
      const r = connect("primary", 5432, { PGSSLMODE: "verify-full", PGUSER: "app_ro", PGPASSWORD: roPw(), PGDATABASE: "app" }, "INSERT INTO items (id) VALUES (999)");
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/read-only transaction|permission denied/);
      const forced = connect("primary", 5432, { PGSSLMODE: "verify-full", PGUSER: "app_ro", PGPASSWORD: roPw(), PGDATABASE: "app" }, "BEGIN READ WRITE; INSERT INTO items (id) VALUES (999); COMMIT");
      expect(forced.stderr).toMatch(/permission denied for table items/);
    });

    test.each([
      ["create roles", "CREATE ROLE intruder LOGIN", /permission denied to create role/],
      ["read password hashes", "SELECT rolpassword FROM pg_authid", /permission denied for table pg_authid/],
      ["call the pooler's lookup function", "SELECT * FROM pgharbor.user_lookup('app')", /permission denied for schema pgharbor/],
      ["connect to another database", "\\connect postgres", /permission denied for database "postgres"/],
      ["read server files", "SELECT pg_read_file('postgresql.conf')", /permission denied for function pg_read_file/],
    ])("the application role cannot %s", (_what, query, message) => {
      const r = connect("primary", 5432, { PGSSLMODE: "verify-full", PGUSER: "app", PGPASSWORD: appPw(), PGDATABASE: "app" }, query);
      expect(r.stderr).toMatch(message);
    });

    test("replication runs over TLS", () => {
      expect(h.sql("primary", "SELECT r.application_name || ':' || s.ssl || ':' || s.version FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)")).toBe("replica-1:true:TLSv1.3");
    });

    test("no password reaches the server log", () => {
      for (const role of ["primary", "replica-1", "pgbouncer"]) {
        const log = h.log(role);
        for (const secret of [appPw(), roPw(), h.secret("primary_replication-password"), h.secret("primary_pooler-password")]) expect([role, log.includes(secret)]).toEqual([role, false]);
      }
    });
  
    test("rotating the application password: the recreated backup container applies it, the primary keeps running", () => {
      const pid = h.sql("primary", "SELECT pg_postmaster_start_time()");
      const old = appPw();
      const fresh = `Rotated${Date.now()}Aa1`;
      // What `terraform apply -replace=random_password.<app-password>` does: a new value in the backup container's env.
      h.specs.get(h.name("backup"))!.env.PGHARBOR_APP_PASSWORD = fresh;
      h.run("backup", [`${P.scriptsDir}/reconcile-roles.sh`]);
      const via = (pw: string) => connect("pgbouncer", 6432, { PGSSLMODE: "verify-full", PGUSER: "app", PGPASSWORD: pw, PGDATABASE: "app" }, "SELECT current_user");
      expect(via(fresh)).toEqual(expect.objectContaining({ code: 0, stdout: "app\n" }));
      expect(via(old).stderr).toMatch(/(password|SASL) authentication failed/);
      expect(h.sql("primary", "SELECT pg_postmaster_start_time()")).toBe(pid);
      expect(h.log("primary").includes(fresh)).toBe(false);
    });
  });

  describe("operations CLI, through the same code path as on a Docker host", () => {
    const run = async (...argv: string[]) => {
      let out = "";
      let err = "";
      const code = await cliMain(argv, () => harnessExecutor(h), (t) => (out += t), (t) => (err += t), async () => false);
      return { code, out, err };
    };

    test("window: oldest and newest restorable time, continuity", async () => {
      const r = await run("window", "--env", "dev");
      expect(r).toEqual(expect.objectContaining({ code: 0, out: expect.stringMatching(/^recoverable from \d{4}-\d\d-\d\dT.* to \d{4}-.* \(newest WAL [0-9A-F]{24}\); WAL continuous\n$/) }));
    });

    test("backups list and backup now", async () => {
      const before = await run("backups", "list", "--env", "dev");
      expect(before.code).toBe(0);
      const now = await run("backup", "now", "--type", "diff", "--env", "dev");
      expect(now).toEqual(expect.objectContaining({ code: 0, out: expect.stringMatching(/done: \d{8}-\d{6}F_\d{8}-\d{6}D \(diff\)/) }));
      const after = await run("backups", "list", "--env", "dev");
      expect(after.out.split("\n").filter(Boolean).length).toBe(before.out.split("\n").filter(Boolean).length + 1);
    });

    test("restore refuses a time outside the recoverability window, with a clear error", async () => {
      const early = await run("restore", "--to", "2001-01-01 00:00:00+00", "--into", `${P.restoreScratchDir}/too-early`, "--env", "dev");
      expect(early).toEqual(expect.objectContaining({ code: 1, err: expect.stringMatching(/^pgharbor: --to 2001-01-01 00:00:00\+00 is before the recoverability window/m) }));
      const late = await run("restore", "--to", "2099-01-01 00:00:00+00", "--into", `${P.restoreScratchDir}/too-late`, "--env", "dev");
      expect(late.err).toMatch(/is after the recoverability window .* recovery would end early without saying so/);
      const bad = await run("restore", "--to", "yesterday", "--env", "dev");
      expect(bad.err).toMatch(/--to "yesterday" is not latest, an LSN/);
      expect(existsSync(h.hostPath(h.name("backup"), `${P.restoreScratchDir}/too-early`))).toBe(false);
    });

    test("restore --to latest into an empty directory; refuses a non-empty one", async () => {
      const into = `${P.restoreScratchDir}/latest`;
      const r = await run("restore", "--to", "latest", "--into", into, "--env", "dev");
      expect(r).toEqual(expect.objectContaining({ code: 0, out: expect.stringContaining(`restored into ${into}`) }));
      expect(existsSync(h.hostPath(h.name("backup"), `${into}/PG_VERSION`))).toBe(true);
      const again = await run("restore", "--to", "latest", "--into", into, "--env", "dev");
      expect(again.code).toBe(1);
      expect(again.err).toMatch(/failed in the backup container/);
    });

    test("verify", async () => {
      expect(await run("verify", "--env", "dev")).toEqual(expect.objectContaining({ code: 0, out: "verify: archive and backups intact\n" }));
    });

    const tableSums = (db: string) =>
      ["lc_numbers", "lc_misc"].map((t) => h.sql("primary", `SELECT count(*) || ' ' || md5(string_agg(x::text, '|' ORDER BY id)) FROM ${t} x`, db));
    let logicalSet = "";

    test("logical backup: every database dumped, encrypted to the recipient, manifest last", async () => {
      await timed("logical-backup", async () => {
        h.sql("primary", `CREATE TABLE lc_numbers AS SELECT g AS id, md5(g::text) AS h, g * 1.5 AS n, timestamptz '2026-01-01' + g * interval '1 minute' AS t FROM generate_series(1, 50000) g;
          CREATE TABLE lc_misc (id int PRIMARY KEY, j jsonb, b bytea, u text);
          INSERT INTO lc_misc VALUES (1, '{"a": [1, 2, {"b": null}]}', '\\xdeadbeef', 'ünïcødé ✓'), (2, 'null', '', E'tab\\tnew\\nline'), (3, NULL, NULL, NULL);`, "app");
        const r = await run("backup", "now", "--type", "logical", "--env", "dev");
        expect(r).toEqual(expect.objectContaining({ code: 0, out: expect.stringMatching(/^done: logical set \d{8}T\d{6}Z \(app, postgres; [\d.]+ MiB encrypted\) in \d+ s\n$/) }));
        expect(r.err).toMatch(/dumping app/);
        logicalSet = /logical set (\S+)/.exec(r.out)![1];
        const keysNow = h.bucketKeys(`pgharbor/dev/logical/${logicalSet}/`).map((k) => k.split("/").pop());
        expect(keysNow).toEqual(["app.dump.age", "globals.sql.age", "manifest.json", "postgres.dump.age"]);
        const object = readFileSync(join(h.bucketDir(), `pgharbor/dev/logical/${logicalSet}/app.dump.age._S3rver_object`));
        expect(object.subarray(0, 21).toString()).toBe("age-encryption.org/v1");
        expect(object.includes("lc_misc")).toBe(false);
        const manifest = JSON.parse(readFileSync(join(h.bucketDir(), `pgharbor/dev/logical/${logicalSet}/manifest.json._S3rver_object`), "utf8"));
        expect(manifest).toEqual(expect.objectContaining({ set: logicalSet, recipients: [recipient] }));
        expect(JSON.stringify(manifest)).not.toMatch(/AGE-SECRET-KEY/);
        const listed = await run("backups", "list", "--env", "dev");
        expect(listed.out).toMatch(new RegExp(`^${logicalSet}  logical  .* MiB encrypted  app, postgres$`, "m"));
        expect(JSON.parse(readFileSync(h.hostPath(h.name("backup"), `${P.statusDir}/logical.json`), "utf8"))).toEqual(expect.objectContaining({ job: "logical", ok: true }));
      });
    });

    test("logical restore: one command, into a new database, equal row counts and checksums", async () => {
      await timed("logical-restore", async () => {
        const r = await run("restore", "--logical", "app", "--identity", join(keys, "restore.key"), "--into-database", "app_check", "--env", "dev");
        expect(r).toEqual(expect.objectContaining({ code: 0, out: expect.stringMatching(new RegExp(`^restored app from ${logicalSet} into database app_check`)) }));
        const original = tableSums("app");
        expect(original[0]).toMatch(/^50000 [0-9a-f]{32}$/);
        expect(tableSums("app_check")).toEqual(original);
        // Never over an existing database; a key that is not a recipient cannot read the set, and leaves nothing behind.
        const again = await run("restore", "--logical", "app", "--identity", join(keys, "restore.key"), "--into-database", "app_check", "--env", "dev");
        expect(again.err).toMatch(/--into-database app_check already exists: a logical restore never writes into an existing database/);
        const stranger = await run("restore", "--logical", "app", "--identity", join(keys, "stranger.key"), "--into-database", "app_stranger", "--env", "dev");
        expect(stranger).toEqual(expect.objectContaining({ code: 1, err: expect.stringMatching(/age could not decrypt .*app\.dump\.age/) }));
        expect(h.sql("primary", "SELECT count(*) FROM pg_database WHERE datname = 'app_stranger'")).toBe("0");
        expect(h.log("backup").includes("AGE-SECRET-KEY")).toBe(false);
        expect(readdirSync(h.hostPath(h.name("backup"), P.restoreScratchDir)).filter((f) => f.startsWith("logical-"))).toEqual([]);
      });
    });

    test("restore drill: random target in the window, verified, evidence in the bucket and on /metrics", async () => {
      await timed("drill", async () => {
        const r = await run("drill", "now", "--env", "dev");
        expect(r).toEqual(expect.objectContaining({ code: 0, out: expect.stringMatching(/^drill \S+ passed: target \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+00 from \d{8}-\d{6}F\S*, restored [\d.]+ MiB in [\d.]+ s \+ recovery [\d.]+ s = RTO [\d.]+ s; heartbeat ok, amcheck ok, dump ok\nevidence: drills\/\d{8}T\d{6}Z\.json\n$/) }));
        const name = /evidence: (\S+)/.exec(r.out)![1];
        const ev = JSON.parse(readFileSync(join(h.bucketDir(), `pgharbor/dev/${name}._S3rver_object`), "utf8"));
        expect(ev).toEqual(expect.objectContaining({ ok: true, kind: "restore-drill", environment: "dev" }));
        expect(ev.target.kind).toBe("time");
        expect(ev.target.epoch).toBeGreaterThanOrEqual(ev.window.oldest);
        expect(ev.target.epoch).toBeLessThanOrEqual(ev.window.newest);
        expect(ev.checks.heartbeat.secondsBeforeTarget).toBeGreaterThanOrEqual(0);
        // app_check exists in the copy only when the target fell after the logical-restore test made it.
        expect(ev.checks.dump.databases).toEqual(expect.arrayContaining(["app", "postgres"]));
        expect(existsSync(h.hostPath(h.name("backup"), `${P.restoreScratchDir}/drill`))).toBe(false);
        console.log(`restore drill evidence: ${JSON.stringify({ target: ev.target.time, backupSet: ev.backupSet, restoredBytes: ev.restoredBytes, restoreSeconds: ev.restoreSeconds, recoverySeconds: ev.recoverySeconds, rtoSeconds: ev.rtoSeconds, amcheckSeconds: ev.checks.amcheck.seconds })}`);
        const { stack } = buildStack(env);
        const needed = [...new Set(alertRules(stack.monitoring.alertInput).flatMap((x) => metricsOf(x.expr)))].filter((m) => /^pgharbor_(drill|logical)_/.test(m));
        expect(needed.length).toBe(3);
        let text = "";
        const start = Date.now();
        for (;;) {
          text = await h.metrics("rpo-probe", EXPORTER_PORTS.probe);
          if (needed.every((m) => new RegExp(`^${m} `, "m").test(text))) break;
          if (Date.now() - start > 60_000) throw new Error(`not exported: ${needed.filter((m) => !new RegExp(`^${m} `, "m").test(text)).join(", ")}`);
          await new Promise((res) => setTimeout(res, 1000));
        }
        expect(text).toMatch(/^pgharbor_drill_last_ok 1$/m);
        expect(text).toMatch(/^pgharbor_drill_rto_seconds [\d.]+$/m);
      });
    });

    test("a drill with a WAL segment missing from the bucket fails, says why, and records it", async () => {
      await timed("drill-missing-wal", async () => {
        const w = JSON.parse(h.run("backup", [P.opsTool, "window"]));
        expect(w.continuous).toBe(true);
        const segments = walKeys().filter((k) => !k.endsWith(".partial"));
        const victim = segments[Math.floor(segments.length / 2)];
        const file = join(h.bucketDir(), `${victim}._S3rver_object`);
        renameSync(file, `${file}.aside`);
        try {
          const r = await run("drill", "now", "--env", "dev");
          const segment = /([0-9A-F]{24})-/.exec(victim)![1];
          expect(r.code).toBe(1);
          expect(r.out).toMatch(new RegExp(`^drill \\S+ FAILED: the archive has a WAL gap \\(missing ${segment}\\)`));
          expect(r.err).toMatch(new RegExp(`pgharbor: restore drill failed: the archive has a WAL gap \\(missing ${segment}\\): point-in-time recovery past ${segment} is impossible`));
          const name = /evidence: (\S+)/.exec(r.out)![1];
          const ev = JSON.parse(readFileSync(join(h.bucketDir(), `pgharbor/dev/${name}._S3rver_object`), "utf8"));
          expect(ev).toEqual(expect.objectContaining({ ok: false, window: expect.objectContaining({ continuous: false, missingSegments: [segment] }) }));
          expect(JSON.parse(readFileSync(h.hostPath(h.name("backup"), `${P.statusDir}/drill.json`), "utf8"))).toEqual(expect.objectContaining({ job: "drill", ok: false, exitCode: 1 }));
          const start = Date.now();
          while (!/^pgharbor_drill_last_ok 0$/m.test(await h.metrics("rpo-probe", EXPORTER_PORTS.probe))) {
            if (Date.now() - start > 60_000) throw new Error("pgharbor_drill_last_ok never became 0");
            await new Promise((res) => setTimeout(res, 1000));
          }
        } finally {
          renameSync(`${file}.aside`, file);
        }
        expect(JSON.parse(h.run("backup", [P.opsTool, "window"])).continuous).toBe(true);
      });
    });

    test("drill list and status read the evidence back", async () => {
      const list = await run("drill", "list", "--last", "2", "--env", "dev");
      const lines = list.out.trim().split("\n");
      expect(lines).toEqual([expect.stringMatching(/^drill \S+ passed: /), expect.stringMatching(/^drill \S+ FAILED: the archive has a WAL gap/)]);
      const json = JSON.parse((await run("drill", "list", "--last", "1", "--json", "--env", "dev")).out);
      expect(json).toEqual([expect.objectContaining({ ok: false })]);
      const status = await run("status", "--env", "dev");
      expect(status.code).toBe(0);
      expect(status.out).toMatch(/^full +ok +\S+Z \(\d+ s\)$/m);
      expect(status.out).toMatch(/^logical +ok /m);
      expect(status.out).toMatch(/^drill +FAILED /m);
      expect(status.out).toMatch(/^window +\S+Z \.\. \S+Z, \d+ backups, WAL continuous$/m);
      expect(status.out).toMatch(/^newest WAL +\d+ s ago in the bucket/m);
      expect(status.out).toMatch(/^last drill +drill \S+ FAILED: the archive has a WAL gap/m);
      expect(status.out).toMatch(new RegExp(`^last logical +${logicalSet} `, "m"));
    });

    test("cleanup: shows the plan, asks, deletes only what retention allows", async () => {
      // A complete logical set from 2020, far past the 7-day retention, put with the tool's own S3 client.
      const old = "20200101T000000Z";
      const put = `import importlib.machinery as m, json
ops = m.SourceFileLoader("ops", "${P.opsTool}").load_module()
s3 = ops.S3(ops.load_config(), "write")
s3.put_bytes("logical/${old}/app.dump.age", b"x")
s3.put_bytes("logical/${old}/manifest.json", json.dumps({"set": "${old}", "startedAt": 1577836800, "finishedAt": 1577836801, "databases": [{"name": "app"}]}).encode())`;
      h.run("backup", ["python3", "-c", put]);
      const asked = await run("cleanup", "--env", "dev");
      expect(asked.out).toContain(`logical sets to delete: ${old}\n`);
      expect(asked).toEqual(expect.objectContaining({ code: 1, err: "pgharbor: cleanup cancelled; nothing deleted\n" }));
      expect(h.bucketKeys(`pgharbor/dev/logical/${old}/`).length).toBe(2);
      const done = await run("cleanup", "--yes", "--env", "dev");
      expect(done).toEqual(expect.objectContaining({ code: 0, out: expect.stringContaining("cleanup done\n") }));
      expect(h.bucketKeys(`pgharbor/dev/logical/${old}/`)).toEqual([]);
      expect(h.bucketKeys(`pgharbor/dev/logical/${logicalSet}/`).length).toBe(4);
      expect(JSON.parse(readFileSync(h.hostPath(h.name("backup"), `${P.statusDir}/expire.json`), "utf8"))).toEqual(expect.objectContaining({ job: "expire", ok: true }));
      expect(await run("verify", "--env", "dev")).toEqual(expect.objectContaining({ code: 0 }));
    });
  });
});
