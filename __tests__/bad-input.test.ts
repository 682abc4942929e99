/**
 * Issue 11: nothing wrong or dangerous synthesises silently. One table per class of bad input; every
 * case is an environment a user could write and the message pgharbor answers with (environment,
 * field, value, problem, fix), never a stack trace.
 */
import { Testing } from "cdktf";
import { buildApp } from "../stacks/app";
import { PostgresStack } from "../stacks/postgres-stack";
import { EnvironmentConfig } from "../stacks/environments";
import { PgharborConfigError } from "../constructs/errors";
import { containers, dev, file, Json, prod, staging, synthEnv, variant } from "./helpers";

type Case = [string, unknown, RegExp];

function refusal(env: unknown, others: unknown[] = []): Error {
  try {
    buildApp({ environments: [env, ...others] as EnvironmentConfig[], outdir: "/tmp/pgharbor-bad-input-unused" });
  } catch (e) {
    return e as Error;
  }
  throw new Error("synthesised without an error");
}

function expectRefused(env: unknown, message: RegExp, others: unknown[] = []): void {
  const e = refusal(env, others);
  expect(e).toBeInstanceOf(PgharborConfigError);
  expect(e.message).toMatch(message);
  for (const line of e.message.split("\n")) expect(line).toMatch(/^\[[a-z0-9/.-]+\] .+ = .+: .+\. Fix: .+\.$/);
}

/** A deep patch: `{ primary: { … } }` merges into the base's primary. */
const v = (base: EnvironmentConfig, patch: Record<string, unknown>) => variant(base, patch) as unknown;

export const class1: Case[] = [
  ["typo of protect on prod", { ...prod, protected: true }, /^\[prod\] protected = true: is not an environment setting, so it would be silently ignored\. Fix: did you mean "protect"\? Rename it\.$/],
  ["typo of rpoSeconds", v(dev, { primary: { rpoSecond: 5 } }), /^\[dev\/primary\] rpoSecond = 5: is not a setting of primary.*Fix: did you mean "rpoSeconds"\?/],
  ["wrong case of a key", v(dev, { primary: { maxconnections: 80 } }), /\[dev\/primary\] maxconnections = 80: .*did you mean "maxConnections"/],
  ["unknown key without a near one", v(dev, { pgbouncer: { colour: "blue" } }), /\[dev\/pgbouncer\] colour = "blue": is not a setting of pgbouncer.*Fix: remove it; valid keys here are host, port, publishAddress/],
  ["typo inside a host", v(dev, { hosts: { local: { dockerhost: "unix:///var/run/docker.sock" } } }), /\[dev\/hosts\.local\] dockerhost = .*did you mean "dockerHost"/],
  ["typo inside the archive", v(staging, { archive: { ...staging.archive, regoin: "eu-west-1" } }), /\[staging\/archive\] regoin = "eu-west-1": .*did you mean "region"/],
  ["typo inside objectLock", v(prod, { archive: { ...prod.archive, objectLock: { mode: "GOVERNANCE", day: 14 } } }), /\[prod\/archive\] objectLock\.days = \(unset\): is required[\s\S]*objectLock\.day = 14: .*did you mean "days"/],
  ["typo inside backup.logical", v(dev, { backup: { logical: { recipients: dev.backup!.logical!.recipients, retentionDay: 3 } } }), /\[dev\/backup\] logical\.retentionDay = 3: .*did you mean "retentionDays"/],
  ["typo inside drill", v(dev, { backup: { drill: { schedul: "0 4 * * 6" } } }), /\[dev\/backup\] drill\.schedul = .*did you mean "schedule"/],
  ["typo inside monitoring", v(dev, { monitoring: { probeInterval: 10 } }), /\[dev\/monitoring\] probeInterval = 10: .*did you mean "probeIntervalSeconds"/],
  ["typo inside state", v(prod, { state: { ...prod.state, buckets: "x" } }), /\[prod\/state\] buckets = "x": .*did you mean "bucket"/],
  ["replica section key the replica construct has no use for", v(dev, { replica: { memoryMiB: 512, protectData: true } }), /\[dev\/replica\] protectData = true: is not a setting of replica/],
  ["number as a string", v(dev, { replicas: "2" }), /^\[dev\] replicas = "2": must be a number\. Fix: write it as a number\.$/],
  ["boolean as a string", { ...prod, protect: "yes" }, /^\[prod\] protect = "yes": must be a boolean \(true or false\)/],
  ["parameter value that is an object", v(dev, { primary: { parameters: { work_mem: { mb: 64 } } } }), /\[dev\/primary\] parameters\.work_mem = \{"mb":64\}: must be a string, a number or a boolean/],
  ["recipients not a list", v(dev, { backup: { logical: { recipients: "age1x22sas7ypvznx95hsgmlvqtv3hmfk8g6s9qfq4rp530xa497sqhqyuk8zm" } } }), /\[dev\/backup\] logical\.recipients = "age1.*": must be a list/],
  ["drill: true", v(dev, { backup: { drill: true } }), /\[dev\/backup\] drill = true: must be false or an object/],
  ["NaN", v(dev, { primary: { memoryMiB: NaN } }), /\[dev\/primary\] memoryMiB = NaN: must be a number/],
  ["Infinity", v(dev, { primary: { maxConnections: Infinity } }), /\[dev\/primary\] maxConnections = Infinity: must be a number/],
  ["hosts as a list", { ...dev, hosts: [{}] }, /^\[dev\] hosts = \[\{\}\]: must be an object \(name: value, …\)/],
  ["acknowledgeRisk as a word", v(dev, { primary: { acknowledgeRisk: "yes" } }), /\[dev\/primary\] acknowledgeRisk = "yes": must be an object/],
  ["state kind unknown", v(dev, { state: { kind: "consul" } }), /\[dev\/state\] kind = "consul": must be "local" or "s3"/],
];

