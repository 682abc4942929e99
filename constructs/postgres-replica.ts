import { Construct } from "constructs";
import { Lazy } from "cdktf";
import { Container } from "@cdktf/provider-docker/lib/container";
import { Volume } from "@cdktf/provider-docker/lib/volume";
import { CONTAINER_PATHS as P, PROGRAMS } from "../postgres-config/paths";
import { renderPostgresqlConf } from "../postgres-config/postgresql-conf";
import { renderPgHba, renderPgIdent } from "../postgres-config/pg-hba";
import { renderPgbackrestConf } from "../postgres-config/pgbackrest-conf";
import { PASSWORD_ENV, ROLE_NAMES } from "../postgres-config/roles";
import { DockerHost } from "./docker-host";
import { check, isInt } from "./errors";
import { configUpload, cpuLimit, IPostgresPrimary, MAX_MEMORY_MIB, patroniUploads, postgresHealthcheck, sizeMemory, tlsUploads } from "./postgres-primary";
import { PATRONI_PATHS } from "../postgres-config/patroni";
import { literal } from "./terraform-text";
import { subjectAltNames } from "./validation/addresses";

/** What PgBouncer needs from a replica. */
export interface IPostgresReplica {
  readonly name: string;
  endpointFor(from: DockerHost, what: string): { host: string; port: number };
}

export interface PostgresReplicaProps {
  /** The primary to stream from (and whose archive to restore from). */
  readonly primary: IPostgresPrimary;
  /**
   * Docker host to run on; another host needs its own provider and a private address on the primary's host.
   * @default - the primary's host
   */
  readonly host?: DockerHost;
  /** @default - the primary's memoryMiB */
  readonly memoryMiB?: number;
  /** @default 1 */
  readonly cpus?: number;
  /** @default false */
  readonly protectData?: boolean;
  /**
   * Host port published on `host.privateAddress` when PgBouncer runs on another host.
   * @default 5432
   */
  readonly publishPort?: number;
}

/**
 * A streaming hot standby with its own physical slot. On first start it restores from the bucket when
 * a backup exists (pgBackRest restore --type=standby), else takes a pg_basebackup from the primary;
 * afterwards it follows the primary through its slot and fetches older WAL from the archive.
 */
export class PostgresReplica extends Construct implements IPostgresReplica {
  public readonly name: string;
  public readonly host: DockerHost;
  public readonly container!: Container;
  public readonly dataVolume: Volume;
  /** With failover: its socket directory as a volume (the backup container follows the leader's). */
  public readonly socketVolume?: Volume;
  public readonly slotName: string;
  /** Container name: also its DNS name on the environment's network. */
  public readonly containerName: string;
  private readonly publishPort: number;

