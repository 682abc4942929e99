/**
 * The settable PostgreSQL parameters per supported major version, with what pg_settings says about
 * each: context, type, unit, range and allowed values. Names are case-insensitive, as in PostgreSQL.
 *
 * - PostgreSQL 17: GENERATED from pg_settings of a running 17 server (catalogue/pg17.ts, see
 *   catalogue/generate.ts); `__tests__/engine-pending/catalogue.engine.ts` compares it with a server.
 * - PostgreSQL 15 and 16: SYNTH-ONLY. No 15 or 16 server runs where pgharbor is tested. 15's names were
 *   read from `postgres --describe-config` of Debian's 15 (which leaves out developer and preset
 *   options; those that exist in 15 are added below), 16 applies the additions and removals of its
 *   release notes. Types, units, ranges and enum values are borrowed from 17 where the name exists
 *   there (the few names 17 lacks are described by hand): close, not proven.
 *
 * Extension parameters (a dot in the name) are accepted as placeholders, except pg_stat_statements.*
 * and auto_explain.*, which pgharbor preloads and which are checked like the server's own.
 */
import type { SettingRow } from "./catalogue/generate";
import { PG17_SETTINGS } from "./catalogue/pg17";

export const SUPPORTED_MAJORS = [15, 16, 17] as const;
export type PostgresMajor = (typeof SUPPORTED_MAJORS)[number];

/** Majors whose catalogue comes from a running server (the rest are synth-only). */
export const SERVER_VERIFIED_MAJORS: readonly PostgresMajor[] = [17];

export interface ParameterInfo {
  /** The name as pg_settings spells it (e.g. "TimeZone"). */
  readonly name: string;
  /** internal, postmaster, sighup, superuser-backend, backend, superuser, user. */
  readonly context: string;
  readonly vartype: "bool" | "integer" | "real" | "string" | "enum";
  /** Base unit of numeric parameters: B, kB, 8kB, MB, ms, s, min. */
  readonly unit: string | null;
  readonly min: number | null;
  readonly max: number | null;
  readonly enumvals: readonly string[] | null;
  readonly category: string;
}

