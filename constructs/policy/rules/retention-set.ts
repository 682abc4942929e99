import { bad, filesNamed, na, ok, PolicyRule, refersTo, resources, settings } from "../types";

/** PGH-ARC-5: backups expire by a retention rule, and S3 keeps deleted versions for a bounded time. */
export const retentionSet: PolicyRule = {
  id: "PGH-ARC-5",
  level: "error",
  title: "Backup retention set",
  explanation: "A repository without retention grows forever (and its cost with it); a versioned bucket without noncurrent-version expiry never frees what pgBackRest expired.",
  checkov: "CKV2_AWS_61",
  evaluate(stack) {
    const confs = filesNamed(stack, "pgbackrest.conf");
    if (!confs.length) return na("no pgBackRest repository");
    const withRetention = confs.filter((f) => Number(settings(f.content).get("repo1-retention-full")) >= 1);
    const findings = [withRetention.length ? ok(withRetention[0].container) : bad(confs[0].container, "no pgbackrest.conf sets repo1-retention-full: nothing ever expires")];
    const lifecycles = resources(stack, "aws_s3_bucket_lifecycle_configuration");
    for (const [name] of resources(stack, "aws_s3_bucket")) {
      const l = lifecycles.find(([, r]) => refersTo(r.bucket, "aws_s3_bucket", name));
      const rules = (l?.[1].rule as Array<{ status?: string; noncurrent_version_expiration?: unknown[] }>) ?? [];
      findings.push(rules.some((r) => r.status === "Enabled" && (r.noncurrent_version_expiration ?? []).length) ? ok(`aws_s3_bucket.${name}`) : bad(`aws_s3_bucket.${name}`, "no enabled noncurrent-version expiration"));
    }
    return findings;
  },
};