export const class7: Case[] = [
  ["no primary", { ...dev, primary: undefined }, /^\[dev\] primary = \(unset\): is required\. Fix: add primary \(an object\)/],
  ["no state", { ...dev, state: undefined }, /^\[dev\] state = \(unset\): is required\. Fix: add state/],
  ["no archive", { ...dev, archive: undefined }, /^\[dev\] archive = \(unset\): is required/],
  ["no hosts", { ...dev, hosts: undefined }, /^\[dev\] hosts = \(unset\): is required/],
  ["no name", { ...dev, name: undefined }, /^\[environment\] name = \(unset\): is required/],
  ["empty name", { ...dev, name: "" }, /^\[environment\] name = "": must be lowercase letters, digits and hyphens/],
  ["hosts: null", { ...dev, hosts: { local: null } }, /\[dev\] hosts\.local = null: must be an object/],
  ["environment not an object", "dev", /^\[environment\] \(environment\) = "dev": must be an object/],
  ["host named like the primary construct", { ...dev, hosts: { primary: {} } }, /^\[dev\] hosts\.primary = "primary": is the name of another part of the stack.*Fix: name the host after the machine, e\.g\. "db-1"\.$/],
  ["host named like a replica", { ...prod, hosts: { ...prod.hosts, "replica-1": { dockerHost: "ssh://deploy@db-4.example.internal", privateAddress: "10.30.0.14" } } }, /\[prod\] hosts\.replica-1 = "replica-1": is the name of another part of the stack/],
  ["host named ca", { ...dev, hosts: { ca: {} } }, /\[dev\] hosts\.ca = "ca": is the name of another part of the stack/],
  ["host named archive", { ...dev, hosts: { archive: {} } }, /\[dev\] hosts\.archive = "archive"/],
  ["memory in bytes instead of MiB", v(dev, { primary: { memoryMiB: 8 * 1024 ** 3 } }), /\[dev\/primary\] memoryMiB = 8589934592: is more than 1048576 MiB \(1 TiB\)/],
  ["replica memory in bytes", v(dev, { replica: { memoryMiB: 1e9 } }), /\[dev\/replicas\.replica-1\] memoryMiB = 1000000000: is more than 1048576 MiB/],
  ["PgBouncer client connections past file descriptors", v(dev, { pgbouncer: { maxClientConnections: 1e9 } }), /\[dev\/pgbouncer\] maxClientConnections = 1000000000: is more than 100000/],
  ["aws-s3 without a bucket name", { ...staging, archive: { kind: "aws-s3", region: "eu-west-1" } }, /\[staging\/archive\] bucketName = \(unset\): is required/],
];

