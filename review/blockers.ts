/**
 * Blockers: changes that lose data or the means to recover it, each naming the exact resource and the
 * safe way. Stateful resources destroyed or replaced (data volumes, the bucket, the KMS key, the cipher
 * passphrase), protection turned off, retention shortened, the RPO target loosened.
 */
import { BackupFacts, retentionText } from "./backups";
import { ContainerView } from "./files";
import { isCipherPassphrase } from "./secrets";
import { Plan, Resource } from "./terraform";
import { Blocker } from "./types";

type Draft = Omit<Blocker, "accepted">;

const label = (r: Resource) => {
  const name = r.config.name ?? r.config.bucket;
  return `${r.address}${typeof name === "string" && !name.includes("${") ? ` (${name})` : ""}`;
};

const preventsDestroy = (r: Resource | undefined) => (r?.config.lifecycle as { prevent_destroy?: boolean } | undefined)?.prevent_destroy === true;

function stateful(env: string, plan: Plan, base: Map<string, ContainerView>): Draft[] {
  const out: Draft[] = [];
  for (const c of plan.changes.values()) {
    if (c.action !== "delete" && c.action !== "replace") continue;
    const r = plan.base.get(c.address);
    if (!r || r.mode !== "managed") continue;
    const kind = c.action === "delete" ? "stateful-destroyed" : "stateful-replaced";
    const verb = c.action === "delete" ? "destroyed" : "replaced (destroyed, then created empty)";
    const why = c.changes.filter((a) => a.effect === "replace").map((a) => a.detail);
    const because = why.length ? ` because ${why.join("; ")}` : "";
    const refused = preventsDestroy(r) ? " Terraform refuses this plan as it stands (prevent_destroy): lifting that protection is part of the change." : "";
    const resource = label(r);
    const id = `${env}:${c.address}`;
    if (r.type === "docker_volume") {
      const name = String(r.config.name ?? "");
      const m = /-(primary|replica-\d+|s3)-data$/.exec(name);
      if (!m) continue;
      if (m[1] === "primary") {
        out.push({ id, kind, resource, what: `the primary's data volume is ${verb}${because}: every row of the database is on it.${refused}`, safely: "keep the volume: same construct id and name (a construct that moves needs a Terraform `moved` block). To really start over, take a full backup first (npx pgharbor backup now --env " + env + "), check it with a drill (npx pgharbor drill now), and restore into the new volume." });
      } else if (m[1] === "s3") {
        out.push({ id, kind, resource, what: `the dev S3 server's data volume is ${verb}${because}: the WAL archive and every backup are on it.${refused}`, safely: "keep the volume (same construct id and name); if the archive must move, copy the bucket's objects to the new server first and keep the old volume until a full backup and a drill pass on the new one." });
      } else {
        out.push({ id, kind, resource, what: `${m[1]}'s data volume is ${verb}${because}: the replica loses its copy and must bootstrap again from the bucket (or pg_basebackup), which takes as long as a restore.${refused}`, safely: `if ${m[1]} is meant to go, this is expected: after the apply drop its slot on the primary (SELECT pg_drop_replication_slot('pgharbor_${m[1].replace(/-/g, "_")}')). Otherwise keep its construct id and volume name.` });
      }
    } else if (r.type === "aws_s3_bucket") {
      out.push({ id, kind, resource, what: `the WAL archive bucket is ${verb}${because}: the archive, every backup and every logical dump are in it.${refused}`, safely: "keep the bucket (same name and construct id). To move the archive: create the new bucket beside the old one, copy the objects (aws s3 sync), point the stack at it, take a full backup and pass a drill there, and only then retire the old bucket." });
    } else if (r.type === "aws_kms_key") {
      out.push({ id, kind, resource, what: `the archive's KMS key is ${verb}${because}: every object in the bucket is encrypted with it; once it is deleted (after its deletion window) nothing in the bucket can be read.${refused}`, safely: "keep the key (same construct id, key_usage and spec); rotate it with enable_key_rotation instead of replacing it. If you must change keys, re-encrypt every object with the new key (S3 copy-in-place) before the old key is scheduled for deletion." });
    } else if (isCipherPassphrase(r, base)) {
      out.push({ id, kind, resource, what: `the pgBackRest cipher passphrase is ${verb}${because}: a new passphrase makes every existing backup and WAL segment in the archive unreadable.${refused}`, safely: "keep the random_password (same construct id, length and settings). To rotate it, start a new repository (a new bucket or repo path) with a fresh full backup, and keep the old passphrase, outside Terraform too, until every old backup has expired." });
    }
  }
  return out;
}