  constructor(scope: Construct, id: string, props: PostgresReplicaProps) {
    super(scope, id);
    const primary = props.primary;
    const where = `${primary.environment}/replicas.${id}`;
    const host = props.host ?? primary.host;
    const cpus = props.cpus ?? 1;
    this.publishPort = props.publishPort ?? 5432;
    check(where, [
      { when: !/^[a-z][a-z0-9-]{0,30}$/.test(id), field: "name", value: id, problem: "must be lowercase letters, digits and hyphens, starting with a letter (≤ 31 characters)", fix: 'name replicas like "replica-1"' },
      { when: !(typeof cpus === "number" && cpus > 0), field: "cpus", value: cpus, problem: "must be a number of cores > 0", fix: "use e.g. 0.5, 1 or 4" },
      { when: !isInt(this.publishPort) || this.publishPort < 1 || this.publishPort > 65535, field: "publishPort", value: this.publishPort, problem: "is not a TCP port", fix: "use a port from 1 to 65535" },
    ]);
    const memoryMiB = props.memoryMiB ?? primary.memoryMiB;
    check(where, [
      { when: !isInt(memoryMiB) || memoryMiB < 256, field: "memoryMiB", value: memoryMiB, problem: "must be a whole number of MiB ≥ 256", fix: "give the replica at least 256 MiB" },
      { when: isInt(memoryMiB) && memoryMiB > MAX_MEMORY_MIB, field: "memoryMiB", value: memoryMiB, problem: `is more than ${MAX_MEMORY_MIB} MiB (1 TiB): PostgreSQL would not start on a host without that memory`, fix: "give the replica the memory its host can spare, in MiB" },
    ]);
    const memory = sizeMemory(where, memoryMiB, primary.maxConnections, primary.confInput().parameters ?? {});

    this.name = id;
    this.host = host;
    this.slotName = primary.attachReplica(id);
    const name = `pgharbor-${primary.environment}-${id}`;
    this.containerName = name;
    const provider = host.provider;
    const upstream = primary.endpointFor(host, `replica "${id}"`);
    this.dataVolume = new Volume(this, "data", { provider, name: `${name}-data`, lifecycle: props.protectData ? { preventDestroy: true } : undefined });
    const archive = primary.archive;
    const conninfo = `host=${upstream.host} port=${upstream.port} user=${ROLE_NAMES.replication} passfile=${P.secretsDir}/pgpass application_name=${id} sslmode=verify-full sslrootcert=${P.tlsCa}`;
    const cluster = primary.cluster;
    let address: string | undefined;
    if (cluster) {
      // Shared with the backup container, which connects to whichever member leads.
      this.socketVolume = new Volume(this, "socket", { provider, name: `${name}-socket` });
      address = cluster.registerMember({ name: id, containerName: name, dataVolume: this.dataVolume, socketVolume: this.socketVolume });
    }
    const san = subjectAltNames([host.privateAddress]);
    const tls = primary.ca.issue(`${id}-tls`, [name, "localhost", ...san.dnsNames, ...(cluster ? [cluster.routerName] : [])], san.ipAddresses);
    const common = {
      provider,
      name,
      hostname: name,
      image: host.postgresImage(primary.majorVersion).imageId,
      volumes: [{ volumeName: this.dataVolume.name, containerPath: P.dataDir }],
      networksAdvanced: [{ name: host.network.name, aliases: [name] }],
      restart: "unless-stopped",
      memory: memoryMiB,
      ...cpuLimit(cpus),
      shmSize: Math.max(64, Math.floor(memoryMiB / 4)),
      stopTimeout: 120,
      destroyGraceSeconds: 120,
      logDriver: "json-file",
      logOpts: { "max-size": "50m", "max-file": "5" },
      dependsOn: [primary.dependable, ...archive.dependables],
    };
    if (cluster) {
      // The settings are the cluster's, sized for the primary's memory: a replica that may lead gets the same.
      check(where, [
        {
          when: memoryMiB !== primary.memoryMiB,
          field: "memoryMiB",
          value: memoryMiB,
          problem: `differs from the primary's (${primary.memoryMiB} MiB): with failover every member runs the cluster's settings, sized for the primary, and any replica may lead`,
          fix: "leave memoryMiB out of the replicas (they take the primary's), or give the primary the same",
        },
      ]);
      if (cluster.host !== host) {
        check(where, [{ when: true, field: "host", value: host.name, problem: `is not the host the cluster runs on ("${cluster.host.name}"): failover across Docker hosts needs etcd on three hosts, which pgharbor does not build yet`, fix: "run the replicas on the primary's host while failover is set, or leave failover out" }]);
      }
      // A Patroni member like the primary, without the bootstrap section: it can only clone the
      // leader (the bucket first, pg_basebackup otherwise), never start a second cluster. It archives
      // with the writer's key, since it may be promoted.
      this.container = new Container(this, "container", {
        ...common,
        volumes: [...common.volumes, { volumeName: this.socketVolume!.name, containerPath: P.socketDir }],
        networksAdvanced: [{ name: host.network.name, aliases: [name], ipv4Address: address }],
        entrypoint: [PATRONI_PATHS.entrypoint],
        env: [...archive.containerEnv("write"), ...cluster.memberEnv(primary.passwords.replication)],
        upload: [
          ...tlsUploads(tls),
          configUpload(P.hbaConf, literal(renderPgHba())),
          configUpload(P.identConf, literal(renderPgIdent())),
          configUpload(P.pgbackrestConf, literal(renderPgbackrestConf({ repo: archive.repoFor(host), role: "primary", processMax: 2, compressLevel: 3, archivePushQueueMaxMiB: primary.archivePushQueueMaxMiB }))),
          ...archive.containerUploads(),
          ...patroniUploads(cluster, id, name, address!, primary.majorVersion, 1),
        ],
        healthcheck: postgresHealthcheck("member", "600s"),
        stopSignal: "SIGTERM",
      });
      return;
    }

    this.container = new Container(this, "container", {
      ...common,
      // Slot on the primary, bootstrap of an empty volume (bucket first, pg_basebackup otherwise), then
      // PostgreSQL as a hot standby, as postgres.
      entrypoint: [PROGRAMS.replicaEntrypoint],
      command: ["-c", `config_file=${P.postgresqlConf}`],
      env: [
        `PRIMARY_HOST=${upstream.host}`,
        `PRIMARY_PORT=${upstream.port}`,
        `PGHARBOR_SLOT=${this.slotName}`,
        `${PASSWORD_ENV.replication}=${primary.passwords.replication.result}`,
        ...archive.containerEnv("read"),
      ],
      upload: [
        ...tlsUploads(tls),
        configUpload(
          P.postgresqlConf,
          Lazy.stringValue({
            produce: () => literal(renderPostgresqlConf({ ...primary.confInput(), role: "replica", memory, primaryConninfo: conninfo, primarySlotName: this.slotName })),
          }),
        ),
        configUpload(P.hbaConf, literal(renderPgHba())),
        configUpload(P.identConf, literal(renderPgIdent())),
        configUpload(P.pgbackrestConf, literal(renderPgbackrestConf({ repo: archive.repoFor(host), role: "replica", processMax: 2, compressLevel: 3 }))),
        ...archive.containerUploads(),
      ],
      // A bootstrap from a large bucket backup takes a while before the first query can answer.
      healthcheck: postgresHealthcheck("replica", "600s"),
      stopSignal: "SIGINT",
    });
  }

  public endpointFor(from: DockerHost, what: string): { host: string; port: number } {
    return this.host.reach(from, this.container, this.containerName, this.publishPort, 5432, what, `replica "${this.name}"`);
  }
}
