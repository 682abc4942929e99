/**
 * What a user may put in `parameters`: names from the major's catalogue (case-insensitive), values
 * of the parameter's type and range, nothing pgharbor owns or that breaks it, and nothing that risks
 * data or writes passwords to the log without an explicit, written acknowledgement.
 */
import { isExtensionPlaceholder, majorsKnowing, PARAMETER_NAME, ParameterInfo, parameterInfo, parameterNames, PostgresMajor } from "./parameter-catalogue";
import { nearest } from "./suggest";

export type ParameterValue = string | number | boolean;

/** Parameters pgharbor sets or that break it when changed, each with the reason (lowercase names). */
export const MANAGED_PARAMETERS: Record<string, string> = {
  // WAL archive and recovery: the bucket and pgBackRest own them.
  archive_mode: "WAL archiving is always on; it is what the bucket is for",
  archive_command: "it is rendered from the WAL archive (pgBackRest archive-push)",
  archive_library: "WAL goes to the bucket through archive_command; an archive library beside it stops archiving",
  archive_timeout: "set `rpoSeconds` instead",
  archive_cleanup_command: "the archive's retention is pgBackRest's expire, never a standby's cleanup command",
  restore_command: "it is rendered from the WAL archive (pgBackRest archive-get)",
  recovery_end_command: "replicas, restores and drills end recovery the way pgharbor renders them",
  recovery_target: "a recovery target would stop every replica's replay there; give targets to `pgharbor restore --to`",
  recovery_target_action: "a recovery target would stop every replica's replay there; give targets to `pgharbor restore --to`",
  recovery_target_inclusive: "a recovery target would stop every replica's replay there; give targets to `pgharbor restore --to`",
  recovery_target_lsn: "a recovery target would stop every replica's replay there; give targets to `pgharbor restore --to`",
  recovery_target_name: "a recovery target would stop every replica's replay there; give targets to `pgharbor restore --to`",
  recovery_target_time: "a recovery target would stop every replica's replay there; give targets to `pgharbor restore --to`",
  recovery_target_timeline: "replicas follow the primary's latest timeline",
  recovery_target_xid: "a recovery target would stop every replica's replay there; give targets to `pgharbor restore --to`",
  primary_conninfo: "it is rendered from the primary the replica is attached to",
  primary_slot_name: "every replica gets its own slot, named after the replica",
  promote_trigger_file: "promotion is an operator's action, not a file",
  hot_standby: "replicas are hot standbys",
  wal_level: "streaming replicas and archiving need `replica`; it is fixed",
  max_wal_senders: "it is derived from the replicas attached",
  max_replication_slots: "it is derived from the replicas attached",
  max_slot_wal_keep_size: "set `maxSlotWalKeepSizeMiB` instead (it must stay capped)",
  // Files, sockets and ports the containers are built around.
  hba_file: "pgharbor renders pg_hba.conf",
  ident_file: "pgharbor renders pg_ident.conf",
  config_file: "pgharbor renders postgresql.conf",
  data_directory: "the data directory is the named volume",
  external_pid_file: "the data directory holds the server's pid file",
  port: "pgharbor fixes the port inside the container to 5432",
  listen_addresses: "the container listens on its private network",
  unix_socket_directories: "the socket directory is shared with the backup container",
  unix_socket_group: "the backup container reaches the primary over the shared socket as postgres",
  unix_socket_permissions: "the backup container reaches the primary over the shared socket as postgres",
  max_connections: "set `maxConnections` instead (PgBouncer pools are checked against it)",
  superuser_reserved_connections: "pgharbor reserves 3 connections for superusers and sizes PgBouncer's pools around them",
  reserved_connections: "pgharbor sizes PgBouncer's pools around its own reserved connections",
  default_transaction_read_only: "the read-write pool, the heartbeat and role reconciliation write; the read-only role is read-only by itself",
  event_triggers: "pgharbor's DDL audit is an event trigger",
  // TLS and authentication.
  ssl: "TLS is always on",
  ssl_ca_file: "TLS is pgharbor's: certificates from the environment's CA, the minimum version from `tlsMinVersion`",
  ssl_cert_file: "the certificate comes from the environment's CA",
  ssl_key_file: "the key comes from the environment's CA",
  ssl_ciphers: "TLS is pgharbor's: certificates from the environment's CA, the minimum version from `tlsMinVersion`",
  ssl_crl_dir: "TLS is pgharbor's: certificates from the environment's CA, the minimum version from `tlsMinVersion`",
  ssl_crl_file: "TLS is pgharbor's: certificates from the environment's CA, the minimum version from `tlsMinVersion`",
  ssl_dh_params_file: "TLS is pgharbor's: certificates from the environment's CA, the minimum version from `tlsMinVersion`",
  ssl_ecdh_curve: "TLS is pgharbor's: certificates from the environment's CA, the minimum version from `tlsMinVersion`",
  ssl_max_protocol_version: "a maximum below `tlsMinVersion` leaves no protocol to connect with",
  ssl_min_protocol_version: "set `tlsMinVersion` instead",
  ssl_passphrase_command: "the key comes from the environment's CA, without a passphrase",
  ssl_passphrase_command_supports_reload: "the key comes from the environment's CA, without a passphrase",
  ssl_prefer_server_ciphers: "TLS is pgharbor's: certificates from the environment's CA, the minimum version from `tlsMinVersion`",
  password_encryption: "SCRAM is the only password method pgharbor accepts",
  // No statement text, hence no password, ever reaches the server log (PostgreSQL cannot redact one statement).
  log_statement: "pgharbor sets 'none': 'ddl', 'mod' and 'all' log ALTER ROLE … PASSWORD in clear; DDL is audited by pgharbor's event trigger instead",
  log_min_error_statement: "pgharbor sets 'panic': a failing or waiting statement would otherwise be logged with its text, passwords included",
  log_min_duration_statement: "set `logMinDurationStatementMs` instead (it logs statement text, so it needs an acknowledgement)",
  "auto_explain.log_min_duration": "set `autoExplainMinDurationMs` instead",
  "auto_explain.log_parameter_max_length": "pgharbor sets it to 0: bind parameter values (the application's data) stay out of the log",
  log_min_duration_sample: "sampled statements are logged with their text, passwords included",
  log_statement_sample_rate: "sampled statements are logged with their text, passwords included",
  log_transaction_sample_rate: "every statement of a sampled transaction is logged with its text, passwords included",
  debug_print_parse: "parse trees hold every constant of a statement, passwords included",
  debug_print_rewritten: "parse trees hold every constant of a statement, passwords included",
  debug_print_plan: "plans hold every constant of a statement, passwords included",
  "pg_stat_statements.track_utility": "pgharbor sets it off: pg_stat_statements stores utility statements such as ALTER ROLE … PASSWORD with their literal, readable by pg_read_all_stats (the monitoring role)",
  log_destination: "logs go to stderr, which Docker keeps (docker logs)",
  logging_collector: "logs go to stderr, which Docker keeps (docker logs)",
};