const PG15: readonly string[] = [
  "DateStyle IntervalStyle TimeZone archive_cleanup_command archive_command archive_library",
  "archive_mode archive_timeout array_nulls authentication_timeout autovacuum",
  "autovacuum_analyze_scale_factor autovacuum_analyze_threshold autovacuum_freeze_max_age",
  "autovacuum_max_workers autovacuum_multixact_freeze_max_age autovacuum_naptime",
  "autovacuum_vacuum_cost_delay autovacuum_vacuum_cost_limit autovacuum_vacuum_insert_scale_factor",
  "autovacuum_vacuum_insert_threshold autovacuum_vacuum_scale_factor autovacuum_vacuum_threshold",
  "autovacuum_work_mem backend_flush_after backslash_quote bgwriter_delay bgwriter_flush_after",
  "bgwriter_lru_maxpages bgwriter_lru_multiplier bonjour bonjour_name bytea_output",
  "check_function_bodies checkpoint_completion_target checkpoint_flush_after checkpoint_timeout",
  "checkpoint_warning client_connection_check_interval client_encoding client_min_messages cluster_name",
  "commit_delay commit_siblings compute_query_id constraint_exclusion cpu_index_tuple_cost",
  "cpu_operator_cost cpu_tuple_cost cursor_tuple_fraction data_directory data_sync_retry",
  "db_user_namespace deadlock_timeout debug_pretty_print debug_print_parse debug_print_plan",
  "debug_print_rewritten default_statistics_target default_table_access_method default_tablespace",
  "default_text_search_config default_toast_compression default_transaction_deferrable",
  "default_transaction_isolation default_transaction_read_only dynamic_library_path",
  "dynamic_shared_memory_type effective_cache_size effective_io_concurrency enable_async_append",
  "enable_bitmapscan enable_gathermerge enable_hashagg enable_hashjoin enable_incremental_sort",
  "enable_indexonlyscan enable_indexscan enable_material enable_memoize enable_mergejoin",
  "enable_nestloop enable_parallel_append enable_parallel_hash enable_partition_pruning",
  "enable_partitionwise_aggregate enable_partitionwise_join enable_seqscan enable_sort enable_tidscan",
  "escape_string_warning event_source exit_on_error extension_destdir external_pid_file",
  "extra_float_digits from_collapse_limit fsync full_page_writes geqo geqo_effort geqo_generations",
  "geqo_pool_size geqo_seed geqo_selection_bias geqo_threshold gin_fuzzy_search_limit",
  "gin_pending_list_limit hash_mem_multiplier hba_file hot_standby hot_standby_feedback huge_page_size",
  "huge_pages ident_file idle_in_transaction_session_timeout idle_session_timeout jit jit_above_cost",
  "jit_inline_above_cost jit_optimize_above_cost jit_provider join_collapse_limit krb_caseins_users",
  "krb_server_keyfile lc_messages lc_monetary lc_numeric lc_time listen_addresses lo_compat_privileges",
  "local_preload_libraries lock_timeout log_autovacuum_min_duration log_checkpoints log_connections",
  "log_destination log_directory log_disconnections log_duration log_error_verbosity log_executor_stats",
  "log_file_mode log_filename log_hostname log_line_prefix log_lock_waits log_min_duration_sample",
  "log_min_duration_statement log_min_error_statement log_min_messages log_parameter_max_length",
  "log_parameter_max_length_on_error log_parser_stats log_planner_stats log_recovery_conflict_waits",
  "log_replication_commands log_rotation_age log_rotation_size log_startup_progress_interval",
  "log_statement log_statement_sample_rate log_statement_stats log_temp_files log_timezone",
  "log_transaction_sample_rate log_truncate_on_rotation logging_collector logical_decoding_work_mem",
  "maintenance_io_concurrency maintenance_work_mem max_connections max_files_per_process",
  "max_locks_per_transaction max_logical_replication_workers max_parallel_maintenance_workers",
  "max_parallel_workers max_parallel_workers_per_gather max_pred_locks_per_page",
  "max_pred_locks_per_relation max_pred_locks_per_transaction max_prepared_transactions",
  "max_replication_slots max_slot_wal_keep_size max_stack_depth max_standby_archive_delay",
  "max_standby_streaming_delay max_sync_workers_per_subscription max_wal_senders max_wal_size",
  "max_worker_processes min_dynamic_shared_memory min_parallel_index_scan_size",
  "min_parallel_table_scan_size min_wal_size old_snapshot_threshold parallel_leader_participation",
  "parallel_setup_cost parallel_tuple_cost password_encryption plan_cache_mode port primary_conninfo",
  "primary_slot_name promote_trigger_file quote_all_identifiers random_page_cost recovery_end_command",
  "recovery_init_sync_method recovery_min_apply_delay recovery_prefetch recovery_target",
  "recovery_target_action recovery_target_inclusive recovery_target_lsn recovery_target_name",
  "recovery_target_time recovery_target_timeline recovery_target_xid recursive_worktable_factor",
  "restart_after_crash restore_command row_security search_path seq_page_cost session_preload_libraries",
  "session_replication_role shared_buffers shared_memory_type shared_preload_libraries ssl ssl_ca_file",
  "ssl_cert_file ssl_ciphers ssl_crl_dir ssl_crl_file ssl_dh_params_file ssl_ecdh_curve ssl_key_file",
  "ssl_max_protocol_version ssl_min_protocol_version ssl_passphrase_command",
  "ssl_passphrase_command_supports_reload ssl_prefer_server_ciphers standard_conforming_strings",
  "statement_timeout stats_fetch_consistency superuser_reserved_connections synchronize_seqscans",
  "synchronous_commit synchronous_standby_names syslog_facility syslog_ident syslog_sequence_numbers",
  "syslog_split_messages tcp_keepalives_count tcp_keepalives_idle tcp_keepalives_interval",
  "tcp_user_timeout temp_buffers temp_file_limit temp_tablespaces timezone_abbreviations",
  "track_activities track_activity_query_size track_commit_timestamp track_counts track_functions",
  "track_io_timing track_wal_io_timing transform_null_equals unix_socket_directories unix_socket_group",
  "unix_socket_permissions update_process_title vacuum_cost_delay vacuum_cost_limit",
  "vacuum_cost_page_dirty vacuum_cost_page_hit vacuum_cost_page_miss vacuum_defer_cleanup_age",
  "vacuum_failsafe_age vacuum_freeze_min_age vacuum_freeze_table_age vacuum_multixact_failsafe_age",
  "vacuum_multixact_freeze_min_age vacuum_multixact_freeze_table_age wal_buffers wal_compression",
  "wal_decode_buffer_size wal_init_zero wal_keep_size wal_level wal_log_hints",
  "wal_receiver_create_temp_slot wal_receiver_status_interval wal_receiver_timeout wal_recycle",
  "wal_retrieve_retry_interval wal_sender_timeout wal_skip_threshold wal_sync_method wal_writer_delay",
  "wal_writer_flush_after work_mem xmlbinary xmloption",
  // Left out by --describe-config (developer, preset and session options), present in 15 and 16.
  "application_name config_file transaction_deferrable transaction_isolation transaction_read_only",
  "block_size data_checksums data_directory_mode debug_assertions in_hot_standby integer_datetimes",
  "max_function_args max_identifier_length max_index_keys segment_size server_encoding server_version",
  "server_version_num shared_memory_size shared_memory_size_in_huge_pages ssl_library wal_block_size",
  "wal_segment_size allow_in_place_tablespaces allow_system_table_mods backtrace_functions",
  "debug_discard_caches ignore_checksum_failure ignore_invalid_pages ignore_system_indexes",
  "jit_debugging_support jit_dump_bitcode jit_expressions jit_profiling_support jit_tuple_deforming",
  "post_auth_delay pre_auth_delay remove_temp_files_after_crash trace_notify trace_sort",
  "wal_consistency_checking zero_damaged_pages force_parallel_mode trace_recovery_messages",
  // Added by the August 2024 minor releases (15.8, 16.4).
  "restrict_nonsystem_relation_kind",
  // pgharbor preloads pg_stat_statements.
  "pg_stat_statements.max pg_stat_statements.save pg_stat_statements.track pg_stat_statements.track_planning",
  "pg_stat_statements.track_utility",
  // and auto_explain (log_parameter_max_length is new in 16).
  "auto_explain.log_analyze auto_explain.log_buffers auto_explain.log_format auto_explain.log_level",
  "auto_explain.log_min_duration auto_explain.log_nested_statements auto_explain.log_settings",
  "auto_explain.log_timing auto_explain.log_triggers auto_explain.log_verbose auto_explain.log_wal auto_explain.sample_rate",
].join(" ").split(" ");

