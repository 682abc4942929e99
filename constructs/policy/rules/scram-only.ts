import { bad, filesNamed, na, ok, PolicyRule, settings } from "../types";

const WEAK = new Set(["trust", "password", "md5", "ident"]);

/** PGH-SEC-3: SCRAM is the only password method. */
export const scramOnly: PolicyRule = {
  id: "PGH-SEC-3",
  level: "error",
  title: "SCRAM-SHA-256 only",
  explanation: "md5 hashes are replayable and brute-forceable, `password` sends clear text and `trust` asks nothing: password_encryption must be scram-sha-256 and pg_hba.conf may use only scram-sha-256, peer (local socket) and reject.",
  checkov: undefined,
  evaluate(stack) {
    const out = [
      ...filesNamed(stack, "postgresql.conf").map((f) => (settings(f.content).get("password_encryption") === "scram-sha-256" ? ok(`${f.container}:${f.path}`) : bad(`${f.container}:${f.path}`, "password_encryption is not scram-sha-256"))),
      ...filesNamed(stack, "pg_hba.conf").map((f) => {
        const methods = f.content
          .split("\n")
          .filter((l) => l.trim() && !l.trim().startsWith("#"))
          .map((l) => l.trim().split(/\s+/))
          .map((r) => (r[0] === "local" ? r[3] : r[4]));
        const weak = methods.filter((m) => WEAK.has(m));
        return weak.length ? bad(`${f.container}:${f.path}`, `weak methods: ${weak.join(", ")}`) : ok(`${f.container}:${f.path}`);
      }),
      ...filesNamed(stack, "pgbouncer.ini").map((f) => (settings(f.content).get("auth_type") === "scram-sha-256" ? ok(`${f.container}:${f.path}`) : bad(`${f.container}:${f.path}`, `auth_type is ${settings(f.content).get("auth_type")}`))),
    ];
    return out.length ? out : na("no PostgreSQL server or pooler");
  },
};
