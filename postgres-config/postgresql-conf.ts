/**
 * postgresql.conf rendering: pure functions, no cdktf.
 *
 * The primary and every replica get a file from the same function so the settings a hot standby
 * must share with its primary (max_connections, max_wal_senders, max_worker_processes, …) agree.
 */
import { isKnownParameter, PostgresMajor } from "./parameter-catalogue";
import { ParameterValue } from "./parameter-policy";
import { CONTAINER_PATHS } from "./paths";

export type { ParameterValue } from "./parameter-policy";
export { checkParameterOverrides, MANAGED_PARAMETERS } from "./parameter-policy";
export type { ParameterProblem } from "./parameter-policy";

export interface MemorySettings {
  shared_buffers: string;
  effective_cache_size: string;
  work_mem: string;
  maintenance_work_mem: string;
}

/** max_wal_size: also what the pg_wal alert budgets for. */
export const MAX_WAL_SIZE_MIB = 2048;

/** Smallest container memory limit pgharbor accepts: below it the derived settings starve PostgreSQL. */
export const MIN_MEMORY_MIB = 256;

/**
 * Memory settings derived from the container's memory limit, the way a DBA sizes a dedicated host:
 * shared_buffers 25 %, effective_cache_size 75 %, maintenance_work_mem 5 % (64 MiB..2 GiB),
 * work_mem what is left after shared_buffers spread over max_connections × 3 sort/hash nodes (≥ 1 MiB).
 */