function protection(env: string, plan: Plan): Draft[] {
  const out: Draft[] = [];
  const unprotected: string[] = [];
  const forced: string[] = [];
  for (const [address, b] of plan.base) {
    const h = plan.head.get(address);
    if (!h || b.mode !== "managed") continue;
    if (preventsDestroy(b) && !preventsDestroy(h)) unprotected.push(label(b));
    if (b.type === "aws_s3_bucket" && b.config.force_destroy === false && h.config.force_destroy === true) forced.push(label(b));
    if (b.type === "aws_s3_bucket_versioning") {
      const status = (r: Resource) => JSON.stringify(r.config.versioning_configuration ?? "").includes('"Enabled"');
      if (status(b) && !status(h)) out.push({ id: `${env}:protect:${address}`, kind: "protection-off", resource: label(b), what: "bucket versioning is no longer Enabled: an overwritten or deleted backup object can no longer be recovered", safely: "keep versioning Enabled (Object Lock needs it too)." });
    }
    if (b.type === "aws_s3_bucket_public_access_block") {
      const off = ["block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"].filter((f) => b.config[f] === true && h.config[f] !== true);
      if (off.length) out.push({ id: `${env}:protect:${address}`, kind: "protection-off", resource: label(b), what: `the bucket's public access block is loosened (${off.join(", ")} off): a policy or ACL could make backups public`, safely: "keep all four public access blocks on; the archive is never meant to be public." });
    }
    if (b.type === "aws_kms_key") {
      const [o, n] = [Number(b.config.deletion_window_in_days ?? 30), Number(h.config.deletion_window_in_days ?? 30)];
      if (n < o) out.push({ id: `${env}:protect:${address}:deletion_window`, kind: "protection-off", resource: label(b), what: `the key's deletion window shrinks from ${o} to ${n} days: less time to cancel a mistaken deletion of the key every backup is encrypted with`, safely: "keep the longest deletion window (30 days)." });
    }
  }
  if (unprotected.length || forced.length) {
    const parts = [...(unprotected.length ? [`prevent_destroy is turned off on ${unprotected.length} resource${unprotected.length > 1 ? "s" : ""}: a later change or \`terraform destroy\` may delete them without Terraform refusing`] : []), ...(forced.length ? ["force_destroy is turned on for the bucket: destroying it would delete every backup in it instead of failing"] : [])];
    out.unshift({ id: `${env}:protect`, kind: "protection-off", resource: [...new Set([...unprotected, ...forced])].join(", "), what: parts.join("; "), safely: "keep protect: true for this environment; lift the protection only in the change that really means to destroy something, reviewed on its own." });
  }
  return out;
}

function lockText(l: NonNullable<BackupFacts["objectLock"]>): string {
  return `${l.mode}, ${l.days !== undefined ? `${l.days} days` : `${l.years} years`}`;
}

const lockDays = (l: BackupFacts["objectLock"]) => (l ? (l.days ?? (l.years ?? 0) * 365) : 0);

