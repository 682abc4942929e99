import { Construct } from "constructs";
import { Aspects, LocalBackend, S3Backend, TerraformOutput, TerraformStack } from "cdktf";
import { RandomProvider } from "@cdktf/provider-random/lib/provider";
import { TlsProvider } from "@cdktf/provider-tls/lib/provider";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider";
import { DockerHost } from "../constructs/docker-host";
import { check, formatProblem, isInt, PgharborConfigError, Rule } from "../constructs/errors";
import { LocalS3Server } from "../constructs/local-s3-server";
import { S3WalArchiveBucket } from "../constructs/s3-wal-archive-bucket";
import { IWalArchive } from "../constructs/wal-archive";
import { PostgresPrimary } from "../constructs/postgres-primary";
import { PostgresReplica } from "../constructs/postgres-replica";
import { defaultSubnet, HaCluster } from "../constructs/ha-cluster";
import { PgBouncer } from "../constructs/pgbouncer";
import { BackupCron } from "../constructs/backup-cron";
import { Monitoring } from "../constructs/monitoring";
import { PolicyPack } from "../constructs/policy/pack";
import { CertificateAuthority } from "../constructs/certificate-authority";
import { readOnlyRole } from "../postgres-config/roles";
import { EnvironmentConfig } from "./environments";
import { urlHost } from "../constructs/validation/addresses";
import { checkEnvironmentShape } from "./schema";
import { stateRules } from "./state-rules";

/** Object Lock must not keep objects longer than the backups they belong to are retained. */
function objectLockRules(env: EnvironmentConfig) {
  const lock = env.archive?.kind === "aws-s3" ? env.archive.objectLock : undefined;
  if (!lock) return [];
  const retentionDays = env.backup?.retentionFullBackups === undefined ? (env.backup?.retentionDays ?? 14) : undefined;
  const logicalDays = env.backup?.logical?.retentionDays ?? 30;
  // Root cause first: an invalid retention is the backup section's error, not a reason to shrink the lock.
  const validDays = (d: unknown) => isInt(d) && d >= 1 && d <= 3650;
  if (!isInt(lock.days) || lock.days < 1) return [];
  return [
    {
      when: retentionDays === undefined,
      field: "archive.objectLock",
      value: lock,
      problem: "needs time-based backup retention to be checked against (backup.retentionFullBackups is set)",
      fix: "use backup.retentionDays with Object Lock",
    },
    {
      when: retentionDays !== undefined && validDays(retentionDays) && lock.days > retentionDays,
      field: "archive.objectLock.days",
      value: lock.days,
      problem: `locks objects longer than backups are retained (backup.retentionDays ${retentionDays}): expiry could not delete them`,
      fix: `lower objectLock.days to at most ${retentionDays}, or raise backup.retentionDays`,
    },
    {
      when: env.backup?.logical !== undefined && validDays(logicalDays) && lock.days > logicalDays,
      field: "archive.objectLock.days",
      value: lock.days,
      problem: `locks objects longer than logical backups are retained (backup.logical.retentionDays ${env.backup?.logical?.retentionDays ?? 30}): their cleanup could not delete them`,
      fix: `lower objectLock.days to at most ${env.backup?.logical?.retentionDays ?? 30}, or raise backup.logical.retentionDays`,
    },
  ];
}

/** Construct ids of the stack's own children: a host named like one would collide with it. */
const STACK_IDS = ["random", "tls", "aws", "ca", "archive", "primary", "pgbouncer", "backup", "monitoring", "backend", "cluster"];

/** The Docker daemon a host config names (the default socket when none). */
const daemonOf = (h: { dockerHost?: string } | undefined) => (h?.dockerHost ?? "unix:///var/run/docker.sock").replace(/\/+$/, "").toLowerCase();

/** One rule per host whose value (when set) an earlier host already has. */
function sameValue(hosts: string[], valueOf: (h: string) => string | undefined, field: string, problem: string, fix: string) {
  return hosts.map((h, i) => {
    const val = valueOf(h);
    const first = val === undefined ? -1 : hosts.findIndex((o) => valueOf(o) === val);
    return { when: first !== -1 && first < i, field: `hosts.${h}.${field}`, value: val, problem: `${problem} (host "${hosts[first]}")`, fix };
  });
}

