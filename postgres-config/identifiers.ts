/**
 * SQL identifiers pgharbor creates from user input (the application role and database) and the
 * quoting of every identifier and literal in the SQL it generates.
 */
import { NON_UNRESERVED_KEYWORDS } from "./catalogue/keywords";

/** PostgreSQL truncates identifiers longer than NAMEDATALEN − 1 bytes. */
export const MAX_IDENTIFIER_BYTES = 63;

const KEYWORDS = new Map(NON_UNRESERVED_KEYWORDS.map((k) => k.split(":") as [string, string]));
const CATEGORY: Record<string, string> = { R: "reserved", T: "reserved (function or type names only)", C: "reserved (column names only)" };

/** Names with a special meaning where a role or database name is expected. */
const SPECIAL: Record<string, string> = {
  public: "PUBLIC means every role in GRANT and REVOKE",
  none: "PostgreSQL reserves the role name NONE",
  current_user: "as a role it names whoever runs the statement: the superuser during role reconciliation",
  current_role: "as a role it names whoever runs the statement: the superuser during role reconciliation",
  session_user: "as a role it names whoever runs the session: the superuser during role reconciliation",
  system_user: "it names the authenticated system user",
  postgres: "it is PostgreSQL's superuser and maintenance database",
  template0: "it is a template database",
  template1: "it is a template database",
  replicator: "it is pgharbor's replication role",
};

export interface IdentifierProblem {
  problem: string;
  fix: string;
}

/**
 * Why `name` cannot be the application role or database, or undefined when it can. `derivedSuffix` is
 * what pgharbor appends to derive another name from it (`_ro`: the read-only role, PgBouncer's
 * read-only database), which must fit PostgreSQL's 63 bytes too.
 */
export function identifierProblem(name: unknown, derivedSuffix = "_ro"): IdentifierProblem | undefined {
  const example = 'use a name like "app" or "shop"';
  if (typeof name !== "string" || !/^[a-z_][a-z0-9_]*$/.test(name)) {
    return { problem: "must be a lowercase SQL identifier: letters a-z, digits and underscores, not starting with a digit", fix: example };
  }
  const room = MAX_IDENTIFIER_BYTES - Buffer.byteLength(derivedSuffix);
  if (Buffer.byteLength(name) > room) {
    return { problem: `is ${Buffer.byteLength(name)} bytes: pgharbor derives "${name.slice(0, 8)}…${derivedSuffix}" from it, and PostgreSQL truncates names past ${MAX_IDENTIFIER_BYTES} bytes`, fix: `use at most ${room} bytes` };
  }
  if (SPECIAL[name]) return { problem: `is a special name (${SPECIAL[name]})`, fix: example };
  const kw = KEYWORDS.get(name);
  if (kw) return { problem: `is an SQL keyword, ${CATEGORY[kw] ?? "reserved"} in PostgreSQL: every statement, PgBouncer and each client would have to quote it`, fix: example };
  if (name.startsWith("pg_")) return { problem: 'starts with "pg_", which PostgreSQL reserves for its own roles and objects', fix: example };
  if (name.startsWith("pgharbor")) return { problem: 'starts with "pgharbor", which pgharbor reserves for its own roles and schema', fix: example };
  return undefined;
}

/** An identifier, always double-quoted (as quote_ident would when quoting is needed). */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A string literal (standard_conforming_strings is on: backslashes are literal). */
export function quoteLiteral(text: string): string {
  if (/[\0]/.test(text)) throw new Error("a NUL byte cannot be in an SQL literal");
  return `'${text.replace(/'/g, "''")}'`;
}
