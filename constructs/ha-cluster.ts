import { Construct } from "constructs";
import { Lazy } from "cdktf";
import { Container } from "@cdktf/provider-docker/lib/container";
import { Volume } from "@cdktf/provider-docker/lib/volume";
import { Password } from "@cdktf/provider-random/lib/password";
import { DockerHost } from "./docker-host";
import { check, isInt } from "./errors";
import { generatedSecret } from "./secrets";
import { literal } from "./terraform-text";
import {
  FailoverMode,
  PATRONI_PATHS,
  PATRONI_REST_PORT,
  PATRONI_REST_USER,
  PATRONI_SECRET_ENV,
  renderCtlConfig,
  renderHaproxyCfg,
  ROUTER_PORTS,
} from "../postgres-config/patroni";

/** Patroni's floors (4.0 silently raises smaller values): pgharbor refuses them instead. */
export const MIN_TTL = 20;
export const MIN_LOOP_WAIT = 1;
export const MIN_RETRY_TIMEOUT = 3;

export interface FailoverSettings {
  /**
   * `async`: a replica at most `maximumLagOnFailoverBytes` behind may be promoted (commits not yet
   * replicated when the leader dies are lost). `sync`: one replica confirms every commit (Patroni's
   * synchronous_mode) and only it may be promoted: no acknowledged commit is lost. When no
   * synchronous standby is left, writes continue unprotected (not strict) rather than stop.
   */
  readonly mode: FailoverMode;
  /**
   * Seconds the leader key lives without renewal: how long a dead leader goes unnoticed (the
   * write gap of a killed leader is about this). Patroni's rule: loopWait + 2 × retryTimeout ≤ ttl.
   * @default 20
   */
  readonly ttl?: number;
  /** Seconds between Patroni's checks. @default 2 */
  readonly loopWait?: number;
  /** Seconds an etcd or PostgreSQL call may take before Patroni gives up on it. @default 6 */
  readonly retryTimeout?: number;
  /** `async`: a replica further behind than this is never promoted automatically. @default 1048576 (1 MiB) */
  readonly maximumLagOnFailoverBytes?: number;
  /** A replica further behind the leader than this leaves the read-only pool. @default 16777216 (16 MiB) */
  readonly readOnlyMaxLagBytes?: number;
  /**
   * The environment network's IPv4 /24: etcd gets a fixed address in it (`.10`), containers the upper
   * half. Addresses, not names, in Patroni's path to etcd: an isolated leader must demote itself within
   * the key's lease, and a DNS lookup through Docker's resolver can take 10 s once cut off.
   * @default - 172.29.N.0/24, N from the environment's name
   */
  readonly subnet?: string;
  /**
   * While etcd is down, keep the leader writable as long as every member confirms it over the REST
   * API (Patroni's failsafe_mode); without it, losing etcd demotes the leader.
   * @default true
   */
  readonly failsafeMode?: boolean;
}

export interface HaClusterProps extends FailoverSettings {
  readonly environment: string;
  /** The host every member, etcd and the router run on (one Docker host for now). */
  readonly host: DockerHost;
  /** The PostgreSQL major of the members (etcd runs their image). @default 17 */
  readonly majorVersion?: number;
  /** Refuse `terraform destroy` of etcd's volume. @default false */
  readonly protectData?: boolean;
}

/** A member as the router, the backup container and monitoring need it. */
export interface HaMember {
  /** Patroni's member name: the construct id (`primary`, `replica-1`). */
  readonly name: string;
  readonly containerName: string;
  readonly dataVolume: Volume;
  /** Its socket directory, shared with the backup container (which follows the leader's). */
  readonly socketVolume: Volume;
}

/** A deterministic /24 in 172.29.0.0/16 for an environment name. */
export function defaultSubnet(environment: string): string {
  let h = 0;
  for (const c of environment) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return `172.29.${h % 256}.0/24`;
}

const PRIVATE_24 = /^(10\.\d{1,3}\.\d{1,3}|172\.(1[6-9]|2\d|3[01])\.\d{1,3}|192\.168\.\d{1,3})\.0\/24$/;