export function deriveMemorySettings(memoryMiB: number, maxConnections: number): MemorySettings {
  const sharedBuffers = Math.max(32, Math.floor(memoryMiB / 4));
  const effectiveCache = Math.floor((memoryMiB * 3) / 4);
  const maintenance = clamp(Math.floor(memoryMiB / 20), 64, 2048);
  const workMemKiB = Math.max(1024, Math.floor(((memoryMiB - sharedBuffers) * 1024) / (maxConnections * 3)));
  return {
    shared_buffers: `${sharedBuffers}MB`,
    effective_cache_size: `${effectiveCache}MB`,
    work_mem: `${workMemKiB}kB`,
    maintenance_work_mem: `${maintenance}MB`,
  };
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

/** Parses a PostgreSQL memory value ("128MB", "4GB", "512kB", or a bare number of 8 kB pages for shared_buffers) to MiB. */
export function memoryValueToMiB(value: ParameterValue, bareUnitKiB = 8): number | undefined {
  const m = /^\s*(\d+)\s*(kB|MB|GB|TB)?\s*$/.exec(String(value));
  if (!m) return undefined;
  const n = Number(m[1]);
  switch (m[2]) {
    case "kB":
      return n / 1024;
    case "MB":
      return n;
    case "GB":
      return n * 1024;
    case "TB":
      return n * 1024 * 1024;
    default:
      return (n * bareUnitKiB) / 1024;
  }
}

export type TlsVersion = "TLSv1.2" | "TLSv1.3";

export interface PostgresConfInput {
  major: PostgresMajor;
  /** `member`: a Patroni member, whichever role it has now (Patroni writes the recovery settings). */
  role: "primary" | "replica" | "member";
  maxConnections: number;
  memory: MemorySettings;
  /** Number of replicas attached to the primary (drives senders and slots). */
  replicaCount: number;
  archiveTimeoutSeconds: number;
  maxSlotWalKeepSizeMiB: number;
  /** pgBackRest stanza name. */
  stanza: string;
  /** Replica only: libpq connection string to the primary, without password (a passfile is used). */
  primaryConninfo?: string;
  /** Replica only: its physical slot on the primary. */
  primarySlotName?: string;
  /** Lowest TLS version the server accepts. */
  tlsMinVersion: TlsVersion;
  /** Statements slower than this are logged (-1: never). */
  logMinDurationStatementMs: number;
  /** Plans of statements slower than this are logged by auto_explain (-1: never). */
  autoExplainMinDurationMs: number;
  /** User overrides, already validated. */
  parameters?: Record<string, ParameterValue>;
}

/**
 * max_wal_senders and max_replication_slots never go below this (PostgreSQL's own default). Both are
 * postmaster settings: following the replica count exactly would restart the primary and every replica
 * (their values must be at least the primary's) whenever a replica is added. Up to 7 replicas need no
 * change; past that, replicas + 3.
 */
export const MIN_WAL_SENDERS = 10;

/** Parameters the renderer emits, in order, before user overrides. Exposed for tests and the policy pack. */
export function postgresParameters(input: PostgresConfInput): Array<[string, ParameterValue]> {
  // replicas + pg_basebackup bootstrap + pgBackRest + spare, with headroom (MIN_WAL_SENDERS).
  const senders = Math.max(MIN_WAL_SENDERS, input.replicaCount + 3);
  const p: Array<[string, ParameterValue]> = [
    ["listen_addresses", "*"],
    ["port", 5432],
    ["max_connections", input.maxConnections],
    ["superuser_reserved_connections", 3],
    ["unix_socket_directories", CONTAINER_PATHS.socketDir],
    ["hba_file", CONTAINER_PATHS.hbaConf],
    ["ident_file", CONTAINER_PATHS.identConf],
    ["password_encryption", "scram-sha-256"],
    ["ssl", "on"],
    ["ssl_cert_file", CONTAINER_PATHS.tlsCert],
    ["ssl_key_file", CONTAINER_PATHS.tlsKey],
    ["ssl_min_protocol_version", input.tlsMinVersion],
    ["ssl_prefer_server_ciphers", "on"],
    ["shared_buffers", input.memory.shared_buffers],
    ["effective_cache_size", input.memory.effective_cache_size],
    ["work_mem", input.memory.work_mem],
    ["maintenance_work_mem", input.memory.maintenance_work_mem],
    ["huge_pages", "try"],
    ["shared_preload_libraries", "pg_stat_statements,auto_explain"],
    // pg_stat_statements would otherwise keep ALTER ROLE … PASSWORD with its literal.
    ["pg_stat_statements.track_utility", "off"],
    // Plans of slow statements in the log (`pgharbor queries explain <queryid>` reads them back). It
    // explains only planned statements (never ALTER ROLE and other utility commands); verbose output
    // carries the Query Identifier pg_stat_statements uses; row counts and buffers without per-node
    // timing (the cheap part of ANALYZE); bind parameter values are never logged.
    ["auto_explain.log_min_duration", input.autoExplainMinDurationMs],
    ["auto_explain.log_analyze", "on"],
    ["auto_explain.log_timing", "off"],
    ["auto_explain.log_buffers", "on"],
    ["auto_explain.log_verbose", "on"],
    ["auto_explain.log_parameter_max_length", 0],
    ["wal_level", "replica"],
    ["wal_compression", "zstd"],
    ["wal_log_hints", "on"],
    ["max_wal_size", `${MAX_WAL_SIZE_MIB}MB`],
    ["min_wal_size", "256MB"],
    ["wal_keep_size", "256MB"],
    ["checkpoint_timeout", "15min"],
    ["checkpoint_completion_target", 0.9],
    ["max_wal_senders", senders],
    ["max_replication_slots", senders],
    ["max_slot_wal_keep_size", `${input.maxSlotWalKeepSizeMiB}MB`],
    ["archive_mode", "on"],
    ["archive_command", `pgbackrest --config=${CONTAINER_PATHS.pgbackrestConf} --stanza=${input.stanza} archive-push %p`],
    ["archive_timeout", input.archiveTimeoutSeconds],
    ["restore_command", `pgbackrest --config=${CONTAINER_PATHS.pgbackrestConf} --stanza=${input.stanza} archive-get %f "%p"`],
    ["hot_standby", "on"],
    ["hot_standby_feedback", "on"],
    ["wal_receiver_timeout", "60s"],
    ["random_page_cost", 1.1],
    ["effective_io_concurrency", 200],
    ["log_destination", "stderr"],
    ["logging_collector", "off"],
    ["log_line_prefix", "%m [%p] %q%u@%d app=%a client=%h "],
    ["log_checkpoints", "on"],
    ["log_connections", "on"],
    ["log_disconnections", "on"],
    ["log_replication_commands", "on"],
    // No statement text in the log, so no password either (PostgreSQL cannot redact one statement):
    // DDL is audited by pgharbor's event trigger (roles.sql), which logs command and object only.
    ["log_statement", "none"],
    ["log_min_error_statement", "panic"],
    ["log_lock_waits", "on"],
    ["log_temp_files", 0],
    ["log_autovacuum_min_duration", "10s"],
    ["log_min_duration_statement", input.logMinDurationStatementMs],
    ["track_io_timing", "on"],
  ];
  if (input.role === "replica") {
    p.push(["primary_conninfo", input.primaryConninfo ?? ""]);
    p.push(["primary_slot_name", input.primarySlotName ?? ""]);
  }
  // Names are case-insensitive: an override replaces pgharbor's line whatever its spelling.
  const overrides = input.parameters ?? {};
  const merged = new Map(p.map(([k, v]) => [k.toLowerCase(), [k, v] as [string, ParameterValue]]));
  for (const [k, v] of Object.entries(overrides)) merged.set(k.toLowerCase(), [k, v]);
  return [...merged.values()].filter(([name]) => isKnownParameter(input.major, name));
}

/** Renders a value the way postgresql.conf expects: numbers bare, everything else single-quoted. */
export function formatValue(v: ParameterValue): string {
  if (typeof v === "number") return String(v);
  if (typeof v === "boolean") return v ? "on" : "off";
  if (/[\u0000-\u001f\u007f]/.test(v)) throw new Error(`postgresql.conf value with a control character: ${JSON.stringify(v)}`);
  return `'${v.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;
}

export function renderPostgresqlConf(input: PostgresConfInput): string {
  const lines = [
    `# postgresql.conf rendered by pgharbor for a PostgreSQL ${input.major} ${input.role}. Do not edit: change the stack.`,
    ...postgresParameters(input).map(([k, v]) => `${k} = ${formatValue(v)}`),
  ];
  return lines.join("\n") + "\n";
}
