/**
 * Restore-drill benchmark: how RTO grows with the database. For each pgbench scale given, a fresh dev
 * stack on the runtime harness (real PostgreSQL, pgBackRest, S3 stand-in over HTTPS): initialise
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
import { ageIdentity, findTools, Harness } from "../__tests__/runtime/harness";
import { dev } from "../stacks/environments";
import { CONTAINER_PATHS as P } from "../postgres-config/paths";

const LOAD_SECONDS = Number(process.env.LOAD_SECONDS ?? 30);

async function one(scale: number, tools: { pgBin: string; major: number }, recipient: string) {
  const env = { ...dev, replicas: 0, primary: { ...dev.primary, majorVersion: tools.major }, backup: { retentionDays: 7, logical: { recipients: [recipient] }, initialFullBackup: false } };
  const h = new Harness(env, tools);
  try {
    await h.startArchiveAndPrimary();
    h.start("backup");
    await h.waitFor("backup container up", () => /cron stand-in/.test(h.log("backup")), 180_000, 200);
    const t0 = Date.now();
    h.run("primary", ["pgbench", "-i", "-q", "-s", String(scale), "-h", P.socketDir, "-U", "postgres", "app"], { timeoutMs: 3600_000 });
    const initSeconds = (Date.now() - t0) / 1000;
    const dbBytes = Number(h.sql("primary", "SELECT sum(pg_database_size(datname)) FROM pg_database"));
    const t1 = Date.now();
    h.run("backup", [`${P.scriptsDir}/backup-job.sh`, "full"], { timeoutMs: 3600_000 });
    const backupSeconds = (Date.now() - t1) / 1000;
    h.run("primary", ["pgbench", "-n", "-c", "2", "-T", String(LOAD_SECONDS), "-h", P.socketDir, "-U", "postgres", "app"], { timeoutMs: 3600_000 });
    // Past the drill's 60 s margin, so the random target can fall inside the load.
    await new Promise((r) => setTimeout(r, 65_000));
    h.sql("primary", "SELECT pg_switch_wal()");
    await new Promise((r) => setTimeout(r, 5_000));
    const r = h.exec("backup", [P.opsTool, "drill"], { timeoutMs: 6 * 3600_000 });
    const ev = JSON.parse(r.stdout.trim().split("\n").pop()!);
    if (!ev.ok) throw new Error(`drill failed at scale ${scale}: ${ev.error}`);
    return { scale, dbMiB: Math.round(dbBytes / 1048576), initSeconds, backupSeconds, restoredMiB: Math.round(ev.restoredBytes / 1048576), restoreSeconds: ev.restoreSeconds, recoverySeconds: ev.recoverySeconds, rtoSeconds: ev.rtoSeconds, amcheckSeconds: ev.checks.amcheck.seconds, dumpSeconds: ev.checks.dump.seconds, drillSeconds: ev.durationSeconds };
  } finally {
    await h.teardown();
  }
}

async function main() {
  const scales = process.argv.slice(2).map(Number);
  if (!scales.length || scales.some((s) => !Number.isInteger(s) || s < 1)) {
    console.error("usage: npm run bench:drill -- <pgbench scale> [<scale> …]   (whole numbers ≥ 1)");
    process.exit(2);
  }
  const t = findTools();
  if (t.missing.length) {
    console.error(`missing: ${t.missing.join(", ")} (apt-get install ${t.missing.join(" ")})`);
    process.exit(2);
  }
  const keys = mkdtempSync(join(tmpdir(), "pgharbor-bench-"));
  const recipient = ageIdentity(keys, "k");
  rmSync(keys, { recursive: true, force: true });
  const rows = [];
  for (const s of scales) {
    const row = await one(s, { pgBin: t.pgBin!, major: t.major! }, recipient);
    console.log(JSON.stringify(row));
    rows.push(row);
  }
  console.table(rows);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