/** Values that risk data: allowed only with `acknowledgeRisk["parameters.<name>"]` and a written reason. */
export const RISKY_VALUES: Record<string, { risky: (v: string) => boolean; risk: string }> = {
  fsync: { risky: (v) => v === "off", risk: "turns off crash safety: an OS crash or power loss can corrupt the whole cluster" },
  full_page_writes: { risky: (v) => v === "off", risk: "turns off torn-page protection: a crash mid-write can corrupt data pages beyond repair" },
  synchronous_commit: { risky: (v) => v === "off", risk: "acknowledges commits before they are on disk: a crash loses the last transactions clients were told succeeded" },
  data_sync_retry: { risky: (v) => v === "on", risk: "keeps running after a failed fsync, when the kernel may already have dropped the data" },
  session_replication_role: { risky: (v) => v !== "origin", risk: "makes every session skip triggers and foreign-key checks: the data can break its own constraints" },
};

/** Values that break pgharbor or leak, refused outright (lowercase names). */
const VALUE_RULES: Record<string, { bad: (v: string) => boolean; problem: string; fix: string }> = {
  shared_preload_libraries: {
    bad: (v) => !["pg_stat_statements", "auto_explain"].every((lib) => v.split(",").map((l) => l.trim().replace(/^"(.*)"$/, "$1")).includes(lib)),
    problem: "leaves out pg_stat_statements or auto_explain, which pgharbor preloads and configures",
    fix: 'keep it in the list, e.g. "pg_stat_statements,auto_explain"',
  },
  log_min_messages: {
    bad: (v) => /^debug[1-5]$/.test(v),
    problem: "at debug levels the server logs statement text (the parse message at DEBUG2), passwords included",
    fix: 'use "warning" (the default) or "info"',
  },
};

