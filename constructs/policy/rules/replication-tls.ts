import { bad, filesNamed, ok, PolicyRule, settings, na } from "../types";

/** PGH-SEC-6: replicas stream over TLS and verify the primary. */
export const replicationTls: PolicyRule = {
  id: "PGH-SEC-6",
  level: "error",
  title: "Replication over verified TLS",
  explanation: "A replica's stream carries every change, and its conninfo a password: primary_conninfo must use sslmode=verify-full so it neither leaks nor follows an impostor.",
  evaluate(stack) {
    const out = filesNamed(stack, "postgresql.conf")
      .filter((f) => settings(f.content).has("primary_conninfo"))
      .map((f) => (/\bsslmode=verify-full\b/.test(settings(f.content).get("primary_conninfo")!) ? ok(`${f.container}:${f.path}`) : bad(`${f.container}:${f.path}`, "primary_conninfo lacks sslmode=verify-full")));
    return out.length ? out : na("no replica");
  },
};