const ADDED_IN_16 = [
  "createrole_self_grant", "debug_io_direct", "debug_logical_replication_streaming", "debug_parallel_query",
  "enable_presorted_aggregate", "gss_accept_delegation", "icu_validation_level",
  "max_parallel_apply_workers_per_subscription", "reserved_connections", "scram_iterations",
  "send_abort_for_crash", "send_abort_for_kill", "vacuum_buffer_usage_limit", "auto_explain.log_parameter_max_length",
];
const REMOVED_IN_16 = ["force_parallel_mode", "promote_trigger_file", "vacuum_defer_cleanup_age"];

/** The names 17 lacks, described by hand (15/16 are synth-only). */
const NOT_IN_17: Record<string, Omit<ParameterInfo, "name">> = {
  old_snapshot_threshold: { context: "postmaster", vartype: "integer", unit: "min", min: -1, max: 86400, enumvals: null, category: "Resource Usage / Asynchronous Behavior" },
  db_user_namespace: { context: "sighup", vartype: "bool", unit: null, min: null, max: null, enumvals: null, category: "Connections and Authentication / Authentication" },
  trace_recovery_messages: { context: "sighup", vartype: "enum", unit: null, min: null, max: null, enumvals: ["debug5", "debug4", "debug3", "debug2", "debug1", "log", "notice", "warning", "error"], category: "Developer Options" },
  force_parallel_mode: { context: "user", vartype: "enum", unit: null, min: null, max: null, enumvals: ["off", "on", "regress"], category: "Developer Options" },
  promote_trigger_file: { context: "sighup", vartype: "string", unit: null, min: null, max: null, enumvals: null, category: "Replication / Standby Servers" },
  vacuum_defer_cleanup_age: { context: "sighup", vartype: "integer", unit: null, min: 0, max: 1000000, enumvals: null, category: "Replication / Primary Server" },
};

