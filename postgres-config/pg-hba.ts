/** pg_hba.conf and pg_ident.conf rendering. */
import { ROLE_NAMES } from "./roles";

export interface HbaInput {
  /** Superuser: socket only, peer authentication. */
  superuser: string;
}

/**
 * Remote connections authenticate with SCRAM only; the superuser and the backup role never log in over
 * the network; replication connections are accepted only for the replication role.
 */
export function renderPgHba(input: HbaInput = { superuser: "postgres" }): string {
  const rows: Array<[string, string, string, string, string]> = [
    ["local", "all", input.superuser, "", "peer"],
    ["local", "all", ROLE_NAMES.backup, "", "peer map=backup"],
    ["local", "all", "all", "", "scram-sha-256"],
    ["host", "replication", ROLE_NAMES.replication, "all", "scram-sha-256"],
    ["host", "replication", "all", "all", "reject"],
    ["host", "all", input.superuser, "all", "reject"],
    ["host", "all", ROLE_NAMES.backup, "all", "reject"],
    ["host", "all", "all", "all", "scram-sha-256"],
  ];
  const body = rows.map((r) => r.map((c, i) => (i < 4 ? c.padEnd(i === 0 ? 8 : 18) : c)).join("").trimEnd());
  return ["# pg_hba.conf rendered by pgharbor. First match wins.", "# TYPE  DATABASE          USER              ADDRESS           METHOD", ...body].join("\n") + "\n";
}

/** Maps the OS user `postgres` of the backup container to the least-privileged backup role. */
export function renderPgIdent(): string {
  return ["# pg_ident.conf rendered by pgharbor.", "# MAPNAME  SYSTEM-USERNAME  PG-USERNAME", `backup     postgres         ${ROLE_NAMES.backup}`].join("\n") + "\n";
}
