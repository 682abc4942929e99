/**
 * pgbouncer.ini rendering. Transaction pooling; one read-write database to the primary and one
 * read-only database to the replicas. Users authenticate with SCRAM over TLS against the secret that
 * auth_query fetches through the lookup role: no user passwords in any file.
 */
import { CONTAINER_PATHS as P } from "../postgres-config/paths";
import { ROLE_NAMES } from "../postgres-config/roles";

export interface PgbouncerEndpoint {
  host: string;
  port: number;
}

export interface PgbouncerIniInput {
  listenPort: number;
  /** Name clients use for the read-write pool (also the server database name). */
  database: string;
  /** Name clients use for the read-only pool. */
  readOnlyDatabase: string;
  primary: PgbouncerEndpoint;
  /** Replicas serving the read-only pool; empty: the primary serves it. */
  replicas: PgbouncerEndpoint[];
  poolMode: "transaction" | "session";
  defaultPoolSize: number;
  reservePoolSize: number;
  /** Cap of server connections per database (read-write pool to the primary). */
  maxDbConnections: number;
  maxClientConnections: number;
  /** Lowest TLS version for clients and servers. */
  tlsMinVersion: "TLSv1.2" | "TLSv1.3";
  /**
   * The endpoints are the failover router's (HAProxy in front of Patroni members): a server login
   * that fails mid-failover is retried after 1 s instead of PgBouncer's 15, which would add to the
   * write gap.
   */
  routed?: boolean;
}

export const AUTH_QUERY = "SELECT uname, phash FROM pgharbor.user_lookup($1)";

function hostsOf(eps: PgbouncerEndpoint[]): { host: string; port: number } {
  // A comma-separated host list (PgBouncer balances over it) with one shared port.
  return { host: eps.map((e) => e.host).join(","), port: eps[0].port };
}

function tlsProtocols(min: "TLSv1.2" | "TLSv1.3"): string {
  return min === "TLSv1.3" ? "tlsv1.3" : "tlsv1.2,tlsv1.3";
}

export function renderPgbouncerIni(input: PgbouncerIniInput): string {
  const ro = hostsOf(input.replicas.length ? input.replicas : [input.primary]);
  const lines = [
    "; pgbouncer.ini rendered by pgharbor. Do not edit: change the stack.",
    "[databases]",
    `${input.database} = host=${input.primary.host} port=${input.primary.port} dbname=${input.database}`,
    `${input.readOnlyDatabase} = host=${ro.host} port=${ro.port} dbname=${input.database}`,
    "",
    "[pgbouncer]",
    "listen_addr = 0.0.0.0",
    `listen_port = ${input.listenPort}`,
    "unix_socket_dir =",
    `pidfile = ${P.pgbouncerRunDir}/pgbouncer.pid`,
    "auth_type = scram-sha-256",
    `auth_file = ${P.pgbouncerRunDir}/userlist.txt`,
    `auth_user = ${ROLE_NAMES.pooler}`,
    `auth_query = ${AUTH_QUERY}`,
    `pool_mode = ${input.poolMode}`,
    `default_pool_size = ${input.defaultPoolSize}`,
    `reserve_pool_size = ${input.reservePoolSize}`,
    "reserve_pool_timeout = 3",
    `max_db_connections = ${input.maxDbConnections}`,
    `max_client_conn = ${input.maxClientConnections}`,
    "server_check_query = select 1",
    "server_check_delay = 10",
    "server_lifetime = 3600",
    "server_idle_timeout = 300",
    "server_connect_timeout = 5",
    ...(input.routed ? ["server_login_retry = 1"] : []),
    "query_wait_timeout = 60",
    "ignore_startup_parameters = extra_float_digits,options",
    `stats_users = ${ROLE_NAMES.monitor}`,
    // Clients must use TLS; servers are verified against the environment's CA and their names.
    "client_tls_sslmode = require",
    `client_tls_cert_file = ${P.pgbouncerTlsCert}`,
    `client_tls_key_file = ${P.pgbouncerTlsKey}`,
    `client_tls_protocols = ${tlsProtocols(input.tlsMinVersion)}`,
    "server_tls_sslmode = verify-full",
    `server_tls_ca_file = ${P.pgbouncerTlsCa}`,
    `server_tls_protocols = ${tlsProtocols(input.tlsMinVersion)}`,
    "log_connections = 1",
    "log_disconnections = 1",
    "log_pooler_errors = 1",
    "stats_period = 60",
  ];
  return lines.join("\n") + "\n";
}