export const class2: Case[] = [
  ["role named after a reserved keyword", v(dev, { primary: { appUser: "user" } }), /^\[dev\/primary\] appUser = "user": is an SQL keyword, reserved in PostgreSQL: every statement, PgBouncer and each client would have to quote it\. Fix: use a name like "app"/],
  ["role named order", v(dev, { primary: { appUser: "order" } }), /appUser = "order": is an SQL keyword, reserved/],
  ["database named select", v(dev, { primary: { appDatabase: "select" } }), /\[dev\/primary\] appDatabase = "select": is an SQL keyword/],
  ["role named left (function or type names only)", v(dev, { primary: { appUser: "left" } }), /appUser = "left": is an SQL keyword, reserved \(function or type names only\)/],
  ["database named int (column names only)", v(dev, { primary: { appDatabase: "int" } }), /appDatabase = "int": is an SQL keyword, reserved \(column names only\)/],
  ["role current_user targets the superuser", v(dev, { primary: { appUser: "current_user" } }), /appUser = "current_user": is a special name \(as a role it names whoever runs the statement: the superuser during role reconciliation\)/],
  ["role session_user", v(dev, { primary: { appUser: "session_user" } }), /appUser = "session_user": is a special name/],
  ["role current_role", v(dev, { primary: { appUser: "current_role" } }), /appUser = "current_role": is a special name/],
  ["role public", v(dev, { primary: { appUser: "public" } }), /appUser = "public": is a special name \(PUBLIC means every role/],
  ["database public", v(dev, { primary: { appDatabase: "public" } }), /appDatabase = "public": is a special name/],
  ["role none", v(dev, { primary: { appUser: "none" } }), /appUser = "none": is a special name \(PostgreSQL reserves the role name NONE\)/],
  ["role pg_ prefix", v(dev, { primary: { appUser: "pg_app" } }), /appUser = "pg_app": starts with "pg_", which PostgreSQL reserves/],
  ["database pg_ prefix", v(dev, { primary: { appDatabase: "pg_shop" } }), /appDatabase = "pg_shop": starts with "pg_"/],
  ["role pgharbor prefix", v(dev, { primary: { appUser: "pgharbor_app" } }), /appUser = "pgharbor_app": starts with "pgharbor", which pgharbor reserves/],
  ["role replicator", v(dev, { primary: { appUser: "replicator" } }), /appUser = "replicator": is a special name \(it is pgharbor's replication role\)/],
  ["database template1", v(dev, { primary: { appDatabase: "template1" } }), /appDatabase = "template1": is a special name \(it is a template database\)/],
  ["role whose _ro role passes 63 bytes", v(dev, { primary: { appUser: "a".repeat(61) } }), /appUser = "a{61}": is 61 bytes: pgharbor derives "aaaaaaaa…_ro" from it, and PostgreSQL truncates names past 63 bytes\. Fix: use at most 60 bytes/],
  ["database whose PgBouncer _ro name passes 63 bytes", v(dev, { primary: { appDatabase: "d".repeat(62) } }), /appDatabase = "d{62}": is 62 bytes.*Fix: use at most 60 bytes/],
  ["uppercase role", v(dev, { primary: { appUser: "App" } }), /appUser = "App": must be a lowercase SQL identifier/],
  ["role starting with a digit", v(dev, { primary: { appUser: "1app" } }), /appUser = "1app": must be a lowercase SQL identifier/],
  ["empty role", v(dev, { primary: { appUser: "" } }), /appUser = "": must be a lowercase SQL identifier/],
  ["role with a quote", v(dev, { primary: { appUser: 'app"; DROP ROLE postgres; --' } }), /appUser = .*: must be a lowercase SQL identifier/],
];

describe("class 2: SQL identifiers", () => {
  test.each(class2)("%s", (_n, env, message) => expectRefused(env, message));
  test.each([["data (an unreserved keyword)", "data"], ["60 bytes", "a".repeat(60)], ["underscores", "shop_eu_1"]])("allowed: %s", (_n, name) => {
    expect(() => buildApp({ environments: [variant(dev, { primary: { appUser: name, appDatabase: name } })], outdir: "/tmp/pgharbor-bad-input-unused" })).not.toThrow();
  });
});

const params = (parameters: Record<string, unknown>, more: Record<string, unknown> = {}) => v(dev, { primary: { ...dev.primary, parameters, ...more } });
const ACK = "CI cluster rebuilt from scratch on every run; speed matters more than its data";

export const class3: Case[] = [
  ["newline smuggling a second setting", params({ application_name: "x\nfsync = off" }), /^\[dev\/primary\] parameters\.application_name = "x\\nfsync = off": application_name holds a line break or another control character: postgresql\.conf would break, or gain a line\. Fix: write the value on one line/],
  ["carriage return", params({ search_path: "public\r" }), /parameters\.search_path = "public\\r": search_path holds a line break/],
  ["NaN", params({ random_page_cost: NaN }), /parameters\.random_page_cost = NaN: random_page_cost is not a finite number/],
  ["Infinity", params({ work_mem: Infinity }), /parameters\.work_mem = Infinity: work_mem is not a finite number/],
  ["fsync off", params({ fsync: false }), /parameters\.fsync = false: fsync turns off crash safety: an OS crash or power loss can corrupt the whole cluster\. Fix: remove it, or acknowledge the risk with acknowledgeRisk: \{ "parameters\.fsync": "<why, in a sentence>" \}/],
  ["fsync off as a string", params({ fsync: "of" }), /parameters\.fsync = "of": fsync turns off crash safety/],
  ["full_page_writes off", params({ full_page_writes: "off" }), /parameters\.full_page_writes = "off": full_page_writes turns off torn-page protection/],
  ["synchronous_commit off", params({ synchronous_commit: false }), /parameters\.synchronous_commit = false: synchronous_commit acknowledges commits before they are on disk/],
  ["data_sync_retry on", params({ data_sync_retry: "on" }), /parameters\.data_sync_retry = "on": data_sync_retry keeps running after a failed fsync/],
  ["a developer option", params({ zero_damaged_pages: true }), /parameters\.zero_damaged_pages = true: zero_damaged_pages is a developer option/],
  ["acknowledgement without a reason", params({ fsync: false }, { acknowledgeRisk: { "parameters.fsync": "ok" } }), /\[dev\/primary\] acknowledgeRisk\["parameters\.fsync"\] = "ok": is not a reason \(at least 20 characters/],
  ["acknowledgement of nothing", params({}, { acknowledgeRisk: { "parameters.fsync": ACK } }), /acknowledgeRisk\["parameters\.fsync"\] = .*: acknowledges nothing: parameters\.fsync carries no risk here\. Fix: remove the acknowledgement/],
  ["archive_library beside archive_command", params({ archive_library: "basic_archive" }), /parameters\.archive_library = "basic_archive": archive_library is managed by pgharbor \(WAL goes to the bucket through archive_command; an archive library beside it stops archiving\)\. Fix: remove it from parameters/],
  ["recovery target", params({ recovery_target_time: "2026-01-01 00:00:00+00" }), /recovery_target_time is managed by pgharbor \(a recovery target would stop every replica's replay there/],
  ["recovery target, odd case", params({ Recovery_Target_Name: "x" }), /parameters\.Recovery_Target_Name = "x": Recovery_Target_Name is managed by pgharbor/],
  ["primary_conninfo", params({ primary_conninfo: "host=evil" }), /primary_conninfo is managed by pgharbor/],
  ["restore_command", params({ restore_command: "cp /x %p" }), /restore_command is managed by pgharbor/],
  ["ssl_ciphers", params({ ssl_ciphers: "ALL" }), /ssl_ciphers is managed by pgharbor \(TLS is pgharbor's/],
  ["ssl_max_protocol_version", params({ ssl_max_protocol_version: "TLSv1.2" }), /ssl_max_protocol_version is managed by pgharbor/],
  ["wal_level minimal", params({ wal_level: "minimal" }), /wal_level is managed by pgharbor/],
  ["read-only by default", params({ default_transaction_read_only: true }), /default_transaction_read_only is managed by pgharbor \(the read-write pool, the heartbeat and role reconciliation write/],
  ["TimeZone and timezone", params({ TimeZone: "UTC", timezone: "Europe/Paris" }), /parameters\.timezone = "Europe\/Paris": timezone is set twice \(as TimeZone and timezone\): parameter names are case-insensitive/],
  ["case-insensitive shared_buffers still checked against memory", params({ Shared_Buffers: "2GB" }), /\[dev\/primary\] memoryMiB = 512: is too small: shared_buffers 2GB/],
  ["read-only (internal) parameter", params({ block_size: 16384 }), /parameters\.block_size = 16384: block_size is read-only: it reports how PostgreSQL was built or initialised/],
  ["enum value that does not exist", params({ wal_compression: "gzip" }), /parameters\.wal_compression = "gzip": wal_compression is not one of pglz, lz4, zstd, on, off/],
  ["integer below its minimum", params({ autovacuum_max_workers: 0 }), /parameters\.autovacuum_max_workers = 0: autovacuum_max_workers is outside 1 to 262143/],
  ["memory value past its maximum", params({ wal_buffers: "4TB" }), /parameters\.wal_buffers = "4TB": wal_buffers is outside -1 to 262143 \(unit 8kB\)/],
  ["time parameter with a memory unit", params({ statement_timeout: "5MB" }), /parameters\.statement_timeout = "5MB": statement_timeout has unit "MB", which is not a unit of time/],
  ["unit on a parameter without one", params({ random_page_cost: "1.1ms" }), /random_page_cost has a unit \("ms"\), but this parameter takes none/],
  ["fraction for a whole-number parameter", params({ max_locks_per_transaction: 64.5 }), /max_locks_per_transaction is not a whole number/],
  ["boolean that is not one", params({ jit: "maybe" }), /parameters\.jit = "maybe": jit is not a boolean\. Fix: use true or false/],
  ["name with spaces and =", params({ "work_mem = 1GB": 1 }), /parameters\.work_mem = 1GB = 1: work_mem = 1GB is not a parameter name/],
  ["shared_preload_libraries without pg_stat_statements", params({ shared_preload_libraries: "auto_explain" }), /shared_preload_libraries leaves out pg_stat_statements or auto_explain/],
  ["shared_preload_libraries without auto_explain", params({ shared_preload_libraries: "pg_stat_statements,pg_cron" }), /shared_preload_libraries leaves out pg_stat_statements or auto_explain/],
  ["auto_explain.log_min_duration set directly", params({ "auto_explain.log_min_duration": 0 }), /auto_explain.log_min_duration is managed by pgharbor \(set `autoExplainMinDurationMs` instead\)/],
  ["autoExplainMinDurationMs not a whole number", v(dev, { primary: { autoExplainMinDurationMs: 2.5 } }), /\[dev\/primary\] autoExplainMinDurationMs = 2.5: must be a whole number of milliseconds up to a day, or -1 for off/],
  ["pg_stat_statements parameter, bad value", params({ "pg_stat_statements.max": "lots" }), /pg_stat_statements\.max is not a number/],
  ["pg_stat_statements parameter misspelt", params({ "pg_stat_statements.trak": "all" }), /pg_stat_statements\.trak is not a PostgreSQL 17 parameter\. Fix: did you mean "pg_stat_statements\.track"\?/],
  ["a 17 parameter on 15", params({ transaction_timeout: "1min" }, { majorVersion: 15 }), /transaction_timeout does not exist in PostgreSQL 15 \(only in 17\)/],
  ["max_wal_size below two segments (the server would not start)", params({ max_wal_size: "16MB" }), /parameters\.max_wal_size = "16MB": max_wal_size is 16MB: PostgreSQL needs at least two WAL segments \(32MB\)/],
  ["max_wal_size below pgharbor's min_wal_size", params({ max_wal_size: "128MB" }), /parameters\.max_wal_size = "128MB": max_wal_size leaves min_wal_size \(256MB\) above max_wal_size \(128MB\)/],
  ["superuser_reserved_connections", params({ superuser_reserved_connections: 40 }), /superuser_reserved_connections is managed by pgharbor \(pgharbor reserves 3 connections for superusers/],
  ["session_replication_role replica server-wide", params({ session_replication_role: "replica" }), /parameters\.session_replication_role = "replica": session_replication_role makes every session skip triggers and foreign-key checks/],
];

export const class8: Case[] = [
  ["log_statement ddl logs ALTER ROLE … PASSWORD", params({ log_statement: "ddl" }), /parameters\.log_statement = "ddl": log_statement is managed by pgharbor \(pgharbor sets 'none': 'ddl', 'mod' and 'all' log ALTER ROLE … PASSWORD in clear/],
  ["log_statement all", params({ log_statement: "all" }), /log_statement is managed by pgharbor/],
  ["log_statement mod", params({ LOG_STATEMENT: "mod" }), /parameters\.LOG_STATEMENT = "mod": LOG_STATEMENT is managed by pgharbor/],
  ["failing statements logged with their text", params({ log_min_error_statement: "error" }), /log_min_error_statement is managed by pgharbor \(pgharbor sets 'panic'/],
  ["slow-statement logging without acknowledgement", v(dev, { primary: { logMinDurationStatementMs: 0 } }), /\[dev\/primary\] logMinDurationStatementMs = 0: logs slow statements with their text, and PostgreSQL cannot leave out the password of a slow ALTER ROLE … PASSWORD\. Fix: leave it unset \(-1\) and read pg_stat_statements, or acknowledge/],
  ["log_min_duration_statement directly", params({ log_min_duration_statement: 0 }), /log_min_duration_statement is managed by pgharbor \(set `logMinDurationStatementMs` instead/],
  ["sampled statement logging", params({ log_min_duration_sample: 0 }), /log_min_duration_sample is managed by pgharbor \(sampled statements are logged with their text/],
  ["transaction sampling", params({ log_transaction_sample_rate: 1 }), /log_transaction_sample_rate is managed by pgharbor/],
  ["parse trees in the log", params({ debug_print_parse: true }), /debug_print_parse is managed by pgharbor \(parse trees hold every constant/],
  ["debug log levels", params({ log_min_messages: "debug2" }), /parameters\.log_min_messages = "debug2": log_min_messages at debug levels the server logs statement text/],
  ["pg_stat_statements keeping utility statements", params({ "pg_stat_statements.track_utility": true }), /pg_stat_statements\.track_utility is managed by pgharbor \(pgharbor sets it off: pg_stat_statements stores utility statements such as ALTER ROLE … PASSWORD with their literal/],
  ["logging collector into the data directory", params({ logging_collector: true }), /logging_collector is managed by pgharbor \(logs go to stderr/],
];

describe("class 3: PostgreSQL parameters", () => {
  test.each(class3)("%s", (_n, env, message) => expectRefused(env, message));
  test.each([
    ["application_name (missing from the old catalogue)", { application_name: "pgharbor" }, {}],
    ["timezone in any case", { timezone: "UTC" }, {}],
    ["an extension's placeholder", { "pg_partman_bgw.interval": 3600 }, {}],
    ["units PostgreSQL understands", { statement_timeout: "30s", work_mem: "16MB", checkpoint_timeout: "15min" }, {}],
    ["fsync off, acknowledged with a reason", { fsync: false }, { acknowledgeRisk: { "parameters.fsync": ACK } }],
    ["synchronous_commit local (no synchronous standby: not a risk)", { synchronous_commit: "local" }, {}],
  ])("allowed: %s", (_n, parameters, more) => {
    expect(() => buildApp({ environments: [params(parameters, more) as EnvironmentConfig], outdir: "/tmp/pgharbor-bad-input-unused" })).not.toThrow();
  });
});

describe("class 8: no password reaches a server log (synth side; engine-pending/password-logging.engine.ts runs it)", () => {
  test.each(class8)("%s", (_n, env, message) => expectRefused(env, message));
  test("slow-statement logging with a written acknowledgement", () => {
    expect(() => buildApp({ environments: [v(dev, { primary: { logMinDurationStatementMs: 1000, acknowledgeRisk: { logMinDurationStatementMs: "staging only: we need slow-query text while tuning; password rotations are done by pgharbor" } } }) as EnvironmentConfig], outdir: "/tmp/pgharbor-bad-input-unused" })).not.toThrow();
  });
});

const hosts = (patch: Record<string, Record<string, unknown>>) => ({ ...prod, hosts: Object.fromEntries(Object.entries(prod.hosts).map(([k, h]) => [k, { ...h, ...(patch[k] ?? {}) }])) });

export const class4: Case[] = [
  ["more replicas than replica hosts: two publish 5432 on db-2", { ...prod, replicas: 3 }, /^\[prod\/hosts\.db-2\] ports = "10\.30\.0\.12:5432\/tcp": replica "replica-3" would publish it, but replica "replica-1" already publishes 10\.30\.0\.12:5432 on this host\. Fix: give replica "replica-3" another published port, or run it on a host of its own \(replicaHosts\)\.$/],
  ["replicaHosts listing a host twice", { ...prod, replicaHosts: ["db-2", "db-2"] }, /\[prod\] replicaHosts\[1\] = "db-2": is listed twice/],
  ["PgBouncer on the primary's published port", v(prod, { pgbouncer: { ...prod.pgbouncer, port: 5432 } }), /^\[prod\/hosts\.db-1\] ports = "10\.30\.0\.11:5432\/tcp": PgBouncer would publish it, but the primary already publishes 10\.30\.0\.11:5432 on this host\. Fix: choose another pgbouncer\.port/],
  ["two hosts with the same private address", hosts({ "db-2": { privateAddress: "10.30.0.11" } }), /\[prod\] hosts\.db-2\.privateAddress = "10\.30\.0\.11": is the private address of another host too.*\(host "db-1"\)/],
  ["two hosts on one Docker daemon", { ...dev, hosts: { local: {}, other: {} } }, /\[dev\] hosts\.other\.dockerHost = "unix:\/\/\/var\/run\/docker\.sock": is the Docker daemon of another host too/],
  ["an invalid IP", hosts({ "db-2": { privateAddress: "10.30.0.300" } }), /\[prod\/hosts\.db-2\] privateAddress = "10\.30\.0\.300": is not a valid IP address/],
  ["a private address that is neither", hosts({ "db-2": { privateAddress: "db 2" } }), /privateAddress = "db 2": is not an IP address or DNS name/],
  ["a loopback private address", hosts({ "db-2": { privateAddress: "127.0.0.1" } }), /privateAddress = "127\.0\.0\.1": is a wildcard or loopback address, which other hosts cannot reach/],
  ["a DNS private address where a port must be published", hosts({ "db-1": { privateAddress: "db-1.example.internal" } }), /\[prod\/hosts\.db-1\] bindAddress = \(unset\): replica "replica-1" on host "db-2" needs the primary published here, and privateAddress "db-1\.example\.internal" is a DNS name: Docker publishes ports on an IP address\. Fix: set hosts\.db-1\.bindAddress/],
  ["a bind address that is a name", hosts({ "db-1": { bindAddress: "db-1.example.internal" } }), /bindAddress = "db-1\.example\.internal": is not an IP address/],
  ["a wildcard bind address", hosts({ "db-1": { bindAddress: "0.0.0.0" } }), /bindAddress = "0\.0\.0\.0": is a wildcard: published ports would listen on every interface/],
  ["PgBouncer published on a DNS name", v(prod, { pgbouncer: { ...prod.pgbouncer, publishAddress: "db-1.example.internal" } }), /\[prod\/pgbouncer\] publishAddress = "db-1\.example\.internal": is a DNS name, and Docker publishes ports on an IP address/],
  ["PgBouncer on every interface", v(dev, { pgbouncer: { publishAddress: "0.0.0.0" } }), /\[dev\/pgbouncer\] publishAddress = "0\.0\.0\.0": is a wildcard: PgBouncer would listen on every interface/],
  ["PgBouncer on an invalid IP", v(dev, { pgbouncer: { publishAddress: "10.0.0.999" } }), /publishAddress = "10\.0\.0\.999": is not an IP address/],
  ["PgBouncer published on another host's address", v(prod, { pgbouncer: { ...prod.pgbouncer, host: "db-2" } }), /\[prod\] pgbouncer\.publishAddress = "10\.30\.0\.11": is host "db-1"'s address, but PgBouncer runs on host "db-2": Docker there cannot publish on it\. Fix: publish on db-2's own address, or set pgbouncer\.host to "db-1"/],
  ["dev S3 image not pinned", v(dev, { archive: { kind: "local-s3", image: "chrislusf/seaweedfs" } }), /\[dev\/archive\] image = "chrislusf\/seaweedfs": is not pinned/],
  ["dev S3 image :latest", v(dev, { archive: { kind: "local-s3", image: "chrislusf/seaweedfs:latest" } }), /\[dev\/archive\] image = "chrislusf\/seaweedfs:latest": is not pinned/],
  ["client address that is not a name", { ...dev, clientAddress: "db_1!" }, /\[dev\/pgbouncer\] clientAddress = "db_1!": is not a DNS name or IP address/],
  ["client address that cannot reach a loopback-published PgBouncer", { ...dev, clientAddress: "10.30.0.11" }, /\[dev\/pgbouncer\] clientAddress = "10\.30\.0\.11": cannot reach PgBouncer, which is published on 127\.0\.0\.1 only\. Fix: use 127\.0\.0\.1 or "localhost"/],
  ["loopback client address for a PgBouncer on the private address", { ...prod, clientAddress: "127.0.0.1" }, /\[prod\/pgbouncer\] clientAddress = "127\.0\.0\.1": cannot reach PgBouncer, which is published on 10\.30\.0\.11 only/],
  ["client CA file relative", { ...dev, clientCaFile: "ca.crt" }, /\[dev\/pgbouncer\] clientCaFile = "ca\.crt": is not an absolute path/],
  ["client CA file that would break the URL", { ...dev, clientCaFile: "/etc/ca.crt&sslmode=disable" }, /clientCaFile = "\/etc\/ca\.crt&sslmode=disable": is not an absolute path of letters/],
];

describe("class 4: addresses, ports and names", () => {
  test.each(class4)("%s", (_n, env, message) => expectRefused(env, message));
  const cert = (json: Json, id: RegExp) => Object.entries(json.resource!.tls_cert_request).find(([k]) => id.test(k))![1] as { dns_names: string[]; ip_addresses?: string[] };
  test("a DNS private address is in the certificates, and ports bind to bindAddress", () => {
    const json = synthEnv(hosts({ "db-1": { privateAddress: "db-1.example.internal", bindAddress: "10.30.0.11" }, "db-2": { privateAddress: "db-2.example.internal", bindAddress: "10.30.0.12" } }) as EnvironmentConfig);
    expect(cert(json, /primary-tls/).dns_names).toContain("db-1.example.internal");
    expect(cert(json, /replica-1-tls/).dns_names).toContain("db-2.example.internal");
    expect(cert(json, /replica-2-tls/).ip_addresses).toEqual(["10.30.0.13"]);
    expect(containers(json)["pgharbor-prod-primary"].ports).toEqual([{ internal: 5432, external: 5432, ip: "10.30.0.11", protocol: "tcp" }]);
    expect(file(containers(json)["pgharbor-prod-replica-1"], "/etc/postgresql/postgresql.conf")).toMatch(/^primary_conninfo = 'host=db-1\.example\.internal port=5432 .*sslmode=verify-full/m);
  });
  test("DATABASE_URL verifies the server: verify-full, the CA where clientCaFile says, the client address in PgBouncer's certificate", () => {
    const json = synthEnv({ ...prod, clientAddress: "db.example.com", clientCaFile: "/etc/ssl/pgharbor/ca.crt" } as EnvironmentConfig);
    expect(json.output!.DATABASE_URL.value).toMatch(/@db\.example\.com:6432\/app\?sslmode=verify-full&sslrootcert=\/etc\/ssl\/pgharbor\/ca\.crt$/);
    expect(cert(json, /pgbouncer-tls/).dns_names).toEqual(expect.arrayContaining(["db.example.com"]));
    expect(cert(json, /pgbouncer-tls/).ip_addresses).toEqual(["10.30.0.11"]);
  });
  test("an IPv6 client address is bracketed in the URL and an IP SAN", () => {
    const json = synthEnv({ ...dev, clientAddress: "fd00::10", pgbouncer: { ...dev.pgbouncer, publishAddress: "fd00::10" } } as EnvironmentConfig);
    expect(json.output!.DATABASE_URL.value).toMatch(/@\[fd00::10\]:6432\/app\?sslmode=verify-full$/);
    expect(json.output!.pgbouncer_endpoint.value).toBe("[fd00::10]:6432");
    expect(cert(json, /pgbouncer-tls/).ip_addresses).toEqual(["fd00::10"]);
  });
  test("protect covers the dev S3 server's data volume and passphrase too", () => {
    const json = synthEnv({ ...dev, protect: true } as EnvironmentConfig);
    expect(Object.values(json.resource!.docker_volume).find((vol) => vol.name === "pgharbor-dev-s3-data")!.lifecycle).toEqual({ prevent_destroy: true });
  });
  test("the pg_wal alert follows a max_wal_size override", () => {
    const app = Testing.app({ stubVersion: true });
    const stack = new PostgresStack(app, params({ max_wal_size: "8GB" }) as EnvironmentConfig);
    expect(stack.monitoring.alertInput.maxWalSizeMiB).toBe(8192);
  });
  test("the dev S3 server reached from another host is published there and names that host in its certificate", () => {
    const env = { ...dev, hosts: { local: { privateAddress: "10.1.0.1" }, other: { dockerHost: "ssh://deploy@other.example.internal", privateAddress: "10.1.0.2" } }, replicaHosts: ["other"] };
    const json = synthEnv(env as EnvironmentConfig);
    expect(containers(json)["pgharbor-dev-s3"].ports).toEqual([{ internal: 8333, external: 8333, ip: "10.1.0.1", protocol: "tcp" }]);
    expect(cert(json, /archive|server/).ip_addresses).toEqual(["10.1.0.1"]);
  });
});

const docker = (dockerHost: string, more: Record<string, unknown> = {}) => hosts({ "db-2": { dockerHost, ...more } });
const s3state = (patch: Record<string, unknown>) => ({ ...prod, state: { ...prod.state, ...patch } });

export const class5: Case[] = [
  ["plain tcp:// Docker daemon", docker("tcp://10.30.0.12:2375"), /^\[prod\/hosts\.db-2\] dockerHost = "tcp:\/\/10\.30\.0\.12:2375": is a plain TCP Docker daemon: no TLS and no authentication, so whoever reaches that port is root on the host.*Fix: reach it over ssh:\/\/ instead, or acknowledge the risk with acknowledgeRisk: \{ dockerHost: "<why, in a sentence>" \} on the host\.$/],
  ["tcp:// acknowledged without a reason", docker("tcp://10.30.0.12:2375", { acknowledgeRisk: { dockerHost: "lab" } }), /acknowledgeRisk\["dockerHost"\] = "lab": is not a reason/],
  ["tcp:// acknowledged but malformed", docker("tcp://10.30.0.12", { acknowledgeRisk: { dockerHost: "isolated CI network; nothing else routes to the daemon" } }), /dockerHost = "tcp:\/\/10\.30\.0\.12": is not tcp:\/\/host:port/],
  ["ssh host that is an ssh option", docker("ssh://-oProxyCommand=sh"), /dockerHost = "ssh:\/\/-oProxyCommand=sh": has host "-oProxyCommand=sh", which is not a DNS name or IP address \(a leading - would be read by ssh as an option\)/],
  ["ssh user that is an ssh option", docker("ssh://-oProxyCommand=x@db-2"), /has user "-oProxyCommand=x", which is not a user name \(a leading - would be read by ssh as an option\)/],
  ["ssh with a path", docker("ssh://deploy@db-2/var/run/docker.sock"), /dockerHost = .*: has host "db-2\/var\/run\/docker\.sock"|is not a Docker daemon address/],
  ["ssh port out of range", docker("ssh://deploy@db-2:70000"), /has port "70000", which is not a TCP port/],
  ["http:// daemon", docker("http://10.30.0.12:2375"), /dockerHost = "http:\/\/10\.30\.0\.12:2375": is not a Docker daemon address/],
  ["daemon address with a newline", docker("ssh://deploy@db-2\n"), /holds whitespace or a control character/],
  ["state without a KMS key", s3state({ kmsKeyId: undefined }), /^\[prod\/state\] kmsKeyId = \(unset\): is unset: the state, which holds every password, key and the backup cipher passphrase in clear.*acknowledgeRisk: \{ kmsKeyId/],
  ["state KMS key that is not an ARN", s3state({ kmsKeyId: "alias/tfstate" }), /\[prod\/state\] kmsKeyId = "alias\/tfstate": is not a KMS key or alias ARN/],
  ["state in the archive bucket", s3state({ bucket: "example-pgharbor-prod-wal" }), /\[prod\/state\] bucket = "example-pgharbor-prod-wal": is the WAL archive's bucket/],
  ["state region", s3state({ region: "eu-west" }), /\[prod\/state\] region = "eu-west": is not an AWS region name/],
  ["state key with a leading slash", s3state({ key: "/prod.tfstate" }), /\[prod\/state\] key = "\/prod\.tfstate": is not an S3 object key/],
  ["state bucket name", s3state({ bucket: "Tf_State" }), /\[prod\/state\] bucket = "Tf_State": is not a valid S3 bucket name/],
];

describe("class 5: transport and state", () => {
  test.each(class5)("%s", (_n, env, message) => expectRefused(env, message));
  test("a state in another environment's archive bucket", () => {
    const e = refusal({ ...staging, state: { ...staging.state, bucket: "example-pgharbor-prod-wal" } }, [prod]);
    expect(e.message).toMatch(/^\[staging\] state\.bucket = "example-pgharbor-prod-wal": is environment prod's WAL archive bucket/m);
  });
  test("two environments on one state key", () => {
    const e = refusal(prod, [{ ...staging, name: "prod-eu", state: prod.state }]);
    expect(e.message).toMatch(/^\[prod-eu\] state\.key = "prod\/terraform\.tfstate": is prod's state too \(same bucket and key\)/m);
  });
  test("one archive bucket for two environments", () => {
    const e = refusal(prod, [{ ...prod, name: "prod-eu", state: { ...prod.state, key: "prod-eu/terraform.tfstate" } }]);
    expect(e.message).toMatch(/^\[prod-eu\] archive\.bucketName = "example-pgharbor-prod-wal": is prod's archive bucket too/m);
  });
  test("allowed: tcp:// with a written reason, and a state key acknowledged without KMS", () => {
    expect(() => buildApp({ environments: [docker("tcp://10.30.0.12:2375", { acknowledgeRisk: { dockerHost: "isolated CI network; nothing else routes to the daemon" } }) as EnvironmentConfig], outdir: "/tmp/x" })).not.toThrow();
    expect(() => buildApp({ environments: [s3state({ kmsKeyId: undefined, acknowledgeRisk: { kmsKeyId: "throwaway sandbox account; the state bucket is private to two admins" } }) as EnvironmentConfig], outdir: "/tmp/x" })).not.toThrow();
  });
  test("the state is encrypted with its KMS key", () => {
    expect(synthEnv(prod).terraform!.backend).toEqual({ s3: expect.objectContaining({ encrypt: true, kms_key_id: "arn:aws:kms:eu-west-1:111122223333:alias/example-pgharbor-tfstate" }) });
  });
});

const backup = (patch: Record<string, unknown>, base: EnvironmentConfig = dev) => ({ ...base, backup: { ...base.backup, ...patch } });

export const class6: Case[] = [
  ["full and differential at the same minute", backup({ fullSchedule: "0 1 * * 0", diffSchedule: "0 1 * * *" }), /^\[dev\/backup\] diffSchedule = "0 1 \* \* \*": fires in the same minute as fullSchedule "0 1 \* \* 0" \(first at 2027-01-03 01:00 UTC\): both take pgBackRest's lock and one of them fails\. Fix: move one of them/],
  ["expire meeting the full backup", backup({ fullSchedule: "30 3 * * 0" }), /\[dev\/backup\] expireSchedule = "30 3 \* \* \*": fires in the same minute as fullSchedule "30 3 \* \* 0"/],
  ["lists that meet on one minute", backup({ fullSchedule: "0,30 1 * * 0", diffSchedule: "30 1 * * 1-6", expireSchedule: "30 1 * * 0" }), /expireSchedule = "30 1 \* \* 0": fires in the same minute as fullSchedule/],
  ["RPO probe slower than the RPO target", v(dev, { monitoring: { probeIntervalSeconds: 120 } }), /^\[dev\/monitoring\] probeIntervalSeconds = 120: is more than half the RPO target \(the primary's rpoSeconds 60\): the probe would see a breach late or not at all\. Fix: lower probeIntervalSeconds to at most 30, or raise rpoSeconds to at least 240\.$/],
  ["RPO target tightened below the probe's interval", v(prod, { primary: { rpoSeconds: 20 } }), /\[prod\/monitoring\] probeIntervalSeconds = 15: is more than half the RPO target \(the primary's rpoSeconds 20\).*at most 10/],
  ["RPO target below what can be measured (root cause, not the probe)", v(dev, { primary: { rpoSeconds: 5 } }), /^\[dev\/primary\] rpoSeconds = 5: must be a whole number of seconds from 10 to 86400 \(below 10 s archive_timeout would force/],
  ["retention 0 with Object Lock: retention speaks, not an impossible lock fix", backup({ retentionDays: 0 }, prod), /^\[prod\/backup\] retentionDays = 0: must be a whole number of days from 1 to 3650\. Fix: use e\.g\. 14\.$/],
  ["negative retention with Object Lock", backup({ retentionDays: -7 }, prod), /^\[prod\/backup\] retentionDays = -7: must be a whole number of days from 1 to 3650/],
  ["logical retention 0 with Object Lock", backup({ logical: { ...prod.backup!.logical!, retentionDays: 0 } }, prod), /^\[prod\/backup\] logical\.retentionDays = 0: must be a whole number of days from 1 to 3650/],
  ["pools past what maxConnections may ever be", v(dev, { pgbouncer: { defaultPoolSize: 9995, maxClientConnections: 10000 } }), /\[dev\/pgbouncer\] defaultPoolSize = 9995: pools need .*Fix: lower defaultPoolSize\/reservePoolSize: 9997 server connections exceed what maxConnections may be \(10000\)\./],
];

describe("class 6: schedules and retention", () => {
  test.each(class6)("%s", (_n, env, message) => expectRefused(env, message));
  test("allowed: the defaults and prod's schedules never meet", () => {
    for (const env of [dev, staging, prod]) expect(() => buildApp({ environments: [env], outdir: "/tmp/x" })).not.toThrow();
  });
});

describe("class 1: unknown or mistyped keys fail synth with the path and the nearest valid key", () => {
  test.each(class1)("%s", (_n, env, message) => expectRefused(env, message));
  test("every problem of an environment is listed, each on its own line", () => {
    const e = refusal({ ...prod, protected: true, primary: { ...prod.primary, rpoSecond: 5 } });
    expect(e.message.split("\n")).toHaveLength(2);
  });
});

describe("class 7: no stack trace, whatever is missing", () => {
  test.each(class7)("%s", (_n, env, message) => expectRefused(env, message));
  test("two stacks of one name in one app", () => {
    const app = Testing.app();
    new PostgresStack(app, dev);
    expect(() => new PostgresStack(app, dev)).toThrow(/^\[environments\] name = "dev": is already a stack of this app/);
  });
});
