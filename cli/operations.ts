/**
 * Operations on a deployed environment, through an Executor that runs a command in one of its
 * containers: `docker exec` on the environment's Docker host, in production and in the runtime suites
 * (which run the stack on a local Docker engine). Tests of the CLI's own logic use a fake Executor.
 */
import { CONTAINER_PATHS as P, STANZA } from "../postgres-config/paths";
import { checkRestoreDirectory, parseTarget, pgbackrestTime } from "./arguments";
import { OperationError } from "./errors";

export { OperationError } from "./errors";
export { parseTarget } from "./arguments";

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  timeoutMs?: number;
  /** Written to the command's stdin. */
  input?: string;
  /** Called with each line the command writes to stderr (progress), as it comes when the executor can. */
  onStderr?: (line: string) => void;
}

export interface Executor {
  /** Runs argv in the container of `role` ("backup", "primary", …) of the environment. */
  exec(role: string, argv: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** The container's log (stdout and stderr) of the last `sinceSeconds`. */
  logs?(role: string, sinceSeconds: number): Promise<string>;
}


/** pgbackrest argv for the stanza; console output at `level` (warn: only what went wrong). */
const backrest = (args: string[], level: "warn" | "info" = "warn") => ["pgbackrest", `--config=${P.pgbackrestConf}`, `--stanza=${STANZA}`, `--log-level-console=${level}`, ...args];

/** The last line of a program's stdout: pgharbor-ops and the jobs print their JSON result there. */
const lastLine = (stdout: string) => stdout.trim().split("\n").pop() ?? "";

async function run(ex: Executor, role: string, argv: string[], timeoutMs = 600_000, progress?: (line: string) => void): Promise<string> {
  const r = await ex.exec(role, argv, { timeoutMs, onStderr: progress });
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
  return JSON.parse(await run(ex, "backup", backrest(["--output=json", "info"])))[0] ?? {};
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
  backups: number;
}

/**
 * Runs pgharbor-ops in the backup container and returns the JSON it prints. Its progress lines
 * (stderr) go to `progress`; on failure its last error line becomes the OperationError.
 */
export async function ops<T>(ex: Executor, args: string[], o: { input?: string; progress?: (line: string) => void; timeoutMs?: number } = {}): Promise<T> {
  const r = await ex.exec("backup", [P.opsTool, ...args], { timeoutMs: o.timeoutMs ?? 600_000, input: o.input, onStderr: o.progress });
  const last = lastLine(r.stdout);
  if (r.code === 0) return JSON.parse(last) as T;
  const why = (r.stderr || r.stdout).trim().split("\n").pop()?.replace(/^\S+ pgharbor-ops: /, "") ?? "";
  throw new OperationError(`pgharbor-ops ${args[0]} failed in the backup container (exit ${r.code}): ${why}`);
}

/** Oldest and newest restorable time and WAL continuity, computed in the backup container. */
export function recoverabilityWindow(ex: Executor): Promise<RecoverabilityWindow> {
  return ops<RecoverabilityWindow>(ex, ["window"]);
}

/**
 * Restores into an empty directory of the backup container, refusing a time outside the
 * recoverability window (PostgreSQL would otherwise stop silently at the end of the WAL it has).
 */
export async function restore(ex: Executor, to: string, into: string, progress?: (line: string) => void): Promise<{ window: RecoverabilityWindow; into: string }> {
  const target = parseTarget(to);
  checkRestoreDirectory(into);
  const window = await recoverabilityWindow(ex);
  if (target.kind === "time") {
    const iso = (t: number) => new Date(t * 1000).toISOString();
    if (target.epoch < window.oldest) throw new OperationError(`--to ${to} is before the recoverability window (${iso(window.oldest)} .. ${iso(window.newest)}): the oldest backup finished later`);
    if (target.epoch > window.newest) throw new OperationError(`--to ${to} is after the recoverability window (${iso(window.oldest)} .. ${iso(window.newest)}): the archive holds no WAL that late, and recovery would end early without saying so`);
  }
  if (!window.continuous) throw new OperationError(`the archive has a gap (missing ${window.missingSegments.slice(0, 3).join(", ")}…): point-in-time recovery past it is impossible`);
  await checkRestoreDirectoryInContainer(ex, into);
  // restore.sh gets the time as pgBackRest reads it, whatever form the user wrote it in.
  await run(ex, "backup", [`${P.scriptsDir}/restore.sh`, "--to", target.kind === "time" ? pgbackrestTime(target.epoch) : to, "--into", into], 12 * 3600_000, progress);
  return { window, into };
}

/**
 * Looks at the target directory in the backup container before restore.sh touches it (restore.sh
 * creates it and sets its mode): it must not exist yet or be an empty directory, and no symbolic link
 * may lead it out of the scratch volume.
 */
export async function checkRestoreDirectoryInContainer(ex: Executor, into: string): Promise<void> {
  const scratch = P.restoreScratchDir;
  const real = await ex.exec("backup", ["realpath", "-m", "--", scratch, into]);
  const [scratchReal, intoReal] = real.stdout.trim().split("\n");
  if (real.code !== 0 || !scratchReal || intoReal !== `${scratchReal}${into.slice(scratch.length)}`) {
    throw new OperationError(`--into ${into}: a symbolic link in the backup container leads it out of the scratch volume ${scratch} (or it cannot be resolved): refusing to restore there`);
  }
  const kind = await ex.exec("backup", ["find", into, "-maxdepth", "0", "-printf", "%y"]);
  if (kind.code !== 0) {
    if (/No such file or directory/.test(kind.stderr)) return; // restore.sh creates it
    throw new OperationError(`--into ${into}: cannot be inspected in the backup container: ${kind.stderr.trim().split("\n").pop()}`);
  }
  if (kind.stdout.trim() !== "d") throw new OperationError(`--into ${into}: exists in the backup container and is not a directory: refusing to restore there`);
  const entry = await ex.exec("backup", ["find", into, "-mindepth", "1", "-maxdepth", "1", "-print", "-quit"]);
  if (entry.code !== 0 || entry.stdout.trim() !== "") throw new OperationError(`--into ${into}: is not empty in the backup container: refusing to restore over it (choose a new directory, or empty it on purpose)`);
}

export async function backupNow(ex: Executor, type: "full" | "diff", progress?: (line: string) => void): Promise<BackupInfo> {
  await run(ex, "backup", [`${P.scriptsDir}/backup-job.sh`, type], 6 * 3600_000, progress);
  const all = await listBackups(ex);
  return all[all.length - 1];
}

export interface LogicalResult {
  set: string;
  databases: string[];
  bytes: number;
  seconds: number;
}

export interface LogicalSet {
  set: string;
  complete: boolean;
  objects: number;
  bytes: number;
  startedAt?: number;
  finishedAt?: number;
  databases?: string[];
}

/** A logical backup now, through the scheduled job (so its status file records it as cron would). */
export async function logicalBackupNow(ex: Executor, progress?: (line: string) => void): Promise<LogicalResult> {
  const out = await run(ex, "backup", [`${P.scriptsDir}/backup-job.sh`, "logical"], 6 * 3600_000, progress);
  return JSON.parse(lastLine(out)) as LogicalResult;
}

export function listLogical(ex: Executor): Promise<LogicalSet[]> {
  return ops<LogicalSet[]>(ex, ["logical-list"]);
}

export interface LogicalRestoreResult {
  set: string;
  database: string;
  into: string;
  bytes: number;
  seconds: number;
}

/** One database of a logical set into a new database; the age identity travels on stdin only. */
export function restoreLogical(ex: Executor, o: { set: string; database: string; intoDatabase: string; identity: string; progress?: (line: string) => void }): Promise<LogicalRestoreResult> {
  return ops<LogicalRestoreResult>(ex, ["logical-restore", "--set", o.set, "--database", o.database, "--into-database", o.intoDatabase], { input: o.identity, progress: o.progress, timeoutMs: 6 * 3600_000 });
}

export interface DrillEvidence {
  ok: boolean;
  startedAt: number;
  finishedAt: number;
  durationSeconds: number;
  target?: { kind: "time" | "latest"; time: string; epoch: number | null };
  window?: { oldest: number; newest: number; newestSegment: string; continuous: boolean; missingSegments?: string[] };
  backupSet?: string | null;
  restoreSeconds?: number;
  recoverySeconds?: number;
  rtoSeconds?: number;
  restoredBytes?: number;
  checks: Record<string, { ok: boolean } & Record<string, unknown>>;
  error?: string;
  evidence?: string;
  evidenceError?: string;
}

/** A restore drill now, through the scheduled job; resolves with its evidence, passed or failed. */
export async function drillNow(ex: Executor, progress?: (line: string) => void): Promise<DrillEvidence> {
  const r = await ex.exec("backup", [`${P.scriptsDir}/backup-job.sh`, "drill"], { timeoutMs: 12 * 3600_000, onStderr: progress });
  const last = lastLine(r.stdout);
  if (!last.startsWith("{")) throw new OperationError(`the drill did not run (exit ${r.code}): ${(r.stderr || r.stdout).trim().split("\n").slice(-2).join(" | ")}`);
  return JSON.parse(last) as DrillEvidence;
}

export function listDrills(ex: Executor, last: number): Promise<DrillEvidence[]> {
  return ops<DrillEvidence[]>(ex, ["drill-list", "--last", String(last)]);
}

export interface JobStatus {
  job: string;
  ok: boolean;
  exitCode: number;
  startedAt: number;
  finishedAt: number;
  durationSeconds: number;
}

/** A status file pgharbor-ops could not read or parse: the job ran, but its outcome is unknown. */
export interface UnreadableStatus {
  job: string;
  /** Why, in one line ("Permission denied: /var/lib/pgharbor/status/full.json", "not JSON: …"). */
  unreadable: string;
}

export type StatusEntry = (JobStatus & Record<string, unknown>) | UnreadableStatus;

export const isUnreadable = (s: StatusEntry | undefined): s is UnreadableStatus => typeof (s as UnreadableStatus | undefined)?.unreadable === "string";

/**
 * The backup container's status files: the last outcome of every job, the last drill, the last
 * logical set. A file that exists but cannot be read comes back as an UnreadableStatus, never as absent.
 */
export function jobStatus(ex: Executor): Promise<Record<string, StatusEntry>> {
  return ops(ex, ["status"]);
}

export interface CleanupPlan {
  /** pgBackRest's dry-run report of what expiry would remove. */
  physical: string[];
  logical: string[];
  logicalKept: string[];
}

/** What `cleanup` would delete, without deleting anything. */
export async function cleanupPlan(ex: Executor): Promise<CleanupPlan> {
  const dry = await run(ex, "backup", backrest(["--dry-run", "expire"], "info"));
  const physical = dry.split("\n").filter((l) => /expire|remove/i.test(l) && !/ command (begin|end)/.test(l)).map((l) => l.replace(/^.*?(INFO|P00 +INFO): /, "").trim());
  const l = await ops<{ wouldDelete: string[]; kept: string[] }>(ex, ["logical-cleanup", "--dry-run"]);
  return { physical, logical: l.wouldDelete ?? [], logicalKept: l.kept ?? [] };
}

/** Retention now: pgBackRest expiry and logical sets past theirs, with the only credentials that may delete. */
export async function cleanup(ex: Executor, progress?: (line: string) => void): Promise<void> {
  await run(ex, "backup", [`${P.scriptsDir}/backup-job.sh`, "expire"], 3600_000, progress);
}

export async function verify(ex: Executor): Promise<string> {
  return run(ex, "backup", backrest(["verify"]));
}
