import { bad, na, ok, PolicyRule, resources } from "../types";

interface Statement {
  effect?: string;
  actions?: string[];
}

/** PGH-IAM-1: only the expirer may delete, and nobody gets wildcards. */
export const leastPrivilegePrincipals: PolicyRule = {
  id: "PGH-IAM-1",
  level: "error",
  title: "Bucket principals least-privileged",
  explanation: "Stolen database-host credentials must not be able to destroy the backups: the archiver and reader may not delete, only the expirer (used by the retention job alone) may, and no principal gets s3:* or kms:*.",
  checkov: "CKV_AWS_355",
  evaluate(stack) {
    const docs = stack.data?.aws_iam_policy_document ?? {};
    const out = resources(stack, "aws_iam_user_policy").map(([n, p]) => {
      const docName = /data\.aws_iam_policy_document\.([^.]+)\.json/.exec(String(p.policy))?.[1];
      const user = /aws_iam_user\.([^.]+)\./.exec(String(p.user))?.[1] ?? "";
      const actions = ((docs[docName ?? ""]?.statement as Statement[]) ?? []).filter((s) => s.effect === "Allow").flatMap((s) => s.actions ?? []);
      if (actions.some((a) => a.endsWith(":*") || a === "*")) return bad(`aws_iam_user_policy.${n}`, "grants a wildcard action");
      if (actions.includes("s3:DeleteObject") && !/expirer/.test(user)) return bad(`aws_iam_user_policy.${n}`, `user ${user} may delete objects`);
      return ok(`aws_iam_user_policy.${n}`);
    });
    return out.length ? out : na("no IAM principal");
  },
};
