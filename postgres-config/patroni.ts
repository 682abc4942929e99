/**
 * Patroni and router configuration rendering: pure functions, no cdktf.
 *
 * Every member runs Patroni with a local configuration (patroni.yml, written as JSON, which YAML
 * reads unchanged) that holds no PostgreSQL setting a user can change. The settings (every parameter
 * of the postgresql.conf pgharbor renders, but the files, sockets and recovery settings Patroni keeps
 * local) and the failover settings are the cluster's dynamic configuration in etcd, which the
 * environment's config container (`pgharbor-<env>-patroni-config`) writes. A change of settings
 * therefore replaces that container only: Patroni reloads the members, and a parameter that needs a
 * restart is reported as pending (`pgharbor cluster status`, `cluster restart`).
 */
import { ParameterValue } from "./parameter-policy";
import { CONTAINER_PATHS as P, STANZA } from "./paths";
import { REWIND_ROLE, ROLE_NAMES } from "./roles";

/** Where the members keep Patroni's files. */
export const PATRONI_PATHS = {
  config: "/etc/pgharbor/patroni.yml",
  dcs: "/etc/pgharbor/patroni-dcs.json",
  pgpass: "/run/pgharbor/pgpass-patroni",
  entrypoint: `${P.scriptsDir}/patroni-entrypoint.sh`,
  bootstrap: `${P.scriptsDir}/patroni-bootstrap.sh`,
  createReplica: `${P.scriptsDir}/patroni-create-replica.sh`,
  etcdEntrypoint: `${P.scriptsDir}/etcd-entrypoint.sh`,
  haproxyConf: "/etc/pgharbor/haproxy.cfg",
  /** The members' custom_conf: no setting, only where the settings are. */
  baseConf: "/etc/pgharbor/postgresql.base.conf",
  /** The config container: how it reaches etcd, and the cluster's settings as postgresql.conf (for reviewers and the policy pack). */
  ctlConfig: "/etc/pgharbor/patroni-ctl.json",
  clusterConf: "/etc/pgharbor/postgresql.conf",
  dcsConfig: `${P.scriptsDir}/dcs-config.py`,
} as const;

/** The REST API's port on every member (health checks, switchover, metrics). */
export const PATRONI_REST_PORT = 8008;
/** The router's ports: the leader, and the replicas within the lag bound. */
export const ROUTER_PORTS = { readWrite: 5000, readOnly: 5001 } as const;
/** The user the REST API's unsafe endpoints and patronictl authenticate as (password from the environment). */
export const PATRONI_REST_USER = "pgharbor";
/** Patroni's rewind user (created by Patroni at bootstrap with only the functions pg_rewind needs). */
export const REWIND_USER = REWIND_ROLE;
/** Where the members find their secrets: Patroni reads them from the environment. */
export const PATRONI_SECRET_ENV = {
  replication: "PATRONI_REPLICATION_PASSWORD",
  rewind: "PATRONI_REWIND_PASSWORD",
  rest: "PATRONI_RESTAPI_PASSWORD",
} as const;

export type FailoverMode = "async" | "sync";

export interface DcsInput {
  mode: FailoverMode;
  ttl: number;
  loopWait: number;
  retryTimeout: number;
  maximumLagOnFailoverBytes: number;
  /** Keep the leader writable while etcd is lost, as long as every member confirms it (Patroni's failsafe_mode). */
  failsafeMode: boolean;
  /** The rendered postgresql.conf parameters (name, value): the command-line ones are taken from it. */
  parameters: ReadonlyArray<readonly [string, ParameterValue]>;
}

/**
 * Parameters that stay in each member's local configuration (Patroni sets them from `postgresql.listen`
 * and `postgresql.parameters` of patroni.yml, or writes them itself for a member in recovery): never in
 * the dynamic configuration.
 */
export const LOCAL_PARAMETERS = [
  "listen_addresses",
  "port",
  "unix_socket_directories",
  "hba_file",
  "ident_file",
  "restore_command",
  "primary_conninfo",
  "primary_slot_name",
  "recovery_min_apply_delay",
] as const;

