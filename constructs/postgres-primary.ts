import { Construct } from "constructs";
import { ITerraformDependable, Lazy } from "cdktf";
import { Container, ContainerUpload } from "@cdktf/provider-docker/lib/container";
import { Volume } from "@cdktf/provider-docker/lib/volume";
import { Password } from "@cdktf/provider-random/lib/password";
import { PostgresMajor, SUPPORTED_MAJORS } from "../postgres-config/parameter-catalogue";
import { CONTAINER_PATHS as P, PROGRAMS, STANZA } from "../postgres-config/paths";
import { canonicalParameters, checkParameterOverrides, riskyParameters } from "../postgres-config/parameter-policy";
import {
  deriveMemorySettings,
  memoryValueToMiB,
  MemorySettings,
  MIN_MEMORY_MIB,
  ParameterValue,
  PostgresConfInput,
  postgresParameters,
  renderPostgresqlConf,
  TlsVersion,
} from "../postgres-config/postgresql-conf";
import { renderPgHba, renderPgIdent } from "../postgres-config/pg-hba";
import { renderPgbackrestConf } from "../postgres-config/pgbackrest-conf";
import { identifierProblem } from "../postgres-config/identifiers";
import { DockerHost } from "./docker-host";
import { check, isInt, PgharborConfigError, Rule } from "./errors";
import { IWalArchive } from "./wal-archive";
import { generatedSecret } from "./secrets";
import { literal } from "./terraform-text";
import { CertificateAuthority, ServerCertificate } from "./certificate-authority";
import { acknowledge, RiskAcknowledgements } from "./validation/acknowledgements";
import { subjectAltNames } from "./validation/addresses";
import { HaCluster } from "./ha-cluster";
import { PATRONI_PATHS, renderBaseConf, renderDcs, renderPatroniConfig } from "../postgres-config/patroni";

/** What replicas, PgBouncer and the backup container need from a primary. */
export interface IPostgresPrimary {
  readonly environment: string;
  readonly host: DockerHost;
  readonly archive: IWalArchive;
  readonly majorVersion: PostgresMajor;
  readonly maxConnections: number;
  readonly appUser: string;
  readonly appDatabase: string;
  readonly passwords: PrimaryPasswords;
  /** Container memory limit, the default for replicas. */
  readonly memoryMiB: number;
  /** The primary's container: what replicas wait for. */
  readonly dependable: ITerraformDependable;
  /** Host and port a container on `from` reaches this primary at (publishes the port when cross-host). */
  endpointFor(from: DockerHost, what: string): { host: string; port: number };
  /** Registers a replica; returns the name of its physical replication slot. */
  attachReplica(name: string): string;
  /** The replicas attached so far (their application_name on the primary). */
  readonly replicaNames: readonly string[];
  /** The environment's CA: replicas and PgBouncer get their certificates from it and verify with it. */
  readonly ca: CertificateAuthority;
  readonly tlsMinVersion: TlsVersion;
  /** postgresql.conf input shared with replicas so standby-critical settings agree. */
  confInput(): Omit<PostgresConfInput, "role" | "memory">;
  /** The Patroni cluster the members share (environments with `failover`). */
  readonly cluster?: HaCluster;
  /** pgBackRest's archive-push-queue-max (MiB) for every member that can lead; unset: never drop WAL. */
  readonly archivePushQueueMaxMiB?: number;
  /** The dynamic configuration every member applies (Patroni). */
  dcs(): Record<string, unknown>;
}

export interface PrimaryPasswords {
  readonly app: Password;
  readonly appReadOnly: Password;
  readonly replication: Password;
  readonly pooler: Password;
  readonly monitor: Password;
}

