/**
 * Restore-drill benchmark: how RTO grows with the database. For each pgbench scale given, a fresh dev
 * stack on the local Docker engine (applied by the runtime suites' applier; the S3 stand-in in place
 * of SeaweedFS): initialise
 * pgbench data, take a full backup, write under pgbench load for LOAD_SECONDS (WAL the drill must
 * replay), then run the backup container's drill job and print what its evidence says. The
 * container's own first full backup is off here, so the benchmark's backup runs alone.
 *
 *   npm run bench:drill -- 10 50        # pgbench scales (each 1 ≈ 15 MiB of pgbench data)
 *
 * Prints one line per scale and a table; numbers are from this machine only.
 */
import { mkdtempSync, rmSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { ageIdentity, deployStack, run, sleep, sql, teardown } from "../__tests__/runtime/scenario";
import { engineForBenchmark } from "../__tests__/runtime/engine";
import { dev, variant } from "../__tests__/helpers";
import { CONTAINER_PATHS as P, PROGRAMS } from "../postgres-config/paths";

const LOAD_SECONDS = Number(process.env.LOAD_SECONDS ?? 30);

async function one(scale: number, recipient: string) {
  const env = variant(dev, { name: "benchdrill", replicas: 0, pgbouncer: { ...dev.pgbouncer, port: 16499 }, backup: { retentionDays: 7, logical: { recipients: [recipient] }, initialFullBackup: false }, monitoring: { prometheus: false } });
  const s = await deployStack(env);
  try {
    await s.d.waitHealthy([s.name("primary"), s.name("backup")], 600_000);
    const t0 = Date.now();
    await run(s, "primary", ["pgbench", "-i", "-q", "-s", String(scale), "-h", P.socketDir, "-U", "postgres", "app"], { user: "postgres", timeoutMs: 3600_000 });
    const initSeconds = (Date.now() - t0) / 1000;
    const dbBytes = Number(await sql(s, "primary", "SELECT sum(pg_database_size(datname)) FROM pg_database"));
    const t1 = Date.now();
    await run(s, "backup", [PROGRAMS.backupJob, "full"], { timeoutMs: 3600_000 });
    const backupSeconds = (Date.now() - t1) / 1000;
    await run(s, "primary", ["pgbench", "-n", "-c", "2", "-T", String(LOAD_SECONDS), "-h", P.socketDir, "-U", "postgres", "app"], { user: "postgres", timeoutMs: 3600_000 });
    // Past the drill's 60 s margin, so the random target can fall inside the load.
    await sleep(65_000);
    await sql(s, "primary", "SELECT pg_switch_wal()");
    await sleep(5_000);
    const r = await s.d.exec(s.name("backup"), [P.opsTool, "drill"], { user: "postgres", timeoutMs: 6 * 3600_000 });
    const ev = JSON.parse(r.stdout.trim().split("\n").pop()!);
    if (!ev.ok) throw new Error(`drill failed at scale ${scale}: ${ev.error}`);
    return { scale, dbMiB: Math.round(dbBytes / 1048576), initSeconds, backupSeconds, restoredMiB: Math.round(ev.restoredBytes / 1048576), restoreSeconds: ev.restoreSeconds, recoverySeconds: ev.recoverySeconds, rtoSeconds: ev.rtoSeconds, amcheckSeconds: ev.checks.amcheck.seconds, dumpSeconds: ev.checks.dump.seconds, drillSeconds: ev.durationSeconds };
  } finally {
    await teardown(s);
  }
}

async function main() {
  const scales = process.argv.slice(2).map(Number);
  if (!scales.length || scales.some((s) => !Number.isInteger(s) || s < 1)) {
    console.error("usage: npm run bench:drill -- <pgbench scale> [<scale> …]   (whole numbers ≥ 1)");
    process.exit(2);
  }
  await engineForBenchmark();
  const keys = mkdtempSync(join(tmpdir(), "pgharbor-bench-"));
  const recipient = ageIdentity(keys, "k");
  rmSync(keys, { recursive: true, force: true });
  const rows = [];
  for (const s of scales) {
    const row = await one(s, recipient);
    console.log(JSON.stringify(row));
    rows.push(row);
  }
  console.table(rows);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