/** Failover needs a replica to fail over to and, for now, one Docker host for every member. */
function failoverRules(env: EnvironmentConfig) {
  if (!env.failover) return [];
  const hostNames = Object.keys(env.hosts ?? {});
  const primaryHost = env.primary?.host ?? hostNames[0];
  const others = [...(env.replicaHosts ?? []), ...(env.pgbouncer?.host ? [env.pgbouncer.host] : [])].filter((h) => h !== primaryHost);
  const params = Object.keys(env.primary?.parameters ?? {});
  const owned = (name: string, why: string) => {
    const set = params.find((p) => p.toLowerCase() === name);
    return { when: set !== undefined, field: `primary.parameters.${set}`, value: env.primary?.parameters?.[set!], problem: `is Patroni's to set while failover is on (${why})`, fix: "remove it from parameters" };
  };
  return [
    owned("synchronous_standby_names", 'it names the synchronous standby from the members that stream, and a fixed name would stop every write once that member leads or is gone; use failover.mode "sync"'),
    owned("cluster_name", "it is the Patroni cluster's name, pgharbor-<env>"),
    { when: isInt(env.replicas) && env.replicas < 1, field: "failover", value: env.failover, problem: `needs at least one replica to promote, and replicas is ${env.replicas}`, fix: "set replicas to 2 (one may be down while another takes over), or leave failover out" },
    {
      when: others.length > 0,
      field: "failover",
      value: env.failover,
      problem: `puts members on more than one Docker host (${[primaryHost, ...new Set(others)].join(", ")}): failover across hosts needs etcd on three hosts with TLS between them, which pgharbor does not build yet`,
      fix: "run the primary, the replicas and PgBouncer on one host while failover is set (leave replicaHosts and pgbouncer.host out), or leave failover out",
    },
  ];
}

/**
 * Rules across environments: two environments with failover on one Docker daemon need different
 * subnets (their networks have fixed /24s; Docker refuses the second at deploy, not at synth).
 */
export function crossEnvironmentNetworkRules(envs: readonly EnvironmentConfig[]): Array<Rule & { env: string }> {
  const placed = envs
    .filter((e) => e.failover)
    .map((e) => {
      const primaryHost = e.primary?.host ?? Object.keys(e.hosts ?? {})[0];
      return { e, daemon: daemonOf(e.hosts?.[primaryHost]), subnet: e.failover!.subnet ?? defaultSubnet(e.name) };
    });
  return placed.map((p, i) => {
    const twin = placed.slice(0, i).find((o) => o.daemon === p.daemon && o.subnet === p.subnet);
    const taken = new Set(placed.filter((o) => o.daemon === p.daemon).map((o) => o.subnet));
    const free = Array.from({ length: 256 }, (_, n) => `172.29.${n}.0/24`).find((c) => !taken.has(c));
    return {
      env: p.e.name,
      when: twin !== undefined,
      field: "failover.subnet",
      value: p.subnet,
      problem: `is environment ${twin?.e.name}'s subnet too, on the same Docker daemon (${p.daemon})${p.e.failover!.subnet === undefined ? " (the default, derived from the name)" : ""}: Docker would refuse the second network at deploy`,
      fix: `set failover.subnet to a private /24 no other environment on that daemon uses, e.g. "${free}"`,
    };
  });
}

