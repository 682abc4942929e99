import { Construct } from "constructs";
import { Lazy } from "cdktf";
import { Container } from "@cdktf/provider-docker/lib/container";
import { CONTAINER_PATHS as P, PROGRAMS } from "../postgres-config/paths";
import { PASSWORD_ENV } from "../postgres-config/roles";
import { renderPgbouncerIni } from "../pgbouncer-config/pgbouncer-ini";
import { DockerHost } from "./docker-host";
import { check, isInt } from "./errors";
import { configUpload, IPostgresPrimary, MAX_CONNECTIONS } from "./postgres-primary";
import { IPostgresReplica } from "./postgres-replica";
import { literal } from "./terraform-text";
import { isDnsName, isIpAddress, isLoopback, isWildcard, subjectAltNames, urlHost } from "./validation/addresses";

export interface PgBouncerProps {
  readonly primary: IPostgresPrimary;
  /**
   * Replicas behind the read-only database.
   * @default [] - the primary serves the read-only database too
   */
  readonly replicas?: IPostgresReplica[];
  /** @default - the primary's host */
  readonly host?: DockerHost;
  /**
   * Port PgBouncer is published on, on `publishAddress`.
   * @default 6432
   */
  readonly port?: number;
  /**
   * Host address the port is published on. "127.0.0.1" keeps it on the Docker host.
   * @default "127.0.0.1"
   */
  readonly publishAddress?: string;
  /** @default "transaction" */
  readonly poolMode?: "transaction" | "session";
  /**
   * Server connections per user and database.
   * @default 20
   */
  readonly defaultPoolSize?: number;
  /** @default 5 */
  readonly reservePoolSize?: number;
  /** @default 1000 */
  readonly maxClientConnections?: number;
  /** @default 256 */
  readonly memoryMiB?: number;
  /**
   * Address applications connect to (a DNS name or IP): the host of DATABASE_URL, and a name in
   * PgBouncer's certificate so `sslmode=verify-full` holds.
   * @default - publishAddress
   */
  readonly clientAddress?: string;
  /**
   * Path of the environment's CA certificate (the `ca_cert_pem` output) where the application runs:
   * DATABASE_URL carries it as `sslrootcert`.
   * @default - none: libpq reads ~/.postgresql/root.crt
   */
  readonly clientCaFile?: string;
}

/** Connections kept free on every server for superusers, replication, backups and monitoring. */
export const RESERVED_SERVER_CONNECTIONS = 3 + 5;

/**
 * PgBouncer in transaction mode: `<db>` pools to the primary, `<db>_ro` to the replicas (round
 * robin). SCRAM pass-through via auth_query; the pools are checked against max_connections.
 */
export class PgBouncer extends Construct {
  public readonly container: Container;
  public readonly host: DockerHost;
  public readonly port: number;
  public readonly publishAddress: string;
  public readonly database: string;
  public readonly readOnlyDatabase: string;
  /** Container name: also its DNS name on the environment's network. */
  public readonly containerName: string;
  /** Where applications connect (DATABASE_URL's host). */
  public readonly clientAddress: string;
  private readonly clientCaFile?: string;