function fromRow(r: SettingRow): ParameterInfo {
  const [name, context, vartype, unit, min, max, enumvals, category] = r;
  return { name, context, vartype: vartype as ParameterInfo["vartype"], unit, min: min === null ? null : Number(min), max: max === null ? null : Number(max), enumvals, category };
}

const PG17 = new Map(PG17_SETTINGS.map((r) => [r[0].toLowerCase(), fromRow(r)]));

function synthOnly(names: Iterable<string>): Map<string, ParameterInfo> {
  const out = new Map<string, ParameterInfo>();
  for (const name of names) {
    const info = PG17.get(name.toLowerCase()) ?? (NOT_IN_17[name] ? { name, ...NOT_IN_17[name] } : undefined);
    if (!info) throw new Error(`parameter catalogue: no description for ${name}`);
    out.set(name.toLowerCase(), info);
  }
  return out;
}

const pg16Names = new Set(PG15);
for (const r of REMOVED_IN_16) pg16Names.delete(r);
for (const a of ADDED_IN_16) pg16Names.add(a);

const CATALOGUE: Record<PostgresMajor, ReadonlyMap<string, ParameterInfo>> = {
  15: synthOnly(PG15),
  16: synthOnly(pg16Names),
  17: PG17,
};

/** A syntactically valid parameter name (PostgreSQL's rule for custom names too). */
export const PARAMETER_NAME = /^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)*$/;

/** Prefixes of extension parameters pgharbor knows (its own preloaded library). */
const KNOWN_PREFIXES = ["pg_stat_statements.", "auto_explain."];

/** What pg_settings says about `name` (case-insensitive) in `major`, or undefined. */
export function parameterInfo(major: PostgresMajor, name: string): ParameterInfo | undefined {
  return CATALOGUE[major].get(name.toLowerCase());
}

/** True for an extension's placeholder name pgharbor cannot check (e.g. `auto_explain.log_min_duration`). */
export function isExtensionPlaceholder(name: string): boolean {
  return PARAMETER_NAME.test(name) && name.includes(".") && !KNOWN_PREFIXES.some((p) => name.toLowerCase().startsWith(p));
}

/** True when `name` is a parameter PostgreSQL `major` accepts in postgresql.conf. */
export function isKnownParameter(major: PostgresMajor, name: string): boolean {
  return isExtensionPlaceholder(name) || parameterInfo(major, name) !== undefined;
}

/** The majors that know `name`, to explain why a parameter is refused for another major. */
export function majorsKnowing(name: string): PostgresMajor[] {
  return SUPPORTED_MAJORS.filter((m) => CATALOGUE[m].has(name.toLowerCase()));
}

/** The names a major knows, for "did you mean". */
export function parameterNames(major: PostgresMajor): string[] {
  return [...CATALOGUE[major].values()].map((i) => i.name);
}
