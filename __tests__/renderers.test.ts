import { renderPgHba, renderPgIdent } from "../postgres-config/pg-hba";
import { renderPgbackrestConf, RepoSettings } from "../postgres-config/pgbackrest-conf";
import { PASSWORD_ENV, renderRolesSql, ROLE_NAMES } from "../postgres-config/roles";
import { renderPgbouncerIni } from "../pgbouncer-config/pgbouncer-ini";
import { literal, unliteral } from "../constructs/terraform-text";

const repo: RepoSettings = { bucket: "b", endpoint: "s3.local", port: 8333, region: "us-east-1", uriStyle: "path", path: "/pgharbor/dev", verifyTls: true, caFile: "/ca.crt" };

describe("pg_hba.conf", () => {
  const rows = renderPgHba()
    .split("\n")
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => l.split(/\s+/));
  test("superuser and backup role only over the socket", () => {
    expect(rows).toContainEqual(["local", "all", "postgres", "peer"]);
    expect(rows).toContainEqual(["hostssl", "all", "postgres", "all", "reject"]);
    expect(rows).toContainEqual(["hostssl", "all", ROLE_NAMES.backup, "all", "reject"]);
  });
  test("no network access without TLS: hostnossl rejected before anything else", () => {
    const firstRemote = rows.findIndex((r) => r[0] !== "local");
    expect(rows.slice(firstRemote, firstRemote + 2)).toEqual([
      ["hostnossl", "all", "all", "all", "reject"],
      ["hostnossl", "replication", "all", "all", "reject"],
    ]);
    expect(rows.some((r) => r[0] === "host")).toBe(false);
  });
  test("replication only for the replication role, SCRAM everywhere else", () => {
    const repl = rows.findIndex((r) => r[1] === "replication" && r[2] === ROLE_NAMES.replication);
    const rejectRepl = rows.findIndex((r) => r[0] === "hostssl" && r[1] === "replication" && r[2] === "all");
    expect(rows[repl]).toEqual(["hostssl", "replication", ROLE_NAMES.replication, "all", "scram-sha-256"]);
    expect(rejectRepl).toBeGreaterThan(repl);
    expect(rows).toContainEqual(["hostssl", "all", ROLE_NAMES.replication, "all", "reject"]);
    expect(rows.filter((r) => r[0] === "hostssl").every((r) => r[4] === "scram-sha-256" || r[4] === "reject")).toBe(true);
    expect(rows.some((r) => ["trust", "md5", "password", "ident"].includes(r[r.length - 1]))).toBe(false);
  });
  test("ident map sends OS user postgres to the backup role", () => {
    expect(renderPgIdent()).toMatch(/^backup\s+postgres\s+pgharbor_backup$/m);
  });
});