export interface PostgresPrimaryProps {
  readonly environment: string;
  /** Docker host the primary (and its backup container) run on. */
  readonly host: DockerHost;
  /** Where WAL is archived and backups go. */
  readonly archive: IWalArchive;
  /**
   * PostgreSQL major version: 17 from Debian trixie, 15 or 16 from apt.postgresql.org (synth-tested only).
   * @default 17
   */
  readonly majorVersion?: number;
  /**
   * Container memory limit; shared_buffers, effective_cache_size, work_mem and maintenance_work_mem derive from it.
   * @default 1024
   */
  readonly memoryMiB?: number;
  /**
   * CPU limit (cores, fractional allowed).
   * @default 1
   */
  readonly cpus?: number;
  /** @default 100 */
  readonly maxConnections?: number;
  /**
   * Recovery point objective: the most committed data, in seconds, a loss of this host may lose.
   * archive_timeout derives from it (rpoSeconds − 10 above 20 s, half of it below).
   * @default 60
   */
  readonly rpoSeconds?: number;
  /**
   * Most WAL a replication slot may hold back before the slot is invalidated (protects the primary's disk).
   * @default 4096
   */
  readonly maxSlotWalKeepSizeMiB?: number;
  /**
   * Extra or overriding postgresql.conf parameters, checked against the major's parameter catalogue
   * (names case-insensitive; values by type, unit and range). Parameters pgharbor manages are refused
   * with the reason; values that risk data need `acknowledgeRisk`.
   * @default {}
   */
  readonly parameters?: Record<string, ParameterValue>;
  /**
   * Risky settings accepted on purpose, each with a written reason (at least 20 characters), keyed by
   * the field the error names: `"parameters.fsync"`, `"parameters.full_page_writes"`,
   * `"parameters.synchronous_commit"`, `"parameters.data_sync_retry"`, a developer option
   * (`"parameters.zero_damaged_pages"`, …) or `"logMinDurationStatementMs"`.
   * @default - none: every risky setting fails synth
   */
  readonly acknowledgeRisk?: RiskAcknowledgements;
  /** @default "app" */
  readonly appUser?: string;
  /** @default "app" */
  readonly appDatabase?: string;
  /**
   * Refuse `terraform destroy` of the data volume (and keep it when the container is replaced, as always).
   * @default false
   */
  readonly protectData?: boolean;
  /**
   * Host port published on `host.privateAddress` when a replica or PgBouncer on another host needs the primary.
   * @default 5432
   */
  readonly publishPort?: number;
  /**
   * Drop WAL that waits for the archive beyond this size (pgBackRest archive-push-queue-max): keeps the
   * primary's disk from filling while the bucket is down, at the cost of a gap in the archive.
   * @default - never drop WAL: it stays in pg_wal until the bucket is back
   */
  readonly archivePushQueueMaxMiB?: number;
  /**
   * CA issuing the server certificates of the primary, its replicas and PgBouncer.
   * @default - a new private CA for the environment (tls provider)
   */
  readonly ca?: CertificateAuthority;
  /**
   * Lowest TLS version PostgreSQL and PgBouncer accept.
   * @default "TLSv1.3"
   */
  readonly tlsMinVersion?: TlsVersion;
  /**
   * Log statements running longer than this (milliseconds), with their text. PostgreSQL cannot redact
   * a statement, so a slow `ALTER ROLE … PASSWORD` would land in the log with its password: turning
   * it on needs `acknowledgeRisk: { logMinDurationStatementMs: "<why>" }`. pg_stat_statements
   * (preloaded, constants normalised) is the way to find slow queries without logging them.
   * @default -1 (off)
   */
  readonly logMinDurationStatementMs?: number;
  /**
   * auto_explain logs the plan (row counts, buffers, the Query Identifier; no bind values) of every
   * statement slower than this, for `pgharbor queries explain`. Only planned statements (SELECT,
   * INSERT, UPDATE, DELETE, MERGE) are explained, with their text as sent: a statement that carries
   * a secret as a literal and runs this long would show it (bind it as a parameter). -1 turns it off.
   * @default 1000
   */
  readonly autoExplainMinDurationMs?: number;
  /**
   * Run the primary under Patroni as the member that bootstraps the cluster and is preferred as
   * leader; replicas given this primary join the same cluster, and any member may lead after a
   * failover.
   * @default - no automatic failover: the primary is the writer for good
   */
  readonly cluster?: HaCluster;
}

