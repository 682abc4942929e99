import { Testing } from "cdktf";
import { mkdtempSync, rmSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { buildApp } from "../stacks/app";
import { reportWarnings } from "../stacks/report";
import { evaluate, RULES } from "../constructs/policy/pack";
import { PolicyRule, StackJson } from "../constructs/policy/types";
import { PostgresStack } from "../stacks/postgres-stack";
import { S3WalArchiveBucket } from "../constructs/s3-wal-archive-bucket";
import { clone, dev, prod, synthEnv } from "./helpers";
import { S3BucketVersioningA } from "@cdktf/provider-aws/lib/s3-bucket-versioning";

const prodJson = synthEnv(prod);
const devJson = synthEnv(dev);

type Mutator = (j: StackJson) => void;
const each = (j: StackJson, type: string, f: (r: Record<string, any>) => void) => Object.values(j.resource![type]).forEach(f); // eslint-disable-line @typescript-eslint/no-explicit-any
const eachFile = (j: StackJson, basename: string, f: (u: { file: string; content: string }) => void) =>
  each(j, "docker_container", (c) => (c.upload ?? []).filter((u: { file: string }) => u.file.endsWith(`/${basename}`)).forEach(f));

/** rule id -> a change that makes a compliant stack non-compliant. */
const breakers: Record<string, Mutator> = {
  "PGH-ARC-1": (j) => each(j, "aws_s3_bucket_server_side_encryption_configuration", (r) => (r.rule[0].apply_server_side_encryption_by_default.sse_algorithm = "AES256")),
  "PGH-ARC-2": (j) => each(j, "aws_s3_bucket_versioning", (r) => (r.versioning_configuration.status = "Suspended")),
  "PGH-ARC-3": (j) => each(j, "aws_s3_bucket_public_access_block", (r) => (r.restrict_public_buckets = false)),
  "PGH-ARC-4": (j) => Object.values(j.data!.aws_iam_policy_document).forEach((d: any) => d.statement.forEach((s: any) => (s.condition = []))), // eslint-disable-line @typescript-eslint/no-explicit-any
  "PGH-ARC-5": (j) => eachFile(j, "pgbackrest.conf", (u) => (u.content = u.content.replace(/^repo1-retention-full=.*$/m, ""))),
  "PGH-PG-1": (j) => eachFile(j, "postgresql.conf", (u) => (u.content = u.content.replace("archive_mode = 'on'", "archive_mode = 'off'"))),
  "PGH-PG-2": (j) => eachFile(j, "postgresql.conf", (u) => (u.content = u.content.replace(/max_slot_wal_keep_size = .*/, "max_slot_wal_keep_size = -1"))),
  "PGH-SEC-1": (j) => eachFile(j, "roles.sql", (u) => (u.content = u.content.replace(/ALTER ROLE "app" LOGIN NOSUPERUSER/, 'ALTER ROLE "app" LOGIN SUPERUSER'))),
  "PGH-SEC-2": (j) => eachFile(j, "pg_hba.conf", (u) => (u.content += "host all all 10.0.0.0/8 scram-sha-256\n")),
  "PGH-SEC-3": (j) => eachFile(j, "pg_hba.conf", (u) => (u.content = u.content.replace("hostssl   all               all               all               scram-sha-256", "hostssl   all               all               all               md5"))),
  "PGH-SEC-4": (j) => eachFile(j, "pgbouncer.ini", (u) => (u.content = u.content.replace("server_tls_sslmode = verify-full", "server_tls_sslmode = prefer"))),
  "PGH-SEC-5": (j) => eachFile(j, "postgresql.conf", (u) => (u.content = u.content.replace("log_connections = 'on'", "log_connections = 'off'"))),
  "PGH-SEC-6": (j) => eachFile(j, "postgresql.conf", (u) => (u.content = u.content.replace("sslmode=verify-full", "sslmode=prefer"))),
  "PGH-ARC-8": (j) => eachFile(j, "pgbackrest.conf", (u) => (u.content = u.content.replace("repo1-storage-verify-tls=y", "repo1-storage-verify-tls=n"))),
  "PGH-ARC-6": (j) => each(j, "aws_kms_key", (r) => (r.enable_key_rotation = false)),
  "PGH-ARC-7": (j) => Object.values(j.data!.aws_iam_policy_document).forEach((d: any) => (d.statement = d.statement.filter((s: any) => s.sid !== "DenyWrongKmsKey"))), // eslint-disable-line @typescript-eslint/no-explicit-any
  "PGH-BAK-1": (j) => eachFile(j, "pgharbor", (u) => (u.content = u.content.replace(/^.*backup-job\.sh drill.*$/m, ""))),
  "PGH-BAK-2": (j) => eachFile(j, "ops.json", (u) => (u.content = JSON.stringify({ ...JSON.parse(u.content), logical: { recipients: [] } }))),
  "PGH-IAM-1": (j) => Object.values(j.data!.aws_iam_policy_document).forEach((d: any) => d.statement.forEach((s: any) => s.sid === "Objects" && s.actions.push("s3:DeleteObject"))), // eslint-disable-line @typescript-eslint/no-explicit-any
};

const statuses = (rule: PolicyRule, j: StackJson) => new Set(evaluate(j, [rule])[0].findings.map((f) => f.status));

describe("policy pack", () => {
  test("every rule has an id, a level, an explanation and a breaker in this test", () => {
    for (const r of RULES) {
      expect(r.id).toMatch(/^PGH-[A-Z]+-\d+$/);
      expect(["error", "warning"]).toContain(r.level);
      expect(r.explanation.length).toBeGreaterThan(40);
      expect(breakers[r.id]).toBeDefined();
    }
    expect(new Set(RULES.map((r) => r.id)).size).toBe(RULES.length);
  });

  describe.each(RULES.map((r) => [r.id, r] as const))("%s", (_id, rule) => {
    test("compliant on the prod stack", () => {
      expect(statuses(rule, prodJson)).toEqual(new Set(["compliant"]));
    });
    test("non-compliant once broken", () => {
      const j = clone(prodJson);
      breakers[rule.id](j);
      const findings = evaluate(j, [rule])[0].findings;
      expect(findings.some((f) => f.status === "non-compliant")).toBe(true);
      expect(findings.find((f) => f.status === "non-compliant")!.detail!.length).toBeGreaterThan(5);
    });
  });

  test.each(["PGH-ARC-2", "PGH-ARC-3", "PGH-ARC-4", "PGH-ARC-6", "PGH-ARC-7", "PGH-IAM-1"])("%s does not apply without an S3 bucket (dev)", (id) => {
    expect(statuses(RULES.find((r) => r.id === id)!, devJson)).toEqual(new Set(["not-applicable"]));
  });

  test("dev: client-side encryption is what PGH-ARC-1 checks", () => {
    const rule = RULES.find((r) => r.id === "PGH-ARC-1")!;
    expect(statuses(rule, devJson)).toEqual(new Set(["compliant"]));
    const j = clone(devJson);
    eachFile(j, "pgbackrest.conf", (u) => (u.content = u.content.replace("repo1-cipher-type=aes-256-cbc", "repo1-cipher-type=none")));
    expect(statuses(rule, j)).toContain("non-compliant");
  });

  test("warnings, not errors: a stack without drills or logical backups synthesises, with an annotation each", () => {
    const env = { ...dev, backup: { retentionDays: 7, drill: false as const } };
    const app = Testing.app({ stubVersion: true });
    const stack = new PostgresStack(app, env);
    expect(() => Testing.synth(stack, true)).not.toThrow();
    const results = evaluate(synthEnv(env), RULES.filter((r) => r.id.startsWith("PGH-BAK-")));
    const outdir = mkdtempSync(join(tmpdir(), "pgharbor-warn-"));
    buildApp({ environments: [env], outdir }).synth();
    let printed = "";
    expect(reportWarnings(outdir, (t) => (printed += t))).toBe(2);
    rmSync(outdir, { recursive: true, force: true });
    expect(printed).toMatch(/^pgharbor: warning \[dev\] PGH-BAK-1 Restore drills scheduled: docker_container\.backup_container_\w+ its crontab schedules no restore drill/m);
    expect(printed).toMatch(/^pgharbor: warning \[dev\] PGH-BAK-2 Logical backups scheduled and encrypted: /m);
    expect(results.map((r) => [r.rule.id, r.findings[0].detail])).toEqual([
      ["PGH-BAK-1", "its crontab schedules no restore drill (BackupCron drill: false)"],
      ["PGH-BAK-2", "its crontab schedules no logical backup (BackupCron logical unset)"],
    ]);
  });

  test("an error-level finding fails synth (aspect wired into every stack)", () => {
    const app = Testing.app({ stubVersion: true });
    const stack = new PostgresStack(app, prod);
    const versioning = (stack.archive as S3WalArchiveBucket).node.children.find((c) => c instanceof S3BucketVersioningA) as S3BucketVersioningA;
    versioning.addOverride("versioning_configuration.status", "Suspended");
    expect(() => Testing.synth(stack, true)).toThrow(/PGH-ARC-2 WAL archive bucket versioned: aws_s3_bucket\.archive_bucket_[0-9A-F]+ versioning is not Enabled/);
  });
});
