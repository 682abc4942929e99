import { quoteIdent, quoteLiteral } from "./identifiers";

/**
 * Roles and the script that reconciles them on every primary start (idempotent, so a rotated password
 * or a new role takes effect on the next restart without re-initialising the cluster).
 * Passwords reach the script through environment variables and psql variables: never in the file.
 */

/** Role names pgharbor owns. The application role and database are props. */
export const ROLE_NAMES = {
  replication: "replicator",
  pooler: "pgharbor_pgbouncer",
  backup: "pgharbor_backup",
  monitor: "pgharbor_monitor",
} as const;

/** Environment variables carrying the passwords into the primary container. */
export const PASSWORD_ENV = {
  superuser: "POSTGRES_PASSWORD",
  app: "PGHARBOR_APP_PASSWORD",
  appReadOnly: "PGHARBOR_APP_RO_PASSWORD",
  replication: "PGHARBOR_REPLICATION_PASSWORD",
  pooler: "PGHARBOR_POOLER_PASSWORD",
  monitor: "PGHARBOR_MONITOR_PASSWORD",
} as const;

/** The application's read-only role: `<appUser>_ro`. */
export function readOnlyRole(appUser: string): string {
  return `${appUser}_ro`;
}

export interface RolesInput {
  appUser: string;
  appDatabase: string;
  major: number;
}

/**
 * SQL (psql script) creating/updating the roles, the application database and the pooler lookup
 * function. Every identifier is double-quoted and every name compared as a quoted literal, whatever
 * validation let through.
 */
export function renderRolesSql(input: RolesInput): string {
  const q = quoteIdent;
  const appUser = q(input.appUser);
  const appDatabase = q(input.appDatabase);
  const appRo = q(readOnlyRole(input.appUser));
  const r = Object.fromEntries(Object.entries(ROLE_NAMES).map(([k, v]) => [k, q(v)])) as Record<keyof typeof ROLE_NAMES, string>;
  const ensureRole = (name: string, attrs: string, pwVar: string | undefined) =>
    [
      `SELECT format('CREATE ROLE %I', ${quoteLiteral(name)}) WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${quoteLiteral(name)}) \\gexec`,
      `ALTER ROLE ${q(name)} ${attrs}${pwVar ? ` PASSWORD :'${pwVar}'` : ""};`,
    ].join("\n");
  const limited = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS";
  return `-- Roles reconciled by pgharbor on every primary start. Do not edit: change the stack.
\\set ON_ERROR_STOP on
\\getenv app_password ${PASSWORD_ENV.app}
\\getenv app_ro_password ${PASSWORD_ENV.appReadOnly}
\\getenv replication_password ${PASSWORD_ENV.replication}
\\getenv pooler_password ${PASSWORD_ENV.pooler}
\\getenv monitor_password ${PASSWORD_ENV.monitor}
-- Never write the passwords below to the server log, whatever log_statement says.
SET log_statement = 'none';
SET log_min_duration_statement = -1;
${ensureRole(input.appUser, `${limited} NOREPLICATION`, "app_password")}
${ensureRole(readOnlyRole(input.appUser), `${limited} NOREPLICATION`, "app_ro_password")}
ALTER ROLE ${appRo} SET default_transaction_read_only = on;
${ensureRole(ROLE_NAMES.replication, "LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS", "replication_password")}
${ensureRole(ROLE_NAMES.pooler, `${limited} NOREPLICATION`, "pooler_password")}
${ensureRole(ROLE_NAMES.monitor, `${limited} NOREPLICATION`, "monitor_password")}
GRANT pg_monitor TO ${r.monitor};
-- Backup role: the grants pgBackRest needs for backup/check, logging in over the socket only (peer map).
${ensureRole(ROLE_NAMES.backup, `${limited} NOREPLICATION`, undefined)}
GRANT pg_read_all_settings TO ${r.backup};
GRANT pg_checkpoint TO ${r.backup};
GRANT EXECUTE ON FUNCTION pg_backup_start(text, boolean) TO ${r.backup};
GRANT EXECUTE ON FUNCTION pg_backup_stop(boolean) TO ${r.backup};
GRANT EXECUTE ON FUNCTION pg_create_restore_point(text) TO ${r.backup};
GRANT EXECUTE ON FUNCTION pg_switch_wal() TO ${r.backup};
GRANT EXECUTE ON FUNCTION pg_walfile_name(pg_lsn) TO ${r.backup};
SELECT format('CREATE DATABASE %I OWNER %I', ${quoteLiteral(input.appDatabase)}, ${quoteLiteral(input.appUser)}) WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = ${quoteLiteral(input.appDatabase)}) \\gexec
REVOKE ALL ON DATABASE ${appDatabase} FROM PUBLIC;
REVOKE CONNECT ON DATABASE postgres FROM PUBLIC;
GRANT CONNECT ON DATABASE postgres TO ${r.monitor}, ${r.backup};
GRANT CONNECT, TEMPORARY ON DATABASE ${appDatabase} TO ${appUser};
GRANT CONNECT ON DATABASE ${appDatabase} TO ${appRo}, ${r.pooler}, ${r.monitor}, ${r.backup};
\\connect ${appDatabase}
SET log_statement = 'none';
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
-- Read-only role: reads what the application role creates in public, nothing else.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO ${appRo};
GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${appRo};
GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO ${appRo};
ALTER DEFAULT PRIVILEGES FOR ROLE ${appUser} IN SCHEMA public GRANT SELECT ON TABLES TO ${appRo};
ALTER DEFAULT PRIVILEGES FOR ROLE ${appUser} IN SCHEMA public GRANT SELECT ON SEQUENCES TO ${appRo};
CREATE SCHEMA IF NOT EXISTS pgharbor AUTHORIZATION postgres;
REVOKE ALL ON SCHEMA pgharbor FROM PUBLIC;
GRANT USAGE ON SCHEMA pgharbor TO ${r.pooler};
-- Heartbeat: the backup container updates it every few seconds, so WAL always moves and the RPO
-- probe and replicas have a clock to compare with.
CREATE TABLE IF NOT EXISTS pgharbor.heartbeat (id int PRIMARY KEY DEFAULT 1 CHECK (id = 1), at timestamptz NOT NULL DEFAULT now());
INSERT INTO pgharbor.heartbeat (id) VALUES (1) ON CONFLICT (id) DO NOTHING;
GRANT USAGE ON SCHEMA pgharbor TO ${r.monitor};
GRANT SELECT ON pgharbor.heartbeat TO ${r.monitor};
-- PgBouncer's auth_query: returns the SCRAM secret of a non-superuser, non-replication login role only.
CREATE OR REPLACE FUNCTION pgharbor.user_lookup(i_username text, OUT uname text, OUT phash text)
  RETURNS record LANGUAGE sql SECURITY DEFINER STABLE
  SET search_path = pg_catalog, pg_temp
AS $fn$
  SELECT rolname::text, rolpassword::text FROM pg_catalog.pg_authid
  WHERE rolname = i_username AND rolcanlogin AND NOT rolsuper AND NOT rolreplication
    AND rolname <> ${quoteLiteral(ROLE_NAMES.pooler)}
$fn$;
REVOKE ALL ON FUNCTION pgharbor.user_lookup(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgharbor.user_lookup(text) TO ${r.pooler};
`;
}