/** A server certificate, its CA and key as container uploads (the entrypoint moves the key to the server's user). */
export function tlsUploads(tls: ServerCertificate): ContainerUpload[] {
  return [
    { file: P.tlsCert, content: tls.certPem, permissions: "0644" },
    { file: P.tlsCa, content: tls.caCertPem, permissions: "0644" },
    { file: P.tlsKeyUpload, content: tls.privateKeyPem, permissions: "0600" },
  ];
}

/** A configuration file upload: root-owned and world-readable (it holds no secret). */
export function configUpload(file: string, content: string): ContainerUpload {
  return { file, content, permissions: "0644" };
}

/**
 * CPU limit as CFS period and quota. Not the docker provider's `cpus`: the kreuzwerker/docker 3.6.2
 * that @cdktf/provider-docker 12.0.3 pins reads it as a float32 although its schema says string and
 * panics on any container that sets it (provider issue #759, fixed by provider PR #771).
 */
export function cpuLimit(cpus: number): { cpuPeriod: number; cpuQuota: number } {
  return { cpuPeriod: 100_000, cpuQuota: Math.round(cpus * 100_000) };
}

/** Docker healthcheck of a PostgreSQL container: the image's healthcheck.sh, as postgres, on the socket. */
export function postgresHealthcheck(role: "primary" | "replica" | "member", startPeriod: string) {
  return { test: ["CMD", PROGRAMS.postgresHealthcheck, role], interval: "15s", timeout: "10s", retries: 4, startPeriod };
}

/**
 * A Patroni member's files: its local configuration (the bootstrapping member's with the dynamic
 * configuration to start the cluster with) and the dynamic configuration its start applies.
 */
export function patroniUploads(cluster: HaCluster, member: string, containerName: string, address: string, major: number, failoverPriority: number): ContainerUpload[] {
  return [
    configUpload(
      PATRONI_PATHS.config,
      literal(
        renderPatroniConfig({
          scope: cluster.scope,
          name: member,
          containerName,
          address,
          majorBinDir: `/usr/lib/postgresql/${major}/bin`,
          etcdHosts: cluster.etcdHosts,
          bootstrap: member === "primary",
          failoverPriority,
        }),
      ),
    ),
    // No setting here: they are the cluster's dynamic configuration (HaCluster's config container).
    configUpload(PATRONI_PATHS.baseConf, literal(renderBaseConf(cluster.scope))),
  ];
}

/** archive_timeout from the RPO target: leave 10 s for pgBackRest's asynchronous push above 20 s. */
export function archiveTimeoutFor(rpoSeconds: number): number {
  return rpoSeconds > 20 ? rpoSeconds - 10 : Math.max(1, Math.ceil(rpoSeconds / 2));
}

/** Largest container memory limit pgharbor accepts (1 TiB): a larger one is a unit mistake. */
export const MAX_MEMORY_MIB = 1048576;

/** Largest maxConnections pgharbor accepts. */
export const MAX_CONNECTIONS = 10000;

/** Smallest RPO target: archive_timeout 5 s, probed every 5 s. */
export const MIN_RPO_SECONDS = 10;

/** Memory each connection is budgeted in the "memory too small" check. */
export const PER_CONNECTION_MIB = 4;

/**
 * Checks the memory-derived settings fit the limit; returns the settings with overrides applied.
 */
export function sizeMemory(scope: string, memoryMiB: number, maxConnections: number, parameters: Record<string, ParameterValue>): MemorySettings {
  const derived = deriveMemorySettings(memoryMiB, maxConnections);
  const memory: MemorySettings = { ...derived };
  for (const k of Object.keys(memory) as Array<keyof MemorySettings>) {
    if (parameters[k] !== undefined) memory[k] = String(parameters[k]);
  }
  const sharedMiB = memoryValueToMiB(memory.shared_buffers) ?? NaN;
  const needed = Math.ceil(sharedMiB + maxConnections * PER_CONNECTION_MIB + 64);
  const badUnits = (Object.keys(memory) as Array<keyof MemorySettings>).filter((k) => memoryValueToMiB(memory[k], k === "shared_buffers" || k === "effective_cache_size" ? 8 : 1) === undefined);
  check(scope, [
    ...badUnits.map<Rule>((k) => ({ when: true, field: `parameters.${k}`, value: memory[k], problem: "is not a memory size", fix: 'write it as a whole number with kB, MB or GB, e.g. "256MB"' })),
    {
      when: badUnits.length === 0 && needed > memoryMiB,
      field: "memoryMiB",
      value: memoryMiB,
      problem: `is too small: shared_buffers ${memory.shared_buffers} + ${maxConnections} connections × ${PER_CONNECTION_MIB} MiB + 64 MiB overhead need ${needed} MiB`,
      fix: `raise memoryMiB to at least ${needed}, or lower maxConnections (PgBouncer multiplexes clients) or shared_buffers`,
    },
  ]);
  return memory;
}