/** The dynamic configuration: written to etcd by the config container before any member starts the cluster. */
export function renderDcs(input: DcsInput): Record<string, unknown> {
  const local = new Set<string>(LOCAL_PARAMETERS);
  const parameters: Record<string, ParameterValue> = {};
  for (const [k, v] of input.parameters) if (!local.has(k.toLowerCase())) parameters[k.toLowerCase()] = v;
  // A standby reports its flush position at least this often. With the default 10 s a lone writer in
  // synchronous mode stalled for exactly 10 s about twice a minute (issue 14's prototype, NOTES.md).
  parameters.wal_receiver_status_interval = "1s";
  return {
    ttl: input.ttl,
    loop_wait: input.loopWait,
    retry_timeout: input.retryTimeout,
    maximum_lag_on_failover: input.maximumLagOnFailoverBytes,
    synchronous_mode: input.mode === "sync",
    // Not strict: with no synchronous standby left, writes continue (unprotected) instead of stopping.
    synchronous_mode_strict: false,
    failsafe_mode: input.failsafeMode,
    postgresql: { use_pg_rewind: true, use_slots: true, parameters },
  };
}

export interface MemberInput {
  /** Cluster name in etcd (scope): `pgharbor-<env>`. */
  scope: string;
  /** Member name: the construct id (`primary`, `replica-1`). */
  name: string;
  /** Container name: what the other members, the router and PgBouncer dial (and the certificate names). */
  containerName: string;
  /** The member's fixed address: where the other members call its REST API (never a name, see HaCluster). */
  address: string;
  majorBinDir: string;
  /** `ip:port` of every etcd member: addresses, never names. */
  etcdHosts: string[];
  /** Only the member that may start the cluster bootstraps (a replica must never initdb a second cluster). */
  bootstrap: boolean;
  /** Patroni 4's failover_priority: the higher, the more preferred as leader. */
  failoverPriority: number;
}

/** The member's local configuration (patroni.yml). Secrets come from PATRONI_*_PASSWORD. */
export function renderPatroniConfig(m: MemberInput): string {
  const tls = { sslmode: "verify-full", sslrootcert: P.tlsCa };
  const conf: Record<string, unknown> = {
    scope: m.scope,
    namespace: "/pgharbor/",
    name: m.name,
    log: { level: "INFO", format: "%(asctime)s %(levelname)s: %(message)s" },
    restapi: {
      listen: `0.0.0.0:${PATRONI_REST_PORT}`,
      connect_address: `${m.address}:${PATRONI_REST_PORT}`,
      // Basic auth guards the unsafe endpoints (switchover, restart, reinit, config); the health
      // endpoints the router polls stay open, so the port is never published outside the network.
      authentication: { username: PATRONI_REST_USER },
    },
    etcd3: { hosts: m.etcdHosts },
    postgresql: {
      listen: "0.0.0.0:5432",
      connect_address: `${m.containerName}:5432`,
      data_dir: P.dataDir,
      bin_dir: m.majorBinDir,
      custom_conf: PATRONI_PATHS.baseConf,
      pgpass: PATRONI_PATHS.pgpass,
      use_unix_socket: true,
      authentication: {
        superuser: { username: "postgres" },
        replication: { username: ROLE_NAMES.replication, ...tls },
        rewind: { username: REWIND_USER, ...tls },
      },
      parameters: { unix_socket_directories: P.socketDir, hba_file: P.hbaConf, ident_file: P.identConf },
      recovery_conf: { restore_command: `pgbackrest --config=${P.pgbackrestConf} --stanza=${STANZA} archive-get %f "%p"` },
      create_replica_methods: ["pgbackrest", "basebackup"],
      pgbackrest: { command: PATRONI_PATHS.createReplica, keep_data: true, no_params: true },
      basebackup: [{ checkpoint: "fast" }],
      // A former leader whose history pg_rewind cannot repair is cloned again: its divergent tail was
      // never acknowledged as replicated, and the new leader's history is the cluster's.
      remove_data_directory_on_rewind_failure: true,
      remove_data_directory_on_diverged_timelines: true,
    },
    tags: { failover_priority: m.failoverPriority, noloadbalance: false, clonefrom: false, nosync: false },
  };
  if (m.bootstrap) {
    conf.bootstrap = {
      // Never used: the entrypoint starts Patroni on an empty volume only once the config container
      // has written the cluster's dynamic configuration, which Patroni then prefers. Empty, so that a
      // change of settings never changes this file (and replaces the member).
      dcs: {},
      method: "pgharbor",
      pgharbor: { command: PATRONI_PATHS.bootstrap },
    };
  }
  return `# Patroni configuration rendered by pgharbor for member ${m.name} (JSON, which YAML reads). Do not edit: change the stack.\n${JSON.stringify(conf, null, 2)}\n`;
}