/**
 * What the members of a Patroni cluster share: the cluster's name in etcd, the etcd member (a fixed
 * address on the environment network), the REST API and rewind credentials, the failover settings,
 * and the router (HAProxy) PgBouncer reaches the leader and the replicas through. PostgresPrimary and
 * PostgresReplica take it and run Patroni; which of them leads is decided at run time.
 */
export class HaCluster extends Construct {
  public readonly environment: string;
  public readonly host: DockerHost;
  /** Patroni's scope: the cluster's name in etcd and in `patronictl`. */
  public readonly scope: string;
  public readonly mode: FailoverMode;
  public readonly ttl: number;
  public readonly loopWait: number;
  public readonly retryTimeout: number;
  public readonly maximumLagOnFailoverBytes: number;
  public readonly readOnlyMaxLagBytes: number;
  public readonly failsafeMode: boolean;
  public readonly subnet: string;
  public readonly etcdAddress: string;
  public readonly etcd: Container;
  public readonly etcdVolume: Volume;
  public readonly router: Container;
  public readonly routerName: string;
  public readonly restPassword: Password;
  public readonly rewindPassword: Password;
  /**
   * Writes the cluster's dynamic configuration (the failover settings and every PostgreSQL setting)
   * into etcd, then stays up as the record of what it wrote. A change of settings replaces this
   * container only: Patroni reloads the members, and a setting that needs a restart waits, reported
   * as pending, for `pgharbor cluster restart`.
   */
  public readonly configContainer: Container;
  private readonly memberList: HaMember[] = [];
  private settings?: () => { dcs: Record<string, unknown>; postgresqlConf: string };

