import { literal, unliteral } from "../constructs/terraform-text";
import { review, Review } from "../review/review";
import { renderMarkdown, renderText } from "../review/render";
import { clone, dev, Json, prod, staging, synthEnv, variant } from "./helpers";
import type { EnvironmentConfig } from "../stacks/environments";

/** The synthesised JSON of each unchanged environment, shared by every case (synth is deterministic). */
const BASE: Record<string, Json> = { dev: synthEnv(dev), staging: synthEnv(staging), prod: synthEnv(prod) };
const ENVS: Record<string, EnvironmentConfig> = { dev, staging, prod };

type Mutation = (json: Json) => void;

/** A docker_container of a stack, by the part of its name after pgharbor-<env>-. */
function container(json: Json, short: string): Record<string, unknown> {
  const c = Object.values(json.resource!.docker_container).find((x) => /^pgharbor-[a-z]+-(.+)$/.exec(String(x.name))?.[1] === short);
  if (!c) throw new Error(`no container ${short}`);
  return c;
}

/** Rewrites the file uploaded at `path` (as it lands on disk) in every container that has it. */
function editFile(json: Json, path: string, edit: (text: string) => string): void {
  for (const c of Object.values(json.resource!.docker_container)) {
    for (const u of (c.upload as Array<{ file: string; content: string }>) ?? []) if (u.file === path) u.content = literal(edit(unliteral(u.content)));
  }
}

/** The resource (or data source) of `type` whose name (the Terraform address's second part) matches. */
function resource(json: Json, type: string, name: RegExp): Record<string, unknown> {
  const r = Object.entries(json.resource![type] ?? json.data![type] ?? {}).find(([k]) => name.test(k))?.[1];
  if (!r) throw new Error(`no ${type} named like ${name}`);
  return r;
}

function reviewOf(env: string, head: EnvironmentConfig | Mutation, accept: string[] = []): Review {
  const headJson = typeof head === "function" ? (() => {
    const j = clone(BASE[env]);
    head(j);
    return j;
  })() : synthEnv(head);
  return review({ label: "main", stacks: { [env]: BASE[env] } }, { label: "working tree", stacks: { [env]: headJson } }, { accept });
}

const with_ = (env: string, patch: Record<string, unknown>) => variant(ENVS[env], patch);

interface Case {
  /** The kind of change. */
  readonly kind: string;
  readonly env: string;
  readonly head: EnvironmentConfig | Mutation;
  /** A line the text review must contain. */
  readonly line: RegExp;
  readonly blocker: boolean;
}

