import { quoteIdent, quoteLiteral } from "./identifiers";

/**
 * Roles and the script that reconciles them on every primary start (idempotent, so a rotated password
 * or a new role takes effect on the next restart without re-initialising the cluster).
 * Passwords reach the script through environment variables and psql variables: never in the file.
 */

/** Role names pgharbor owns. The application role and database are props. */
/** Patroni's rewind role (environments with failover): Patroni creates it; the reconciliation lets it connect. */
export const REWIND_ROLE = "rewinder";

export const ROLE_NAMES = {
  replication: "replicator",
  pooler: "pgharbor_pgbouncer",
  backup: "pgharbor_backup",
  monitor: "pgharbor_monitor",
} as const;

/** Environment variables carrying the passwords into the containers that need them. */
export const PASSWORD_ENV = {
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
  const session = sessionSettings(input.major);
  return `-- Roles reconciled by pgharbor on every primary start. Do not edit: change the stack.
\\set ON_ERROR_STOP on
-- psql's own error output: no statement text (default verbosity echoes the failing line, password included).
\\set VERBOSITY terse
\\set SHOW_CONTEXT never
\\getenv app_password ${PASSWORD_ENV.app}
\\getenv app_ro_password ${PASSWORD_ENV.appReadOnly}
\\getenv replication_password ${PASSWORD_ENV.replication}
\\getenv pooler_password ${PASSWORD_ENV.pooler}
\\getenv monitor_password ${PASSWORD_ENV.monitor}
${session}
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
-- Patroni's rewind role (environments with failover; Patroni creates it with only the functions
-- pg_rewind needs): a former leader's pg_rewind reads the new leader's files through database postgres.
SELECT format('GRANT CONNECT ON DATABASE postgres TO %I', ${quoteLiteral(REWIND_ROLE)}) WHERE EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${quoteLiteral(REWIND_ROLE)}) \\gexec
GRANT CONNECT, TEMPORARY ON DATABASE ${appDatabase} TO ${appUser};
GRANT CONNECT ON DATABASE ${appDatabase} TO ${appRo}, ${r.pooler}, ${r.monitor}, ${r.backup};
\\connect ${appDatabase}
${session}
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
-- The scheduled maintenance job's runs (pgharbor-ops maintenance); the exporter reads the newest.
CREATE TABLE IF NOT EXISTS pgharbor.maintenance_runs (id bigserial PRIMARY KEY, started_at timestamptz NOT NULL, finished_at timestamptz NOT NULL, ok boolean NOT NULL, analyzed int NOT NULL, vacuumed int NOT NULL, details jsonb NOT NULL DEFAULT '[]');
GRANT SELECT ON pgharbor.maintenance_runs TO ${r.monitor};
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
-- DDL audit without statement text (log_statement is 'none' so that no password reaches the log):
-- the command, the objects, who and where. Roles and databases are global objects event triggers
-- never see, so no password can reach it either.
CREATE OR REPLACE FUNCTION pgharbor.log_ddl() RETURNS event_trigger LANGUAGE plpgsql
  SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  objects text;
BEGIN
  IF tg_event = 'sql_drop' THEN
    SELECT string_agg(object_type || ' ' || coalesce(object_identity, '?'), ', ') INTO objects FROM pg_event_trigger_dropped_objects() WHERE original;
  ELSE
    SELECT string_agg(object_type || ' ' || coalesce(object_identity, '?'), ', ') INTO objects FROM pg_event_trigger_ddl_commands();
    IF objects IS NULL AND tg_tag LIKE 'DROP %' THEN
      RETURN; -- logged with its objects by sql_drop
    END IF;
  END IF;
  RAISE LOG 'pgharbor ddl: % % (user %, database %)', tg_tag, coalesce(objects, ''), session_user, current_database();
END
$fn$;
REVOKE ALL ON FUNCTION pgharbor.log_ddl() FROM PUBLIC;
SELECT 'CREATE EVENT TRIGGER pgharbor_ddl_audit ON ddl_command_end EXECUTE FUNCTION pgharbor.log_ddl()' WHERE NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'pgharbor_ddl_audit') \\gexec
SELECT 'CREATE EVENT TRIGGER pgharbor_ddl_audit_drop ON sql_drop EXECUTE FUNCTION pgharbor.log_ddl()' WHERE NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'pgharbor_ddl_audit_drop') \\gexec
`;
}

/**
 * Settings of the reconciliation session: no statement text reaches the server log or
 * pg_stat_statements on any path (statement, error, duration, sampling, lock waits), and nothing a
 * user set server-wide (read-only default, timeouts) makes reconciliation fail half-way.
 */
export function sessionSettings(major: number): string {
  return [
    "-- Never write the passwords below to the server log or pg_stat_statements, whatever the server's settings.",
    "SET log_statement = 'none';",
    "SET log_min_error_statement = 'panic';",
    "SET log_min_duration_statement = -1;",
    "SET log_min_duration_sample = -1;",
    "SET log_transaction_sample_rate = 0;",
    "SET pg_stat_statements.track_utility = off;",
    "SET default_transaction_read_only = off;",
    "SET statement_timeout = 0;",
    "SET lock_timeout = 0;",
    "SET idle_in_transaction_session_timeout = 0;",
    ...(major >= 17 ? ["SET transaction_timeout = 0;"] : []),
    "SET client_min_messages = warning;",
  ].join("\n");
}