/** Parameters whose value the user may set but only within a range pgharbor can live with. */
const BOOL_WORDS: Record<string, "on" | "off"> = { on: "on", of: "off", off: "off", t: "on", tr: "on", tru: "on", true: "on", f: "off", fa: "off", fal: "off", fals: "off", false: "off", y: "on", ye: "on", yes: "on", n: "off", no: "off", "1": "on", "0": "off" };

const MEMORY_UNITS: Record<string, number> = { B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };
const TIME_UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 };
const BASE: Record<string, [Record<string, number>, number]> = { B: [MEMORY_UNITS, 1], kB: [MEMORY_UNITS, 1024], "8kB": [MEMORY_UNITS, 8192], MB: [MEMORY_UNITS, 1024 ** 2], ms: [TIME_UNITS, 1], s: [TIME_UNITS, 1000], min: [TIME_UNITS, 60_000] };

export interface ValueCheck {
  /** The value as PostgreSQL reads it (bool/enum lowercased, on/off for booleans), when valid. */
  normalized?: string;
  problem?: string;
  fix?: string;
}

function describeRange(info: ParameterInfo): string {
  const u = info.unit ? ` (unit ${info.unit})` : "";
  return `${info.min} to ${info.max}${u}`;
}

/** Checks a value against the parameter's type, unit and range, as the server would. */
export function checkParameterValue(info: ParameterInfo | undefined, value: ParameterValue): ValueCheck {
  if (typeof value === "number" && !Number.isFinite(value)) return { problem: "is not a finite number", fix: "give a finite number" };
  const text = String(value);
  if (/[\u0000-\u001f\u007f]/.test(text)) return { problem: "holds a line break or another control character: postgresql.conf would break, or gain a line", fix: "write the value on one line, without control characters" };
  if (!info) return { normalized: text };
  switch (info.vartype) {
    case "bool": {
      const b = typeof value === "boolean" ? (value ? "on" : "off") : BOOL_WORDS[text.trim().toLowerCase()];
      return b ? { normalized: b } : { problem: "is not a boolean", fix: "use true or false (on or off)" };
    }
    case "enum": {
      const word = typeof value === "boolean" ? (value ? "on" : "off") : (BOOL_WORDS[text.trim().toLowerCase()] && info.enumvals?.includes("on") ? BOOL_WORDS[text.trim().toLowerCase()] : text.trim().toLowerCase());
      return info.enumvals?.some((e) => e.toLowerCase() === word) ? { normalized: word } : { problem: `is not one of ${info.enumvals?.join(", ")}`, fix: `use one of ${info.enumvals?.join(", ")}` };
    }
    case "integer":
    case "real": {
      if (typeof value === "boolean") return { problem: `is a boolean, not a number`, fix: `give a number from ${describeRange(info)}` };
      const m = /^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]+)?\s*$/.exec(text);
      if (!m) return { problem: `is not a number${info.unit ? ` with an optional unit` : ""}`, fix: `give a number from ${describeRange(info)}` };
      let n = Number(m[1]);
      if (m[2] !== undefined) {
        const base = info.unit ? BASE[info.unit] : undefined;
        if (!base || base[0][m[2]] === undefined) return { problem: info.unit ? `has unit "${m[2]}", which is not a unit of ${info.unit === "ms" || info.unit === "s" || info.unit === "min" ? "time (us, ms, s, min, h, d)" : "memory (B, kB, MB, GB, TB)"}` : `has a unit ("${m[2]}"), but this parameter takes none`, fix: `give a number from ${describeRange(info)}` };
        n = (n * base[0][m[2]]) / base[1];
      }
      if (info.vartype === "integer") {
        if (m[2] === undefined && !Number.isInteger(n)) return { problem: "is not a whole number", fix: `give a whole number from ${describeRange(info)}` };
        n = Math.round(n);
      }
      if ((info.min !== null && n < info.min) || (info.max !== null && n > info.max)) return { problem: `is outside ${describeRange(info)}`, fix: `give a value from ${describeRange(info)}` };
      return { normalized: String(n) };
    }
    default:
      return { normalized: text };
  }
}