  constructor(scope: Construct, id: string, props: HaClusterProps) {
    super(scope, id);
    const where = `${props.environment}/failover`;
    const ttl = props.ttl ?? 20;
    const loopWait = props.loopWait ?? 2;
    const retryTimeout = props.retryTimeout ?? 6;
    const maxLag = props.maximumLagOnFailoverBytes ?? 1048576;
    const roLag = props.readOnlyMaxLagBytes ?? 16777216;
    const subnet = props.subnet ?? defaultSubnet(props.environment);
    const ints = isInt(ttl) && isInt(loopWait) && isInt(retryTimeout);
    check(where, [
      { when: props.mode !== "async" && props.mode !== "sync", field: "mode", value: props.mode, problem: 'must be "async" or "sync"', fix: 'use "async" (bounded loss, maximumLagOnFailoverBytes) or "sync" (no acknowledged commit lost)' },
      { when: !isInt(ttl) || ttl < MIN_TTL || ttl > 3600, field: "ttl", value: ttl, problem: `must be a whole number of seconds from ${MIN_TTL} to 3600 (Patroni raises a smaller ttl to ${MIN_TTL} without saying so)`, fix: `use ${MIN_TTL} (a killed leader is replaced in about ttl seconds)` },
      { when: !isInt(loopWait) || loopWait < MIN_LOOP_WAIT, field: "loopWait", value: loopWait, problem: `must be a whole number of seconds ≥ ${MIN_LOOP_WAIT}`, fix: "use 2" },
      { when: !isInt(retryTimeout) || retryTimeout < MIN_RETRY_TIMEOUT, field: "retryTimeout", value: retryTimeout, problem: `must be a whole number of seconds ≥ ${MIN_RETRY_TIMEOUT}`, fix: "use 6" },
      {
        when: ints && ttl >= MIN_TTL && loopWait >= MIN_LOOP_WAIT && retryTimeout >= MIN_RETRY_TIMEOUT && loopWait + 2 * retryTimeout > ttl,
        field: "ttl",
        value: ttl,
        problem: `is less than loopWait + 2 × retryTimeout (${loopWait} + 2 × ${retryTimeout} = ${loopWait + 2 * retryTimeout}): a leader could lose its key before it noticed it cannot renew it, and two members would accept writes`,
        fix: `raise ttl to at least ${loopWait + 2 * retryTimeout}, or lower loopWait or retryTimeout`,
      },
      { when: !isInt(maxLag) || maxLag < 0, field: "maximumLagOnFailoverBytes", value: maxLag, problem: "must be a whole number of bytes ≥ 0", fix: "use 1048576 (1 MiB); mode \"sync\" loses nothing acknowledged" },
      { when: !isInt(roLag) || roLag < 0, field: "readOnlyMaxLagBytes", value: roLag, problem: "must be a whole number of bytes ≥ 0", fix: "use 16777216 (16 MiB)" },
      { when: !PRIVATE_24.test(subnet), field: "subnet", value: subnet, problem: "must be a private IPv4 /24 (10/8, 172.16/12 or 192.168/16), like 172.29.7.0/24", fix: "pick a /24 no other Docker network on the host uses" },
    ]);
    this.environment = props.environment;
    this.host = props.host;
    this.scope = `pgharbor-${props.environment}`;
    this.mode = props.mode;
    this.ttl = ttl;
    this.loopWait = loopWait;
    this.retryTimeout = retryTimeout;
    this.maximumLagOnFailoverBytes = maxLag;
    this.readOnlyMaxLagBytes = roLag;
    this.failsafeMode = props.failsafeMode ?? true;
    this.subnet = subnet;
    const base = subnet.replace(/\.0\/24$/, "");
    this.etcdAddress = `${base}.10`;
    // Fixed addresses below .128 (etcd .10, members from .11), Docker's own assignments above it.
    props.host.network.putIpamConfig([{ subnet, ipRange: `${base}.128/25`, gateway: `${base}.1` }]);

    this.restPassword = generatedSecret(this, "rest-password", 32);
    this.rewindPassword = generatedSecret(this, "rewind-password", 32);

    const provider = props.host.provider;
    const etcdName = `pgharbor-${props.environment}-etcd`;
    this.etcdVolume = new Volume(this, "etcd-data", { provider, name: `${etcdName}-data`, lifecycle: props.protectData ? { preventDestroy: true } : undefined });
    const image = props.host.postgresImage(props.majorVersion ?? 17).imageId;
    this.etcd = new Container(this, "etcd", {
      provider,
      name: etcdName,
      hostname: etcdName,
      image,
      entrypoint: [PATRONI_PATHS.etcdEntrypoint],
      env: [`PGHARBOR_ETCD_NAME=${etcdName}`, `PGHARBOR_ETCD_ADDRESS=${this.etcdAddress}`],
      volumes: [{ volumeName: this.etcdVolume.name, containerPath: "/var/lib/etcd" }],
      networksAdvanced: [{ name: props.host.network.name, aliases: [etcdName], ipv4Address: this.etcdAddress }],
      // etcd's own /health (the image has no etcdctl): "true" once the member serves reads and writes.
      healthcheck: {
        test: ["CMD", "python3", "-c", "import sys, urllib.request; sys.exit(0 if b'\"true\"' in urllib.request.urlopen('http://127.0.0.1:2379/health', timeout=3).read() else 1)"],
        interval: "15s",
        timeout: "5s",
        retries: 4,
        startPeriod: "30s",
      },
      restart: "unless-stopped",
      memory: 256,
      logDriver: "json-file",
      logOpts: { "max-size": "20m", "max-file": "3" },
    });

    const configName = `${this.scope}-patroni-config`;
    const settings = () => {
      if (!this.settings) throw new Error(`HaCluster ${this.scope}: no member gave the cluster its settings (a PostgresPrimary takes the cluster)`);
      return this.settings();
    };
    this.configContainer = new Container(this, "patroni-config", {
      provider,
      name: configName,
      hostname: configName,
      image,
      user: "postgres",
      entrypoint: ["python3", PATRONI_PATHS.dcsConfig, "apply", PATRONI_PATHS.ctlConfig, PATRONI_PATHS.dcs],
      upload: [
        { file: PATRONI_PATHS.ctlConfig, content: renderCtlConfig(this.scope, this.etcdHosts), permissions: "0644" },
        { file: PATRONI_PATHS.dcs, content: Lazy.stringValue({ produce: () => literal(JSON.stringify(settings().dcs, null, 2) + "\n") }), permissions: "0644" },
        { file: PATRONI_PATHS.clusterConf, content: Lazy.stringValue({ produce: () => literal(settings().postgresqlConf) }), permissions: "0644" },
      ],
      networksAdvanced: [{ name: props.host.network.name, aliases: [configName] }],
      // Healthy once the configuration is in etcd (the file holds the time it was written).
      healthcheck: { test: ["CMD", "test", "-f", "/tmp/dcs-applied"], interval: "5s", timeout: "3s", retries: 3, startPeriod: "300s" },
      restart: "unless-stopped",
      memory: 128,
      stopSignal: "SIGTERM",
      logDriver: "json-file",
      logOpts: { "max-size": "5m", "max-file": "2" },
      dependsOn: [this.etcd],
    });

    this.routerName = `pgharbor-${props.environment}-router`;
    this.router = new Container(this, "router", {
      provider,
      name: this.routerName,
      hostname: this.routerName,
      image: props.host.pgbouncerImage().imageId,
      entrypoint: ["haproxy", "-W", "-db", "-f", PATRONI_PATHS.haproxyConf],
      upload: [
        {
          file: PATRONI_PATHS.haproxyConf,
          content: Lazy.stringValue({ produce: () => literal(renderHaproxyCfg({ members: this.memberList.map((m) => m.containerName), readOnlyMaxLagBytes: this.readOnlyMaxLagBytes })) }),
          permissions: "0644",
        },
      ],
      networksAdvanced: [{ name: props.host.network.name, aliases: [this.routerName] }],
      restart: "unless-stopped",
      memory: 128,
      logDriver: "json-file",
      logOpts: { "max-size": "20m", "max-file": "3" },
    });
  }

