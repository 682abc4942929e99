/**
 * What an environment promises about its backups, read from the synthesised stack (so any revision
 * can be compared, whatever its environment config looked like): schedules (crontab), retention
 * (pgbackrest.conf, ops.json, the bucket's lifecycle), drills, Object Lock, the RPO target (the
 * RPOBreached alert's threshold, archive_timeout) and whether WAL may be dropped.
 */
import { ContainerView, parseAlertRules, parseCrontab, parseIni, parsePostgresqlConf, PATHS } from "./files";
import { Resource } from "./terraform";
import { BackupChange } from "./types";

export interface BackupFacts {
  readonly backupContainer?: string;
  readonly schedules: Map<string, string>;
  readonly retention?: { kind: string; value: number };
  readonly processMax?: string;
  /** undefined: no ops.json; null: logical backups off. */
  readonly logical?: { retentionDays: number; recipients: string[] } | null;
  readonly drill?: Record<string, number>;
  readonly initialFullBackup?: string;
  readonly objectLock?: { address: string; mode: string; days?: number; years?: number };
  readonly bucket?: string;
  readonly noncurrentDays?: { address: string; days: number };
  readonly rpoSeconds?: number;
  readonly archiveTimeoutSeconds?: number;
  readonly archiveMode?: string;
  readonly archivePushQueueMax?: string;
  readonly primary?: string;
}

const seconds = (v: string | undefined) => {
  const m = /^(\d+)\s*(s|min|h|d|ms)?$/.exec(v ?? "");
  if (!m) return undefined;
  const n = Number(m[1]);
  return { ms: n / 1000, s: n, min: n * 60, h: n * 3600, d: n * 86400 }[m[2] ?? "s"];
};

export function backupFacts(containers: Map<string, ContainerView>, resources: Map<string, Resource>): BackupFacts {
  const backup = [...containers.values()].find((c) => c.role === "backup");
  const primary = [...containers.values()].find((c) => c.role === "primary");
  const global = parseIni(backup?.files.get(PATHS.pgbackrestConf) ?? "").get("global");
  const kind = global?.get("repo1-retention-full-type");
  const value = Number(global?.get("repo1-retention-full"));
  let logical: BackupFacts["logical"];
  let drill: Record<string, number> | undefined;
  const ops = backup?.files.get(PATHS.opsConf);
  if (ops) {
    try {
      const doc = JSON.parse(ops) as { logical?: { retentionDays: number; recipients: string[] } | null; drill?: Record<string, number> };
      logical = doc.logical ?? null;
      drill = doc.drill;
    } catch {
      logical = undefined;
    }
  }
  const env = new Map(((backup?.config.env as string[] | undefined) ?? []).map((e) => [e.split("=")[0], e.slice(e.indexOf("=") + 1)]));
  const lock = [...resources.values()].find((r) => r.type === "aws_s3_bucket_object_lock_configuration");
  // rule and default_retention are single blocks: cdktf writes them as objects (a list is accepted too).
  const first = <T>(v: T | T[] | undefined): T | undefined => (Array.isArray(v) ? v[0] : v);
  const d = first(first(lock?.config.rule as { default_retention?: { mode: string; days?: number; years?: number } } | undefined)?.default_retention);
  const lifecycle = [...resources.values()].find((r) => r.type === "aws_s3_bucket_lifecycle_configuration");
  const nve = ((lifecycle?.config.rule as Array<{ status?: string; noncurrent_version_expiration?: Array<{ noncurrent_days?: number }> }> | undefined) ?? []).find((r) => r.status === "Enabled" && r.noncurrent_version_expiration?.length);
  const alerts = [...containers.values()].map((c) => c.files.get(PATHS.alertRules)).find((t) => t !== undefined);
  const rpo = alerts ? /pgharbor_rpo_seconds\s*>\s*(\d+)/.exec(parseAlertRules(alerts).get("RPOBreached")?.expr ?? "")?.[1] : undefined;
  const conf = primary?.files.get(PATHS.postgresqlConf);
  const params = conf === undefined ? undefined : parsePostgresqlConf(conf).params;
  const bucket = [...resources.values()].find((r) => r.type === "aws_s3_bucket");
  return {
    backupContainer: backup?.address,
    schedules: parseCrontab(backup?.files.get(PATHS.crontab) ?? ""),
    retention: kind && Number.isFinite(value) ? { kind, value } : undefined,
    processMax: global?.get("process-max"),
    logical,
    drill,
    initialFullBackup: env.get("PGHARBOR_INITIAL_FULL_BACKUP"),
    objectLock: lock && d ? { address: lock.address, mode: d.mode, days: d.days, years: d.years } : undefined,
    bucket: bucket ? String(bucket.config.bucket ?? bucket.address) : undefined,
    noncurrentDays: lifecycle && nve?.noncurrent_version_expiration?.[0]?.noncurrent_days !== undefined ? { address: lifecycle.address, days: nve.noncurrent_version_expiration[0].noncurrent_days } : undefined,
    rpoSeconds: rpo === undefined ? undefined : Number(rpo),
    archiveTimeoutSeconds: seconds(params?.get("archive_timeout")?.[1]),
    archiveMode: params?.get("archive_mode")?.[1],
    archivePushQueueMax: parseIni(primary?.files.get(PATHS.pgbackrestConf) ?? "").get("global")?.get("archive-push-queue-max"),
    primary: primary?.address,
  };
}

