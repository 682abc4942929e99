/**
 * Failover benchmark: how long writes stop, and what is lost, when the leader is killed and when it
 * is switched over. For each mode (async, sync) a fresh three-member cluster (primary, two replicas,
 * etcd, router, PgBouncer) on the local Docker engine, applied by the runtime suites' applier; pgbench
 * (4 clients, from the backup container through PgBouncer, restarted whenever a failover ends it)
 * keeps the cluster busy while a probe writes one row per commit through DATABASE_URL and records
 * every acknowledgement. Per run: the write gap (the longest pause between two acknowledged commits
 * from the last one before the event on) and the acknowledged ids missing afterwards.
 *
 *   npm run bench:failover            # 10 runs of each kind, both modes
 *   npm run bench:failover -- 3 sync  # 3 runs, sync mode only
 *
 * Numbers are from this machine only.
 */
import { AckedWriter, appQuery, deployStack, RuntimeStack, sleep, teardown, verifiedUrl, waitFor } from "../__tests__/runtime/scenario";
import { ClusterProbe, docker, missingIds, writeGap } from "../__tests__/runtime/cluster";
import { engineForBenchmark } from "../__tests__/runtime/engine";
import { dev, variant } from "../__tests__/helpers";
import { PATRONI_PATHS } from "../postgres-config/patroni";

type Kind = "kill" | "switchover";
interface Run {
  mode: string;
  kind: Kind;
  run: number;
  from: string;
  to: string;
  gapSeconds: number;
  acked: number;
  lost: number;
}

const MEMBERS = ["primary", "replica-1", "replica-2"];

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
}

/** pgbench through PgBouncer from the backup container, restarted after each failover ends it. */
function startPgbench(s: RuntimeStack): void {
  const loop = `while :; do PGPASSWORD="$PGHARBOR_APP_PASSWORD" PGSSLMODE=require pgbench -n -c 4 -T 3600 -h ${s.name("pgbouncer")} -p 6432 -U app app >/dev/null 2>&1; sleep 0.5; done`;
  docker("exec", "-d", "--user", "postgres", s.name("backup"), "sh", "-c", loop);
}

async function one(s: RuntimeStack, c: ClusterProbe, mode: string, kind: Kind, run: number): Promise<Run> {
  const url = verifiedUrl(s, "DATABASE_URL");
  const from = (await c.leader())!;
  // A table per run: the probe numbers its rows from 1 every time.
  const table = `probe_${mode}_${kind}_${run}`;
  // Right after a switchover PgBouncer may still answer with the old leader's cached login error
  // for a moment (server_login_retry): retried, like any application would.
  await waitFor("the probe table", async () => {
    await appQuery(url, `CREATE TABLE IF NOT EXISTS ${table} (id bigint PRIMARY KEY)`);
    return true;
  }, 60_000, 1000);
  const w = new AckedWriter(url, table, 20, { patient: true }).start();
  await waitFor("probe writes", () => w.acked.length > 50, 60_000, 200);
  const at = Date.now();
  if (kind === "kill") {
    docker("kill", s.name(from));
  } else {
    docker("exec", "--user", "postgres", s.name(from), "patronictl", "-c", PATRONI_PATHS.config, "switchover", "--leader", from, "--force");
  }
  await waitFor("a new leader", async () => {
    const l = await c.leader();
    return l !== undefined && l !== from;
  }, 120_000, 500);
  const before = w.acked.length;
  await waitFor("writes after the event", () => w.acked.length > before + 50, 120_000, 200);
  const acked = await w.stop();
  const to = (await c.leader())!;
  let lost = -1;
  await waitFor("the acknowledged ids counted", async () => {
    lost = (await missingIds(url, table, acked)).length;
    return true;
  }, 60_000, 1000);
  if (kind === "kill") docker("start", s.name(from));
  await waitFor("the cluster whole again", () => c.healthy(2), 300_000, 2000);
  return { mode, kind, run, from, to, gapSeconds: writeGap(w, at) / 1000, acked: acked.length, lost };
}

async function bench(mode: "async" | "sync", runs: number): Promise<Run[]> {
  const s = await deployStack(variant(dev, { name: "benchha", replicas: 2, failover: { mode }, pgbouncer: { ...dev.pgbouncer, port: 16498 }, backup: { drill: false, initialFullBackup: false }, monitoring: { prometheus: false } }));
  const out: Run[] = [];
  try {
    const c = new ClusterProbe(s, MEMBERS);
    await s.d.waitHealthy(MEMBERS.map((m) => s.name(m)).concat(s.name("pgbouncer"), s.name("backup")), 900_000);
    await waitFor("a leader and two streaming replicas", () => c.healthy(2), 300_000, 2000);
    docker("exec", "--user", "postgres", s.name("backup"), "sh", "-c", `PGPASSWORD="$PGHARBOR_APP_PASSWORD" PGSSLMODE=require pgbench -i -q -s 5 -h ${s.name("pgbouncer")} -p 6432 -U app app`);
    startPgbench(s);
    await sleep(5000);
    for (const kind of ["kill", "switchover"] as const) {
      for (let i = 1; i <= runs; i++) {
        const r = await one(s, c, mode, kind, i);
        console.log(JSON.stringify(r));
        out.push(r);
      }
    }
  } finally {
    await teardown(s);
  }
  return out;
}

async function main() {
  const runs = Number(process.argv[2] ?? 10);
  const modes = (process.argv[3] ? [process.argv[3]] : ["async", "sync"]) as Array<"async" | "sync">;
  if (!Number.isInteger(runs) || runs < 1 || modes.some((m) => m !== "async" && m !== "sync")) {
    console.error("usage: npm run bench:failover -- [runs (default 10)] [async|sync (default both)]");
    process.exit(2);
  }
  await engineForBenchmark();
  const all: Run[] = [];
  for (const m of modes) all.push(...(await bench(m, runs)));
  const rows = [];
  for (const m of modes) {
    for (const kind of ["kill", "switchover"] as const) {
      const rs = all.filter((r) => r.mode === m && r.kind === kind);
      const gaps = rs.map((r) => r.gapSeconds);
      rows.push({
        mode: m,
        kind,
        runs: rs.length,
        "gap p50 s": quantile(gaps, 0.5).toFixed(2),
        "gap p99 s": quantile(gaps, 0.99).toFixed(2),
        "gap max s": Math.max(...gaps).toFixed(2),
        "acknowledged": rs.reduce((a, r) => a + r.acked, 0),
        "lost": rs.reduce((a, r) => a + r.lost, 0),
      });
    }
  }
  console.table(rows);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
