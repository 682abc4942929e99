import { bad, na, ok, PolicyRule, resources } from "../types";

/** PGH-ARC-6: the archive's KMS key rotates. */
export const kmsRotation: PolicyRule = {
  id: "PGH-ARC-6",
  level: "error",
  title: "KMS key rotation on",
  explanation: "Yearly rotation of the archive's KMS key limits what one leaked key version can decrypt.",
  checkov: "CKV_AWS_7",
  evaluate(stack) {
    const out = resources(stack, "aws_kms_key").map(([n, k]) => (k.enable_key_rotation === true ? ok(`aws_kms_key.${n}`) : bad(`aws_kms_key.${n}`, "enable_key_rotation is not true")));
    return out.length ? out : na("no KMS key");
  },
};