export function primaryRules(p: PostgresPrimaryProps, resolved: { major: number; memoryMiB: number; cpus: number; maxConnections: number; rpoSeconds: number; maxSlot: number; appUser: string; appDatabase: string; publishPort: number }): Rule[] {
  const r = resolved;
  return [
    { when: !(SUPPORTED_MAJORS as readonly number[]).includes(r.major), field: "majorVersion", value: r.major, problem: "is not a supported PostgreSQL major", fix: `use one of ${SUPPORTED_MAJORS.join(", ")}` },
    { when: !isInt(r.memoryMiB) || r.memoryMiB < MIN_MEMORY_MIB, field: "memoryMiB", value: r.memoryMiB, problem: `must be a whole number of MiB ≥ ${MIN_MEMORY_MIB}`, fix: `give the container at least ${MIN_MEMORY_MIB} MiB` },
    { when: isInt(r.memoryMiB) && r.memoryMiB > MAX_MEMORY_MIB, field: "memoryMiB", value: r.memoryMiB, problem: `is more than ${MAX_MEMORY_MIB} MiB (1 TiB): shared_buffers would be a quarter of it, and PostgreSQL would not start on a host without that memory`, fix: "give the container the memory its host can spare, in MiB (4096 is 4 GiB)" },
    { when: !(typeof r.cpus === "number" && r.cpus > 0 && r.cpus <= 256), field: "cpus", value: r.cpus, problem: "must be a number of cores > 0", fix: "use e.g. 0.5, 1 or 4" },
    { when: !isInt(r.maxConnections) || r.maxConnections < 10 || r.maxConnections > MAX_CONNECTIONS, field: "maxConnections", value: r.maxConnections, problem: `must be a whole number from 10 to ${MAX_CONNECTIONS}`, fix: "keep it modest (PgBouncer multiplexes clients), e.g. 100" },
    {
      when: !isInt(r.rpoSeconds) || r.rpoSeconds < MIN_RPO_SECONDS || r.rpoSeconds > 86400,
      field: "rpoSeconds",
      value: r.rpoSeconds,
      problem: `must be a whole number of seconds from ${MIN_RPO_SECONDS} to 86400 (below ${MIN_RPO_SECONDS} s archive_timeout would force a 16 MiB WAL segment every few seconds, and the bucket-side probe, every 5 s at best, could not measure it)`,
      fix: "state the data loss you accept, e.g. 60",
    },
    { when: !isInt(r.maxSlot) || r.maxSlot < 64, field: "maxSlotWalKeepSizeMiB", value: r.maxSlot, problem: "must cap slot WAL at a whole number of MiB ≥ 64 (unlimited lets a dead replica fill the disk)", fix: "set a cap below the free space of the data volume, e.g. 4096" },
    ...(["appUser", "appDatabase"] as const).map((field): Rule => {
      // appUser_ro is the read-only role; appDatabase_ro PgBouncer's read-only database.
      const bad = identifierProblem(r[field], "_ro");
      return { when: bad !== undefined, field, value: r[field], problem: bad?.problem ?? "", fix: bad?.fix ?? "" };
    }),
    { when: !isInt(r.publishPort) || r.publishPort < 1 || r.publishPort > 65535, field: "publishPort", value: r.publishPort, problem: "is not a TCP port", fix: "use a port from 1 to 65535, e.g. 5432" },
    { when: p.tlsMinVersion !== undefined && p.tlsMinVersion !== "TLSv1.2" && p.tlsMinVersion !== "TLSv1.3", field: "tlsMinVersion", value: p.tlsMinVersion, problem: "is not a TLS version pgharbor allows", fix: 'use "TLSv1.3" (default) or "TLSv1.2" for old clients' },
    { when: p.autoExplainMinDurationMs !== undefined && (!isInt(p.autoExplainMinDurationMs) || p.autoExplainMinDurationMs < -1 || p.autoExplainMinDurationMs > 86_400_000), field: "autoExplainMinDurationMs", value: p.autoExplainMinDurationMs, problem: "must be a whole number of milliseconds up to a day, or -1 for off", fix: "use e.g. 1000" },
    { when: p.logMinDurationStatementMs !== undefined && (!isInt(p.logMinDurationStatementMs) || p.logMinDurationStatementMs < -1), field: "logMinDurationStatementMs", value: p.logMinDurationStatementMs, problem: "must be a whole number of milliseconds, or -1 for off", fix: "use e.g. 1000" },
    { when: p.archivePushQueueMaxMiB !== undefined && (!isInt(p.archivePushQueueMaxMiB) || p.archivePushQueueMaxMiB < 256), field: "archivePushQueueMaxMiB", value: p.archivePushQueueMaxMiB, problem: "must be a whole number of MiB ≥ 256", fix: "leave it unset to never drop WAL, or give a size well above a day of WAL" },
  ];
}

