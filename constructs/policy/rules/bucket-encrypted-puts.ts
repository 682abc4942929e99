import { bad, bucketPolicyStatements, na, ok, PolicyRule, resources } from "../types";

interface Statement {
  effect?: string;
  actions?: string[];
  condition?: Array<{ test?: string; variable?: string; values?: string[] }>;
}

/** PGH-ARC-7: the bucket refuses objects that are not encrypted with its key. */
export const bucketEncryptedPuts: PolicyRule = {
  id: "PGH-ARC-7",
  level: "error",
  title: "Bucket refuses unencrypted or wrong-key uploads",
  explanation: "Default encryption applies only when a request names none; the bucket policy must deny PutObject without SSE-KMS and with any key but the archive's, so no client can store data under a key the environment does not control.",
  evaluate(stack) {
    const out = resources(stack, "aws_s3_bucket").map(([name]) => {
      const st = bucketPolicyStatements<Statement>(stack, name).filter((s) => s.effect === "Deny" && (s.actions ?? []).includes("s3:PutObject"));
      const denies = (variable: string) => st.some((s) => (s.condition ?? []).some((c) => c.test === "StringNotEquals" && c.variable === variable));
      if (!denies("s3:x-amz-server-side-encryption")) return bad(`aws_s3_bucket.${name}`, "no Deny of PutObject without SSE-KMS");
      if (!denies("s3:x-amz-server-side-encryption-aws-kms-key-id")) return bad(`aws_s3_bucket.${name}`, "no Deny of PutObject with another KMS key");
      return ok(`aws_s3_bucket.${name}`);
    });
    return out.length ? out : na("no S3 bucket");
  },
};
