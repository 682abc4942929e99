import { Construct } from "constructs";
import { Container } from "@cdktf/provider-docker/lib/container";
import { Volume } from "@cdktf/provider-docker/lib/volume";
import { CONTAINER_PATHS as P, PROGRAMS } from "../postgres-config/paths";
import { maxIntervalMinutes, parseCron } from "../postgres-config/cron";
import { MAX_WAL_SIZE_MIB } from "../postgres-config/postgresql-conf";
import { parameterNumber } from "../postgres-config/parameter-policy";
import { renderPgbackrestConf } from "../postgres-config/pgbackrest-conf";
import { ROLE_NAMES } from "../postgres-config/roles";
import { AlertInput, renderAlertRules } from "../monitoring-config/alerts";
import { collectorFlags, DEFAULT_QUERY_OPTIONS, QueryOptions, renderQueriesYaml } from "../monitoring-config/queries";
import { PROBE_PORT } from "../monitoring-config/probe";
import { renderPrometheusConfig, ScrapeTarget } from "../monitoring-config/prometheus";
import { BackupCron } from "./backup-cron";
import { DockerHost } from "./docker-host";
import { check, isInt } from "./errors";
import { PgBouncer } from "./pgbouncer";
import { PostgresPrimary } from "./postgres-primary";
import { PostgresReplica } from "./postgres-replica";
import { literal } from "./terraform-text";
import { configUpload } from "./postgres-primary";

export interface MonitoringProps {
  readonly primary: PostgresPrimary;
  readonly replicas: PostgresReplica[];
  readonly pgbouncer: PgBouncer;
  readonly backup: BackupCron;
  /** @default - the primary's host */
  readonly host?: DockerHost;
  /**
   * Run a Prometheus container that scrapes the exporters and loads the generated rules.
   * @default true
   */
  readonly prometheus?: boolean;
  /** @default 15 */
  readonly probeIntervalSeconds?: number;
  /** @default 14 */
  readonly certificateWarningDays?: number;
  /**
   * Statements each server's exporter reports from pg_stat_statements: the top N by total execution
   * time, each as 6 series labelled with queryid, database and role (never the query text).
   * @default 20
   */
  readonly topStatements?: number;
  /**
   * Transaction or multixact ID age of a database that raises WraparoundAgeHigh; above the primary's
   * autovacuum_freeze_max_age and autovacuum_multixact_freeze_max_age (autovacuum freezes from there).
   * @default 500000000
   */
  readonly wraparoundWarningAge?: number;
  /** The age that raises WraparoundAgeCritical (PostgreSQL stops writes near 2.1 billion). @default 1000000000 */
  readonly wraparoundCriticalAge?: number;
  /** A transaction open longer than this, seconds, raises LongTransactionOpen. @default 300 */
  readonly longTransactionSeconds?: number;
  /** Share of dead tuples in a table that raises DeadTuplesHigh (dead / (live + dead)). @default 0.2 */
  readonly deadTupleRatio?: number;
  /** pgharbor_worst_table (and with it DeadTuplesHigh) only ranks tables with at least this many dead tuples: small tables churn harmlessly. @default 10000 */
  readonly deadTupleMinCount?: number;
}

/**
 * What the stack adds to MonitoringProps when the environment runs Patroni. Kept apart from
 * MonitoringProps while stacks/schema.ts checks that every MonitoringProps key is an environment
 * setting or listed as set by the stack: once "cluster" is listed there, this can move into it.
 */
export interface MonitoringClusterProps {
  /**
   * The environment runs Patroni: Prometheus scrapes every member's REST API (`/metrics`, plain HTTP,
   * job `patroni`, labelled `member`) and the cluster's alerts are added (PatroniSyncStandbyMissing
   * only in `sync` mode). Members are reached by container name on the monitoring host's network.
   * @default - the primary's cluster (`PostgresPrimary`'s `cluster`); none: no cluster scrape job, no cluster alerts
   */
  readonly cluster?: MonitoringCluster;
}