/**
 * The PostgreSQL primary: pgharbor's server image (images/postgres), data checksums, a named data
 * volume that outlives the container, a healthcheck that queries as postgres, TLS, WAL archived asynchronously to the bucket,
 * replication settings following the replicas attached. Its roles and their passwords are reconciled
 * by the backup container (BackupCron), so rotating a password never restarts the primary.
 */
export class PostgresPrimary extends Construct implements IPostgresPrimary {
  public readonly environment: string;
  public readonly host: DockerHost;
  public readonly archive: IWalArchive;
  public readonly majorVersion: PostgresMajor;
  public readonly maxConnections: number;
  public readonly appUser: string;
  public readonly appDatabase: string;
  public readonly passwords: PrimaryPasswords;
  public readonly container: Container;
  public readonly dataVolume: Volume;
  public readonly socketVolume: Volume;
  public readonly memory: MemorySettings;
  public readonly archiveTimeoutSeconds: number;
  public readonly rpoSeconds: number;
  public readonly memoryMiB: number;
  public readonly ca: CertificateAuthority;
  public readonly tlsMinVersion: TlsVersion;
  /** Container name: also its DNS name on the environment's network. */
  public readonly containerName: string;
  public readonly cluster?: HaCluster;
  public readonly archivePushQueueMaxMiB?: number;
  private readonly replicas: string[] = [];
  private readonly props: PostgresPrimaryProps;
  /** The user's parameters, validated, spelled as the server spells them. */
  private readonly parameters: Record<string, ParameterValue>;
  private readonly maxSlotWalKeepSizeMiB: number;
  private readonly publishPort: number;