  constructor(scope: Construct, id: string, props: PgBouncerProps) {
    super(scope, id);
    const primary = props.primary;
    const replicas = props.replicas ?? [];
    const where = `${primary.environment}/pgbouncer`;
    const pool = props.defaultPoolSize ?? 20;
    const reserve = props.reservePoolSize ?? 5;
    const maxClients = props.maxClientConnections ?? 1000;
    const poolMode = props.poolMode ?? "transaction";
    this.port = props.port ?? 6432;
    this.publishAddress = props.publishAddress ?? "127.0.0.1";
    const memoryMiB = props.memoryMiB ?? 256;
    // Without replicas both databases pool to the primary.
    const perServer = (pool + reserve) * (replicas.length ? 1 : 2);
    const budget = primary.maxConnections - RESERVED_SERVER_CONNECTIONS;
    check(where, [
      { when: !isInt(pool) || pool < 1, field: "defaultPoolSize", value: pool, problem: "must be a whole number ≥ 1", fix: "use e.g. 20" },
      { when: !isInt(reserve) || reserve < 0, field: "reservePoolSize", value: reserve, problem: "must be a whole number ≥ 0", fix: "use e.g. 5" },
      {
        when: isInt(pool) && isInt(reserve) && perServer > budget,
        field: "defaultPoolSize",
        value: pool,
        problem: `pools need ${perServer} server connections (${replicas.length ? "" : "read-write and read-only both on the primary: 2 × "}(defaultPoolSize ${pool} + reservePoolSize ${reserve})) but the primary's maxConnections ${primary.maxConnections} leaves ${budget} after ${RESERVED_SERVER_CONNECTIONS} reserved`,
        fix:
          perServer + RESERVED_SERVER_CONNECTIONS <= MAX_CONNECTIONS
            ? `lower defaultPoolSize/reservePoolSize or raise the primary's maxConnections to at least ${perServer + RESERVED_SERVER_CONNECTIONS}`
            : `lower defaultPoolSize/reservePoolSize: ${perServer} server connections exceed what maxConnections may be (${MAX_CONNECTIONS})`,
      },
      { when: !isInt(maxClients) || maxClients < pool, field: "maxClientConnections", value: maxClients, problem: "must be a whole number ≥ defaultPoolSize", fix: "use e.g. 1000" },
      { when: isInt(maxClients) && maxClients > 100000, field: "maxClientConnections", value: maxClients, problem: "is more than 100000: every client needs a file descriptor, past the container's limit PgBouncer refuses connections", fix: "use e.g. 5000" },
      { when: poolMode !== "transaction" && poolMode !== "session", field: "poolMode", value: poolMode, problem: 'must be "transaction" or "session"', fix: 'use "transaction" (statement mode breaks multi-statement transactions)' },
      { when: !isInt(this.port) || this.port < 1 || this.port > 65535, field: "port", value: this.port, problem: "is not a TCP port", fix: "use a port from 1 to 65535, e.g. 6432" },
      {
        when: !isIpAddress(this.publishAddress),
        field: "publishAddress",
        value: this.publishAddress,
        problem: isDnsName(this.publishAddress) ? "is a DNS name, and Docker publishes ports on an IP address" : "is not an IP address",
        fix: 'use "127.0.0.1" or the host\'s private IP; set clientAddress for the name applications use',
      },
      {
        when: isIpAddress(this.publishAddress) && isWildcard(this.publishAddress),
        field: "publishAddress",
        value: this.publishAddress,
        problem: "is a wildcard: PgBouncer would listen on every interface of the host, public ones included (and Docker's rules bypass the host firewall)",
        fix: "publish on the interface applications reach: the host's private IP, or 127.0.0.1",
      },
      {
        when: props.clientAddress !== undefined && !isIpAddress(props.clientAddress) && !isDnsName(props.clientAddress),
        field: "clientAddress",
        value: props.clientAddress,
        problem: /^[\d.]+$/.test(String(props.clientAddress)) ? "is not a valid IP address" : "is not a DNS name or IP address",
        fix: 'give the name or address applications connect to, e.g. "db.example.internal"',
      },
      {
        // A port published on loopback is reachable on that loopback address only, and vice versa.
        when: props.clientAddress !== undefined && isIpAddress(props.clientAddress) && isIpAddress(this.publishAddress) && (isLoopback(props.clientAddress) || isLoopback(this.publishAddress)) && props.clientAddress !== this.publishAddress,
        field: "clientAddress",
        value: props.clientAddress,
        problem: `cannot reach PgBouncer, which is published on ${this.publishAddress} only`,
        fix: `use ${isLoopback(this.publishAddress) ? `${this.publishAddress} or "localhost" (applications on the Docker host), or publish PgBouncer on the host's private IP` : `${this.publishAddress} or a name that resolves to it`}`,
      },
      {
        when: props.clientAddress !== undefined && isIpAddress(props.clientAddress) && isWildcard(props.clientAddress),
        field: "clientAddress",
        value: props.clientAddress,
        problem: "is a wildcard, which no client can connect to",
        fix: 'give the name or address applications connect to, e.g. "db.example.internal"',
      },
      {
        when: props.clientCaFile !== undefined && !(/^\/[A-Za-z0-9._\/-]+$/.test(props.clientCaFile) && !props.clientCaFile.split("/").includes("..")),
        field: "clientCaFile",
        value: props.clientCaFile,
        problem: "is not an absolute path of letters, digits, dots, hyphens, underscores and slashes (libpq reads it relative to the application's directory otherwise, and other characters would need escaping in DATABASE_URL)",
        fix: 'give where the application finds the CA certificate, e.g. "/etc/ssl/pgharbor/ca.crt"',
      },
      { when: !isInt(memoryMiB) || memoryMiB < 32 || memoryMiB > 65536, field: "memoryMiB", value: memoryMiB, problem: "must be a whole number of MiB from 32 to 65536", fix: "use e.g. 256" },
    ]);

    const host = props.host ?? primary.host;
    this.host = host;
    this.clientAddress = props.clientAddress ?? this.publishAddress;
    this.clientCaFile = props.clientCaFile;
    host.claimPort({ ip: this.publishAddress, port: this.port, protocol: "tcp", by: "PgBouncer" }, "choose another pgbouncer.port (or another publishAddress)");
    this.database = primary.appDatabase;
    this.readOnlyDatabase = `${primary.appDatabase}_ro`;
    const cluster = primary.cluster;
    if (cluster && cluster.host !== host) {
      check(where, [{ when: true, field: "host", value: host.name, problem: `is not the host the failover cluster runs on ("${cluster.host.name}")`, fix: "run PgBouncer on the primary's host while failover is set" }]);
    }
    // With failover, the router finds the leader and the replicas; without, the containers themselves.
    const rw = cluster ? cluster.readWrite : primary.endpointFor(host, "PgBouncer");
    const ro = cluster ? [cluster.readOnly] : replicas.map((r) => r.endpointFor(host, "PgBouncer"));
    const roPorts = new Set(ro.map((e) => e.port));
    check(where, [
      { when: roPorts.size > 1, field: "replicas", value: replicas.map((r) => r.name), problem: "PgBouncer's read-only database balances over hosts sharing one port, and these replicas are reached on different ports", fix: "give the replicas the same publishPort" },
    ]);
    const name = `pgharbor-${primary.environment}-pgbouncer`;
    this.containerName = name;
    const ini = () =>
      renderPgbouncerIni({
        listenPort: 6432,
        database: this.database,
        readOnlyDatabase: this.readOnlyDatabase,
        primary: rw,
        replicas: ro,
        poolMode,
        defaultPoolSize: pool,
        reservePoolSize: reserve,
        maxDbConnections: pool + reserve,
        maxClientConnections: maxClients,
        tlsMinVersion: primary.tlsMinVersion,
        routed: cluster !== undefined,
      });
    // Every name PgBouncer is reached by: its container name, applications' address, the published address, the host's private address.
    const san = subjectAltNames([this.clientAddress, this.publishAddress, host.privateAddress]);
    const tls = primary.ca.issue("pgbouncer-tls", [name, "localhost", ...san.dnsNames], san.ipAddresses);
    this.container = new Container(this, "container", {
      provider: host.provider,
      name,
      hostname: name,
      image: host.pgbouncerImage().imageId,
      // Hands the TLS key and the lookup role's password to postgres (0600), then PgBouncer as postgres.
      entrypoint: [PROGRAMS.pgbouncerEntrypoint],
      env: [`${PASSWORD_ENV.pooler}=${primary.passwords.pooler.result}`, `${PASSWORD_ENV.monitor}=${primary.passwords.monitor.result}`],
      upload: [
        configUpload(P.pgbouncerIni, Lazy.stringValue({ produce: () => literal(ini()) })),
        configUpload(P.pgbouncerTlsCert, tls.certPem),
        configUpload(P.pgbouncerTlsCa, tls.caCertPem),
        { file: P.pgbouncerTlsKeyUpload, content: tls.privateKeyPem, permissions: "0600" },
      ],
      networksAdvanced: [{ name: host.network.name, aliases: [name] }],
      ports: [{ internal: 6432, external: this.port, ip: this.publishAddress, protocol: "tcp" }],
      // A real login: TLS verified, SCRAM, as the monitoring role, on the admin console.
      healthcheck: { test: ["CMD", PROGRAMS.pgbouncerHealthcheck], interval: "15s", timeout: "10s", retries: 4, startPeriod: "30s" },
      restart: "unless-stopped",
      // SIGINT: PgBouncer 1.24's safe shutdown (waits for servers, i.e. in-flight transactions). Docker's
      // default SIGTERM waits for every client to leave (SHUTDOWN WAIT_FOR_CLIENTS): with pooled
      // application connections that is until Docker kills it, refusing new connections meanwhile.
      stopSignal: "SIGINT",
      stopTimeout: 30,
      destroyGraceSeconds: 30,
      memory: memoryMiB,
      logDriver: "json-file",
      logOpts: { "max-size": "20m", "max-file": "3" },
      dependsOn: [primary.dependable, ...(cluster ? [cluster.router] : [])],
    });
  }

  /**
   * A libpq URL through this PgBouncer that verifies the server: `sslmode=verify-full` against the
   * environment's CA (`sslrootcert` when clientCaFile is set, else libpq's ~/.postgresql/root.crt).
   * Holds a password reference: sensitive outputs only.
   */
  public url(user: string, password: string, database: string, address: string = this.clientAddress): string {
    const ca = this.clientCaFile ? `&sslrootcert=${this.clientCaFile}` : "";
    return `postgres://${user}:${password}@${urlHost(address)}:${this.port}/${database}?sslmode=verify-full${ca}`;
  }
}
