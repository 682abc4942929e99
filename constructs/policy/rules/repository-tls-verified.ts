import { bad, filesNamed, na, ok, PolicyRule, settings } from "../types";

/** PGH-ARC-8: pgBackRest verifies the repository's TLS certificate. */
export const repositoryTlsVerified: PolicyRule = {
  id: "PGH-ARC-8",
  level: "error",
  title: "pgBackRest verifies the bucket's TLS",
  explanation: "With repo1-storage-verify-tls=n anyone on the path can impersonate the bucket, collect the S3 credentials and serve forged WAL on restore.",
  evaluate(stack) {
    const out = filesNamed(stack, "pgbackrest.conf").map((f) => (settings(f.content).get("repo1-storage-verify-tls") === "y" ? ok(`${f.container}:${f.path}`) : bad(`${f.container}:${f.path}`, "repo1-storage-verify-tls is not y")));
    return out.length ? out : na("no pgBackRest repository");
  },
};