  constructor(scope: Construct, id: string, props: PostgresPrimaryProps) {
    super(scope, id);
    const where = `${props.environment}/primary`;
    const resolved = {
      major: props.majorVersion ?? 17,
      memoryMiB: props.memoryMiB ?? 1024,
      cpus: props.cpus ?? 1,
      maxConnections: props.maxConnections ?? 100,
      rpoSeconds: props.rpoSeconds ?? 60,
      maxSlot: props.maxSlotWalKeepSizeMiB ?? 4096,
      appUser: props.appUser ?? "app",
      appDatabase: props.appDatabase ?? "app",
      publishPort: props.publishPort ?? 5432,
    };
    check(where, primaryRules(props, resolved));
    const major = resolved.major as PostgresMajor;
    const given = props.parameters ?? {};
    const logsStatements = (props.logMinDurationStatementMs ?? -1) >= 0;
    const risks = [...riskyParameters(major, given).map((r) => r.key), ...(logsStatements ? ["logMinDurationStatementMs"] : [])];
    const acks = acknowledge(props.acknowledgeRisk, risks);
    check(where, [
      ...checkParameterOverrides(major, given, acks.acknowledged).map((pr) => ({ when: true, field: `parameters.${pr.name}`, value: given[pr.name], problem: `${pr.name} ${pr.problem}`, fix: pr.fix })),
      {
        when: logsStatements && !acks.acknowledged.has("logMinDurationStatementMs"),
        field: "logMinDurationStatementMs",
        value: props.logMinDurationStatementMs,
        problem: "logs slow statements with their text, and PostgreSQL cannot leave out the password of a slow ALTER ROLE … PASSWORD",
        fix: 'leave it unset (-1) and read pg_stat_statements, or acknowledge the risk with acknowledgeRisk: { logMinDurationStatementMs: "<why, in a sentence>" }',
      },
      ...acks.rules,
    ]);
    const parameters = canonicalParameters(major, given);
    this.memory = sizeMemory(where, resolved.memoryMiB, resolved.maxConnections, parameters);

    this.props = props;
    this.parameters = parameters;
    this.environment = props.environment;
    this.host = props.host;
    this.archive = props.archive;
    this.majorVersion = major;
    this.maxConnections = resolved.maxConnections;
    this.appUser = resolved.appUser;
    this.appDatabase = resolved.appDatabase;
    this.maxSlotWalKeepSizeMiB = resolved.maxSlot;
    this.memoryMiB = resolved.memoryMiB;
    this.publishPort = resolved.publishPort;
    this.archiveTimeoutSeconds = archiveTimeoutFor(resolved.rpoSeconds);
    this.rpoSeconds = resolved.rpoSeconds;
    const protect = props.protectData ?? false;
    this.ca = props.ca ?? new CertificateAuthority(this, "ca", { environment: props.environment });
    this.tlsMinVersion = props.tlsMinVersion ?? "TLSv1.3";

    this.passwords = {
      app: generatedSecret(this, "app-password", 32),
      appReadOnly: generatedSecret(this, "app-ro-password", 32),
      replication: generatedSecret(this, "replication-password", 32),
      pooler: generatedSecret(this, "pooler-password", 32),
      monitor: generatedSecret(this, "monitor-password", 32),
    };

    const name = `pgharbor-${props.environment}-primary`;
    this.containerName = name;
    const provider = props.host.provider;
    this.dataVolume = new Volume(this, "data", { provider, name: `${name}-data`, lifecycle: protect ? { preventDestroy: true } : undefined });
    this.socketVolume = new Volume(this, "socket", { provider, name: `${name}-socket` });

    const archive = props.archive;
    const cluster = props.cluster;
    this.cluster = cluster;
    this.archivePushQueueMaxMiB = props.archivePushQueueMaxMiB;
    const address = cluster?.registerMember({ name: "primary", containerName: name, dataVolume: this.dataVolume, socketVolume: this.socketVolume });
    cluster?.useSettings(() => ({ dcs: this.dcs(), postgresqlConf: renderPostgresqlConf({ ...this.confInput(), role: "member", memory: this.memory }) }));
    // The names clients connect to: the container name on its host, the host's private address (DNS or
    // IP) across hosts, and with failover the router's name (PgBouncer dials the router, TLS passes through).
    const san = subjectAltNames([props.host.privateAddress]);
    const tls = this.ca.issue("primary-tls", [name, "localhost", ...san.dnsNames, ...(cluster ? [cluster.routerName] : [])], san.ipAddresses);
    const uploads: ContainerUpload[] = [
      ...tlsUploads(tls),
      // With failover the settings are the cluster's (HaCluster's config container), not the member's.
      ...(cluster ? [] : [configUpload(P.postgresqlConf, Lazy.stringValue({ produce: () => literal(renderPostgresqlConf({ ...this.confInput(), role: "primary", memory: this.memory })) }))]),
      configUpload(P.hbaConf, literal(renderPgHba())),
      configUpload(P.identConf, literal(renderPgIdent())),
      configUpload(P.pgbackrestConf, literal(renderPgbackrestConf({ repo: archive.repoFor(props.host), role: "primary", processMax: 2, compressLevel: 3, archivePushQueueMaxMiB: props.archivePushQueueMaxMiB }))),
      ...archive.containerUploads(),
      ...(cluster ? patroniUploads(cluster, "primary", name, address!, major, 2) : []),
    ];
    const common = {
      provider,
      name,
      hostname: name,
      image: props.host.postgresImage(major).imageId,
      volumes: [
        { volumeName: this.dataVolume.name, containerPath: P.dataDir },
        { volumeName: this.socketVolume.name, containerPath: P.socketDir },
      ],
      upload: uploads,
      networksAdvanced: [{ name: props.host.network.name, aliases: [name], ...(address ? { ipv4Address: address } : {}) }],
      restart: "unless-stopped",
      memory: resolved.memoryMiB,
      ...cpuLimit(resolved.cpus),
      shmSize: Math.max(64, Math.floor(resolved.memoryMiB / 4)),
      stopTimeout: 120,
      destroyGraceSeconds: 120,
      logDriver: "json-file",
      logOpts: { "max-size": "50m", "max-file": "5" },
    };
    this.container = cluster
      ? new Container(this, "container", {
          ...common,
          // Patroni as postgres: bootstraps the cluster (patroni-bootstrap.sh) when etcd has none, else
          // follows the leader; SIGTERM stops it (and PostgreSQL) cleanly.
          entrypoint: [PATRONI_PATHS.entrypoint],
          env: [...archive.containerEnv("write"), ...cluster.memberEnv(this.passwords.replication)],
          healthcheck: postgresHealthcheck("member", "600s"),
          stopSignal: "SIGTERM",
          dependsOn: [...archive.dependables, cluster.etcd, cluster.configContainer],
        })
      : new Container(this, "container", {
          ...common,
          // initdb (data checksums; the superuser has no password and logs in over the socket only) on an
          // empty volume, the TLS key handed to postgres, then PostgreSQL as postgres.
          entrypoint: [PROGRAMS.primaryEntrypoint],
          command: ["-c", `config_file=${P.postgresqlConf}`],
          env: [...archive.containerEnv("write")],
          healthcheck: postgresHealthcheck("primary", "300s"),
          stopSignal: "SIGINT",
          dependsOn: archive.dependables,
        });
  }

