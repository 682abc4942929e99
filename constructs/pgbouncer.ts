import { Construct } from "constructs";
import { Lazy } from "cdktf";
import { Container } from "@cdktf/provider-docker/lib/container";
import { CONTAINER_PATHS as P, PROGRAMS } from "../postgres-config/paths";
import { PASSWORD_ENV } from "../postgres-config/roles";
import { renderPgbouncerIni } from "../pgbouncer-config/pgbouncer-ini";
import { DockerHost } from "./docker-host";
import { check, isInt } from "./errors";
import { configUpload, IPostgresPrimary } from "./postgres-primary";
import { IPostgresReplica } from "./postgres-replica";
import { literal } from "./terraform-text";

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
        fix: `lower defaultPoolSize/reservePoolSize or raise the primary's maxConnections to at least ${perServer + RESERVED_SERVER_CONNECTIONS}`,
      },
      { when: !isInt(maxClients) || maxClients < pool, field: "maxClientConnections", value: maxClients, problem: "must be a whole number ≥ defaultPoolSize", fix: "use e.g. 1000" },
      { when: poolMode !== "transaction" && poolMode !== "session", field: "poolMode", value: poolMode, problem: 'must be "transaction" or "session"', fix: 'use "transaction" (statement mode breaks multi-statement transactions)' },
      { when: !isInt(this.port) || this.port < 1 || this.port > 65535, field: "port", value: this.port, problem: "is not a TCP port", fix: "use a port from 1 to 65535, e.g. 6432" },
      { when: !/^[0-9.]+$|^[A-Za-z0-9.-]+$/.test(this.publishAddress), field: "publishAddress", value: this.publishAddress, problem: "is not an address", fix: 'use "127.0.0.1" or the host\'s private address' },
      { when: !isInt(memoryMiB) || memoryMiB < 32, field: "memoryMiB", value: memoryMiB, problem: "must be a whole number of MiB ≥ 32", fix: "use e.g. 256" },
    ]);

    const host = props.host ?? primary.host;
    this.host = host;
    this.database = primary.appDatabase;
    this.readOnlyDatabase = `${primary.appDatabase}_ro`;
    const rw = primary.endpointFor(host, "PgBouncer");
    const ro = replicas.map((r) => r.endpointFor(host, "PgBouncer"));
    const roPorts = new Set(ro.map((e) => e.port));
    check(where, [
      { when: roPorts.size > 1, field: "replicas", value: replicas.map((r) => r.name), problem: "PgBouncer 1.18 load-balances over hosts sharing one port, and these replicas are reached on different ports", fix: "give the replicas the same publishPort" },
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
      });
    const tls = primary.ca.issue("pgbouncer-tls", [name, "localhost"], /^[0-9.]+$/.test(this.publishAddress) ? [this.publishAddress] : []);
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
      stopTimeout: 30,
      destroyGraceSeconds: 30,
      memory: memoryMiB,
      logDriver: "json-file",
      logOpts: { "max-size": "20m", "max-file": "3" },
      dependsOn: [primary.dependable],
    });
  }

  /** A libpq URL through this PgBouncer over TLS (holds a password reference: sensitive outputs only). */
  public url(user: string, password: string, database: string, address: string): string {
    return `postgres://${user}:${password}@${address}:${this.port}/${database}?sslmode=require`;
  }
}
