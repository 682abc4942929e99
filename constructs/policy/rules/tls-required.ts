import { bad, filesNamed, na, ok, PolicyRule, settings } from "../types";

/** PGH-SEC-2: PostgreSQL serves TLS 1.2+ and refuses every network connection without it. */
export const tlsRequired: PolicyRule = {
  id: "PGH-SEC-2",
  level: "error",
  title: "Database connections require TLS",
  explanation: "Passwords, data and WAL cross the network between hosts and containers; ssl must be on with TLS 1.2 or newer, and pg_hba.conf must reject every non-TLS network connection (no `host` lines, a `hostnossl … reject`).",
  evaluate(stack) {
    const out = [
      ...filesNamed(stack, "postgresql.conf").map((f) => {
        const s = settings(f.content);
        const subject = `${f.container}:${f.path}`;
        if (s.get("ssl") !== "on") return bad(subject, "ssl is not on");
        if (!["TLSv1.2", "TLSv1.3"].includes(s.get("ssl_min_protocol_version") ?? "")) return bad(subject, `ssl_min_protocol_version is ${s.get("ssl_min_protocol_version") ?? "unset"}`);
        return ok(subject);
      }),
      ...filesNamed(stack, "pg_hba.conf").map((f) => {
        const rows = f.content.split("\n").filter((l) => l.trim() && !l.trim().startsWith("#")).map((l) => l.trim().split(/\s+/));
        const subject = `${f.container}:${f.path}`;
        if (rows.some((r) => r[0] === "host")) return bad(subject, "a `host` line accepts connections without TLS");
        if (!rows.some((r) => r[0] === "hostnossl" && r[1] === "all" && r[r.length - 1] === "reject")) return bad(subject, "no `hostnossl all … reject` line");
        return ok(subject);
      }),
    ];
    return out.length ? out : na("no PostgreSQL server");
  },
};