  /** The dynamic configuration (Patroni): the failover settings and the rendered postgresql.conf's parameters. */
  public dcs(): Record<string, unknown> {
    const c = this.cluster;
    if (!c) return {};
    return renderDcs({
      mode: c.mode,
      ttl: c.ttl,
      loopWait: c.loopWait,
      retryTimeout: c.retryTimeout,
      maximumLagOnFailoverBytes: c.maximumLagOnFailoverBytes,
      failsafeMode: c.failsafeMode,
      parameters: postgresParameters({ ...this.confInput(), role: "primary", memory: this.memory }),
    });
  }

  public get dependable(): ITerraformDependable {
    return this.container;
  }

  public attachReplica(name: string): string {
    if (this.replicas.includes(name)) {
      throw new PgharborConfigError(`[${this.environment}/replicas] name = ${JSON.stringify(name)}: two replicas share this name, and with it a replication slot. Fix: give every replica its own name.`);
    }
    this.replicas.push(name);
    return `pgharbor_${name.replace(/[^a-z0-9_]/g, "_")}`;
  }

  public get replicaNames(): readonly string[] {
    return [...this.replicas];
  }

  public get replicaCount(): number {
    return this.replicas.length;
  }

  public endpointFor(from: DockerHost, what: string): { host: string; port: number } {
    return this.host.reach(from, this.container, this.containerName, this.publishPort, 5432, what, "the primary");
  }

  public confInput(): Omit<PostgresConfInput, "role" | "memory"> {
    return {
      major: this.majorVersion,
      maxConnections: this.maxConnections,
      replicaCount: this.replicas.length,
      archiveTimeoutSeconds: this.archiveTimeoutSeconds,
      maxSlotWalKeepSizeMiB: this.maxSlotWalKeepSizeMiB,
      stanza: STANZA,
      tlsMinVersion: this.tlsMinVersion,
      logMinDurationStatementMs: this.props.logMinDurationStatementMs ?? -1,
      autoExplainMinDurationMs: this.props.autoExplainMinDurationMs ?? 1000,
      parameters: this.parameters,
    };
  }
}