/** The members' custom_conf: every setting is in the dynamic configuration. */
export function renderBaseConf(scope: string): string {
  return [
    `# pgharbor: the settings of cluster ${scope} are Patroni's dynamic configuration in etcd, written by`,
    `# the container ${scope}-patroni-config (its ${PATRONI_PATHS.clusterConf} shows them as postgresql.conf).`,
    "# Patroni writes them into the data directory's postgresql.conf. Do not edit: change the stack.",
    "",
  ].join("\n");
}

/** How the config container reaches etcd: Patroni's own DCS client, with the cluster's scope. */
export function renderCtlConfig(scope: string, etcdHosts: string[]): string {
  return JSON.stringify({ scope, namespace: "/pgharbor/", name: `${scope}-patroni-config`, etcd3: { hosts: etcdHosts } }, null, 2) + "\n";
}

export interface RouterInput {
  /** Member container names. */
  members: string[];
  /** A replica further behind the leader than this leaves the read-only pool. */
  readOnlyMaxLagBytes: number;
}

/**
 * HAProxy in front of the members: the read-write port reaches the member whose `/primary` answers
 * 200 (the leader), the read-only port the members whose `/replica?lag=…` answers 200. TCP mode, so
 * TLS passes through to PostgreSQL, which PgBouncer verifies against the router's name.
 */
export function renderHaproxyCfg(input: RouterInput): string {
  const servers = input.members.map((m) => `    server ${m} ${m}:5432 check port ${PATRONI_REST_PORT}`);
  return [
    "# haproxy.cfg rendered by pgharbor: PgBouncer's way to the current leader and the healthy replicas.",
    "global",
    "    maxconn 2000",
    "    user haproxy",
    "    group haproxy",
    "    log stdout format raw local0 notice",
    "",
    "resolvers docker",
    "    # Docker's embedded DNS: a member re-created by an apply may come back with a new address.",
    "    nameserver dns 127.0.0.11:53",
    "    resolve_retries 3",
    "    timeout resolve 1s",
    "    timeout retry 1s",
    "    hold valid 5s",
    "",
    "defaults",
    "    mode tcp",
    "    log global",
    "    option dontlognull",
    "    retries 2",
    "    # A connection that fails is retried on another server that passes its check.",
    "    option redispatch",
    "    timeout connect 2s",
    "    timeout client 60m",
    "    timeout server 60m",
    "    timeout check 1s",
    "",
    "# The leader only. OPTIONS: Patroni answers with the status line alone (a GET check that HAProxy",
    "# cuts off after the status line logs a traceback per check). A member that stops being the leader",
    "# has its sessions cut, so nothing keeps writing into a demoted member.",
    `listen primary`,
    `    bind *:${ROUTER_PORTS.readWrite}`,
    "    option httpchk OPTIONS /primary",
    "    http-check expect status 200",
    "    default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions resolvers docker init-addr last,libc,none",
    ...servers,
    "",
    `# Running replicas no more than ${input.readOnlyMaxLagBytes} bytes behind the leader.`,
    `listen replicas`,
    `    bind *:${ROUTER_PORTS.readOnly}`,
    "    balance roundrobin",
    `    option httpchk OPTIONS /replica?lag=${input.readOnlyMaxLagBytes}`,
    "    http-check expect status 200",
    "    default-server inter 1s fall 2 rise 2 on-marked-down shutdown-sessions resolvers docker init-addr last,libc,none",
    ...servers,
    "",
  ].join("\n");
}