export interface ParameterProblem {
  name: string;
  problem: string;
  fix: string;
}

/** Acknowledgement key of a risky parameter: what `acknowledgeRisk` must hold, with a reason. */
export const ackKey = (name: string) => `parameters.${name}`;

/** The names of `parameters` whose values need an acknowledgement, with the risk each carries. */
export function riskyParameters(major: PostgresMajor, parameters: Record<string, ParameterValue>): Array<{ name: string; key: string; risk: string }> {
  const out: Array<{ name: string; key: string; risk: string }> = [];
  for (const [name, value] of Object.entries(parameters)) {
    const info = parameterInfo(major, name);
    if (!info) continue;
    const v = checkParameterValue(info, value).normalized;
    const rule = RISKY_VALUES[info.name.toLowerCase()];
    if (rule && v !== undefined && rule.risky(v)) out.push({ name, key: ackKey(name), risk: rule.risk });
    else if (info.category === "Developer Options") out.push({ name, key: ackKey(name), risk: "is a developer option: PostgreSQL's documentation says these are not for production databases" });
  }
  return out;
}

/**
 * Checks user overrides: names (syntax, catalogue, case-insensitive duplicates), values (type, unit,
 * range, control characters), parameters pgharbor manages, values that break it, and risky values
 * without an acknowledgement (`acknowledged` holds the keys `acknowledgeRisk` acknowledges).
 */