/** What monitoring needs to know of a Patroni cluster. */
export interface MonitoringCluster {
  readonly mode: "async" | "sync";
  /** Port of Patroni's REST API on every member. */
  readonly restPort: number;
  /** Every member: its Patroni name (`primary`, `replica-1`, …) and its container. */
  readonly members: ReadonlyArray<{ readonly name: string; readonly containerName: string }>;
}

export const MONITORING_PATHS = {
  queries: "/etc/pgharbor/monitoring/queries.yaml",
  prometheusConfig: "/etc/pgharbor/monitoring/prometheus.yml",
  alertRules: "/etc/pgharbor/monitoring/alerts.yml",
  tsdb: "/var/lib/prometheus/pgharbor",
} as const;

/** PostgreSQL's defaults (pgharbor leaves both alone unless `parameters` sets them). */
const FREEZE_MAX_AGE_DEFAULTS = { autovacuum_freeze_max_age: 200_000_000, autovacuum_multixact_freeze_max_age: 400_000_000 };

export const EXPORTER_PORTS = { postgres: 9187, pgbouncer: 9127, probe: PROBE_PORT } as const;

/**
 * Monitoring: a postgres_exporter per server and a PgBouncer exporter (Debian's builds, as tested),
 * all as the least-privileged monitoring role over verified TLS; the bucket-side RPO probe with the
 * archive's read-only credentials; alert rules derived from the environment; optionally Prometheus.
 */
export class Monitoring extends Construct {
  public readonly alertInput: AlertInput;
  public readonly alertRules: string;
  public readonly scrapeTargets: ScrapeTarget[] = [];
  public readonly containers: Container[] = [];