describe("roles.sql", () => {
  const sql = renderRolesSql({ appUser: "shop", appDatabase: "shopdb", major: 17 });
  test("passwords come from the environment, never the file", () => {
    for (const env of [PASSWORD_ENV.app, PASSWORD_ENV.replication, PASSWORD_ENV.pooler, PASSWORD_ENV.monitor]) expect(sql).toMatch(new RegExp(`^\\\\getenv \\w+ ${env}$`, "m"));
    expect(sql).toMatch(/\\getenv app_password PGHARBOR_APP_PASSWORD/);
    expect(sql).toMatch(/ALTER ROLE "shop" LOGIN NOSUPERUSER .* PASSWORD :'app_password';/);
    expect(sql).not.toMatch(/PASSWORD '[^:]/);
  });
  test("statements that carry passwords are kept out of the server log", () => {
    expect(sql.indexOf("SET log_statement = 'none'")).toBeLessThan(sql.indexOf(" PASSWORD :'"));
  });
  test("every statement-text path is off for the session, before the first password and again after \\connect; psql's errors are terse", () => {
    const first = sql.indexOf(" PASSWORD :'");
    const connect = sql.indexOf("\\connect ");
    for (const line of ["SET log_statement = 'none';", "SET log_min_error_statement = 'panic';", "SET log_min_duration_statement = -1;", "SET log_min_duration_sample = -1;", "SET log_transaction_sample_rate = 0;", "SET pg_stat_statements.track_utility = off;", "SET default_transaction_read_only = off;", "SET transaction_timeout = 0;"]) {
      expect([line, sql.indexOf(line) < first, sql.indexOf(line, connect) > connect]).toEqual([line, true, true]);
    }
    expect(sql.indexOf("\\set VERBOSITY terse")).toBeLessThan(first);
    expect(renderRolesSql({ appUser: "shop", appDatabase: "shopdb", major: 15 })).not.toMatch(/transaction_timeout/);
  });
  test("DDL is audited by an event trigger that logs command and objects, never the statement", () => {
    expect(sql).toMatch(/CREATE EVENT TRIGGER pgharbor_ddl_audit ON ddl_command_end EXECUTE FUNCTION pgharbor\.log_ddl\(\)' WHERE NOT EXISTS/);
    expect(sql).toMatch(/CREATE EVENT TRIGGER pgharbor_ddl_audit_drop ON sql_drop/);
    expect(sql).toMatch(/RAISE LOG 'pgharbor ddl: % % \(user %, database %\)', tg_tag/);
    expect(sql).not.toMatch(/current_query\(\)/);
  });
  test("replication role may replicate, nothing else may", () => {
    expect(sql).toMatch(/ALTER ROLE "replicator" LOGIN REPLICATION NOSUPERUSER/);
    expect(sql).toMatch(/ALTER ROLE "shop" .*NOREPLICATION/);
  });
  test("lookup function is SECURITY DEFINER with a pinned search_path, refuses superusers", () => {
    expect(sql).toMatch(/SECURITY DEFINER/);
    expect(sql).toMatch(/SET search_path = pg_catalog, pg_temp/);
    expect(sql).toMatch(/NOT rolsuper AND NOT rolreplication/);
    expect(sql).toMatch(/REVOKE ALL ON FUNCTION pgharbor.user_lookup\(text\) FROM PUBLIC/);
  });
  test("application database created for the application role", () => {
    expect(sql).toMatch(/CREATE DATABASE %I OWNER %I', 'shopdb', 'shop'/);
  });
  test("every role and database name is quoted as an identifier, every compared name as a literal", () => {
    // Names pgharbor validation refuses still come out as one identifier each: quoting does not rely on validation.
    const odd = renderRolesSql({ appUser: 'we"ird', appDatabase: "it's", major: 17 });
    expect(odd).toMatch(/^ALTER ROLE "we""ird" LOGIN/m);
    expect(odd).toMatch(/^ALTER ROLE "we""ird_ro" SET default_transaction_read_only = on;$/m);
    expect(odd).toMatch(/WHERE rolname = 'we"ird'\) \\gexec/);
    expect(odd).toMatch(/WHERE datname = 'it''s'\) \\gexec/);
    expect(odd).toMatch(/^REVOKE ALL ON DATABASE "it's" FROM PUBLIC;$/m);
    expect(odd).toMatch(/^\\connect "it's"$/m);
    expect(odd).toMatch(/GRANT SELECT ON TABLES TO "we""ird_ro";$/m);
    for (const line of sql.split("\n").filter((l) => /^(ALTER|GRANT|REVOKE) /.test(l))) expect(line).not.toMatch(/ (ROLE|TO|DATABASE|FOR ROLE) (shop|shopdb|shop_ro|replicator|pgharbor_\w+)\b/);
  });
});

describe("pgbackrest.conf", () => {
  test.each(["primary", "replica", "backup"] as const)("%s: encrypted, compressed, async, no secrets", (role) => {
    const text = renderPgbackrestConf({ repo, role, processMax: 2, compressLevel: 3, retention: role === "backup" ? { kind: "time", days: 14 } : undefined });
    expect(text).toMatch(/^repo1-cipher-type=aes-256-cbc$/m);
    expect(text).toMatch(/^compress-type=zst$/m);
    expect(text).toMatch(/^archive-async=y$/m);
    expect(text).not.toMatch(/cipher-pass|s3-key/);
    expect(text.includes("repo1-retention-full=14")).toBe(role === "backup");
    expect(text.includes("pg1-user=pgharbor_backup")).toBe(role === "backup");
  });
  test("count retention and KMS key", () => {
    const text = renderPgbackrestConf({ repo: { ...repo, kmsKeyId: "arn:k" }, role: "backup", processMax: 2, compressLevel: 3, retention: { kind: "count", fullBackups: 4 } });
    expect(text).toMatch(/^repo1-retention-full-type=count\nrepo1-retention-full=4$/m);
    expect(text).toMatch(/^repo1-s3-kms-key-id=arn:k$/m);
  });
  test("WAL is only ever dropped when asked", () => {
    expect(renderPgbackrestConf({ repo, role: "primary", processMax: 1, compressLevel: 3 })).not.toMatch(/archive-push-queue-max/);
    expect(renderPgbackrestConf({ repo, role: "primary", processMax: 1, compressLevel: 3, archivePushQueueMaxMiB: 8192 })).toMatch(/^archive-push-queue-max=8192MiB$/m);
  });
});

describe("pgbouncer.ini", () => {
  const input = {
    listenPort: 6432,
    database: "app",
    readOnlyDatabase: "app_ro",
    primary: { host: "p", port: 5432 },
    replicas: [
      { host: "r1", port: 5432 },
      { host: "r2", port: 5432 },
    ],
    poolMode: "transaction" as const,
    defaultPoolSize: 20,
    reservePoolSize: 5,
    maxDbConnections: 25,
    maxClientConnections: 1000,
    tlsMinVersion: "TLSv1.3" as const,
  };
  test("read-write to the primary, read-only round robin over replicas", () => {
    const ini = renderPgbouncerIni(input);
    expect(ini).toMatch(/^app = host=p port=5432 dbname=app$/m);
    expect(ini).toMatch(/^app_ro = host=r1,r2 port=5432 dbname=app$/m);
    expect(ini).toMatch(/^pool_mode = transaction$/m);
    expect(ini).toMatch(/^auth_type = scram-sha-256$/m);
    expect(ini).toMatch(/^auth_user = pgharbor_pgbouncer$/m);
  });
  test("read-only falls back to the primary without replicas", () => {
    expect(renderPgbouncerIni({ ...input, replicas: [] })).toMatch(/^app_ro = host=p port=5432 dbname=app$/m);
  });
});

describe("Terraform escaping", () => {
  test.each([
    ['R="${PGHARBOR_ROOT:-}"', 'R="$${PGHARBOR_ROOT:-}"'],
    ["%{if}", "%%{if}"],
    ["a ${TfToken[TOKEN.1]} b", "a ${TfToken[TOKEN.1]} b"],
    ["$HOME", "$HOME"],
  ])("%p", (input, out) => {
    expect(literal(input)).toBe(out);
    expect(unliteral(literal(input))).toBe(input);
  });
});