export function checkParameterOverrides(major: PostgresMajor, parameters: Record<string, ParameterValue>, acknowledged: ReadonlySet<string> = new Set()): ParameterProblem[] {
  const problems: ParameterProblem[] = [];
  const seen = new Map<string, string>();
  for (const [name, value] of Object.entries(parameters)) {
    if (!PARAMETER_NAME.test(name)) {
      problems.push({ name, problem: "is not a parameter name (letters, digits and underscores, dot-separated for extensions)", fix: `check the spelling against https://www.postgresql.org/docs/${major}/runtime-config.html` });
      continue;
    }
    const lower = name.toLowerCase();
    const twin = seen.get(lower);
    if (twin !== undefined) {
      problems.push({ name, problem: `is set twice (as ${twin} and ${name}): parameter names are case-insensitive`, fix: "keep one of them" });
      continue;
    }
    seen.set(lower, name);
    const info = parameterInfo(major, name);
    if (MANAGED_PARAMETERS[lower]) {
      problems.push({ name, problem: `is managed by pgharbor (${MANAGED_PARAMETERS[lower]})`, fix: "remove it from parameters" });
      continue;
    }
    if (!info && !isExtensionPlaceholder(name)) {
      const others = majorsKnowing(name);
      const near = nearest(name, parameterNames(major));
      problems.push(
        others.length
          ? { name, problem: `does not exist in PostgreSQL ${major} (only in ${others.join(", ")})`, fix: "remove it or change majorVersion" }
          : { name, problem: `is not a PostgreSQL ${major} parameter`, fix: near ? `did you mean "${near}"? Check the spelling against https://www.postgresql.org/docs/${major}/runtime-config.html` : `check the spelling against https://www.postgresql.org/docs/${major}/runtime-config.html` },
      );
      continue;
    }
    if (info?.context === "internal") {
      problems.push({ name, problem: "is read-only: it reports how PostgreSQL was built or initialised", fix: "remove it from parameters" });
      continue;
    }
    const v = checkParameterValue(info, value);
    if (v.problem) {
      problems.push({ name, problem: v.problem, fix: v.fix ?? "correct the value" });
      continue;
    }
    const rule = VALUE_RULES[lower];
    if (rule && rule.bad(v.normalized ?? "")) problems.push({ name, problem: rule.problem, fix: rule.fix });
  }
  problems.push(...walSizeProblems(major, parameters));
  for (const r of riskyParameters(major, parameters)) {
    if (!acknowledged.has(r.key)) problems.push({ name: r.name, problem: r.risk, fix: `remove it, or acknowledge the risk with acknowledgeRisk: { "${r.key}": "<why, in a sentence>" }` });
  }
  return problems;
}

/** pgharbor's WAL sizes (MB) when the user sets none: the renderer's min_wal_size and max_wal_size. */
export const DEFAULT_WAL_SIZES_MB = { min_wal_size: 256, max_wal_size: 2048 };

/** A user's value of a size parameter in its base unit (MB for the WAL sizes), when valid. */
export function parameterNumber(major: PostgresMajor, parameters: Record<string, ParameterValue>, name: string): number | undefined {
  const key = Object.keys(parameters).find((k) => k.toLowerCase() === name);
  if (key === undefined) return undefined;
  const v = checkParameterValue(parameterInfo(major, name), parameters[key]).normalized;
  return v === undefined ? undefined : Number(v);
}

/** PostgreSQL refuses to start with a WAL size below two 16 MB segments, and min above max makes no sense. */
function walSizeProblems(major: PostgresMajor, parameters: Record<string, ParameterValue>): ParameterProblem[] {
  const min = parameterNumber(major, parameters, "min_wal_size");
  const max = parameterNumber(major, parameters, "max_wal_size");
  const out: ParameterProblem[] = [];
  for (const [name, v] of [["min_wal_size", min], ["max_wal_size", max]] as const) {
    if (v !== undefined && v < 32) out.push({ name: Object.keys(parameters).find((k) => k.toLowerCase() === name)!, problem: `is ${v}MB: PostgreSQL needs at least two WAL segments (32MB) and would not start`, fix: 'use e.g. "1GB"' });
  }
  const effMin = min ?? DEFAULT_WAL_SIZES_MB.min_wal_size;
  const effMax = max ?? DEFAULT_WAL_SIZES_MB.max_wal_size;
  if (!out.length && (min !== undefined || max !== undefined) && effMin > effMax) {
    const name = Object.keys(parameters).find((k) => k.toLowerCase() === (max !== undefined ? "max_wal_size" : "min_wal_size"))!;
    out.push({ name, problem: `leaves min_wal_size (${effMin}MB) above max_wal_size (${effMax}MB)`, fix: "keep min_wal_size at or below max_wal_size (pgharbor's defaults: 256MB and 2048MB)" });
  }
  return out;
}

/** The parameters with their names as the server spells them (TimeZone, not timezone). */
export function canonicalParameters(major: PostgresMajor, parameters: Record<string, ParameterValue>): Record<string, ParameterValue> {
  return Object.fromEntries(Object.entries(parameters).map(([k, v]) => [parameterInfo(major, k)?.name ?? k, v]));
}
