/** pg_hba.conf and pg_ident.conf rendering. */
import { ROLE_NAMES } from "./roles";

export interface HbaInput {
  /** Superuser: socket only, peer authentication. */
  superuser: string;
}

/**
 * Remote connections: TLS and SCRAM only (non-TLS is rejected outright); the superuser and the backup
 * role never log in over the network; replication connections only for the replication role, which
 * may do nothing else remotely.
 */
export function renderPgHba(input: HbaInput = { superuser: "postgres" }): string {
  const rows: Array<[string, string, string, string, string]> = [
    ["local", "all", input.superuser, "", "peer"],
    ["local", "all", ROLE_NAMES.backup, "", "peer map=backup"],
    ["local", "all", "all", "", "scram-sha-256"],
    // Nothing over the network without TLS.
    ["hostnossl", "all", "all", "all", "reject"],
    ["hostnossl", "replication", "all", "all", "reject"],
    ["hostssl", "replication", ROLE_NAMES.replication, "all", "scram-sha-256"],
    ["hostssl", "replication", "all", "all", "reject"],
    ["hostssl", "all", input.superuser, "all", "reject"],
    ["hostssl", "all", ROLE_NAMES.backup, "all", "reject"],
    ["hostssl", "all", ROLE_NAMES.replication, "all", "reject"],
    ["hostssl", "all", "all", "all", "scram-sha-256"],
  ];
  const body = rows.map((r) => r.map((c, i) => (i < 4 ? c.padEnd(i === 0 ? 10 : 18) : c)).join("").trimEnd());
  return ["# pg_hba.conf rendered by pgharbor. First match wins.", "# TYPE  DATABASE          USER              ADDRESS           METHOD", ...body].join("\n") + "\n";
}

/** Maps the OS user `postgres` of the backup container to the least-privileged backup role. */
export function renderPgIdent(): string {
  return ["# pg_ident.conf rendered by pgharbor.", "# MAPNAME  SYSTEM-USERNAME  PG-USERNAME", `backup     postgres         ${ROLE_NAMES.backup}`].join("\n") + "\n";
}
