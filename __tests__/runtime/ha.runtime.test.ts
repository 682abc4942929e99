/**
 * Automatic failover on the Docker engine: an environment with `failover` (Patroni in every member,
 * one etcd, HAProxy in front of the members, PgBouncer in front of HAProxy), in synchronous mode, so
 * that "no acknowledged commit is lost" is a promise the tests can count. Every scenario writes
 * through DATABASE_URL as an application would (AckedWriter: an id is recorded only once its commit
 * was acknowledged) and then looks every acknowledged id up through DATABASE_URL.
 */
import { execFileSync } from "child_process";
import { describeEngine } from "./engine";
import { AckedWriter, appQuery, cli, deployStack, ENGINE_HOST, redeployStack, run, RuntimeStack, sleep, sql, teardown, verifiedUrl, waitFor, walSegments } from "./scenario";
import { DockerExecutor } from "../../cli/main";
import { backupNow, DrillEvidence, ops, recoverabilityWindow } from "../../cli/operations";
import { dev, variant } from "../helpers";
import { ClusterProbe, docker, errorsSeen, missingIds, writeGap } from "./cluster";

jest.setTimeout(1_800_000);


describeEngine("runtime: automatic failover with Patroni", () => {
  let s: RuntimeStack;
  const rw = () => verifiedUrl(s, "DATABASE_URL");
  const ro = () => verifiedUrl(s, "DATABASE_READ_URL");
  const members = ["primary", "replica-1", "replica-2"];

  let c: ClusterProbe;
  const leader = () => c.leader();
  const list = () => c.list();
  const healthy = (n: number) => c.healthy(n);
  const missing = (table: string, acked: number[]) => missingIds(rw(), table, acked);

  beforeAll(async () => {
    s = await deployStack(
      variant(dev, {
        name: "rtha",
        replicas: 2,
        failover: { mode: "sync" },
        pgbouncer: { ...dev.pgbouncer, port: 16436 },
        backup: { drill: false },
        monitoring: { prometheus: false },
      }),
    );
    c = new ClusterProbe(s, members);
    await s.d.waitHealthy([s.name("primary"), s.name("replica-1"), s.name("replica-2"), s.name("pgbouncer"), s.name("backup")], 900_000);
    await waitFor("a leader and two streaming replicas", () => healthy(2), 300_000, 2000);
    await appQuery(rw(), "CREATE TABLE IF NOT EXISTS acked (id bigint PRIMARY KEY, at timestamptz DEFAULT now())");
  });

  afterAll(async () => {
    await teardown(s);
  });

  test("the member named primary bootstraps and leads; both replicas stream, one of them synchronous", async () => {
    const l = await list();
    expect(l.find((m) => m.Member === "primary")).toEqual(expect.objectContaining({ Role: "Leader", State: "running", TL: 1 }));
    expect(l.filter((m) => m.Role === "Sync Standby")).toHaveLength(1);
    expect(l.filter((m) => m.State === "streaming")).toHaveLength(2);
    // The operations CLI sees the same, through patronictl in the members.
    const status = await cli(s)("cluster", "status", "--json");
    expect(status.code).toBe(0);
    expect(JSON.parse(status.out)).toEqual(expect.objectContaining({ leader: "primary", mode: expect.objectContaining({ synchronous: true }) }));
    // The router sends DATABASE_URL to the leader and DATABASE_READ_URL to a replica.
    expect(await appQuery(rw(), "SELECT pg_is_in_recovery() AS r")).toEqual([{ r: false }]);
    expect(await appQuery(ro(), "SELECT pg_is_in_recovery() AS r")).toEqual([{ r: true }]);
  });

  test("every setting of the cluster's postgresql.conf reaches every member through Patroni: none dropped, none changed", async () => {
    // The settings as the stack rendered them (the config container's postgresql.conf, which the policy pack checks).
    const conf = await run(s, "patroni-config", ["cat", "/etc/pgharbor/postgresql.conf"]);
    const wanted = new Map<string, string>();
    for (const line of conf.split("\n")) {
      const m = /^([a-z0-9_.]+) = (.*)$/.exec(line);
      if (m) wanted.set(m[1], m[2].replace(/^'(.*)'$/, "$1").replace(/''/g, "'"));
    }
    expect(wanted.size).toBeGreaterThan(40);
    for (const m of members) {
      // Patroni writes them into the data directory's postgresql.conf, or passes them on the command line.
      const rows = (await sql(s, m, "SELECT name || '=' || setting FROM pg_file_settings WHERE sourcefile LIKE '%/data/postgresql.conf' AND error IS NULL")).split("\n").filter(Boolean);
      const file = new Map(rows.map((r) => [r.slice(0, r.indexOf("=")), r.slice(r.indexOf("=") + 1)]));
      const cmdline = new Set((await sql(s, m, "SELECT name FROM pg_settings WHERE source = 'command line'")).split("\n").filter(Boolean));
      const problems: string[] = [];
      for (const [name, value] of wanted) {
        if (["listen_addresses", "port", "unix_socket_directories", "hba_file", "ident_file", "restore_command"].includes(name)) continue;
        if (cmdline.has(name)) continue;
        if (!file.has(name)) problems.push(`${name}: not written by Patroni`);
        else if (file.get(name)!.toLowerCase() !== value.toLowerCase()) problems.push(`${name}: ${file.get(name)} instead of ${value}`);
      }
      expect({ member: m, problems }).toEqual({ member: m, problems: [] });
      // The command-line ones carry the stack's values too.
      for (const name of ["max_connections", "max_wal_senders", "wal_level"]) {
        expect({ member: m, name, value: (await sql(s, m, `SELECT current_setting('${name}')`)).trim() }).toEqual({ member: m, name, value: wanted.get(name) });
      }
    }
  });

  /** Kills the leader under write load; returns the gap and who took over. */
  const killLeader = async (table: string) => {
    const old = (await leader())!;
    const w = new AckedWriter(rw(), table, 20, { patient: true }).start();
    await waitFor("writes flowing", () => w.acked.length > 50, 30_000);
    const sampler = c.sampleWritable();
    const killedAt = Date.now();
    docker("kill", s.name(old));
    const took = await waitFor("a new leader", async () => {
      const l = await leader();
      return l !== undefined && l !== old;
    }, 90_000, 500);
    const before = w.acked.length;
    await waitFor("acknowledged writes after the failover", () => w.acked.length > before + 20, 60_000, 200);
    const samples = await sampler.stop();
    const acked = await w.stop();
    const next = (await leader())!;
    return { old, next, took, gap: writeGap(w, killedAt), acked, samples, errors: w.errors, seen: errorsSeen(w, killedAt) };
  };

  test("killing the leader twice under write load: writes resume through DATABASE_URL, no acknowledged commit lost, the killed members rejoin", async () => {
    const rounds = [];
    for (let round = 1; round <= 2; round++) {
      await appQuery(rw(), `CREATE TABLE killed_${round} (id bigint PRIMARY KEY)`);
      const r = await killLeader(`killed_${round}`);
      rounds.push(r);
      console.log(`failover ${round}: ${r.old} killed, ${r.next} leads after ${(r.took / 1000).toFixed(1)} s; write gap ${(r.gap / 1000).toFixed(2)} s; ${r.acked.length} acknowledged, ${r.errors} client errors (${r.seen})`);
      expect(r.next).not.toBe(r.old);
      // Never two writable members (the killed one cannot answer at all).
      expect(r.samples.filter(([, w]) => w.length > 1)).toEqual([]);
      expect(r.gap).toBeLessThan(45_000);
      expect(await missing(`killed_${round}`, r.acked)).toEqual([]);
      // The killed member comes back as a replica of the new leader (pg_rewind) and streams.
      docker("start", s.name(r.old));
      await waitFor(`${r.old} streaming again`, async () => (await list()).some((m) => m.Member === r.old && m.State === "streaming" && m.Role !== "Leader"), 180_000, 2000);
      await waitFor("a leader and two streaming replicas", () => healthy(2), 120_000, 2000);
    }
    const timelines = (await list()).map((m) => m.TL);
    expect(new Set(timelines)).toEqual(new Set([3]));
    // The backup container follows the leader: a backup now copies the new leader's data directory.
    const leaderNow = (await leader())!;
    expect(leaderNow).not.toBe("primary");
    const backup = await backupNow(new DockerExecutor(s.env.name, ENGINE_HOST), "diff");
    expect(backup).toEqual(expect.objectContaining({ type: "diff" }));
    const followed = await s.d.exec(s.name("backup"), ["readlink", "/var/run/postgresql"]);
    expect(followed.stdout.trim()).toBe(`/var/lib/pgharbor/members/${leaderNow}/socket`);
  });

  test("a network partition of the leader: it stops taking writes before another member is promoted, never two writable", async () => {
    const old = (await leader())!;
    await appQuery(rw(), "CREATE TABLE partitioned (id bigint PRIMARY KEY)");
    const w = new AckedWriter(rw(), "partitioned", 20, { patient: true }).start();
    await waitFor("writes flowing", () => w.acked.length > 20, 30_000);
    const sampler = c.sampleWritable();
    // What the other members' waiting INSERTs wait for, once a second (the write gap's why).
    const waits: string[] = [];
    let watching = true;
    const watcher = (async () => {
      const t0 = Date.now();
      while (watching) {
        for (const m of members.filter((x) => x !== old)) {
          const seen = await sql(s, m, "SELECT coalesce(string_agg(coalesce(wait_event, 'cpu') || ' ' || round(extract(epoch FROM now() - query_start))::text || 's', ',') || ' ssn=' || current_setting('synchronous_standby_names'), '') FROM pg_stat_activity WHERE query LIKE 'INSERT INTO partitioned%' AND state = 'active'").catch(() => "");
          if (seen.trim()) waits.push(`+${((Date.now() - t0) / 1000).toFixed(0)} s ${m}: ${seen.trim()}`);
        }
        await sleep(1000);
      }
    })();
    const network = `pgharbor-${s.env.name}`;
    const ip = docker("inspect", "-f", `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, s.name(old));
    const cutAt = Date.now();
    docker("network", "disconnect", network, s.name(old));
    try {
      await waitFor("another leader", async () => {
        const l = await leader();
        return l !== undefined && l !== old;
      }, 90_000, 500);
      const before = w.acked.length;
      await waitFor("acknowledged writes after the partition", () => w.acked.length > before + 20, 60_000, 200);
    } finally {
      // Back with its fixed address (a real partition keeps it; `network connect` alone would pick a new one).
      docker("network", "connect", "--alias", s.name(old), "--ip", ip, network, s.name(old));
    }
    const samples = await sampler.stop();
    watching = false;
    await watcher;
    const acked = await w.stop();
    // The old leader answers over its own socket (the cut is of its network): "stopped" is its own
    // answer, never a sample it did not answer.
    const oldStopped = samples.find(([at, m, silent]) => at > cutAt && !m.includes(old) && !silent.includes(old));
    const otherWritable = samples.find(([, m]) => m.some((x) => x !== old));
    console.log(`partition: ${old} stopped taking writes ${oldStopped ? ((oldStopped[0] - cutAt) / 1000).toFixed(1) : "?"} s after the cut; another member writable at ${otherWritable ? ((otherWritable[0] - cutAt) / 1000).toFixed(1) : "?"} s; write gap ${(writeGap(w, cutAt) / 1000).toFixed(2)} s; the application saw: ${errorsSeen(w, cutAt)}; INSERTs waiting on the others: ${waits.slice(0, 12).join("; ") || "none"}`);
    if (writeGap(w, cutAt) > 30_000) {
      // Why writes through PgBouncer resumed so long after another member took them: its log, and the router's.
      const since = String(Math.floor(cutAt / 1000) - 1);
      for (const role of ["pgbouncer", "router"]) {
        const out = execFileSync("sh", ["-c", `docker logs --since ${since} ${s.name(role)} 2>&1`], { encoding: "utf8", maxBuffer: 64 << 20 });
        const lines = out.split("\n").filter((l) => !/healthcheck|pgharbor_monitor|stats|LOG C-.*(login attempt|closing because: client close request)/.test(l)).slice(0, 60);
        console.log(`${role} log from the cut on:\n${lines.join("\n")}`);
      }
    }
    expect(samples.filter(([, m]) => m.length > 1)).toEqual([]);
    expect(oldStopped).toBeDefined();
    expect(otherWritable).toBeDefined();
    expect(oldStopped![0]).toBeLessThan(otherWritable![0]);
    expect(await missing("partitioned", acked)).toEqual([]);
    await waitFor(`${old} rejoined as a replica`, async () => (await list()).some((m) => m.Member === old && m.State === "streaming"), 180_000, 2000);
    await waitFor("a leader and two streaming replicas", () => healthy(2), 120_000, 2000);
  });

  test("losing a replica: the read-only pool drops it and reads continue; writes continue", async () => {
    const l = (await leader())!;
    const victim = members.find((m) => m !== l)!;
    docker("kill", s.name(victim));
    try {
      // The router notices within two failed checks (1 s apart); from then on every new read
      // connection lands on the other replica.
      const took = await waitFor("a read through DATABASE_READ_URL", async () => (await appQuery(ro(), "SELECT pg_is_in_recovery() AS r"))[0].r === true, 20_000, 500);
      console.log(`replica ${victim} killed: reads served again after ${(took / 1000).toFixed(1)} s`);
      for (let i = 0; i < 6; i++) expect(await appQuery(ro(), "SELECT pg_is_in_recovery() AS r")).toEqual([{ r: true }]);
      await appQuery(rw(), "CREATE TABLE after_replica_loss (id int)");
    } finally {
      docker("start", s.name(victim));
    }
    await waitFor("a leader and two streaming replicas", () => healthy(2), 180_000, 2000);
  });

  test("sync mode, every standby lost: writes go on unprotected (not strict) within seconds, and the standbys rejoin", async () => {
    const l = (await leader())!;
    const standbys = members.filter((m) => m !== l);
    await appQuery(rw(), "CREATE TABLE unprotected (id bigint PRIMARY KEY)");
    const w = new AckedWriter(rw(), "unprotected", 20, { patient: true }).start();
    await waitFor("writes flowing", () => w.acked.length > 20, 30_000);
    const at = Date.now();
    for (const m of standbys) docker("kill", s.name(m));
    try {
      const before = w.acked.length;
      await waitFor("acknowledged writes without any standby", () => w.acked.length > before + 20, 60_000, 200);
      const acked = await w.stop();
      const gap = writeGap(w, at);
      console.log(`every standby killed: writes went on after ${(gap / 1000).toFixed(2)} s (Patroni dropped the synchronous standby)`);
      expect(gap).toBeLessThan(20_000);
      expect(await missing("unprotected", acked)).toEqual([]);
    } finally {
      for (const m of standbys) docker("start", s.name(m));
    }
    await waitFor("a leader and two streaming replicas", () => healthy(2), 180_000, 2000);
    await waitFor("a synchronous standby again", async () => (await list()).some((m) => m.Role === "Sync Standby"), 60_000, 2000);
  });

  test("a planned switchover under write load (pgharbor cluster switchover): a gap of a few seconds, nothing lost", async () => {
    const pgharbor = cli(s, true);
    await appQuery(rw(), "CREATE TABLE switched (id bigint PRIMARY KEY)");
    const w = new AckedWriter(rw(), "switched", 20, { patient: true }).start();
    await waitFor("writes flowing", () => w.acked.length > 20, 30_000);
    const from = (await leader())!;
    const at = Date.now();
    // Synchronous mode: Patroni hands over to the synchronous standby (only it is sure to hold every commit).
    const r = await pgharbor("cluster", "switchover", "--yes");
    expect(r).toEqual(expect.objectContaining({ code: 0 }));
    console.log(r.out.trim());
    await waitFor("another leader", async () => {
      const l = await leader();
      return l !== undefined && l !== from;
    }, 60_000, 500);
    const before = w.acked.length;
    await waitFor("acknowledged writes after the switchover", () => w.acked.length > before + 20, 60_000, 200);
    const acked = await w.stop();
    const gap = writeGap(w, at);
    console.log(`switchover: write gap ${(gap / 1000).toFixed(2)} s, ${w.errors} client errors (${errorsSeen(w, at)})`);
    expect(gap).toBeLessThan(10_000);
    expect(await missing("switched", acked)).toEqual([]);
    await waitFor("a leader and two streaming replicas", () => healthy(2), 120_000, 2000);
  });

  test("archiving followed the leader across every timeline: the archive holds each one, WAL is continuous, a drill restores across the switches", async () => {
    const ex = new DockerExecutor(s.env.name, ENGINE_HOST);
    // A point after the last switch, then the segment holding it closed and archived by the leader.
    await sleep(2000);
    const target = new Date(Date.now() - 1000);
    await appQuery(rw(), "INSERT INTO switched VALUES (-2)");
    await sql(s, (await leader())!, "SELECT pg_switch_wal()");
    // Two kills, a partition and a switchover: timeline 5, and every one of them archived.
    const tl = Math.max(...(await list()).map((m) => m.TL ?? 0));
    expect(tl).toBe(5);
    const wanted = Array.from({ length: tl }, (_x, i) => (i + 1).toString(16).toUpperCase().padStart(8, "0"));
    await waitFor("segments of every timeline in the bucket", async () => {
      const tls = new Set((await walSegments(s)).map((seg) => seg.slice(0, 8)));
      return wanted.every((t) => tls.has(t));
    }, 120_000, 2000);
    await waitFor("the archive past the target", async () => (await recoverabilityWindow(ex)).newest > target.getTime() / 1000 + 1, 120_000, 3000);
    const win = await recoverabilityWindow(ex);
    expect(win).toEqual(expect.objectContaining({ continuous: true, missingSegments: [] }));
    // The newest backup before the target is the one taken on timeline 3 after the second failover:
    // restoring to the target replays the partition's and the switchover's timeline switches.
    const drill = await ops<DrillEvidence>(ex, ["drill", "--target", target.toISOString()], { timeoutMs: 900_000 });
    expect(drill.error).toBeUndefined();
    expect(drill.ok).toBe(true);
    expect(drill.checks.heartbeat).toEqual(expect.objectContaining({ ok: true }));
    const info = JSON.parse(await run(s, "backup", ["pgbackrest", "--config=/etc/pgbackrest/pgbackrest.conf", "--stanza=pgharbor", "--output=json", "info"], { user: "postgres" }))[0];
    const set = info.backup.find((b: { label: string }) => b.label === drill.backupSet);
    expect(parseInt(set.archive.start.slice(0, 8), 16)).toBeLessThan(tl);
  });

  test("a change of settings, deployed: only the config container is replaced; Patroni reloads work_mem everywhere and reports shared_buffers as a pending restart until `cluster restart`", async () => {
    const setting = async (m: string, name: string) => (await sql(s, m, `SELECT current_setting('${name}')`)).trim();
    const before = await setting("primary", "shared_buffers");
    expect(before).not.toBe("160MB");
    const changed = variant(s.env, { primary: { ...s.env.primary, parameters: { ...(s.env.primary?.parameters ?? {}), work_mem: "12MB", shared_buffers: "160MB" } } });
    const r = await redeployStack(s, changed);
    expect(r.created).toEqual([]);
    expect(r.deleted).toEqual([]);
    expect(r.replaced).toHaveLength(1);
    expect(r.replaced[0]).toMatch(/patroni-config/);
    await s.d.waitHealthy([s.name("patroni-config")], 120_000);
    // A reloadable setting: every member, without a restart.
    await waitFor("work_mem reloaded on every member", async () => {
      for (const m of members) if ((await setting(m, "work_mem")) !== "12MB") return false;
      return true;
    }, 60_000, 1000);
    // A setting that needs a restart: pending on every member, applied by nobody yet.
    await waitFor("shared_buffers pending on every member", async () => (await list()).filter((m) => m["Pending restart"] === "*").length === members.length, 60_000, 1000);
    const pending = (await list()).find((m) => m.Member === "primary")!;
    console.log(`pending on primary: ${pending["Pending restart reason"]}`);
    expect(pending["Pending restart reason"]).toMatch(/shared_buffers/);
    for (const m of members) expect(await setting(m, "shared_buffers")).toBe(before);
    // The runbook's order: the replicas, then the leader.
    const pgharbor = cli(s, true);
    const l = (await leader())!;
    for (const m of [...members.filter((x) => x !== l), l]) {
      const res = await pgharbor("cluster", "restart", m, "--pending");
      expect(res).toEqual(expect.objectContaining({ code: 0 }));
      await waitFor(`${m} restarted with 160MB`, async () => (await setting(m, "shared_buffers").catch(() => "")) === "160MB", 120_000, 1000);
    }
    await waitFor("nothing pending", async () => (await list()).every((m) => !m["Pending restart"]), 60_000, 1000);
    await waitFor("a leader and two streaming replicas", () => healthy(2), 120_000, 2000);
  });
});
