import { bad, na, ok, PolicyRule, refersTo, resources } from "../types";

const FLAGS = ["block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"];

/** PGH-ARC-3: all four public access blocks on. */
export const bucketPublicAccessBlocked: PolicyRule = {
  id: "PGH-ARC-3",
  level: "error",
  title: "WAL archive bucket blocks public access",
  explanation: "All four S3 public-access blocks must be on: no ACL or policy may ever make the archive public.",
  checkov: "CKV2_AWS_6",
  evaluate(stack) {
    const blocks = resources(stack, "aws_s3_bucket_public_access_block");
    const out = resources(stack, "aws_s3_bucket").map(([name]) => {
      const b = blocks.find(([, r]) => refersTo(r.bucket, "aws_s3_bucket", name));
      const missing = FLAGS.filter((f) => b?.[1][f] !== true);
      return missing.length ? bad(`aws_s3_bucket.${name}`, `not set: ${missing.join(", ")}`) : ok(`aws_s3_bucket.${name}`);
    });
    return out.length ? out : na("no S3 bucket");
  },
};
