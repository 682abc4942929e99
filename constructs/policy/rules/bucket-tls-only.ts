import { bad, bucketPolicyStatements, na, ok, PolicyRule, resources } from "../types";

interface Statement {
  effect?: string;
  condition?: Array<{ test?: string; variable?: string; values?: string[] }>;
}

/** PGH-ARC-4: the bucket policy denies every request not made over TLS. */
export const bucketTlsOnly: PolicyRule = {
  id: "PGH-ARC-4",
  level: "error",
  title: "WAL archive bucket refuses non-TLS requests",
  explanation: "A bucket policy must Deny any request where aws:SecureTransport is false, so WAL and credentials never cross the network in clear.",
  evaluate(stack) {
    const out = resources(stack, "aws_s3_bucket").map(([name]) => {
      const denies = bucketPolicyStatements<Statement>(stack, name).some(
        (s) => s.effect === "Deny" && (s.condition ?? []).some((c) => c.test === "Bool" && c.variable === "aws:SecureTransport" && (c.values ?? []).includes("false")),
      );
      return denies ? ok(`aws_s3_bucket.${name}`) : bad(`aws_s3_bucket.${name}`, "no bucket policy denying aws:SecureTransport=false");
    });
    return out.length ? out : na("no S3 bucket");
  },
};
