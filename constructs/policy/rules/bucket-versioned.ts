import { bad, na, ok, PolicyRule, refersTo, resources } from "../types";

/** PGH-ARC-2: versioning keeps an overwritten or deleted backup recoverable. */
export const bucketVersioned: PolicyRule = {
  id: "PGH-ARC-2",
  level: "error",
  title: "WAL archive bucket versioned",
  explanation: "With versioning a deleted or overwritten object (an expire run gone wrong, stolen credentials) stays recoverable as a noncurrent version.",
  checkov: "CKV_AWS_21",
  evaluate(stack) {
    const versioning = resources(stack, "aws_s3_bucket_versioning");
    const out = resources(stack, "aws_s3_bucket").map(([name]) => {
      const v = versioning.find(([, r]) => refersTo(r.bucket, "aws_s3_bucket", name));
      const status = (v?.[1].versioning_configuration as { status?: string } | undefined)?.status;
      return status === "Enabled" ? ok(`aws_s3_bucket.${name}`) : bad(`aws_s3_bucket.${name}`, "versioning is not Enabled");
    });
    return out.length ? out : na("no S3 bucket");
  },
};
