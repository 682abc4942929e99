import { bad, filesNamed, na, ok, PolicyRule, settings } from "../types";

/** PGH-SEC-4: PgBouncer requires TLS from clients and verifies the servers it connects to. */
export const poolerTls: PolicyRule = {
  id: "PGH-SEC-4",
  level: "error",
  title: "PgBouncer TLS on both sides",
  explanation: "Clients reach PgBouncer over the network with passwords; PgBouncer reaches PostgreSQL across hosts. client_tls_sslmode must be require or stricter and server_tls_sslmode verify-full, so a man in the middle can neither read nor impersonate.",
  evaluate(stack) {
    const out = filesNamed(stack, "pgbouncer.ini").map((f) => {
      const s = settings(f.content);
      const subject = `${f.container}:${f.path}`;
      if (!["require", "verify-ca", "verify-full"].includes(s.get("client_tls_sslmode") ?? "")) return bad(subject, `client_tls_sslmode is ${s.get("client_tls_sslmode") ?? "unset"}`);
      if (s.get("server_tls_sslmode") !== "verify-full") return bad(subject, `server_tls_sslmode is ${s.get("server_tls_sslmode") ?? "unset"}`);
      return ok(subject);
    });
    return out.length ? out : na("no PgBouncer");
  },
};