const CASES: Case[] = [
  // Downtime: replaced or restarted containers, and why.
  { kind: "memory bump: the primary restarts", env: "prod", head: with_("prod", { primary: { ...prod.primary, memoryMiB: 24576 } }), line: /pgharbor-prod-primary replaced: the primary restarts: writes stop for up to about \d+ s/, blocker: false },
  { kind: "memory bump: why", env: "prod", head: with_("prod", { primary: { ...prod.primary, memoryMiB: 24576 } }), line: /why: postgresql\.conf changed \(shared_buffers, effective_cache_size, work_mem, maintenance_work_mem\); memory limit 16384 → 24576 MiB; shm_size 4096 → 6144 MiB/, blocker: false },
  { kind: "a PostgreSQL major change on the same data volumes", env: "dev", head: with_("dev", { primary: { ...dev.primary, majorVersion: 16 } }), line: /BLOCKER .*dev:major.*PostgreSQL 17 → 16 on the existing data volumes/, blocker: true },
  { kind: "new replica", env: "dev", head: with_("dev", { replicas: 2 }), line: /pgharbor-dev-replica-2 new: a new replica: it restores from the bucket/, blocker: false },
  { kind: "new replica: PgBouncer restarts, every client reconnects", env: "dev", head: with_("dev", { replicas: 2 }), line: /pgharbor-dev-pgbouncer replaced: PgBouncer restarts: transactions in flight finish \(safe shutdown\), then every client connection is closed and must reconnect/, blocker: false },
  { kind: "image rebuilt", env: "dev", head: (j) => {
      const img = resource(j, "docker_image", /_PostgresImage17_image_/);
      img.name = "pgharbor/postgres:17-0123456789abcdef";
      img.triggers = { context_sha256: "0123456789abcdef" };
    }, line: /image rebuilt: pgharbor\/postgres:17-[0-9a-f]{16} → pgharbor\/postgres:17-0123456789abcdef/, blocker: false },
  { kind: "an uploaded file's mode", env: "dev", head: (j) => ((container(j, "primary").upload as Array<{ file: string; permissions: string }>).find((u) => u.file.endsWith("/pg_hba.conf"))!.permissions = "0600"), line: /pgharbor-dev-primary replaced: .*\n\s+why: pg_hba\.conf permissions 0644 → 0600/, blocker: false },
  { kind: "env changes the backup container", env: "dev", head: with_("dev", { backup: { ...dev.backup, initialFullBackup: false } }), line: /pgharbor-dev-backup replaced: no database downtime.*\n\s+why: PGHARBOR_INITIAL_FULL_BACKUP 1 → 0/, blocker: false },
  { kind: "limits: memory of PgBouncer is updated live", env: "dev", head: with_("dev", { pgbouncer: { ...dev.pgbouncer, memoryMiB: 512 } }), line: /pgharbor-dev-pgbouncer updated in place: no restart: Docker changes it on the running container\n\s+why: memory limit 256 → 512 MiB \(docker update, no restart\)/, blocker: false },
  { kind: "limits: a memory raise docker update refuses", env: "dev", head: with_("dev", { pgbouncer: { ...dev.pgbouncer, memoryMiB: 1024 } }), line: /memory limit 256 → 1024 MiB \(docker update, no restart\): Docker will refuse it \("Memory limit should be smaller than already set memoryswap limit", the container's being 512 MiB\) and the apply fails; replace the container instead \(terraform apply -replace=docker_container\.pgbouncer_container_[0-9A-F]+\)/, blocker: false },
  { kind: "limits: a CPU limit the provider never applies", env: "dev", head: with_("dev", { primary: { ...dev.primary, cpus: 2 } }), line: /cpu_quota 100000 → 200000: recorded in Terraform's state only, the running container keeps the old value until it is next replaced/, blocker: false },
  { kind: "replica removed: its slot stays", env: "prod", head: with_("prod", { replicas: 1 }), line: /pgharbor-prod-replica-2 removed: replica-2 stops for good\. Its slot pgharbor_replica_2 stays on the primary/, blocker: true },

  // PostgreSQL settings: old → new and what applying it needs (pg_settings.context of the major).
  { kind: "postmaster setting", env: "dev", head: with_("dev", { primary: { ...dev.primary, parameters: { max_locks_per_transaction: 128 } } }), line: /max_locks_per_transaction unset → 128 on primary, replica-1: needs restart \(context postmaster\); this change: restart \(container replaced\)/, blocker: false },
  { kind: "sighup setting: an avoidable restart", env: "dev", head: with_("dev", { primary: { ...dev.primary, parameters: { autovacuum_naptime: "30s" } } }), line: /avoidable: every change here takes a reload \(autovacuum_naptime\), but the docker provider replaces a container whenever an uploaded file changes/, blocker: false },
  { kind: "sighup setting: needs a reload", env: "dev", head: with_("dev", { primary: { ...dev.primary, parameters: { autovacuum_naptime: "30s" } } }), line: /autovacuum_naptime unset → 30s on primary, replica-1: needs reload \(context sighup\); this change: restart \(container replaced\)/, blocker: false },
  { kind: "user setting", env: "dev", head: with_("dev", { primary: { ...dev.primary, parameters: { default_statistics_target: 200 } } }), line: /default_statistics_target unset → 200 on primary, replica-1: needs reload \(context user\)/, blocker: false },
  { kind: "superuser-only setting", env: "dev", head: with_("dev", { primary: { ...dev.primary, parameters: { deadlock_timeout: "2s" } } }), line: /deadlock_timeout unset → 2s on primary, replica-1: needs reload; superuser-only \(context superuser\)/, blocker: false },
  { kind: "new-sessions-only setting", env: "dev", head: (j) => editFile(j, "/etc/postgresql/postgresql.conf", (t) => t.replace("log_disconnections = 'on'", "log_disconnections = 'off'")), line: /log_disconnections on → off on primary, replica-1: needs reload; new sessions only \(context superuser-backend\)/, blocker: false },

  // PgBouncer settings: reload vs restart (SHOW CONFIG's changeable).
  { kind: "PgBouncer setting that reloads", env: "dev", head: with_("dev", { pgbouncer: { ...dev.pgbouncer, defaultPoolSize: 15 } }), line: /default_pool_size 10 → 15 on pgbouncer: needs reload \(context changeable\); this change: restart \(container replaced\)/, blocker: false },
  { kind: "PgBouncer setting that needs a restart", env: "dev", head: (j) => editFile(j, "/etc/pgbouncer/pgbouncer.ini", (t) => t.replace("listen_port = 6432", "listen_port = 6433")), line: /listen_port 6432 → 6433 on pgbouncer: needs restart \(boot-time only\) \(context boot\)/, blocker: false },

  // Blockers.
  { kind: "retention cut", env: "prod", head: with_("prod", { backup: { ...prod.backup, retentionDays: 14 } }), line: /BLOCKER prod:retention: backup retention \(backup\.retentionDays\) goes from 35 days to 14 days/, blocker: true },
  { kind: "logical retention cut", env: "prod", head: with_("prod", { backup: { ...prod.backup, logical: { ...prod.backup!.logical!, retentionDays: 20 } } }), line: /BLOCKER prod:logical-retention: logical sets \(backup\.logical\.retentionDays\) are kept 20 days instead of 35/, blocker: true },
  { kind: "noncurrent versions kept for less time", env: "prod", head: with_("prod", { archive: { ...prod.archive, noncurrentVersionRetentionDays: 30 } }), line: /BLOCKER prod:noncurrent-versions: deleted or overwritten objects \(archive\.noncurrentVersionRetentionDays\) stay recoverable for 30 days instead of 60/, blocker: true },
  { kind: "Object Lock shortened", env: "prod", head: with_("prod", { archive: { ...prod.archive, objectLock: { mode: "GOVERNANCE", days: 7 } } }), line: /BLOCKER prod:object-lock: Object Lock default retention \(archive\.objectLock\) goes from GOVERNANCE, 14 days to GOVERNANCE, 7 days/, blocker: true },
  { kind: "RPO target loosened", env: "prod", head: with_("prod", { primary: { ...prod.primary, rpoSeconds: 60 } }), line: /BLOCKER prod:rpo: the recovery point objective is loosened: rpoSeconds 30 → 60 \(primary\.rpoSeconds; the RPOBreached threshold\); archive_timeout 20 → 50 s/, blocker: true },
  { kind: "protection turned off", env: "prod", head: with_("prod", { protect: false }), line: /BLOCKER prod:protect: prevent_destroy is turned off on 6 resources: .*; force_destroy is turned on for the bucket.*\n\s+resource: .*docker_volume\.primary_data_[0-9A-F]+ \(pgharbor-prod-primary-data\)/, blocker: true },
  { kind: "data volume replaced", env: "dev", head: (j) => (resource(j, "docker_volume", /^primary_data_/).name = "pgharbor-dev-primary-data-2"), line: /BLOCKER dev:docker_volume\.primary_data_[0-9A-F]+: the primary's data volume is replaced \(destroyed, then created empty\) because name pgharbor-dev-primary-data → pgharbor-dev-primary-data-2/, blocker: true },
  { kind: "bucket replaced", env: "prod", head: with_("prod", { archive: { ...prod.archive, bucketName: "example-pgharbor-prod-wal-2" } }), line: /BLOCKER prod:aws_s3_bucket\.archive_bucket_[0-9A-F]+: the WAL archive bucket is replaced .*Terraform refuses this plan as it stands \(prevent_destroy\)/, blocker: true },
  { kind: "KMS key replaced", env: "prod", head: (j) => (resource(j, "aws_kms_key", /^archive_key_/).key_usage = "SIGN_VERIFY"), line: /BLOCKER prod:aws_kms_key\.archive_key_[0-9A-F]+: the archive's KMS key is replaced/, blocker: true },
  { kind: "cipher passphrase regenerated", env: "prod", head: (j) => (resource(j, "random_password", /^archive_cipher-pass_/).length = 80), line: /BLOCKER prod:random_password\.archive_cipher-pass_[0-9A-F]+: the pgBackRest cipher passphrase is replaced .*: a new passphrase makes every existing backup and WAL segment in the archive unreadable/, blocker: true },

  // Exposure.
  { kind: "port newly published", env: "dev", head: (j) => (container(j, "primary").ports = [{ internal: 5432, external: 5432, ip: "0.0.0.0", protocol: "tcp" }]), line: /LOOSENED \(port\): pgharbor-dev-primary newly publishes 0\.0\.0\.0:5432 → container port 5432 on EVERY interface of the host/, blocker: false },
  { kind: "pg_hba rule added", env: "dev", head: (j) => editFile(j, "/etc/postgresql/pg_hba.conf", (t) => `${t}host all all 0.0.0.0/0 trust\n`), line: /LOOSENED \(pg_hba\): pg_hba rule added: host all all 0\.0\.0\.0\/0 trust \(primary, replica-1\)/, blocker: false },
  { kind: "TLS weakened", env: "dev", head: with_("dev", { primary: { ...dev.primary, tlsMinVersion: "TLSv1.2" } }), line: /LOOSENED \(tls\): ssl_min_protocol_version TLSv1\.3 → TLSv1\.2 \(primary, replica-1\)/, blocker: false },
  { kind: "IAM action added", env: "prod", head: (j) => (resource(j, "aws_iam_policy_document", /^archive_archiver-access_/).statement as Array<{ sid: string; actions: string[] }>).find((s) => s.sid === "Objects")!.actions.push("s3:DeleteObject"), line: /LOOSENED \(iam\): IAM user pgharbor-prod-archiver may now s3:DeleteObject \(Objects\)/, blocker: false },
  { kind: "bucket policy statement removed", env: "prod", head: (j) => {
      const doc = resource(j, "aws_iam_policy_document", /^archive_tls-only_/);
      doc.statement = (doc.statement as Array<{ sid: string }>).filter((s) => s.sid !== "DenyInsecureTransport");
    }, line: /LOOSENED \(bucket-policy\): the bucket policy: Deny statement DenyInsecureTransport removed \(s3:\*\)/, blocker: false },
  { kind: "new principal", env: "dev", head: with_("dev", { backup: { ...dev.backup, logical: { ...dev.backup!.logical!, recipients: [...dev.backup!.logical!.recipients, "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"] } } }), line: /LOOSENED \(principal\): logical backups are now also encrypted to age1qyqszqgp\w+: its holder can read every future dump/, blocker: false },

  // Secrets.
  { kind: "application password regenerated", env: "dev", head: (j) => (resource(j, "random_password", /^primary_app-password_/).length = 40), line: /regenerated: the application role's password \(PGHARBOR_APP_PASSWORD\)\. Picks it up: container backup \(replaced to take it\); the backup container sets it with ALTER ROLE when it starts; applications must switch to the new DATABASE_URL/, blocker: false },
  { kind: "CA regenerated", env: "dev", head: (j) => (resource(j, "tls_private_key", /^ca_key_/).ecdsa_curve = "P384"), line: /regenerated: the environment's CA certificate\. Picks it up: .*every application verifying with ca_cert_pem/, blocker: false },

  // Policy and alerts.
  { kind: "policy finding new", env: "dev", head: with_("dev", { backup: { ...dev.backup, drill: false } }), line: /policy new: PGH-BAK-1 Restore drills scheduled \(warning\)/, blocker: false },
  { kind: "alert removed", env: "dev", head: with_("dev", { backup: { ...dev.backup, drill: false } }), line: /alert RestoreDrillFailed removed/, blocker: false },
  { kind: "alert threshold changed", env: "dev", head: with_("dev", { monitoring: { certificateWarningDays: 7 } }), line: /alert CertificateExpiringSoon changed: threshold 1209600 → 604800/, blocker: false },

  // Backups.
  { kind: "backup schedule", env: "dev", head: with_("dev", { backup: { ...dev.backup, fullSchedule: "0 2 * * 0" } }), line: /full backups schedule \(cron, UTC\): 0 1 \* \* 0 → 0 2 \* \* 0/, blocker: false },
  { kind: "drill cadence", env: "dev", head: with_("dev", { backup: { ...dev.backup, drill: { schedule: "0 4 * * 3" } } }), line: /restore drills schedule \(cron, UTC\): 0 4 \* \* 6 → 0 4 \* \* 3/, blocker: false },
  { kind: "retention lengthened", env: "dev", head: with_("dev", { backup: { ...dev.backup, retentionDays: 21 } }), line: /full backups and their WAL kept for: 7 days → 21 days/, blocker: false },
];

describe("pgharbor review: one pair of configs per kind of change", () => {
  test.each(CASES.map((c) => [c.kind, c] as const))("%s", (_kind, c) => {
    // GIVEN the environment as it is, and the change
    // WHEN the two revisions are reviewed
    const r = reviewOf(c.env, c.head);
    // THEN the review says it, blocks or not, and exits accordingly
    expect(renderText(r)).toMatch(c.line);
    expect(r.environments[0].blockers.length > 0).toBe(c.blocker);
    expect(r.exitCode).toBe(c.blocker ? 1 : 0);
  });
});

describe("an unchanged tree", () => {
  test.each(Object.keys(BASE))("%s: the review is one line, no effect, exit 0", (env) => {
    const r = review({ label: "main", stacks: { [env]: BASE[env] } }, { label: "working tree", stacks: { [env]: synthEnv(ENVS[env]) } });
    expect(r.environments).toEqual([expect.objectContaining({ name: env, status: "unchanged", summary: "no effect", blockers: [], downtime: [], settings: [], resources: [] })]);
    expect(r.exitCode).toBe(0);
    for (const out of [renderText(r), renderMarkdown(r)]) expect(out).toBe(`No effect: working tree synthesises the same stacks as main in ${env}.\n`);
  });
  test("one changed environment among unchanged ones says so for each", () => {
    const r = review({ label: "main", stacks: BASE }, { label: "working tree", stacks: { ...BASE, dev: synthEnv(variant(dev, { replicas: 2 })) } });
    expect(r.environments.map((e) => [e.name, e.status])).toEqual([
      ["dev", "changed"],
      ["staging", "unchanged"],
      ["prod", "unchanged"],
    ]);
    expect(renderMarkdown(r)).toMatch(/^\| staging \| no effect \|$/m);
  });
});

describe("blockers", () => {
  test("an accepted blocker stays listed and no longer fails the review", () => {
    const head = with_("prod", { backup: { ...prod.backup, retentionDays: 14 } });
    const r = reviewOf("prod", head, ["prod:retention"]);
    expect(r.environments[0].blockers).toEqual([expect.objectContaining({ id: "prod:retention", accepted: true })]);
    expect([r.exitCode, r.blockers]).toEqual([0, 0]);
    expect(renderMarkdown(r)).toMatch(/\*\*ACCEPTED\*\* `prod:retention`/);
  });
  test("each names the exact resource and the safe way", () => {
    const r = reviewOf("prod", with_("prod", { replicas: 1 }));
    const b = r.environments[0].blockers.find((x) => x.kind === "stateful-destroyed")!;
    expect(b.resource).toMatch(/^docker_volume\.replica-2_data_[0-9A-F]+ \(pgharbor-prod-replica-2-data\)$/);
    expect(b.what).toMatch(/Terraform refuses this plan as it stands \(prevent_destroy\)/);
    expect(b.safely).toMatch(/SELECT pg_drop_replication_slot\('pgharbor_replica_2'\)/);
  });
  test("an environment removed destroys its bucket, key and passphrase: blockers", () => {
    const r = review({ label: "main", stacks: { prod: BASE.prod } }, { label: "working tree", stacks: {} });
    expect(r.environments[0].status).toBe("removed");
    expect(r.environments[0].blockers.map((b) => b.kind)).toEqual(expect.arrayContaining(["stateful-destroyed"]));
    expect(r.environments[0].blockers.map((b) => b.resource).join("\n")).toMatch(/aws_s3_bucket[\s\S]*aws_kms_key|aws_kms_key[\s\S]*aws_s3_bucket/);
    expect(r.exitCode).toBe(1);
  });
});

describe("what really restarts", () => {
  test("a new replica restarts no PostgreSQL server (senders and slots have headroom); PgBouncer's restart is marked avoidable", () => {
    const r = reviewOf("dev", with_("dev", { replicas: 2 }));
    const d = r.environments[0].downtime;
    expect(d.filter((x) => x.role === "primary" || x.role === "replica").map((x) => [x.container, x.action])).toEqual([["pgharbor-dev-replica-2", "create"]]);
    expect(d.find((x) => x.role === "pgbouncer")).toMatchObject({ action: "replace", avoidable: expect.stringMatching(/databases\.app_ro/) });
    expect(r.environments[0].settings.map((x) => x.name)).toEqual(["databases.app_ro"]);
  });
  test("a reload-only setting still replaces the servers today (upload is ForceNew): the review says so", () => {
    const r = reviewOf("dev", with_("dev", { primary: { ...dev.primary, parameters: { autovacuum_naptime: "30s" } } }));
    expect(r.environments[0].downtime.filter((x) => x.restarts).map((x) => [x.container, Boolean(x.avoidable)])).toEqual([
      ["pgharbor-dev-primary", true],
      ["pgharbor-dev-replica-1", true],
    ]);
  });
});

describe("JSON for other tools", () => {
  test("a review is plain data: schema version, exit code, per environment the sections", () => {
    const r = reviewOf("prod", with_("prod", { primary: { ...prod.primary, memoryMiB: 24576 } }));
    const parsed = JSON.parse(JSON.stringify(r)) as Review;
    expect(parsed).toMatchObject({ schemaVersion: 1, base: "main", head: "working tree", exitCode: 0, blockers: 0 });
    const e = parsed.environments[0];
    expect(Object.keys(e)).toEqual(["name", "status", "summary", "blockers", "downtime", "settings", "exposure", "secrets", "policy", "alerts", "backups", "resources"]);
    expect(e.downtime.find((d) => d.role === "primary")).toMatchObject({ container: "pgharbor-prod-primary", action: "replace", restarts: true, interruptionSeconds: expect.any(Number) });
    expect(e.settings.find((s) => s.name === "shared_buffers")).toEqual({
      server: "postgresql",
      name: "shared_buffers",
      old: "4096MB",
      new: "6144MB",
      containers: ["primary", "replica-1", "replica-2"],
      context: "postmaster",
      needs: "restart",
      needsText: "restart",
      applied: "restart (container replaced)",
    });
    expect(e.resources.find((x) => x.address.startsWith("docker_container.primary_"))!.changes).toEqual(
      expect.arrayContaining([expect.objectContaining({ attribute: "memory", effect: "in-place" }), expect.objectContaining({ attribute: "shm_size", effect: "replace" })]),
    );
  });
});
