import { bad, filesNamed, na, ok, PolicyRule, settings } from "../types";

const SUPERUSER = /ALTER ROLE (\S+) ((?:NO)?LOGIN\b[^;]*)/g;

/** PGH-SEC-1: neither the application nor the pooler connects as a superuser. */
export const noSuperuserClients: PolicyRule = {
  id: "PGH-SEC-1",
  level: "error",
  title: "No superuser for application or pooler",
  explanation: "A superuser bypasses every permission and row-level policy; an SQL injection through the application or a pooler compromise would own the server. The application and PgBouncer's lookup role must be NOSUPERUSER, and PgBouncer must not route to the postgres user.",
  checkov: undefined,
  evaluate(stack) {
    const findings = [];
    for (const f of filesNamed(stack, "roles.sql")) {
      for (const m of f.content.matchAll(SUPERUSER)) {
        const attrs = m[2].split(/\s+/);
        findings.push(attrs.includes("SUPERUSER") || !attrs.includes("NOSUPERUSER") ? bad(`${f.container}:role ${m[1]}`, `role ${m[1]} is not NOSUPERUSER`) : ok(`${f.container}:role ${m[1]}`));
      }
    }
    for (const f of filesNamed(stack, "pgbouncer.ini")) {
      const s = settings(f.content);
      const routesToPostgres = [...s.entries()].some(([, v]) => /\buser=postgres\b/.test(v));
      findings.push(s.get("auth_user") === "postgres" || routesToPostgres ? bad(`${f.container}:${f.path}`, "PgBouncer authenticates or routes as postgres") : ok(`${f.container}:${f.path}`));
    }
    return findings.length ? findings : na("no roles or pooler");
  },
};
