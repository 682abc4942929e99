import { bad, filesNamed, na, ok, PolicyRule, settings } from "../types";

const REQUIRED: Record<string, (v: string | undefined) => boolean> = {
  log_connections: (v) => v === "on",
  log_disconnections: (v) => v === "on",
  log_replication_commands: (v) => v === "on",
  log_line_prefix: (v) => !!v && ["%u", "%d", "%a", "%h"].every((e) => v.includes(e)),
  // No statement text in the log, so no password: PostgreSQL cannot redact ALTER ROLE … PASSWORD.
  log_statement: (v) => v === "none",
  log_min_error_statement: (v) => v === "panic",
  "pg_stat_statements.track_utility": (v) => v === "off",
};

/** roles.sql installs the DDL audit that replaces log_statement = 'ddl'. */
const DDL_AUDIT = /CREATE EVENT TRIGGER pgharbor_ddl_audit ON ddl_command_end/;

/** PGH-SEC-5: the audit trail a security reviewer expects, without a password in it. */
export const loggingBaseline: PolicyRule = {
  id: "PGH-SEC-5",
  level: "error",
  title: "Logging baseline",
  explanation:
    "Without connection, replication-command and DDL logging, and a log_line_prefix naming user, database, application and client, an incident cannot be reconstructed; with statement text in the log (log_statement, log_min_error_statement, pg_stat_statements' utility statements), ALTER ROLE … PASSWORD puts passwords there.",
  checkov: undefined,
  evaluate(stack) {
    const out = filesNamed(stack, "postgresql.conf").map((f) => {
      const s = settings(f.content);
      const missing = Object.entries(REQUIRED).filter(([k, good]) => !good(s.get(k))).map(([k]) => k);
      return missing.length ? bad(`${f.container}:${f.path}`, `not set as required: ${missing.join(", ")}`) : ok(`${f.container}:${f.path}`);
    });
    for (const f of filesNamed(stack, "roles.sql")) out.push(DDL_AUDIT.test(f.content) ? ok(`${f.container}:${f.path}`) : bad(`${f.container}:${f.path}`, "no DDL audit event trigger"));
    return out.length ? out : na("no PostgreSQL server");
  },
};