/** Whole-stack checks that no single construct can see. */
function checkEnvironment(env: EnvironmentConfig): void {
  const hostNames = Object.keys(env.hosts ?? {});
  const where = env.name || "environment";
  const unknownHost = (h: string | undefined) => h !== undefined && !hostNames.includes(h);
  const fixHost = `use one of the hosts declared in hosts: ${hostNames.join(", ") || "(none)"}`;
  check(where, [
    { when: !/^[a-z][a-z0-9-]{0,20}$/.test(env.name), field: "name", value: env.name, problem: "must be lowercase letters, digits and hyphens, starting with a letter (≤ 21 characters); it names containers, volumes and the stack", fix: 'use a name like "dev" or "prod-eu"' },
    { when: hostNames.length === 0, field: "hosts", value: env.hosts, problem: "declares no Docker host", fix: 'declare at least one, e.g. hosts: { local: {} }' },
    ...hostNames.map((h) => ({ when: !/^[a-z][a-z0-9-]{0,30}$/.test(h), field: `hosts.${h}`, value: h, problem: "is not a valid host name key", fix: 'use lowercase letters, digits and hyphens, e.g. "db-1"' })),
    ...hostNames.map((h) => ({
      when: STACK_IDS.includes(h) || /^replica-\d+$/.test(h),
      field: `hosts.${h}`,
      value: h,
      problem: "is the name of another part of the stack (construct ids are shared by hosts, primary, replicas, PgBouncer, archive, backup, monitoring, CA and providers)",
      fix: 'name the host after the machine, e.g. "db-1"',
    })),
    ...sameValue(hostNames, (h) => daemonOf(env.hosts[h]), "dockerHost", "is the Docker daemon of another host too: both would create the same network and containers on it", "declare each Docker daemon once and put several containers on it"),
    ...sameValue(hostNames, (h) => env.hosts[h]?.privateAddress?.toLowerCase(), "privateAddress", "is the private address of another host too: what one publishes would collide with the other's, and consumers could not tell them apart", "give every host the address it really has"),
    ...hostNames
      .filter((h) => h !== (env.pgbouncer?.host ?? env.primary?.host ?? hostNames[0]))
      .map((h) => {
        const address = env.pgbouncer?.publishAddress;
        const mine = address !== undefined && (env.hosts[h]?.privateAddress === address || env.hosts[h]?.bindAddress === address);
        const pgbHost = env.pgbouncer?.host ?? env.primary?.host ?? hostNames[0];
        return { when: mine, field: "pgbouncer.publishAddress", value: address, problem: `is host "${h}"'s address, but PgBouncer runs on host "${pgbHost}": Docker there cannot publish on it`, fix: `publish on ${pgbHost}'s own address, or set pgbouncer.host to "${h}"` };
      }),
    ...(env.replicaHosts ?? []).map((h, i) => ({ when: env.replicaHosts!.indexOf(h) !== i, field: `replicaHosts[${i}]`, value: h, problem: "is listed twice", fix: "list each host once (replicas go round robin over the list)" })),
    { when: !isInt(env.replicas) || env.replicas < 0 || env.replicas > 16, field: "replicas", value: env.replicas, problem: "must be a whole number from 0 to 16", fix: "use 0 for no replica, 1 or 2 for read scaling and failover readiness" },
    { when: unknownHost(env.primary?.host), field: "primary.host", value: env.primary?.host, problem: "is not a declared host", fix: fixHost },
    { when: unknownHost(env.pgbouncer?.host), field: "pgbouncer.host", value: env.pgbouncer?.host, problem: "is not a declared host", fix: fixHost },
    ...(env.replicaHosts ?? []).map((h, i) => ({ when: unknownHost(h), field: `replicaHosts[${i}]`, value: h, problem: "is not a declared host", fix: fixHost })),
    { when: env.replicaHosts !== undefined && env.replicaHosts.length === 0, field: "replicaHosts", value: env.replicaHosts, problem: "is empty", fix: "list at least one host, or leave it out to use the primary's host" },

    ...failoverRules(env),
    ...objectLockRules(env),
    { when: env.archive?.kind !== "local-s3" && env.archive?.kind !== "aws-s3", field: "archive.kind", value: env.archive?.kind, problem: 'must be "local-s3" or "aws-s3"', fix: 'use "local-s3" for a dev server in Docker, "aws-s3" for a real bucket' },
  ]);
}

/**
 * One environment: Docker hosts, WAL archive, primary, replicas, PgBouncer and the backup container,
 * with the policy pack run at synth. Stack id = environment name (`cdktf deploy dev`).
 */
export class PostgresStack extends TerraformStack {
  public readonly hosts: Record<string, DockerHost> = {};
  public readonly archive!: IWalArchive;
  public readonly primary!: PostgresPrimary;
  /** Patroni's shared parts (etcd, the router, the failover settings) when the environment fails over. */
  public readonly cluster?: HaCluster;
  public readonly replicas: PostgresReplica[] = [];
  public readonly pgbouncer!: PgBouncer;
  public readonly backup!: BackupCron;
  public readonly monitoring!: Monitoring;

