import { bad, filesNamed, na, ok, PolicyRule, settings } from "../types";

const REQUIRED: Record<string, (v: string | undefined) => boolean> = {
  log_connections: (v) => v === "on",
  log_disconnections: (v) => v === "on",
  log_replication_commands: (v) => v === "on",
  log_statement: (v) => v === "ddl" || v === "mod" || v === "all",
  log_line_prefix: (v) => !!v && ["%u", "%d", "%a", "%h"].every((e) => v.includes(e)),
};

/** PGH-SEC-5: the audit trail a security reviewer expects. */
export const loggingBaseline: PolicyRule = {
  id: "PGH-SEC-5",
  level: "error",
  title: "Logging baseline",
  explanation: "Without connection, replication-command and DDL logging, and a log_line_prefix naming user, database, application and client, an incident cannot be reconstructed.",
  checkov: undefined,
  evaluate(stack) {
    const out = filesNamed(stack, "postgresql.conf").map((f) => {
      const s = settings(f.content);
      const missing = Object.entries(REQUIRED).filter(([k, good]) => !good(s.get(k))).map(([k]) => k);
      return missing.length ? bad(`${f.container}:${f.path}`, `not set as required: ${missing.join(", ")}`) : ok(`${f.container}:${f.path}`);
    });
    return out.length ? out : na("no PostgreSQL server");
  },
};