function retention(env: string, b: BackupFacts, h: BackupFacts): Draft[] {
  const out: Draft[] = [];
  if (b.objectLock && (!h.objectLock || lockDays(h.objectLock) < lockDays(b.objectLock) || (b.objectLock.mode === "COMPLIANCE" && h.objectLock.mode !== "COMPLIANCE"))) {
    out.push({
      id: `${env}:object-lock`,
      kind: "protection-off",
      resource: b.objectLock.address,
      what: `Object Lock default retention (archive.objectLock) goes from ${lockText(b.objectLock)} to ${h.objectLock ? lockText(h.objectLock) : "none"}: new backups are protected from deletion for less time (objects already written keep their lock)`,
      safely: "keep the lock at least as long as it is; lower it only together with a decision to keep fewer days of backups, reviewed on its own.",
    });
  }
  if (b.retention && h.retention) {
    const shorter = b.retention.kind === h.retention.kind ? h.retention.value < b.retention.value : true;
    if (shorter) {
      const lock = b.objectLock && h.retention.kind === "time" && lockDays(b.objectLock) > h.retention.value ? ` Object Lock keeps every object already written for ${lockDays(b.objectLock)} days regardless: expiry hides them, the bucket only frees them when their lock lapses.` : "";
      const versions = h.noncurrentDays ? ` S3 keeps what expiry deletes as noncurrent versions for ${h.noncurrentDays.days} days: recoverable by hand, not by pgBackRest.` : "";
      out.push({
        id: `${env}:retention`,
        kind: "retention-shortened",
        resource: `${b.backupContainer} (pgbackrest.conf repo1-retention-full)`,
        what: `backup retention (backup.retentionDays) goes from ${retentionText(b.retention)} to ${retentionText(h.retention)}: the next expire${h.schedules.get("expire") ? ` (\`${h.schedules.get("expire")}\` UTC)` : ""} deletes the full backups past it and the WAL only they need, so the recoverability window shrinks at once.${versions}${lock}`,
        safely: `before merging: make sure nobody needs a restore older than ${retentionText(h.retention)} (incidents under investigation, legal holds), take a full backup and pass a drill (npx pgharbor backup now --env ${env}; npx pgharbor drill now --env ${env}); then accept this blocker by its id.`,
      });
    }
  }
  if (b.logical && h.logical === null) {
    out.push({ id: `${env}:logical`, kind: "retention-shortened", resource: `${b.backupContainer} (ops.json logical)`, what: "logical backups (backup.logical) are turned off: no new dumps, the only restore path for a single table or database without a full restore", safely: "keep them on (backup.logical); if they must stop, keep the last sets until you no longer need them." });
  } else if (b.logical && h.logical && h.logical.retentionDays < b.logical.retentionDays) {
    out.push({ id: `${env}:logical-retention`, kind: "retention-shortened", resource: `${b.backupContainer} (ops.json logical.retentionDays)`, what: `logical sets (backup.logical.retentionDays) are kept ${h.logical.retentionDays} days instead of ${b.logical.retentionDays}: the next cleanup deletes the older ones`, safely: "make sure no one needs a dump older than that, then accept this blocker by its id." });
  }
  if (b.noncurrentDays && (!h.noncurrentDays || h.noncurrentDays.days < b.noncurrentDays.days)) {
    out.push({ id: `${env}:noncurrent-versions`, kind: "retention-shortened", resource: b.noncurrentDays.address, what: `deleted or overwritten objects (archive.noncurrentVersionRetentionDays) stay recoverable for ${h.noncurrentDays ? `${h.noncurrentDays.days}` : "no longer any"} days instead of ${b.noncurrentDays.days}: S3's lifecycle removes the older versions for good`, safely: "keep noncurrentVersionRetentionDays; it is the undo of an expiry or an accidental delete." });
  }
  return out;
}

function rpo(env: string, b: BackupFacts, h: BackupFacts): Draft[] {
  const reasons: string[] = [];
  if (b.rpoSeconds !== undefined && h.rpoSeconds !== undefined && h.rpoSeconds > b.rpoSeconds) reasons.push(`rpoSeconds ${b.rpoSeconds} → ${h.rpoSeconds} (primary.rpoSeconds; the RPOBreached threshold)`);
  if (b.archiveTimeoutSeconds !== undefined && h.archiveTimeoutSeconds !== undefined && h.archiveTimeoutSeconds > b.archiveTimeoutSeconds) reasons.push(`archive_timeout ${b.archiveTimeoutSeconds} → ${h.archiveTimeoutSeconds} s`);
  if (b.archiveMode === "on" && h.archiveMode !== undefined && h.archiveMode !== "on" && h.archiveMode !== "always") reasons.push(`archive_mode ${b.archiveMode} → ${h.archiveMode}`);
  if (b.primary && h.primary && b.archivePushQueueMax === undefined && h.archivePushQueueMax !== undefined) reasons.push(`WAL is dropped past ${h.archivePushQueueMax} queued while the bucket is down (archive-push-queue-max): a gap in the archive, an unbounded loss`);
  if (!reasons.length) return [];
  return [
    {
      id: `${env}:rpo`,
      kind: "rpo-loosened",
      resource: `${h.primary ?? b.primary} (postgresql.conf, pgbackrest.conf, alert rules)`,
      what: `the recovery point objective is loosened: ${reasons.join("; ")}. Losing the primary's host then loses more committed data`,
      safely: "agree the new target with the data's owners first (it is a promise to them), then accept this blocker by its id.",
    },
  ];
}

/** PostgreSQL majors of the server images in a stack (pgharbor/postgres:<major>-<hash>), by host provider. */
function serverMajors(resources: Map<string, Resource>): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of resources.values()) {
    const m = r.type === "docker_image" ? /^pgharbor\/postgres:(\d+)-/.exec(String(r.config.name ?? "")) : null;
    if (m) out.set(String(r.config.provider ?? "docker"), m[1]);
  }
  return out;
}

/**
 * A new PostgreSQL major on the same data volumes: the new server refuses the old data directory
 * (its entrypoint says so and stops), so the primary, the replicas and the backup container would
 * crash-loop, and the stanza would need an upgrade.
 */
function majorChange(env: string, plan: Plan): Draft[] {
  const [b, h] = [serverMajors(plan.base), serverMajors(plan.head)];
  const changed = [...b].filter(([provider, major]) => h.has(provider) && h.get(provider) !== major);
  if (!changed.length) return [];
  const [from, to] = [changed[0][1], h.get(changed[0][0])!];
  return [
    {
      id: `${env}:major`,
      kind: "major-upgrade",
      resource: `primary.majorVersion (the pgharbor/postgres image of ${changed.map(([p]) => p).join(", ")})`,
      what: `PostgreSQL ${from} → ${to} on the existing data volumes: a PostgreSQL ${to} server cannot start on a PostgreSQL ${from} data directory, so the primary and every replica would stop at start (their entrypoints refuse it), the backup container with them, and pgBackRest's stanza belongs to ${from}`,
      safely: `upgrade the data, not just the image: either restore a logical backup into a new environment on ${to} (npx pgharbor backup now --type logical --env ${env}, then restore it there) and move the application, or run pg_upgrade on the primary's volume with both majors' binaries, then pgbackrest stanza-upgrade, a full backup and a drill; re-bootstrap the replicas. Then accept this blocker by its id.`,
    },
  ];
}

export function blockersOf(env: string, plan: Plan, base: Map<string, ContainerView>, facts: { base: BackupFacts; head: BackupFacts }, accepted: ReadonlySet<string>): Blocker[] {
  const drafts = [...majorChange(env, plan), ...stateful(env, plan, base), ...protection(env, plan), ...retention(env, facts.base, facts.head), ...rpo(env, facts.base, facts.head)];
  const seen = new Set<string>();
  return drafts.filter((d) => (seen.has(d.id) ? false : (seen.add(d.id), true))).map((d) => ({ ...d, accepted: accepted.has(d.id) }));
}
