import { bad, filesNamed, na, ok, PolicyRule, refersTo, resources, settings } from "../types";

/** PGH-ARC-1: the archive is encrypted at rest by the bucket (SSE-KMS) and by pgBackRest (client-side). */
export const bucketEncrypted: PolicyRule = {
  id: "PGH-ARC-1",
  level: "error",
  title: "WAL archive encrypted",
  explanation: "Backups and WAL hold every row of the database. S3 buckets must use SSE-KMS, and every pgBackRest repository must use client-side aes-256-cbc so the bucket's operator never sees plaintext.",
  checkov: "CKV_AWS_145",
  evaluate(stack) {
    const sse = resources(stack, "aws_s3_bucket_server_side_encryption_configuration");
    const buckets = resources(stack, "aws_s3_bucket").map(([name]) => {
      const enc = sse.find(([, r]) => refersTo(r.bucket, "aws_s3_bucket", name));
      const rules = (enc?.[1].rule as Array<{ apply_server_side_encryption_by_default?: { sse_algorithm?: string } }>) ?? [];
      return rules.some((r) => r.apply_server_side_encryption_by_default?.sse_algorithm === "aws:kms") ? ok(`aws_s3_bucket.${name}`) : bad(`aws_s3_bucket.${name}`, "no SSE-KMS encryption configuration");
    });
    const repos = filesNamed(stack, "pgbackrest.conf").map((f) =>
      settings(f.content).get("repo1-cipher-type") === "aes-256-cbc" ? ok(`${f.container}:${f.path}`) : bad(`${f.container}:${f.path}`, "repo1-cipher-type is not aes-256-cbc"),
    );
    const all = [...buckets, ...repos];
    return all.length ? all : na("no archive in this stack");
  },
};