  constructor(scope: Construct, id: string, props: MonitoringProps & MonitoringClusterProps) {
    super(scope, id);
    const { primary, pgbouncer, backup } = props;
    const env = primary.environment;
    const probeInterval = props.probeIntervalSeconds ?? 15;
    const certDays = props.certificateWarningDays ?? 14;
    check(`${env}/monitoring`, [
      { when: !isInt(probeInterval) || probeInterval < 5 || probeInterval > 300, field: "probeIntervalSeconds", value: probeInterval, problem: "must be a whole number of seconds from 5 to 300", fix: "use e.g. 15 (well under rpoSeconds)" },
      { when: !isInt(certDays) || certDays < 1 || certDays > 300, field: "certificateWarningDays", value: certDays, problem: "must be a whole number of days from 1 to 300", fix: "use e.g. 14" },
    ]);
    // The probe samples the bucket: a breach shorter than its interval can go unseen, and RPOBreached
    // needs a reading above rpoSeconds. Half the target leaves room for the alert's own delay.
    const maxInterval = Math.floor(primary.rpoSeconds / 2);
    check(`${env}/monitoring`, [
      {
        when: probeInterval > maxInterval,
        field: "probeIntervalSeconds",
        value: probeInterval,
        problem: `is more than half the RPO target (the primary's rpoSeconds ${primary.rpoSeconds}): the probe would see a breach late or not at all`,
        fix: `lower probeIntervalSeconds to at most ${maxInterval}, or raise rpoSeconds to at least ${probeInterval * 2}`,
      },
    ]);
    const topStatements = props.topStatements ?? DEFAULT_QUERY_OPTIONS.topStatements;
    const warnAge = props.wraparoundWarningAge ?? 500_000_000;
    const critAge = props.wraparoundCriticalAge ?? 1_000_000_000;
    const longTx = props.longTransactionSeconds ?? 300;
    const deadRatio = props.deadTupleRatio ?? 0.2;
    const deadMin = props.deadTupleMinCount ?? DEFAULT_QUERY_OPTIONS.deadTupleMinCount;
    const isAge = (v: number) => isInt(v) && v >= 1_000_000 && v <= 2_000_000_000;
    check(`${env}/monitoring`, [
      { when: !isInt(topStatements) || topStatements < 1 || topStatements > 100, field: "topStatements", value: topStatements, problem: "must be a whole number of statements from 1 to 100 (each is 6 series per server)", fix: "use e.g. 20" },
      // Up to 2 billion: PostgreSQL's own warnings start about 40 million before its stop near 2.1 billion.
      { when: !isAge(warnAge), field: "wraparoundWarningAge", value: warnAge, problem: "must be a whole number of transactions from 1000000 to 2000000000", fix: "use e.g. 500000000" },
      { when: !isAge(critAge), field: "wraparoundCriticalAge", value: critAge, problem: "must be a whole number of transactions from 1000000 to 2000000000", fix: "use e.g. 1000000000 (PostgreSQL stops writes near 2.1 billion)" },
      { when: !isInt(longTx) || longTx < 10 || longTx > 86400, field: "longTransactionSeconds", value: longTx, problem: "must be a whole number of seconds from 10 to 86400", fix: "use e.g. 300" },
      { when: typeof deadRatio !== "number" || !(deadRatio > 0 && deadRatio < 1), field: "deadTupleRatio", value: deadRatio, problem: "must be a share of dead tuples above 0 and below 1", fix: "use e.g. 0.2 (20 % of a table's tuples dead)" },
      { when: !isInt(deadMin) || deadMin < 1 || deadMin > 1_000_000_000, field: "deadTupleMinCount", value: deadMin, problem: "must be a whole number of dead tuples from 1 to 1000000000", fix: "use e.g. 10000 (smaller tables churn harmlessly)" },
    ]);
    const conf = primary.confInput();
    // Autovacuum starts freezing a table at autovacuum_freeze_max_age (multixacts: their own limit), so
    // ages up to there are normal operation: a warning at or below it would always be firing.
    const [freezeName, freezeMax] = Object.entries(FREEZE_MAX_AGE_DEFAULTS)
      .map(([name, dflt]) => [name, parameterNumber(primary.majorVersion, conf.parameters ?? {}, name) ?? dflt] as const)
      .reduce((a, b) => (b[1] > a[1] ? b : a));
    check(`${env}/monitoring`, [
      {
        when: warnAge <= freezeMax,
        field: "wraparoundWarningAge",
        value: warnAge,
        problem: `is not above the primary's ${freezeName} (${freezeMax}), where autovacuum starts freezing: the alert would fire in normal operation`,
        fix: `raise wraparoundWarningAge above ${freezeMax}, or lower ${freezeName}`,
      },
      { when: critAge <= warnAge, field: "wraparoundCriticalAge", value: critAge, problem: `is not above wraparoundWarningAge (${warnAge})`, fix: `raise wraparoundCriticalAge above ${warnAge}, or lower wraparoundWarningAge` },
    ]);
    // The primary's Patroni cluster, when it has one (environments with failover), unless given.
    const cluster = props.cluster ?? (primary.cluster ? { mode: primary.cluster.mode, restPort: primary.cluster.restPort, members: primary.cluster.members } : undefined);
    if (cluster) {
      const names = cluster.members.map((m) => m.name);
      const containersOf = cluster.members.map((m) => m.containerName);
      const twice = (xs: string[]) => xs.filter((x, n) => xs.indexOf(x) !== n);
      check(`${env}/monitoring`, [
        { when: cluster.mode !== "async" && cluster.mode !== "sync", field: "cluster.mode", value: cluster.mode, problem: 'must be "async" or "sync"', fix: 'use "async" (bounded loss) or "sync" (a synchronous standby)' },
        { when: !isInt(cluster.restPort) || cluster.restPort < 1 || cluster.restPort > 65535, field: "cluster.restPort", value: cluster.restPort, problem: "must be a TCP port from 1 to 65535", fix: "use Patroni's 8008" },
        { when: names.length === 0, field: "cluster.members", value: cluster.members, problem: "lists no member", fix: "list every Patroni member (the primary and each replica)" },
        { when: names.some((n) => !/^[a-z0-9][a-z0-9-]*$/.test(n)), field: "cluster.members", value: names, problem: "holds a name that is not lower-case letters, digits and hyphens", fix: "use the members' Patroni names (primary, replica-1, …)" },
        { when: twice(names).length > 0, field: "cluster.members", value: twice(names), problem: "names a member twice", fix: "list each member once" },
        { when: twice(containersOf).length > 0, field: "cluster.members", value: twice(containersOf), problem: "gives two members the same container", fix: "give each member its own containerName" },
      ]);
    }
    const queryOptions: QueryOptions = { topStatements, deadTupleMinCount: deadMin };
    const host = props.host ?? primary.host;
    const image = host.monitoringImage().imageId;
    this.alertInput = {
      environment: env,
      rpoSeconds: primary.rpoSeconds,
      archiveTimeoutSeconds: primary.archiveTimeoutSeconds,
      maxSlotWalKeepSizeMiB: conf.maxSlotWalKeepSizeMiB,
      // The pg_wal alert budgets for the max_wal_size the server really has.
      maxWalSizeMiB: parameterNumber(primary.majorVersion, conf.parameters ?? {}, "max_wal_size") ?? MAX_WAL_SIZE_MIB,
      fullIntervalSeconds: maxIntervalMinutes(parseCron(backup.schedules.full)) * 60,
      diffIntervalSeconds: Math.min(maxIntervalMinutes(parseCron(backup.schedules.diff)), maxIntervalMinutes(parseCron(backup.schedules.full))) * 60,
      maxConnections: primary.maxConnections,
      certificateWarningDays: certDays,
      drillIntervalSeconds: backup.schedules.drill ? maxIntervalMinutes(parseCron(backup.schedules.drill)) * 60 : undefined,
      logicalIntervalSeconds: backup.schedules.logical ? maxIntervalMinutes(parseCron(backup.schedules.logical)) * 60 : undefined,
      wraparoundWarningAge: warnAge,
      wraparoundCriticalAge: critAge,
      longTransactionSeconds: longTx,
      deadTupleRatio: deadRatio,
      deadTupleMinCount: deadMin,
      ...(cluster ? { cluster: { mode: cluster.mode } } : {}),
    };
    this.alertRules = renderAlertRules(this.alertInput);
    const monitorPw = primary.passwords.monitor.result;
    const caUpload = configUpload(P.tlsCa, primary.ca.certPem);
    /** Healthcheck of an HTTP endpoint of the container itself (images/monitoring/http_check.py). */
    const httpHealth = (port: number, path: string) => ({ test: ["CMD", PROGRAMS.httpCheck, `http://127.0.0.1:${port}${path}`], interval: "30s", timeout: "5s", retries: 3, startPeriod: "30s" });
    const common = (name: string) => ({
      provider: host.provider,
      name,
      hostname: name,
      image,
      restart: "unless-stopped",
      stopTimeout: 30,
      destroyGraceSeconds: 30,
      memory: 128,
      networksAdvanced: [{ name: host.network.name, aliases: [name] }],
      logDriver: "json-file",
      logOpts: { "max-size": "10m", "max-file": "3" },
    });

    const servers: Array<[string, { host: string; port: number }]> = [
      ["primary", primary.endpointFor(host, "the primary's exporter")],
      ...props.replicas.map((r) => [r.name, r.endpointFor(host, `${r.name}'s exporter`)] as [string, { host: string; port: number }]),
    ];
    const tlsTargets: string[] = [];
    for (const [role, ep] of servers) {
      const name = `pgharbor-${env}-exporter-${role}`;
      this.containers.push(
        new Container(this, `exporter-${role}`, {
          ...common(name),
          // --extend.query-path is deprecated in postgres_exporter 0.17 but still the one way to add queries.
          command: ["prometheus-postgres-exporter", `--web.listen-address=:${EXPORTER_PORTS.postgres}`, `--extend.query-path=${MONITORING_PATHS.queries}`, ...collectorFlags()],
          env: [
            `DATA_SOURCE_URI=${ep.host}:${ep.port}/${primary.appDatabase}?sslmode=verify-full&sslrootcert=${P.tlsCa}`,
            `DATA_SOURCE_USER=${ROLE_NAMES.monitor}`,
            `DATA_SOURCE_PASS=${monitorPw}`,
          ],
          upload: [caUpload, configUpload(MONITORING_PATHS.queries, literal(renderQueriesYaml(queryOptions)))],
          healthcheck: httpHealth(EXPORTER_PORTS.postgres, "/metrics"),
        }),
      );
      this.scrapeTargets.push({ job: "postgres", target: `${name}:${EXPORTER_PORTS.postgres}`, instance: role });
      tlsTargets.push(`${role}=${ep.host}:${ep.port}:postgres`);
    }

    const pgbName = `pgharbor-${env}-exporter-pgbouncer`;
    const pgbEp = pgbouncer.host.endpointFrom(host, pgbouncer.containerName, pgbouncer.port, 6432, "the PgBouncer exporter");
    this.containers.push(
      new Container(this, "exporter-pgbouncer", {
        ...common(pgbName),
        // The prometheus-community exporter; lib/pq takes the password from PGPASSWORD, never the URL.
        command: [
          "prometheus-pgbouncer-exporter",
          `--web.listen-address=:${EXPORTER_PORTS.pgbouncer}`,
          `--pgBouncer.connectionString=postgres://${ROLE_NAMES.monitor}@${pgbEp.host}:${pgbEp.port}/pgbouncer?sslmode=verify-full&sslrootcert=${P.tlsCa}`,
        ],
        env: [`PGPASSWORD=${monitorPw}`],
        upload: [caUpload],
        healthcheck: httpHealth(EXPORTER_PORTS.pgbouncer, "/metrics"),
      }),
    );
    this.scrapeTargets.push({ job: "pgbouncer", target: `${pgbName}:${EXPORTER_PORTS.pgbouncer}`, instance: "pgbouncer" });
    tlsTargets.push(`pgbouncer=${pgbEp.host}:${pgbEp.port}:postgres`);

    // Patroni's REST API on each member: /metrics needs no authentication (Patroni only guards its
    // unsafe methods), so nothing secret travels. `member` is the Patroni name whatever the role:
    // after a failover the member named primary may be a replica.
    for (const m of cluster?.members ?? []) {
      this.scrapeTargets.push({ job: "patroni", target: `${m.containerName}:${cluster!.restPort}`, instance: m.name, labels: { member: m.name } });
    }

    const archive = primary.archive;
    if (archive.kind === "local-s3") {
      const repo = archive.repoFor(host);
      tlsTargets.push(`s3=${repo.endpoint}:${repo.port}:tls`);
    }
    const probeName = `pgharbor-${env}-rpo-probe`;
    this.containers.push(
      new Container(this, "rpo-probe", {
        ...common(probeName),
        command: [PROGRAMS.rpoProbe],
        env: [...archive.containerEnv("read"), `PGHARBOR_TLS_TARGETS=${tlsTargets.join(",")}`, `PGHARBOR_PROBE_INTERVAL_SECONDS=${probeInterval}`],
        upload: [caUpload, configUpload(P.pgbackrestConf, literal(renderPgbackrestConf({ repo: archive.repoFor(host), role: "replica", processMax: 1, compressLevel: 3 }))), ...archive.containerUploads()],
        healthcheck: httpHealth(EXPORTER_PORTS.probe, "/metrics"),
        dependsOn: archive.dependables,
      }),
    );
    this.scrapeTargets.push({ job: "rpo-probe", target: `${probeName}:${EXPORTER_PORTS.probe}`, instance: "bucket" });

    if (props.prometheus ?? true) {
      const name = `pgharbor-${env}-prometheus`;
      const tsdb = new Volume(this, "tsdb", { provider: host.provider, name: `${name}-data` });
      this.containers.push(
        new Container(this, "prometheus", {
          ...common(name),
          memory: 512,
          command: ["prometheus", `--config.file=${MONITORING_PATHS.prometheusConfig}`, `--storage.tsdb.path=${MONITORING_PATHS.tsdb}`, "--storage.tsdb.retention.time=15d", "--web.listen-address=:9090"],
          volumes: [{ volumeName: tsdb.name, containerPath: MONITORING_PATHS.tsdb }],
          upload: [
            configUpload(MONITORING_PATHS.prometheusConfig, literal(renderPrometheusConfig(env, this.scrapeTargets, MONITORING_PATHS.alertRules))),
            configUpload(MONITORING_PATHS.alertRules, literal(this.alertRules)),
          ],
          // Ready once the configuration and rules are loaded and the TSDB is open.
          healthcheck: httpHealth(9090, "/-/ready"),
        }),
      );
    }
  }
}