  /**
   * Records a member (the router sends connections to it once Patroni says it leads or follows) and
   * returns its fixed address: the members call each other's REST API by address, because a leader
   * cut off from the network asks the others (failsafe mode) before it demotes itself, and a name
   * lookup through Docker's resolver then takes 10 s, long enough for another member to be promoted.
   */
  public registerMember(member: HaMember): string {
    this.memberList.push(member);
    return this.memberAddress(this.memberList.length - 1);
  }

  private memberAddress(index: number): string {
    return `${this.subnet.replace(/\.0\/24$/, "")}.${11 + index}`;
  }

  public get members(): readonly HaMember[] {
    return [...this.memberList];
  }

  /** The cluster's settings, from the member that bootstraps it (PostgresPrimary): what the config container writes. */
  public useSettings(produce: () => { dcs: Record<string, unknown>; postgresqlConf: string }): void {
    this.settings = produce;
  }

  /** `ip:port` of every etcd member. */
  public get etcdHosts(): string[] {
    return [`${this.etcdAddress}:2379`];
  }

  /** Environment entries every member needs (Terraform references: no value lands in the JSON). */
  public memberEnv(replicationPassword: Password): string[] {
    return [
      `${PATRONI_SECRET_ENV.replication}=${replicationPassword.result}`,
      `${PATRONI_SECRET_ENV.rewind}=${this.rewindPassword.result}`,
      `PATRONI_RESTAPI_USERNAME=${PATRONI_REST_USER}`,
      `${PATRONI_SECRET_ENV.rest}=${this.restPassword.result}`,
    ];
  }

  /** Where PgBouncer reaches the leader and the replicas. */
  public get readWrite(): { host: string; port: number } {
    return { host: this.routerName, port: ROUTER_PORTS.readWrite };
  }

  public get readOnly(): { host: string; port: number } {
    return { host: this.routerName, port: ROUTER_PORTS.readOnly };
  }

  public get restPort(): number {
    return PATRONI_REST_PORT;
  }
}
