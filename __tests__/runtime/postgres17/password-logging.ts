/**
 * No password reaches a server log on any path, proven on a running PostgreSQL 17 with pgharbor's
 * postgresql.conf, pg_hba.conf and roles.sql:
 *
 * - role reconciliation as the backup container runs it (psql -f roles.sql, passwords from the
 *   environment through \getenv), twice, the second time with a password the server refuses
 *   (passwordcheck: it contains the role name), so a failing password statement is exercised;
 * - what clients send: ALTER ROLE … PASSWORD that succeeds (log_statement), fails on permission or
 *   syntax (log_min_error_statement), goes through the extended protocol, or waits on a lock past
 *   deadlock_timeout (log_lock_waits); CREATE ROLE … PASSWORD without the right to;
 * - pg_stat_statements (utility statements keep their literals unless track_utility is off).
 *
 * Every secret is then looked for in the server log, in psql's own error output of reconciliation
 * (the backup container's log) and in pg_stat_statements.
 */
import { PASSWORD_ENV, renderRolesSql } from "../../../postgres-config/roles";
import { CONTAINER_PATHS } from "../../../postgres-config/paths";
import { primaryConf, serverFiles } from "./catalogue";
import { Postgres17, Postgres17Engine, superuserPsql } from "./engine";

export interface PasswordLoggingReport {
  /** Where a secret was found: "<place>: <secret>" (empty when none leaked). */
  leaks: string[];
  /** What happened, so a caller can assert every path was exercised (see the README). */
  observed: {
    firstReconciliation: number;
    refusedReconciliation: number;
    clientErrors: number;
    lockWaitLogged: boolean;
    ddlAudited: boolean;
    pgStatStatementsRows: number;
  };
}

const ROLES_SQL = CONTAINER_PATHS.rolesSql;
const SOCKET = "/var/run/postgresql";

function secret(tag: string): string {
  return `Sx${tag}${Math.random().toString(36).slice(2, 12)}9`;
}

async function asApp(pg: Postgres17, password: string, sql: string, extra: string[] = []) {
  return pg.exec(["psql", "-X", "-q", "-h", SOCKET, "-U", "app", "-d", "app", ...extra, "-c", sql], { env: { PGPASSWORD: password } });
}

/**
 * `unsafeParameters` exists for the negative control only: rendered without pgharbor's validation
 * (e.g. the old `log_statement: "ddl"`), the same scenario must report leaks, proving it has teeth.
 */
export async function noPasswordInServerLog(engine: Postgres17Engine, unsafeParameters: Record<string, string | number | boolean> = {}): Promise<PasswordLoggingReport> {
  // passwordcheck refuses passwords containing the role name: a failing password statement on demand.
  // auto_explain at 0 ms: every planned statement's plan and text goes to the log; none may carry a password.
  const conf = primaryConf({ shared_preload_libraries: "pg_stat_statements,auto_explain,passwordcheck", "auto_explain.log_min_duration": 0, ...unsafeParameters });
  const pg = await engine.start({ ...serverFiles(conf), [ROLES_SQL]: renderRolesSql({ appUser: "app", appDatabase: "app", major: 17 }) });
  const secrets: string[] = [];
  const leaks: string[] = [];
  const clientOutput: string[] = [];
  try {
    const env = (app: string) => {
      const e: Record<string, string> = {
        [PASSWORD_ENV.app]: app,
        [PASSWORD_ENV.appReadOnly]: secret("ro"),
        [PASSWORD_ENV.replication]: secret("repl"),
        [PASSWORD_ENV.pooler]: secret("pool"),
        [PASSWORD_ENV.monitor]: secret("mon"),
      };
      secrets.push(...Object.values(e));
      return e;
    };
    const reconcile = (e: Record<string, string>) => pg.exec(["psql", "-X", "-q", "-h", SOCKET, "-p", "5432", "-U", "postgres", "-d", "postgres", "-f", ROLES_SQL], { env: e });

    let appPassword = secret("a1");
    const first = await reconcile(env(appPassword));
    clientOutput.push(first.stdout, first.stderr);
    const refused = await reconcile(env(`app-${secret("a2")}`)); // contains the role name: refused
    clientOutput.push(refused.stdout, refused.stderr);

    // What clients send.
    let clientErrors = 0;
    const client = async (sql: string, extra: string[] = []) => {
      const r = await asApp(pg, appPassword, sql, extra);
      if (r.code !== 0) clientErrors++;
      return r;
    };
    const next = secret("c1");
    secrets.push(next);
    if ((await client(`ALTER ROLE app PASSWORD '${next}'`)).code === 0) appPassword = next;
    for (const sql of [`ALTER ROLE app_ro PASSWORD '${secret("c2")}'`, `CREATE ROLE intruder PASSWORD '${secret("c3")}'`, `ALTER ROLE app PASSWORD '${secret("c4")}' garbage`]) {
      secrets.push(/'([^']+)'/.exec(sql)![1]);
      await client(sql);
    }
    const viaBind = secret("c5");
    secrets.push(viaBind);
    if ((await asApp(pg, appPassword, `ALTER ROLE app PASSWORD '${viaBind}' \\bind \\g`)).code === 0) appPassword = viaBind;
    // A password statement waiting on a lock past deadlock_timeout (log_lock_waits, then a slow statement).
    const waited = secret("c6");
    secrets.push(waited);
    const lock = await pg.exec([
      "sh",
      "-c",
      `psql -X -q -h ${SOCKET} -U postgres -d postgres -c "BEGIN; ALTER ROLE app CONNECTION LIMIT 50; SELECT pg_sleep(3); COMMIT;" & sleep 0.5; PGPASSWORD="$OLD" psql -X -q -h ${SOCKET} -U app -d app -c "ALTER ROLE app PASSWORD '$NEW'"; rc=$?; wait; exit $rc`,
    ], { env: { OLD: appPassword, NEW: waited } });
    if (lock.code === 0) appPassword = waited;

    await client("CREATE TABLE pgharbor_audit_probe (i int)");
    const statements = await superuserPsql(pg, "SELECT query FROM pg_stat_statements", "app");
    if (statements.code !== 0) throw new Error(`reading pg_stat_statements failed: ${statements.stderr}`);
    const log = await pg.serverLog();
    for (const s of secrets) {
      if (log.includes(s)) leaks.push(`server log: ${s}`);
      if (statements.stdout.includes(s)) leaks.push(`pg_stat_statements: ${s}`);
      if (clientOutput.some((o) => o.includes(s))) leaks.push(`reconciliation output: ${s}`);
    }
    return {
      leaks,
      observed: {
        firstReconciliation: first.code,
        refusedReconciliation: refused.code,
        clientErrors,
        lockWaitLogged: /still waiting for/.test(log),
        ddlAudited: /pgharbor ddl: CREATE TABLE table public\.pgharbor_audit_probe \(user app, database app\)/.test(log),
        pgStatStatementsRows: statements.stdout.split("\n").filter(Boolean).length,
      },
    };
  } finally {
    await engine.stop(pg);
  }
}