  constructor(scope: Construct, env: EnvironmentConfig) {
    checkEnvironmentShape(env);
    checkEnvironment(env);
    check(`${env.name}/state`, stateRules(env));
    const existing = scope.node.tryFindChild(env.name);
    if (existing) {
      throw new PgharborConfigError(formatProblem("environments", { field: "name", value: env.name, problem: "is already a stack of this app (two environments share this name, and with it their stacks, containers and state)", fix: "give every environment its own name" }));
    }
    super(scope, env.name);
    try {
      if (env.state.kind === "s3") {
        const backend = new S3Backend(this, { bucket: env.state.bucket, key: env.state.key, region: env.state.region, encrypt: true, kmsKeyId: env.state.kmsKeyId });
        backend.addOverride("use_lockfile", true);
      } else {
        new LocalBackend(this, { path: `terraform.${env.name}.tfstate` });
      }
      new RandomProvider(this, "random");
      new TlsProvider(this, "tls");
      const ca = new CertificateAuthority(this, "ca", { environment: env.name });

      const hostNames = Object.keys(env.hosts);
      for (const h of hostNames) {
        this.hosts[h] = new DockerHost(this, h, { environment: env.name, ...env.hosts[h] });
      }
      const primaryHost = this.hosts[env.primary.host ?? hostNames[0]];

      if (env.archive.kind === "aws-s3") {
        const aws = new AwsProvider(this, "aws", { region: env.archive.region, defaultTags: [{ tags: { "pgharbor:environment": env.name, "managed-by": "pgharbor" } }] });
        this.archive = new S3WalArchiveBucket(this, "archive", {
          environment: env.name,
          provider: aws,
          bucketName: env.archive.bucketName,
          region: env.archive.region,
          noncurrentVersionRetentionDays: env.archive.noncurrentVersionRetentionDays,
          objectLock: env.archive.objectLock,
          protect: env.protect,
        });
      } else {
        this.archive = new LocalS3Server(this, "archive", { environment: env.name, host: primaryHost, ca, bucketName: env.archive.bucketName, image: env.archive.image, protect: env.protect });
      }

      this.cluster = env.failover
        ? new HaCluster(this, "cluster", { environment: env.name, host: primaryHost, majorVersion: env.primary.majorVersion, protectData: env.protect, ...env.failover })
        : undefined;
      this.primary = new PostgresPrimary(this, "primary", { environment: env.name, host: primaryHost, archive: this.archive, ca, protectData: env.protect, cluster: this.cluster, ...stripHost(env.primary) });
      const replicaHosts = (env.replicaHosts ?? [hostNames.includes(env.primary.host ?? "") ? env.primary.host! : hostNames[0]]).map((h) => this.hosts[h]);
      for (let i = 0; i < env.replicas; i++) {
        this.replicas.push(
          new PostgresReplica(this, `replica-${i + 1}`, { primary: this.primary, host: replicaHosts[i % replicaHosts.length], protectData: env.protect, ...env.replica }),
        );
      }
      const pb = env.pgbouncer ?? {};
      this.pgbouncer = new PgBouncer(this, "pgbouncer", {
        primary: this.primary,
        replicas: this.replicas,
        ...stripHost(pb),
        host: pb.host ? this.hosts[pb.host] : undefined,
        clientAddress: env.clientAddress,
        clientCaFile: env.clientCaFile,
      });
      this.backup = new BackupCron(this, "backup", { primary: this.primary, ...env.backup });
      this.monitoring = new Monitoring(this, "monitoring", { primary: this.primary, replicas: this.replicas, pgbouncer: this.pgbouncer, backup: this.backup, ...env.monitoring });

      const address = this.pgbouncer.clientAddress;
      const pw = this.primary.passwords.app.result;
      new TerraformOutput(this, "DATABASE_URL", {
        value: this.pgbouncer.url(this.primary.appUser, pw, this.pgbouncer.database),
        sensitive: true,
        description: "Read-write connection through PgBouncer to the primary, verify-full against ca_cert_pem",
      });
      new TerraformOutput(this, "DATABASE_READ_URL", {
        value: this.pgbouncer.url(readOnlyRole(this.primary.appUser), this.primary.passwords.appReadOnly.result, this.pgbouncer.readOnlyDatabase),
        sensitive: true,
        description: "Read-only connection (read-only role) through PgBouncer to the replicas, verify-full against ca_cert_pem",
      });
      new TerraformOutput(this, "ca_cert_pem", { value: ca.certPem, description: "The environment's CA: DATABASE_URL verifies PgBouncer against it (sslmode=verify-full); put it at clientCaFile, or ~/.postgresql/root.crt" });
      new TerraformOutput(this, "pgbouncer_endpoint", { value: `${urlHost(address)}:${this.pgbouncer.port}` });

      Aspects.of(this).add(new PolicyPack());
    } catch (e) {
      // The rules above keep names apart; should two parts of the stack still meet, say so plainly.
      const m = e instanceof Error && !(e instanceof PgharborConfigError) ? /There is already a Construct with name '([^']+)'/.exec(e.message) : null;
      if (!m) throw e;
      throw new PgharborConfigError(formatProblem(env.name, { field: "(construct id)", value: m[1], problem: "names two parts of the stack (a host, a replica or a component share it)", fix: `rename the host called "${m[1]}"` }));
    }
  }
}

function stripHost<T extends { host?: string }>(o: T): Omit<T, "host"> {
  const { host: _host, ...rest } = o;
  void _host;
  return rest;
}
