/**
 * The dev stack on a real Docker engine: synthesised as `cdktf synth` does, its images built from the
 * synthesised build contexts, its docker_* resources applied with the docker provider's semantics
 * (__tests__/runtime/applier.ts). Every scenario runs against the real containers; the operations CLI
 * acts through its production executor (`docker exec`). The scenarios run in order and build on each
 * other (the bucket fills up as they go).
 */
import { mkdtempSync, readFileSync, rmSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { execFileSync } from "child_process";
import { describeEngine } from "./engine";
import { AckedWriter, ageIdentity, appQuery, bucketKeys, bucketName, bucketObject, cli, deployStack, run, RuntimeStack, sleep, sql, teardown, verifiedUrl, waitFor, walSegments } from "./scenario";
import { dev, variant } from "../helpers";
import { CONTAINER_PATHS as P, PROGRAMS, STANZA } from "../../postgres-config/paths";
import { alertRules, metricsOf } from "../../monitoring-config/alerts";
import { EXPORTER_PORTS } from "../../constructs/monitoring";
import { buildStack } from "../helpers";

jest.setTimeout(600_000);

describeEngine("runtime: the dev stack on a Docker engine", () => {
  // Logical backups are encrypted to a key made for this run; its identity stays in the test's temp dir.
  const keys = mkdtempSync(join(tmpdir(), "pgharbor-age-"));
  const recipient = ageIdentity(keys, "restore.key");
  ageIdentity(keys, "stranger.key");
  let s: RuntimeStack;
  const timings: Record<string, number> = {};
  const timed = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
    const t = Date.now();
    try {
      return await f();
    } finally {
      timings[name] = Math.round((Date.now() - t) / 100) / 10;
    }
  };
  const env = () =>
    variant(dev, {
      name: "rtstack",
      pgbouncer: { ...dev.pgbouncer, port: 16432 },
      // The scenarios start from an empty bucket (a replica's pg_basebackup bootstrap first);
      // first-start.runtime.test.ts covers the default first full backup.
      backup: { retentionFullBackups: 2, retentionDays: undefined, logical: { recipients: [recipient], retentionDays: 7 }, initialFullBackup: false },
    });
  const rw = () => verifiedUrl(s, "DATABASE_URL");
  const ro = () => verifiedUrl(s, "DATABASE_READ_URL");
  const app = async (url: string, query: string) => (await appQuery(url, query)).map((r) => Object.values(r).join("|")).join("\n");
  const info = async () => JSON.parse(await run(s, "backup", ["pgbackrest", `--config=${P.pgbackrestConf}`, `--stanza=${STANZA}`, "--output=json", "info"], { user: "postgres" }))[0];
  const cronJob = async (job: string): Promise<string> => {
    const tab = await run(s, "backup", ["cat", P.crontab]);
    const line = tab.split("\n").find((l) => new RegExp(`backup-job\\.sh ${job}\\b`).test(l))!;
    return line.split(/\s+/).slice(6).join(" ");
  };
  /** A crontab job as cron runs it: as root, with cron's umask (the entrypoint's 077 at worst), output to PID 1. */
  const asCron = async (job: string) => run(s, "backup", ["sh", "-c", `umask 077; ${await cronJob(job)}`], { timeoutMs: 300_000 });
  const httpGet = async (role: string, url: string) => run(s, role, ["python3", "-c", "import sys,urllib.request;print(urllib.request.urlopen(sys.argv[1],timeout=10).read().decode())", url]);
  const promQuery = async (q: string) => JSON.parse(await httpGet("prometheus", `http://127.0.0.1:9090/api/v1/query?query=${encodeURIComponent(q)}`)).data.result as Array<{ metric: Record<string, string>; value: [number, string] }>;
  const probeMetrics = () => httpGet("rpo-probe", `http://127.0.0.1:${EXPORTER_PORTS.probe}/metrics`);
  const archiveTimeout = async () => Number(/^archive_timeout = (\d+)$/m.exec(await run(s, "primary", ["cat", P.postgresqlConf]))![1]);
  const logs = (role: string) => s.d.logs(s.name(role));

  beforeAll(async () => {
    s = await timed("apply", () => deployStack(env(), (l) => process.env.PGHARBOR_VERBOSE && console.log(l)));
  });

  afterAll(async () => {
    console.log(`runtime scenario timings (s): ${JSON.stringify(timings)}`);
    await teardown(s);
    rmSync(keys, { recursive: true, force: true });
  });

  let healthyAt = 0;
  test("the stack comes up from an empty engine: every container running and healthy", async () => {
    const names = s.d.containerNames();
    expect(names.sort()).toEqual(
      ["backup", "exporter-pgbouncer", "exporter-primary", "exporter-replica-1", "pgbouncer", "primary", "prometheus", "replica-1", "rpo-probe", "s3"].map((r) => s.name(r)).sort(),
    );
    await timed("healthy", () => s.d.waitHealthy(names, 420_000));
    healthyAt = Math.floor(Date.now() / 1000);
    for (const n of names) expect([n, await s.d.health(n)]).toEqual([n, "healthy"]);
  });

  test("uploads land as the docker provider writes them; programs come from the image", async () => {
    const stat = async (role: string, path: string) => (await run(s, role, ["stat", "-c", "%a %U:%G", path])).trim();
    expect(await stat("primary", P.postgresqlConf)).toBe("644 root:root");
    expect(await stat("primary", P.tlsKeyUpload)).toBe("600 root:root");
    expect(await stat("primary", P.tlsKey)).toBe("600 postgres:postgres");
    expect(await stat("backup", P.crontab)).toBe("644 root:root");
    expect(await stat("replica-1", PROGRAMS.replicaEntrypoint)).toBe("755 root:root");
    expect(await stat("backup", P.opsTool)).toMatch(/^777 root:root$/); // the symlink to pgharbor_ops.py
    expect(await stat("pgbouncer", `${P.pgbouncerRunDir}/userlist.txt`)).toBe("600 postgres:postgres");
  });

  test("healthchecks test the real thing as the right user, and leave no error in any log", async () => {
    await sleep(35_000); // two health intervals after healthy
    // Steady state: nothing refused, nothing failed. (At the very first deploy the replica's slot
    // creation meets the primary before the backup container has created the replication role.)
    for (const role of ["primary", "replica-1"]) {
      const bad = (await s.d.logs(s.name(role), healthyAt)).split("\n").filter((l) => /\b(FATAL|ERROR|PANIC|WARNING):/.test(l));
      expect([role, bad]).toEqual([role, []]);
    }
    expect(await s.d.logs(s.name("primary"), healthyAt)).toMatch(/connection authorized: user=postgres database=postgres application_name=pgharbor-healthcheck/);
    const bouncer = await logs("pgbouncer");
    expect(bouncer).not.toMatch(/no such user|password authentication failed|SSL required/);
    expect(bouncer).toMatch(/login attempt: db=pgbouncer user=pgharbor_monitor tls=TLSv1\.3/);
    for (const role of ["primary", "replica-1", "pgbouncer"]) {
      const inspect = (await s.d.docker.getContainer(s.name(role)).inspect()) as unknown as { State: { Health: { Log: Array<{ ExitCode: number; Output: string }> } } };
      expect([role, inspect.State.Health.Log.map((l) => l.ExitCode)]).toEqual([role, inspect.State.Health.Log.map(() => 0)]);
    }
    // What each healthcheck really tests: a primary answers as a primary, a replica as a replica.
    expect((await s.d.exec(s.name("primary"), [PROGRAMS.postgresHealthcheck, "replica"])).stdout).toMatch(/pg_is_in_recovery\(\) is f on a replica/);
  });

  test("Prometheus loads its configuration and rules, and every target is up", async () => {
    const { stack } = buildStack(env());
    expect(stack.monitoring.scrapeTargets.length).toBe(4);
    await timed("prometheus-targets", () =>
      waitFor(
        "every Prometheus target up",
        async () => {
          const t = JSON.parse(await httpGet("prometheus", "http://127.0.0.1:9090/api/v1/targets")).data.activeTargets as Array<{ health: string; scrapePool: string }>;
          return t.length === stack.monitoring.scrapeTargets.length && t.every((x) => x.health === "up");
        },
        120_000,
        2000,
      ),
    );
    const groups = JSON.parse(await httpGet("prometheus", "http://127.0.0.1:9090/api/v1/rules")).data.groups as Array<{ rules: Array<{ name: string; health: string }> }>;
    expect(groups.flatMap((g) => g.rules.map((r) => r.name)).sort()).toEqual(alertRules(stack.monitoring.alertInput).map((r) => r.alert).sort());
  });

  test("host clients reach DATABASE_URL and DATABASE_READ_URL through the published port with sslmode=verify-full", async () => {
    expect(new URL(rw()).host).toBe("localhost:16432");
    await app(rw(), "CREATE TABLE IF NOT EXISTS items (id bigint PRIMARY KEY, note text, at timestamptz DEFAULT now())");
    expect(await app(rw(), "INSERT INTO items (id, note) VALUES (1, 'via pgbouncer') RETURNING pg_is_in_recovery()")).toBe("false");
    expect(await app(ro(), "SELECT pg_is_in_recovery(), current_user")).toBe("true|app_ro");
    await expect(appQuery(ro(), "INSERT INTO items (id) VALUES (99)")).rejects.toThrow(/read-only transaction/);
    // A client that does not trust the environment's CA is refused.
    await expect(appQuery(rw().replace(/sslrootcert=[^&]+/, "sslrootcert=/etc/ssl/certs/ca-certificates.crt"), "SELECT 1")).rejects.toThrow(/self.signed|unable to (get|verify)/i);
  });

  test("topology: a committed row is on the replica within 1 s; the slot is active; replication over TLS", async () => {
    await app(rw(), "INSERT INTO items (id, note) VALUES (2, 'replicated')");
    const ms = await waitFor("row on the replica", async () => (await app(ro(), "SELECT count(*) FROM items WHERE id = 2")) === "1", 1000, 20);
    expect(ms).toBeLessThanOrEqual(1000);
    expect(await sql(s, "primary", "SELECT active FROM pg_replication_slots WHERE slot_name = 'pgharbor_replica_1'")).toBe("t");
    expect(await sql(s, "primary", "SELECT r.application_name || ':' || s.ssl || ':' || s.version FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)")).toBe("replica-1:true:TLSv1.3");
    expect(await sql(s, "replica-1", "SELECT pg_is_in_recovery()")).toBe("t");
  });

  test("archiving: a switched segment reaches the bucket within archive_timeout + 10 s, encrypted at rest", async () => {
    await timed("archiving", async () => {
      const marker = `PGHARBOR-PLAINTEXT-${Date.now()}`;
      await app(rw(), `INSERT INTO items (id, note) VALUES (3, '${marker}')`);
      const segment = await sql(s, "primary", "SELECT pg_walfile_name(pg_current_wal_lsn())");
      await sql(s, "primary", "SELECT pg_switch_wal()");
      timings["segment-in-bucket"] = (await waitFor(`segment ${segment} in the bucket`, async () => (await walSegments(s)).includes(segment), ((await archiveTimeout()) + 10) * 1000, 250)) / 1000;
      // The marker is in the local WAL in clear (so this test can fail) but in no object of the bucket.
      expect((await s.d.exec(s.name("primary"), ["grep", "-rlF", marker, `${P.dataDir}/pg_wal`], { user: "postgres" })).stdout).toMatch(/pg_wal\/[0-9A-F]{24}/);
      const leak = await s.d.exec(s.name("s3"), ["grep", "-rlF", marker, `/data/${bucketName(s)}`]);
      expect(leak.stdout).toBe("");
      expect(leak.code).toBe(1);
      // WAL is compressed too, so a missing marker alone proves little: every archived segment must be
      // pgBackRest's AES-256-CBC ciphertext (its "Salted__" header), not zstd's frame (28 b5 2f fd).
      const segments = (await bucketKeys(s, `pgharbor/${s.env.name}/archive/`)).filter((k) => /\/[0-9A-F]{24}-[0-9a-f]{40}/.test(k));
      expect(segments.length).toBeGreaterThan(0);
      for (const key of segments.slice(-3)) expect([key, (await bucketObject(s, key)).subarray(0, 8).toString("latin1")]).toEqual([key, "Salted__"]);
    });
  });

  test("backups: the crontab's full and diff jobs as cron runs them; retention; pgharbor status reads their records", async () => {
    await timed("backups", async () => {
      await asCron("full");
      await app(rw(), "INSERT INTO items (id, note) VALUES (4, 'after full 1')");
      await asCron("diff");
      let backups = (await info()).backup as Array<{ label: string; type: string }>;
      expect(backups.map((b) => b.type)).toEqual(["full", "diff"]);
      const firstFull = backups[0].label;
      await asCron("full");
      await asCron("full");
      await asCron("expire");
      backups = (await info()).backup;
      expect(backups.map((b) => b.type)).toEqual(["full", "full"]);
      expect(backups.map((b) => b.label)).not.toContain(firstFull);
      // Written under umask 077 by root: still readable by `pgharbor status`, which runs as postgres.
      expect((await run(s, "backup", ["stat", "-c", "%a %U", `${P.statusDir}/full.json`])).trim()).toBe("644 root");
      const status = await cli(s)("status");
      expect(status.out).toMatch(/^full +ok +\S+Z \(\d+ s\)$/m);
      expect(status.out).toMatch(/^diff +ok /m);
      expect(status.out).toMatch(/^expire +ok /m);
    });
  });

  test("monitoring: Prometheus scrapes every metric the alert rules read", async () => {
    await timed("monitoring", async () => {
      const { stack } = buildStack(env());
      // Drill and logical-backup metrics appear once those have run: checked in the drill test.
      const needed = [...new Set(alertRules(stack.monitoring.alertInput).flatMap((r) => metricsOf(r.expr)))].filter((m) => !/^pgharbor_(drill|logical)_/.test(m));
      await waitFor(
        "every metric the rules read in Prometheus",
        async () => {
          for (const m of needed) if ((await promQuery(m)).length === 0) throw new Error(`no series for ${m}`);
          return true;
        },
        120_000,
        3000,
      );
      expect((await promQuery('pg_up{instance="primary"}'))[0].value[1]).toBe("1");
      expect((await promQuery('pgharbor_slots_active{slot_name="pgharbor_replica_1"}'))[0].value[1]).toBe("1");
      expect((await promQuery("pgbouncer_up"))[0].value[1]).toBe("1");
      const probe = await probeMetrics();
      expect(probe).toMatch(/^pgharbor_probe_success\{check="archive"\} 1(\.0)?$/m);
      for (const target of ["primary", "replica-1", "pgbouncer", "s3"]) expect(probe).toMatch(new RegExp(`^pgharbor_probe_success\\{check="tls-${target}"\\} 1(\\.0)?$`, "m"));
      expect(probe).toMatch(/^pgharbor_backup_last_completed_timestamp_seconds\{type="full"\} \d/m);
    });
  });

  test("point-in-time recovery with the image's restore script", async () => {
    await timed("pitr", async () => {
      await app(rw(), "INSERT INTO items (id, note) VALUES (100, 'row A')");
      await sleep(1100);
      const t = await sql(s, "primary", "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'");
      await sleep(1100);
      await app(rw(), "INSERT INTO items (id, note) VALUES (101, 'row B')");
      const segment = await sql(s, "primary", "SELECT pg_walfile_name(pg_current_wal_lsn())");
      await sql(s, "primary", "SELECT pg_switch_wal()");
      await waitFor("row B's segment archived", async () => (await walSegments(s)).includes(segment), 60_000, 250);
      const into = `${P.restoreScratchDir}/pitr`;
      const r = await s.d.exec(s.name("backup"), [PROGRAMS.restore, "--to", t, "--into", into], { timeoutMs: 300_000 });
      expect({ code: r.code, err: r.stderr.slice(-1500) }).toEqual({ code: 0, err: expect.stringContaining("restore complete") });
      const sock = `${P.restoreScratchDir}/pitr-socket`;
      await run(s, "backup", ["mkdir", "-p", sock], { user: "postgres" });
      await run(s, "backup", ["pg_ctl", "-D", into, "-l", `${sock}/log`, "-o", `-c port=5433 -c listen_addresses= -c unix_socket_directories=${sock} -c hba_file=${into}/pg_hba.conf -c ssl=off`, "start"], { user: "postgres" });
      try {
        const q = async (query: string) => (await run(s, "backup", ["psql", "-X", "-At", "-h", sock, "-p", "5433", "-U", "postgres", "-d", "app", "-c", query], { user: "postgres" })).trim();
        await waitFor("restored copy promoted", async () => (await q("SELECT pg_is_in_recovery()")) === "f", 120_000, 500);
        expect(await q("SELECT string_agg(note, ',' ORDER BY id) FROM items WHERE id IN (100, 101)")).toBe("row A");
        expect(Number(await q("SELECT timeline_id FROM pg_control_checkpoint()"))).toBeGreaterThan(Number(await sql(s, "primary", "SELECT timeline_id FROM pg_control_checkpoint()")));
        expect(await q("SHOW archive_mode")).toBe("off");
      } finally {
        await s.d.exec(s.name("backup"), ["pg_ctl", "-D", into, "-m", "fast", "stop"], { user: "postgres" });
        await run(s, "backup", ["rm", "-rf", into, sock]);
      }
      // Only below the scratch volume: never the live data directory or anything else; nothing created or changed first.
      for (const into of [P.dataDir, "/var/lib/postgresql", `${P.restoreScratchDir}/../../postgresql/data`, P.restoreScratchDir]) {
        const r = await s.d.exec(s.name("backup"), [PROGRAMS.restore, "--to", "latest", "--into", into]);
        expect([into, r.code, r.stderr]).toEqual([into, 1, expect.stringMatching(/restores go below \/var\/lib\/pgharbor\/scratch \(the scratch volume\), never elsewhere/)]);
      }
      expect((await s.d.exec(s.name("backup"), ["stat", "-c", "%a", P.dataDir])).stdout.trim()).toBe("700");
      // Nor into the names restore drills and logical restores own (the next of them removes them).
      for (const name of ["drill", "drill-socket", "logical-x1"]) {
        const r = await s.d.exec(s.name("backup"), [PROGRAMS.restore, "--to", "latest", "--into", `${P.restoreScratchDir}/${name}`]);
        expect([name, r.code, r.stderr]).toEqual([name, 1, expect.stringMatching(/that name belongs to restore drills and logical restores, which remove it/)]);
      }
    });
  });

  test("a replica volume an interrupted bootstrap left half-filled is emptied and re-bootstraps from the bucket, not pg_basebackup, and streams", async () => {
    await timed("replica-from-bucket", async () => {
      const replica = s.name("replica-1");
      expect((await run(s, "replica-1", ["cat", `${P.dataDir}/.pgharbor-bootstrap`])).trim()).toBe("basebackup");
      await s.d.docker.getContainer(replica).stop({ t: 60 });
      const volume = s.d.spec(replica).volumes.find((v) => v.containerPath === P.dataDir)!.volumeName;
      // What a restore cut short leaves: PG_VERSION and part of the files, no completion marker, never started.
      const halfFilled = "cd /wipe && for f in * .[!.]*; do case $f in PG_VERSION|global) ;; *) rm -rf \"$f\" ;; esac; done; ls -A";
      expect(execFileSync("docker", ["run", "--rm", "-v", `${volume}:/wipe`, "debian:trixie-slim", "sh", "-c", halfFilled], { encoding: "utf8" }).split("\n").filter(Boolean).sort()).toEqual(["PG_VERSION", "global"]);
      const since = Math.floor(Date.now() / 1000);
      await s.d.docker.getContainer(replica).start();
      await s.d.waitHealthy([replica], 300_000);
      const log = await s.d.logs(replica, since);
      expect(log).toContain("an interrupted bootstrap left /var/lib/postgresql/data half-filled; emptying it to start again");
      expect(log).toContain("backup found in the archive: restoring as a standby from the bucket");
      expect(log).not.toContain("pg_basebackup from");
      expect((await run(s, "replica-1", ["cat", `${P.dataDir}/.pgharbor-bootstrap`])).trim()).toBe("bucket");
      await app(rw(), "INSERT INTO items (id, note) VALUES (5, 'after bucket bootstrap')");
      await waitFor("streaming again", async () => (await sql(s, "replica-1", "SELECT count(*) FROM items WHERE id = 5", "app")) === "1", 30_000, 200);
      await waitFor("slot active", async () => (await sql(s, "primary", "SELECT active FROM pg_replication_slots WHERE slot_name = 'pgharbor_replica_1'")) === "t", 30_000);
    });
  });

  const pgbench = (seconds: number) => s.d.exec(s.name("primary"), ["pgbench", "-h", P.socketDir, "-U", "postgres", "-n", "-c", "2", "-T", String(seconds), "app"], { user: "postgres", timeoutMs: (seconds + 120) * 1000 });

  test("a replica outage under write load: it catches up through its slot", async () => {
    await timed("replica-outage", async () => {
      await run(s, "primary", ["pgbench", "-i", "-s", "2", "-q", "-h", P.socketDir, "-U", "postgres", "app"], { user: "postgres", timeoutMs: 180_000 });
      const load = pgbench(35);
      await sleep(5000);
      const replica = s.d.docker.getContainer(s.name("replica-1"));
      await replica.stop({ t: 60 });
      expect(await sql(s, "primary", "SELECT active FROM pg_replication_slots WHERE slot_name = 'pgharbor_replica_1'")).toBe("f");
      await sleep(20_000);
      expect(Number(await sql(s, "primary", "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) FROM pg_replication_slots WHERE slot_name = 'pgharbor_replica_1'"))).toBeGreaterThan(0);
      const since = Math.floor(Date.now() / 1000);
      await replica.start();
      expect((await load).code).toBe(0);
      const target = await sql(s, "primary", "SELECT pg_current_wal_lsn()");
      await waitFor("replica caught up", async () => (await sql(s, "replica-1", `SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '${target}') >= 0`)) === "t", 120_000, 250);
      expect(await sql(s, "primary", "SELECT count(*) FROM pgbench_history", "app")).toBe(await sql(s, "replica-1", "SELECT count(*) FROM pgbench_history", "app"));
      const errors = (await s.d.logs(s.name("replica-1"), since)).split("\n").filter((l) => /\b(ERROR|FATAL|PANIC):/.test(l) && !/the database system is (starting up|not yet accepting connections)/.test(l));
      expect(errors).toEqual([]);
    });
  });

  test("a bucket outage under write load: writes go on, the RPO grows, archiving catches up without a gap", async () => {
    await timed("bucket-outage", async () => {
      const rpo = async () => Number(/^pgharbor_rpo_seconds (\d+)/m.exec(await probeMetrics())![1]);
      const load = pgbench(75);
      await sleep(3000);
      const underLoad = await rpo();
      timings["rpo-seconds-under-load"] = underLoad;
      expect(underLoad).toBeLessThanOrEqual((await archiveTimeout()) + 15);
      const bucket = s.d.docker.getContainer(s.name("s3"));
      await bucket.stop({ t: 10 });
      const downAt = Date.now();
      await sql(s, "primary", "SELECT pg_switch_wal()");
      await sleep(30_000);
      await app(rw(), "INSERT INTO items (id, note) VALUES (7, 'during bucket outage')");
      const switched = await sql(s, "primary", "SELECT pg_walfile_name(pg_current_wal_lsn())");
      await sql(s, "primary", "SELECT pg_switch_wal()");
      await sleep(Math.max(0, 60_000 - (Date.now() - downAt)));
      const pending = await sql(s, "primary", "SELECT pg_walfile_name(pg_current_wal_lsn())");
      expect(Number(await sql(s, "primary", "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"))).toBeGreaterThan(0);
      expect(await app(rw(), "SELECT note FROM items WHERE id = 7")).toBe("during bucket outage");
      const duringOutage = await rpo();
      timings["rpo-seconds-after-60s-outage"] = duringOutage;
      expect(duringOutage).toBeGreaterThan(underLoad + 30);
      await bucket.start();
      const backAt = Date.now();
      expect((await load).code).toBe(0);
      await sql(s, "primary", "SELECT pg_switch_wal()");
      await waitFor("archive caught up", async () => {
        const have = await walSegments(s);
        return [switched, pending].every((x) => have.includes(x));
      }, 180_000, 500);
      timings["bucket-catch-up-after-return"] = (Date.now() - backAt) / 1000;
      const w = JSON.parse(await run(s, "backup", [P.opsTool, "window"], { user: "postgres" }));
      expect(w).toEqual(expect.objectContaining({ continuous: true, missingSegments: [] }));
      const verify = await s.d.exec(s.name("backup"), ["pgbackrest", `--config=${P.pgbackrestConf}`, `--stanza=${STANZA}`, "verify"], { user: "postgres", timeoutMs: 300_000 });
      expect({ code: verify.code, out: verify.stdout + verify.stderr }).toEqual({ code: 0, out: expect.not.stringMatching(/missing|invalid|ERROR/) });
    });
  });

  /** Restarts the primary while an application writes through DATABASE_URL; every acknowledged commit must survive. */
  const underWrites = async (what: string, disrupt: () => Promise<void>) => {
    const table = `acks_${what.replace(/\W/g, "_")}`;
    await app(rw(), `CREATE TABLE ${table} (id bigint PRIMARY KEY)`);
    const writer = new AckedWriter(rw(), table).start();
    try {
      await sleep(5000);
      await disrupt();
      await s.d.waitHealthy([s.name("primary")], 300_000);
      const upAt = Date.now();
      // The segment PostgreSQL writes into once it is back: with only this light writer and the
      // heartbeat it does not fill up, so only archive_timeout can send it to the bucket. The RPO
      // target holds after the restart when it is there within rpoSeconds.
      const current = await sql(s, "primary", "SELECT pg_walfile_name(pg_current_wal_lsn())");
      // Writes resume through PgBouncer without anything redeployed.
      const resumedAfter = writer.acked.length;
      await waitFor("writes resume", () => writer.acked.length > resumedAfter + 20, 120_000, 200);
      await waitFor(`segment ${current} (current when the primary came back) in the bucket`, async () => (await walSegments(s)).some((x) => x >= current), (env().primary.rpoSeconds ?? 60) * 1000, 1000);
      timings[`${what}-segment-archived-seconds-after-restart`] = Math.round((Date.now() - upAt) / 1000);
    } finally {
      await writer.stop();
    }
    const acked = writer.acked;
    const present = new Set((await appQuery(rw(), `SELECT id FROM ${table}`)).map((r) => Number(r.id)));
    const lost = acked.filter((id) => !present.has(id));
    timings[`${what}-acked-commits`] = acked.length;
    timings[`${what}-client-errors`] = writer.errors;
    expect({ acked: acked.length > 100, lost }).toEqual({ acked: true, lost: [] });
  };

  test("kill -9 of the postmaster under write load: Docker restarts it, no committed row lost, the RPO target holds", async () => {
    await timed("kill-9", () =>
      underWrites("kill9", async () => {
        const pid = (await s.d.docker.getContainer(s.name("primary")).inspect()).State.Pid;
        process.kill(pid, "SIGKILL");
        await waitFor("the primary restarted by its restart policy", async () => (await s.d.docker.getContainer(s.name("primary")).inspect()).RestartCount > 0, 60_000, 200);
      }),
    );
    expect(await logs("primary")).toMatch(/database system was interrupted|was not properly shut down; automatic recovery in progress/);
  });

  test("docker restart of the primary under write load: no committed row lost, the RPO target holds", async () => {
    await timed("docker-restart", () =>
      underWrites("restart", async () => {
        await s.d.docker.getContainer(s.name("primary")).restart({ t: 120 });
      }),
    );
  });

  test("the rendered files are accepted by the real binaries without warnings", async () => {
    for (const role of ["primary", "replica-1"]) {
      const log = await logs(role);
      expect([role, log.match(/.*(unrecognized configuration parameter|invalid value for parameter|configuration file .* contains errors|WARNING:).*/g) ?? []]).toEqual([role, []]);
    }
    const bouncer = await logs("pgbouncer");
    expect(bouncer).toMatch(/process up: PgBouncer 1\.24/);
    expect(bouncer.match(/.*(unknown parameter|syntax error|invalid value|unknown config|ignoring).*/gi) ?? []).toEqual([]);
  });

  describe("security", () => {
    /** A libpq connection from a container of the environment's network (PgBouncer's, which has psql), straight to a server. */
    const connect = (host: string, port: number, conn: Record<string, string>, query = "SELECT 1") =>
      s.d.exec(s.name("pgbouncer"), ["psql", "-X", "-At", "-c", query], {
        env: Object.entries({ PGHOST: host, PGPORT: String(port), PGCONNECT_TIMEOUT: "5", PGSSLROOTCERT: P.pgbouncerTlsCa, ...conn }).map(([k, v]) => `${k}=${v}`),
      });
    const appPw = () => s.d.secret("primary_app-password");
    const roPw = () => s.d.secret("primary_app-ro-password");
    const primary = () => s.name("primary");

    test("a connection without TLS is rejected by PostgreSQL and by PgBouncer", async () => {
      const pg = await connect(primary(), 5432, { PGSSLMODE: "disable", PGUSER: "app", PGPASSWORD: appPw(), PGDATABASE: "app" });
      expect(pg.code).not.toBe(0);
      expect(pg.stderr).toMatch(/pg_hba.conf rejects connection .* no encryption/);
      const bouncer = await connect("localhost", 6432, { PGSSLMODE: "disable", PGUSER: "app", PGPASSWORD: appPw(), PGDATABASE: "app" });
      expect(bouncer.code).not.toBe(0);
      expect(bouncer.stderr).toMatch(/SSL required/);
    });

    test("TLS below the configured minimum (1.3) is refused", async () => {
      const r = await connect(primary(), 5432, { PGSSLMODE: "require", PGSSLMAXPROTOCOLVERSION: "TLSv1.2", PGUSER: "app", PGPASSWORD: appPw(), PGDATABASE: "app" });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/protocol version|unsupported protocol|no protocols available/i);
    });

    test("a wrong password and an md5-stored password are rejected", async () => {
      const wrong = await connect(primary(), 5432, { PGSSLMODE: "verify-full", PGUSER: "app", PGPASSWORD: "not-the-password", PGDATABASE: "app" });
      expect(wrong.stderr).toMatch(/password authentication failed for user "app"/);
      await sql(s, "primary", "SET password_encryption = 'md5'; DROP ROLE IF EXISTS legacy_md5; CREATE ROLE legacy_md5 LOGIN PASSWORD 'legacy-password-1'; GRANT CONNECT ON DATABASE app TO legacy_md5");
      expect(await sql(s, "primary", "SELECT left(rolpassword, 3) FROM pg_authid WHERE rolname = 'legacy_md5'")).toBe("md5");
      const md5 = await connect(primary(), 5432, { PGSSLMODE: "verify-full", PGUSER: "legacy_md5", PGPASSWORD: "legacy-password-1", PGDATABASE: "app" });
      expect(md5.code).not.toBe(0);
      expect(md5.stderr).toMatch(/password authentication failed for user "legacy_md5"/);
      expect((await connect("localhost", 6432, { PGSSLMODE: "verify-full", PGUSER: "legacy_md5", PGPASSWORD: "legacy-password-1", PGDATABASE: "app" })).code).not.toBe(0);
    });

    test("the read-only role cannot write, even on the primary", async () => {
      const r = await connect(primary(), 5432, { PGSSLMODE: "verify-full", PGUSER: "app_ro", PGPASSWORD: roPw(), PGDATABASE: "app" }, "INSERT INTO items (id) VALUES (999)");
      expect(r.stderr).toMatch(/read-only transaction|permission denied/);
      const forced = await connect(primary(), 5432, { PGSSLMODE: "verify-full", PGUSER: "app_ro", PGPASSWORD: roPw(), PGDATABASE: "app" }, "BEGIN READ WRITE; INSERT INTO items (id) VALUES (999); COMMIT");
      expect(forced.stderr).toMatch(/permission denied for table items/);
    });

    test.each([
      ["create roles", "CREATE ROLE intruder LOGIN", /permission denied to create role/],
      ["read password hashes", "SELECT rolpassword FROM pg_authid", /permission denied for table pg_authid/],
      ["call the pooler's lookup function", "SELECT * FROM pgharbor.user_lookup('app')", /permission denied for schema pgharbor/],
      ["connect to another database", "\\connect postgres", /permission denied for database "postgres"/],
      ["read server files", "SELECT pg_read_file('postgresql.conf')", /permission denied for function pg_read_file/],
    ])("the application role cannot %s", async (_what, query, message) => {
      const r = await connect(primary(), 5432, { PGSSLMODE: "verify-full", PGUSER: "app", PGPASSWORD: appPw(), PGDATABASE: "app" }, query);
      expect(r.stderr).toMatch(message);
    });

    test("no password reaches any container's log", async () => {
      const secrets = [
        appPw(),
        roPw(),
        ...["primary_replication-password", "primary_pooler-password", "primary_monitor-password"].map((p) => s.d.secret(p)),
        // The bucket's three identities and the cipher passphrase every backup is encrypted with.
        ...["archive_access-key", "archive_secret-key", "archive_reader-access-key", "archive_reader-secret-key", "archive_expirer-access-key", "archive_expirer-secret-key", "archive_cipher-pass"].map((p) => s.d.secret(p)),
      ];
      for (const name of s.d.containerNames()) {
        const log = await s.d.logs(name);
        for (const secret of secrets) expect([name, log.includes(secret)]).toEqual([name, false]);
      }
    });

    test("rotating the application password recreates only the backup container; the primary keeps running", async () => {
      const started = await sql(s, "primary", "SELECT pg_postmaster_start_time()");
      const old = appPw();
      const fresh = `Rotated${Date.now()}Aa1`;
      // What `terraform apply -replace=random_password.<app-password>` does: a new value, and every container referencing it replaced.
      await s.d.recreate(s.name("backup"), { env: { PGHARBOR_APP_PASSWORD: fresh } });
      await s.d.waitHealthy([s.name("backup")], 300_000);
      const via = (pw: string) => connect("localhost", 6432, { PGSSLMODE: "verify-full", PGUSER: "app", PGPASSWORD: pw, PGDATABASE: "app" }, "SELECT current_user");
      await waitFor("the new password works", async () => (await via(fresh)).stdout === "app\n", 60_000);
      expect((await via(old)).stderr).toMatch(/(password|SASL) authentication failed/);
      expect(await sql(s, "primary", "SELECT pg_postmaster_start_time()")).toBe(started);
      expect((await logs("primary")).includes(fresh)).toBe(false);
    });
  });

  describe("operations CLI, through `docker exec` as in production", () => {
    const pgharbor = (...argv: string[]) => cli(s)(...argv);

    test("window: oldest and newest restorable time, continuity", async () => {
      const r = await pgharbor("window");
      expect(r).toEqual(expect.objectContaining({ code: 0, out: expect.stringMatching(/^recoverable from \d{4}-\d\d-\d\dT.* to \d{4}-.* \(newest WAL [0-9A-F]{24}\); WAL continuous\n$/) }));
    });

    test("backups list and backup now", async () => {
      const before = await pgharbor("backups", "list");
      expect(before.code).toBe(0);
      const now = await pgharbor("backup", "now", "--type", "diff");
      expect(now).toEqual(expect.objectContaining({ code: 0, out: expect.stringMatching(/done: \d{8}-\d{6}F_\d{8}-\d{6}D \(diff\)/) }));
      const after = await pgharbor("backups", "list");
      expect(after.out.split("\n").filter(Boolean).length).toBe(before.out.split("\n").filter(Boolean).length + 1);
    });

    test("restore refuses a time outside the recoverability window, with a clear error", async () => {
      const early = await pgharbor("restore", "--to", "2001-01-01 00:00:00+00", "--into", `${P.restoreScratchDir}/too-early`);
      expect(early).toEqual(expect.objectContaining({ code: 1, err: expect.stringMatching(/^pgharbor: --to 2001-01-01 00:00:00\+00 is before the recoverability window/m) }));
      const late = await pgharbor("restore", "--to", "2099-01-01 00:00:00+00", "--into", `${P.restoreScratchDir}/too-late`);
      expect(late.err).toMatch(/is after the recoverability window .* recovery would end early without saying so/);
      expect((await s.d.exec(s.name("backup"), ["test", "-e", `${P.restoreScratchDir}/too-early`])).code).toBe(1);
    });

    test("restore --to latest into an empty directory; refuses a non-empty one", async () => {
      const into = `${P.restoreScratchDir}/latest`;
      const r = await pgharbor("restore", "--to", "latest", "--into", into);
      expect(r).toEqual(expect.objectContaining({ code: 0, out: expect.stringContaining(`restored into ${into}`) }));
      expect((await s.d.exec(s.name("backup"), ["test", "-s", `${into}/PG_VERSION`])).code).toBe(0);
      const again = await pgharbor("restore", "--to", "latest", "--into", into);
      expect(again.code).toBe(1);
      expect(again.err).toMatch(/is not empty.*refusing to restore over it/);
      await run(s, "backup", ["rm", "-rf", into]);
    });

    test("verify", async () => {
      expect(await pgharbor("verify")).toEqual(expect.objectContaining({ code: 0, out: "verify: archive and backups intact\n" }));
    });

    const tableSums = (db: string) => Promise.all(["lc_numbers", "lc_misc"].map((t) => sql(s, "primary", `SELECT count(*) || ' ' || md5(string_agg(x::text, '|' ORDER BY id)) FROM ${t} x`, db)));
    let logicalSet = "";

    test("logical backup: every database dumped, encrypted to the recipient, manifest last, uploads checksummed", async () => {
      await timed("logical-backup", async () => {
        await sql(s, "primary", `CREATE TABLE lc_numbers AS SELECT g AS id, md5(g::text) AS h, g * 1.5 AS n, timestamptz '2026-01-01' + g * interval '1 minute' AS t FROM generate_series(1, 50000) g;
          CREATE TABLE lc_misc (id int PRIMARY KEY, j jsonb, b bytea, u text);
          INSERT INTO lc_misc VALUES (1, '{"a": [1, 2, {"b": null}]}', '\\xdeadbeef', 'ünïcødé ✓'), (2, 'null', '', E'tab\\tnew\\nline'), (3, NULL, NULL, NULL);`, "app");
        const r = await pgharbor("backup", "now", "--type", "logical");
        expect(r).toEqual(expect.objectContaining({ code: 0, out: expect.stringMatching(/^done: logical set \d{8}T\d{6}Z \(app, postgres; [\d.]+ MiB encrypted\) in \d+ s\n$/) }));
        logicalSet = /logical set (\S+)/.exec(r.out)![1];
        const keysNow = (await bucketKeys(s, `pgharbor/${s.env.name}/logical/${logicalSet}/`)).map((k) => k.split("/").pop());
        expect(keysNow).toEqual(["app.dump.age", "globals.sql.age", "manifest.json", "postgres.dump.age"]);
        const object = await bucketObject(s, `pgharbor/${s.env.name}/logical/${logicalSet}/app.dump.age`);
        expect(object.subarray(0, 21).toString()).toBe("age-encryption.org/v1");
        expect(object.includes("lc_misc")).toBe(false);
        const manifest = JSON.parse((await bucketObject(s, `pgharbor/${s.env.name}/logical/${logicalSet}/manifest.json`)).toString());
        expect(manifest).toEqual(expect.objectContaining({ set: logicalSet, recipients: [recipient] }));
        // The stand-in refuses uploads without Content-MD5 or x-amz-checksum-*, as S3 does on an Object Lock bucket.
        expect(await s.d.logs(s.name("s3"))).not.toMatch(/refused PUT .*logical/);
      });
    });

    test("logical restore: one command, into a new database, equal row counts and checksums", async () => {
      await timed("logical-restore", async () => {
        const r = await pgharbor("restore", "--logical", "app", "--identity", join(keys, "restore.key"), "--into-database", "app_check");
        expect(r).toEqual(expect.objectContaining({ code: 0, out: expect.stringMatching(new RegExp(`^restored app from ${logicalSet} into database app_check`)) }));
        const original = await tableSums("app");
        expect(original[0]).toMatch(/^50000 [0-9a-f]{32}$/);
        expect(await tableSums("app_check")).toEqual(original);
        const again = await pgharbor("restore", "--logical", "app", "--identity", join(keys, "restore.key"), "--into-database", "app_check");
        expect(again.err).toMatch(/--into-database app_check already exists: a logical restore never writes into an existing database/);
        const stranger = await pgharbor("restore", "--logical", "app", "--identity", join(keys, "stranger.key"), "--into-database", "app_stranger");
        expect(stranger).toEqual(expect.objectContaining({ code: 1, err: expect.stringMatching(/age could not decrypt .*app\.dump\.age/) }));
        expect(await sql(s, "primary", "SELECT count(*) FROM pg_database WHERE datname = 'app_stranger'")).toBe("0");
        expect(await s.d.logs(s.name("backup"))).not.toMatch(/AGE-SECRET-KEY/);
        // The identity never touched a disk of the container.
        expect((await s.d.exec(s.name("backup"), ["grep", "-rl", "AGE-SECRET-KEY", P.restoreScratchDir, "/tmp", P.secretsDir])).stdout).toBe("");
      });
    });

    test("restore drill: random target in the window, verified, evidence in the bucket and on /metrics", async () => {
      await timed("drill", async () => {
        const r = await pgharbor("drill", "now");
        expect(r).toEqual(expect.objectContaining({ code: 0, out: expect.stringMatching(/^drill \S+ passed: target \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+00 from \d{8}-\d{6}F\S*, restored [\d.]+ MiB in [\d.]+ s \+ recovery [\d.]+ s = RTO [\d.]+ s; heartbeat ok, amcheck ok, dump ok\nevidence: drills\/\d{8}T\d{6}Z\.json\n$/) }));
        const name = /evidence: (\S+)/.exec(r.out)![1];
        const ev = JSON.parse((await bucketObject(s, `pgharbor/${s.env.name}/${name}`)).toString());
        expect(ev).toEqual(expect.objectContaining({ ok: true, kind: "restore-drill", environment: s.env.name }));
        expect(ev.target.epoch).toBeGreaterThanOrEqual(ev.window.oldest);
        expect(ev.target.epoch).toBeLessThanOrEqual(ev.window.newest);
        expect((await s.d.exec(s.name("backup"), ["test", "-e", `${P.restoreScratchDir}/drill`])).code).toBe(1);
        console.log(`restore drill evidence: ${JSON.stringify({ target: ev.target.time, backupSet: ev.backupSet, restoredBytes: ev.restoredBytes, restoreSeconds: ev.restoreSeconds, recoverySeconds: ev.recoverySeconds, rtoSeconds: ev.rtoSeconds })}`);
        await waitFor("drill metrics on the probe", async () => /^pgharbor_drill_last_ok 1(\.0)?$/m.test(await probeMetrics()), 90_000, 2000);
        const { stack } = buildStack(env());
        const needed = [...new Set(alertRules(stack.monitoring.alertInput).flatMap((x) => metricsOf(x.expr)))].filter((m) => /^pgharbor_(drill|logical)_/.test(m));
        const text = await probeMetrics();
        for (const m of needed) expect([m, new RegExp(`^${m} `, "m").test(text)]).toEqual([m, true]);
      });
    });

    test("a drill with a WAL segment missing from the bucket fails, says why, and records it", async () => {
      await timed("drill-missing-wal", async () => {
        const segments = (await bucketKeys(s, `pgharbor/${s.env.name}/archive/`)).filter((k) => /\/[0-9A-F]{24}-[0-9a-f]{40}/.test(k) && !k.includes(".partial"));
        const victim = segments[Math.floor(segments.length / 2)];
        const file = `/data/${bucketName(s)}/${victim}._S3rver_object`;
        await run(s, "s3", ["mv", file, `${file}.aside`]);
        try {
          const r = await pgharbor("drill", "now");
          const segment = /([0-9A-F]{24})-/.exec(victim)![1];
          expect(r.code).toBe(1);
          expect(r.out).toMatch(new RegExp(`^drill \\S+ FAILED: the archive has a WAL gap \\(missing ${segment}\\)`));
          expect(r.err).toMatch(new RegExp(`pgharbor: restore drill failed: the archive has a WAL gap \\(missing ${segment}\\)`));
          await waitFor("pgharbor_drill_last_ok 0", async () => /^pgharbor_drill_last_ok 0(\.0)?$/m.test(await probeMetrics()), 90_000, 2000);
        } finally {
          await run(s, "s3", ["mv", `${file}.aside`, file]);
        }
      });
    });

    test("drill list and status read the evidence back", async () => {
      const list = await pgharbor("drill", "list", "--last", "2");
      expect(list.out.trim().split("\n")).toEqual([expect.stringMatching(/^drill \S+ passed: /), expect.stringMatching(/^drill \S+ FAILED: the archive has a WAL gap/)]);
      const status = await pgharbor("status");
      expect(status.code).toBe(0);
      expect(status.out).toMatch(/^full +ok +\S+Z \(\d+ s\)$/m);
      expect(status.out).toMatch(/^logical +ok /m);
      expect(status.out).toMatch(/^drill +FAILED /m);
      expect(status.out).toMatch(/^window +\S+Z \.\. \S+Z, \d+ backups, WAL continuous$/m);
      expect(status.out).toMatch(new RegExp(`^last logical +${logicalSet} `, "m"));
    });

    test("cleanup: shows the plan, asks, deletes only what retention allows", async () => {
      const old = "20200101T000000Z";
      const put = `import json, sys
sys.path.insert(0, "${P.scriptsDir}")
import pgharbor_ops as ops
s3 = ops.S3(ops.load_config(), "write")
s3.put_bytes("logical/${old}/app.dump.age", b"x")
s3.put_bytes("logical/${old}/manifest.json", json.dumps({"set": "${old}", "startedAt": 1577836800, "finishedAt": 1577836801, "databases": [{"name": "app"}]}).encode())`;
      await run(s, "backup", ["python3", "-c", put], { user: "postgres" });
      const asked = await pgharbor("cleanup");
      expect(asked.out).toContain(`logical sets to delete: ${old}\n`);
      expect(asked).toEqual(expect.objectContaining({ code: 1, err: "pgharbor: cleanup cancelled; nothing deleted\n" }));
      expect((await bucketKeys(s, `pgharbor/${s.env.name}/logical/${old}/`)).length).toBe(2);
      const done = await pgharbor("cleanup", "--yes");
      expect(done).toEqual(expect.objectContaining({ code: 0, out: expect.stringContaining("cleanup done\n") }));
      expect(await bucketKeys(s, `pgharbor/${s.env.name}/logical/${old}/`)).toEqual([]);
      expect((await bucketKeys(s, `pgharbor/${s.env.name}/logical/${logicalSet}/`)).length).toBe(4);
      expect(await pgharbor("verify")).toEqual(expect.objectContaining({ code: 0 }));
    });
  });

  // Last: it stops and replaces the primary's data. The README's own commands are run, so the runbook is tested.
  test("the primary's data volume lost: the primary waits while the bucket is unreachable and refuses to start an empty cluster; the README's runbook brings it back with every archived row", async () => {
    await timed("lost-primary-volume", async () => {
      const pgharbor = (...argv: string[]) => cli(s)(...argv);
      const primary = s.name("primary");
      const wipe = (container: string) => {
        const volume = s.d.spec(container).volumes.find((v) => v.containerPath === P.dataDir)!.volumeName;
        execFileSync("docker", ["run", "--rm", "-v", `${volume}:/wipe`, "debian:trixie-slim", "find", "/wipe", "-mindepth", "1", "-delete"]);
        return volume;
      };
      // The application's URL with the password the rotation test above left in force.
      const url = new URL(rw());
      url.password = (await run(s, "backup", ["printenv", "PGHARBOR_APP_PASSWORD"])).trim();
      const appNow = (query: string) => app(url.toString(), query);
      await appNow("INSERT INTO items (id, note) VALUES (900, 'archived before the volume was lost')");
      const segment = await sql(s, "primary", "SELECT pg_walfile_name(pg_current_wal_lsn())");
      await sql(s, "primary", "SELECT pg_switch_wal()");
      await waitFor(`segment ${segment} archived`, async () => (await walSegments(s)).includes(segment), 60_000, 500);
      const timeline = Number(await sql(s, "primary", "SELECT timeline_id FROM pg_control_checkpoint()"));

      await s.d.docker.getContainer(primary).stop({ t: 120 });
      const volume = wipe(primary);
      // The bucket unreachable too: pgBackRest's info exits 0 with an error status; the primary waits.
      const bucket = s.d.docker.getContainer(s.name("s3"));
      await bucket.stop({ t: 30 });
      const down = Math.floor(Date.now() / 1000);
      await s.d.docker.getContainer(primary).start();
      await waitFor("the primary waits for the unreachable archive", async () => (await s.d.logs(primary, down)).includes("waiting for the archive (attempt 2 of 30)"), 120_000, 500);
      expect(await s.d.logs(primary, down)).not.toContain("initialising a new cluster");
      await s.d.docker.getContainer(primary).stop({ t: 30 });
      expect(execFileSync("docker", ["run", "--rm", "-v", `${volume}:/d`, "debian:trixie-slim", "ls", "-A", "/d"], { encoding: "utf8" })).toBe("");
      await bucket.start();
      await s.d.waitHealthy([s.name("s3")], 120_000);
      const since = Math.floor(Date.now() / 1000);
      await s.d.docker.getContainer(primary).start();
      await waitFor("the primary refuses the empty volume", async () => (await s.d.logs(primary, since)).includes("the data volume is empty but the archive holds this environment's backups"), 120_000, 500);
      expect(execFileSync("docker", ["run", "--rm", "-v", `${volume}:/d`, "debian:trixie-slim", "ls", "-A", "/d"], { encoding: "utf8" })).toBe("");
      expect(await s.d.logs(primary, since)).not.toContain("initialising a new cluster");

      // The runbook: restore into the scratch volume, then its shell block with this environment's names.
      const into = `${P.restoreScratchDir}/new-primary`;
      expect(await pgharbor("restore", "--to", "latest", "--into", into)).toEqual(expect.objectContaining({ code: 0 }));
      const readme = readFileSync(join(__dirname, "..", "..", "README.md"), "utf8");
      const section = readme.slice(readme.indexOf("**Make a restored copy the primary**"));
      const block = /```sh\n([\s\S]*?)```/.exec(section)![1];
      expect(block).toContain("scratch/new-primary");
      const script = block
        .split("\n")
        .filter((l) => !l.startsWith("npx pgharbor"))
        .join("\n")
        .replace(/pgharbor-dev-/g, `pgharbor-${s.env.name}-`);
      execFileSync("sh", ["-c", script], { stdio: "pipe", timeout: 300_000 });
      await s.d.waitHealthy([primary, s.name("backup"), s.name("pgbouncer")], 300_000);
      expect(await appNow("SELECT note FROM items WHERE id = 900")).toBe("archived before the volume was lost");
      expect(Number(await sql(s, "primary", "SELECT timeline_id FROM pg_control_checkpoint()"))).toBeGreaterThan(timeline);
      expect(await sql(s, "primary", "SELECT pg_is_in_recovery()")).toBe("f");
      expect(await sql(s, "primary", "SHOW archive_mode")).toBe("on");
      // The runbook's last line: a full backup and a drill on the new timeline.
      expect(await pgharbor("backup", "now", "--type", "full")).toEqual(expect.objectContaining({ code: 0 }));
      expect(await pgharbor("drill", "now")).toEqual(expect.objectContaining({ code: 0 }));

      // The replica followed the old timeline: emptied, it bootstraps from the bucket and streams again.
      const replica = s.name("replica-1");
      wipe(replica);
      await s.d.docker.getContainer(replica).start();
      await s.d.waitHealthy([replica], 300_000);
      await appNow("INSERT INTO items (id, note) VALUES (901, 'after the runbook')");
      await waitFor("the replica streams from the new primary", async () => (await sql(s, "replica-1", "SELECT count(*) FROM items WHERE id IN (900, 901)", "app")) === "2", 60_000, 500);
      await run(s, "backup", ["test", "-d", `${P.restoreScratchDir}/old-primary`]);
    });
  });
});