/** Physical retention, for a person: "35 days", "4 full backups". */
export function retentionText(r: BackupFacts["retention"]): string | null {
  if (!r) return null;
  return r.kind === "time" ? `${r.value} days` : `${r.value} full backups`;
}

const JOBS: Record<string, string> = { full: "full backups", diff: "differential backups", expire: "expiry (retention)", logical: "logical backups", drill: "restore drills" };

export function backupChanges(b: BackupFacts, h: BackupFacts): BackupChange[] {
  const out: BackupChange[] = [];
  const push = (topic: BackupChange["topic"], what: string, o: string | null | undefined, n: string | null | undefined) => {
    if ((o ?? null) !== (n ?? null)) out.push({ topic, what, old: o ?? null, new: n ?? null });
  };
  if (!b.backupContainer && !h.backupContainer) return out;
  for (const job of new Set([...b.schedules.keys(), ...h.schedules.keys()])) {
    push(job === "drill" ? "drill" : "schedule", `${JOBS[job] ?? job} schedule (cron, UTC)`, b.schedules.get(job), h.schedules.get(job));
  }
  push("retention", "full backups and their WAL kept for", retentionText(b.retention), retentionText(h.retention));
  push("other", "pgBackRest process-max for backups", b.processMax, h.processMax);
  if (b.logical !== undefined || h.logical !== undefined) {
    push("logical", "logical backups", b.logical === null ? "off" : b.logical ? "on" : null, h.logical === null ? "off" : h.logical ? "on" : null);
    push("retention", "logical sets kept for", b.logical ? `${b.logical.retentionDays} days` : null, h.logical ? `${h.logical.retentionDays} days` : null);
    push("logical", "age recipients of logical backups", b.logical ? String(b.logical.recipients.length) : null, h.logical ? String(h.logical.recipients.length) : null);
  }
  for (const k of new Set([...Object.keys(b.drill ?? {}), ...Object.keys(h.drill ?? {})])) {
    push("drill", `drill ${k}`, b.drill?.[k] === undefined ? null : String(b.drill[k]), h.drill?.[k] === undefined ? null : String(h.drill[k]));
  }
  push("other", "first full backup and drill on an empty archive (PGHARBOR_INITIAL_FULL_BACKUP)", b.initialFullBackup, h.initialFullBackup);
  const lock = (l: BackupFacts["objectLock"]) => (l ? `${l.mode}, ${l.days !== undefined ? `${l.days} days` : `${l.years} years`}` : "off");
  if (b.bucket || h.bucket) push("object-lock", "Object Lock default retention", lock(b.objectLock), lock(h.objectLock));
  push("versions", "deleted or overwritten objects kept as noncurrent versions for", b.noncurrentDays ? `${b.noncurrentDays.days} days` : null, h.noncurrentDays ? `${h.noncurrentDays.days} days` : null);
  push("rpo", "RPO target (RPOBreached threshold, seconds)", b.rpoSeconds === undefined ? null : String(b.rpoSeconds), h.rpoSeconds === undefined ? null : String(h.rpoSeconds));
  push("rpo", "archive_timeout (seconds)", b.archiveTimeoutSeconds === undefined ? null : String(b.archiveTimeoutSeconds), h.archiveTimeoutSeconds === undefined ? null : String(h.archiveTimeoutSeconds));
  push("rpo", "WAL dropped past (archive-push-queue-max)", b.archivePushQueueMax ?? (b.primary ? "never" : null), h.archivePushQueueMax ?? (h.primary ? "never" : null));
  return out;
}
