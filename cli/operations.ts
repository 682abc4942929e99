/**
 * Operations on a deployed environment, through an Executor that runs a command in one of its
 * containers: `docker exec` on the environment's Docker host in production, the runtime harness in
 * tests. Same code path either way.
 */
import { CONTAINER_PATHS as P, STANZA } from "../postgres-config/paths";

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Executor {
  /** Runs argv in the container of `role` ("backup", "primary", …) of the environment. */
  exec(role: string, argv: string[], opts?: { timeoutMs?: number }): Promise<ExecResult>;
}

export class OperationError extends Error {}

const backrest = (...args: string[]) => ["pgbackrest", `--config=${P.pgbackrestConf}`, `--stanza=${STANZA}`, "--log-level-console=warn", ...args];

async function run(ex: Executor, role: string, argv: string[], timeoutMs = 600_000): Promise<string> {
  const r = await ex.exec(role, argv, { timeoutMs });
  if (r.code !== 0) throw new OperationError(`${argv.slice(0, 4).join(" ")} failed in the ${role} container (exit ${r.code}): ${(r.stderr || r.stdout).trim().split("\n").slice(-3).join(" | ")}`);
  return r.stdout;
}

export interface BackupInfo {
  label: string;
  type: "full" | "diff" | "incr";
  startedAt: number;
  finishedAt: number;
  walStart: string;
  walStop: string;
  sizeBytes: number;
}

/** pgbackrest info for the stanza ({} when the repository has none yet). */
async function stanzaInfo(ex: Executor): Promise<Record<string, any>> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return JSON.parse(await run(ex, "backup", backrest("--output=json", "info")))[0] ?? {};
}

export async function listBackups(ex: Executor): Promise<BackupInfo[]> {
  const info = await stanzaInfo(ex);
  return (info.backup ?? []).map((b: Record<string, any>) => ({ // eslint-disable-line @typescript-eslint/no-explicit-any
    label: b.label,
    type: b.type,
    startedAt: b.timestamp.start,
    finishedAt: b.timestamp.stop,
    walStart: b.archive.start,
    walStop: b.archive.stop,
    sizeBytes: b.info.size,
  }));
}

export interface RecoverabilityWindow {
  /** Earliest point a restore can reach: the end of the oldest backup (epoch seconds). */
  oldest: number;
  /** Newest point the archive holds WAL for: upload time of the newest archived segment (epoch seconds). */
  newest: number;
  newestSegment: string;
  /** Every segment from the oldest backup's first to the newest one is in the bucket. */
  continuous: boolean;
  missingSegments: string[];
}

const WAL = /(^|\/)([0-9A-F]{24})-[0-9a-f]{40}/;
const segNo = (n: string) => parseInt(n.slice(8, 16), 16) * 256 + parseInt(n.slice(16, 24), 16);

export async function recoverabilityWindow(ex: Executor): Promise<RecoverabilityWindow> {
  const info = await stanzaInfo(ex);
  const backups = info.backup ?? [];
  if (!backups.length) throw new OperationError(`the archive holds no backup yet${info.status?.message ? ` (${info.status.message})` : ""}: nothing can be restored (run \`pgharbor backup now --type full\`)`);
  const segments = new Map<string, number>();
  for (const a of info.archive ?? []) {
    const listing = JSON.parse(await run(ex, "backup", ["pgbackrest", `--config=${P.pgbackrestConf}`, "--output=json", "repo-ls", "--recurse", `archive/${STANZA}/${a.id}`]));
    for (const [name, entry] of Object.entries(listing as Record<string, { type: string; time?: number }>)) {
      const m = WAL.exec(name);
      if (m && entry.type === "file") segments.set(m[2], Math.max(segments.get(m[2]) ?? 0, entry.time ?? 0));
    }
  }
  const first = backups[0].archive.start as string;
  const timeline = first.slice(0, 8);
  const names = [...segments.keys()].filter((n) => n.startsWith(timeline) && n >= first).sort();
  const missing: string[] = [];
  for (let i = 1; i < names.length; i++) {
    for (let s = segNo(names[i - 1]) + 1; s < segNo(names[i]); s++) missing.push(`${timeline}${(Math.floor(s / 256)).toString(16).toUpperCase().padStart(8, "0")}${(s % 256).toString(16).toUpperCase().padStart(8, "0")}`);
  }
  const newestSegment = [...segments.keys()].sort().pop()!;
  return { oldest: backups[0].timestamp.stop, newest: segments.get(newestSegment)!, newestSegment, continuous: missing.length === 0, missingSegments: missing };
}

/** Parses a restore target: "latest", an LSN, or a time PostgreSQL understands (ISO 8601 with zone). */
export function parseTarget(to: string): { kind: "latest" } | { kind: "lsn"; lsn: string } | { kind: "time"; epoch: number; text: string } {
  if (to === "latest") return { kind: "latest" };
  if (/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i.test(to)) return { kind: "lsn", lsn: to };
  const epoch = Date.parse(to.replace(" ", "T").replace(/([+-]\d\d)$/, "$1:00"));
  if (Number.isNaN(epoch) || !/(Z|[+-]\d\d(:?\d\d)?)$/.test(to)) throw new OperationError(`--to "${to}" is not latest, an LSN (0/5000028) or a time with a zone ("2026-11-21 10:15:00+00")`);
  return { kind: "time", epoch: epoch / 1000, text: to };
}

/**
 * Restores into an empty directory of the backup container, refusing a time outside the
 * recoverability window (PostgreSQL would otherwise stop silently at the end of the WAL it has).
 */
export async function restore(ex: Executor, to: string, into: string): Promise<{ window: RecoverabilityWindow; into: string }> {
  const target = parseTarget(to);
  const window = await recoverabilityWindow(ex);
  if (target.kind === "time") {
    const iso = (t: number) => new Date(t * 1000).toISOString();
    if (target.epoch < window.oldest) throw new OperationError(`--to ${to} is before the recoverability window (${iso(window.oldest)} .. ${iso(window.newest)}): the oldest backup finished later`);
    if (target.epoch > window.newest) throw new OperationError(`--to ${to} is after the recoverability window (${iso(window.oldest)} .. ${iso(window.newest)}): the archive holds no WAL that late, and recovery would end early without saying so`);
  }
  if (!window.continuous) throw new OperationError(`the archive has a gap (missing ${window.missingSegments.slice(0, 3).join(", ")}…): point-in-time recovery past it is impossible`);
  await run(ex, "backup", [`${P.scriptsDir}/restore.sh`, "--to", to, "--into", into]);
  return { window, into };
}

export async function backupNow(ex: Executor, type: "full" | "diff"): Promise<BackupInfo> {
  await run(ex, "backup", [`${P.scriptsDir}/backup-job.sh`, type]);
  const all = await listBackups(ex);
  return all[all.length - 1];
}

export async function verify(ex: Executor): Promise<string> {
  return run(ex, "backup", backrest("verify"));
}
