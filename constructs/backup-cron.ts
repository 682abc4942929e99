import { Construct } from "constructs";
import { Container } from "@cdktf/provider-docker/lib/container";
import { BackupJob, CONTAINER_PATHS as P, PROGRAMS } from "../postgres-config/paths";
import { CronError, cronLine, firstCommonMinute, maxIntervalMinutes, parseCron } from "../postgres-config/cron";
import { renderPgbackrestConf, Retention } from "../postgres-config/pgbackrest-conf";
import { PASSWORD_ENV, renderRolesSql } from "../postgres-config/roles";
import { check, isInt, Rule } from "./errors";
import { configUpload, PostgresPrimary } from "./postgres-primary";
import { literal } from "./terraform-text";
import { Volume } from "@cdktf/provider-docker/lib/volume";
import { AGE_RECIPIENT, LogicalSettings, renderOpsConfig } from "../postgres-config/ops";

function recipientRules(logical: LogicalBackupProps | undefined): Rule[] {
  if (!logical) return [];
  const list = logical.recipients ?? [];
  return [
    { when: !Array.isArray(list) || list.length === 0, field: "logical.recipients", value: list, problem: "is empty: nobody could decrypt the dumps", fix: "add the age public key (age1…) of each person or vault that may restore; make one with `age-keygen`" },
    ...list.map((r, i): Rule => {
      const field = `logical.recipients[${i}]`;
      if (/^AGE-SECRET-KEY-/i.test(r)) {
        // Never echo a private key, not even in an error.
        return { when: true, field, value: "AGE-SECRET-KEY-…", problem: "is a PRIVATE age key: it must never be in the stack", fix: "remove it, rotate it, and paste the public key `age-keygen -y` prints for it" };
      }
      return { when: !AGE_RECIPIENT.test(r), field, value: r, problem: "is not an age public key (age1 followed by 58 lowercase bech32 characters)", fix: 'paste the "public key: age1…" line `age-keygen` prints' };
    }),
  ];
}

export interface BackupCronProps {
  /** The primary to back up: the backup container runs on its host and mounts its volumes. */
  readonly primary: PostgresPrimary;
  /**
   * Full backup schedule (cron, UTC).
   * @default "0 1 * * 0" - Sundays 01:00
   */
  readonly fullSchedule?: string;
  /**
   * Differential backup schedule (cron, UTC).
   * @default "0 1 * * 1-6" - Monday to Saturday 01:00
   */
  readonly diffSchedule?: string;
  /**
   * Expiry (retention) schedule (cron, UTC).
   * @default "30 3 * * *" - daily 03:30
   */
  readonly expireSchedule?: string;
  /**
   * Keep full backups (and the WAL to recover from them) for this many days. Exclusive with retentionFullBackups.
   * @default 14 (when retentionFullBackups is unset)
   */
  readonly retentionDays?: number;
  /**
   * Keep this many full backups instead of a number of days.
   * @default - time-based retention (retentionDays)
   */
  readonly retentionFullBackups?: number;
  /**
   * Parallel pgBackRest processes for backups.
   * @default 2
   */
  readonly processMax?: number;
  /** @default 512 */
  readonly memoryMiB?: number;
  /**
   * Logical backups: `pg_dump -Fc` of every database plus the roles (without passwords), encrypted
   * with age to `recipients` before they leave the container, under `logical/` in the bucket.
   * @default - no logical backups
   */
  readonly logical?: LogicalBackupProps;
  /**
   * Restore drills: restore to a random time in the recoverability window, start, verify, record the
   * evidence in the bucket. `false` turns them off.
   * @default - weekly, Saturdays 04:00 UTC
   */
  readonly drill?: RestoreDrillProps | false;
  /**
   * On start, when the archive holds no backup yet, take a full one right away (in the background),
   * then a first restore drill (when drills are on): a new environment is restorable, with evidence,
   * minutes after deploy.
   * @default true
   */
  readonly initialFullBackup?: boolean;
  /**
   * Routine maintenance on the primary: ANALYZE where statistics are stale, VACUUM where dead rows or
   * transaction-ID age call for it beyond autovacuum (SKIP_LOCKED; never VACUUM FULL), each run
   * recorded (`pgharbor maintenance status`, the pgharbor_maintenance_* metrics). `false` turns it off.
   * @default - weekly, Sundays 05:00 UTC
   */
  readonly maintenance?: MaintenanceProps | false;
}

export interface MaintenanceProps {
  /** @default "0 5 * * 0" - Sundays 05:00 UTC, after the weekly full backup */
  readonly schedule?: string;
}

export interface LogicalBackupProps {
  /**
   * age public keys ("age1…", from `age-keygen`). The matching private keys stay with the people who
   * restore: never in the stack, the containers or the bucket.
   */
  readonly recipients: string[];
  /** @default "0 2 * * *" - daily 02:00 UTC */
  readonly schedule?: string;
  /** Keep logical sets this many days (the newest complete set is always kept). @default 30 */
  readonly retentionDays?: number;
}

export interface RestoreDrillProps {
  /** @default "0 4 * * 6" - Saturdays 04:00 UTC, after a week of differential backups */
  readonly schedule?: string;
  /** The restored copy's newest heartbeat may lag the target by at most this much. @default 300 */
  readonly heartbeatToleranceSeconds?: number;
  /** Fail the drill when recovery takes longer. @default 7200 */
  readonly recoveryTimeoutSeconds?: number;
}

function cronRule(field: string, expr: string): Rule[] {
  try {
    const s = parseCron(expr);
    const gap = maxIntervalMinutes(s);
    return [{ when: gap === Infinity, field, value: expr, problem: "never fires (or fires once in two years)", fix: 'give a schedule that recurs, e.g. "0 1 * * 0"' }];
  } catch (e) {
    if (!(e instanceof CronError)) throw e;
    return [{ when: true, field, value: expr, problem: `is not a valid cron expression: ${e.message}`, fix: 'write five fields "minute hour day-of-month month day-of-week", e.g. "0 1 * * 0"' }];
  }
}

/**
 * The backup container: cron running pgBackRest full/differential backups and expiry on the primary's
 * host. It shares the primary's data volume (read-only) and socket volume, the layout pgBackRest
 * supports for a local backup; it never touches the Docker socket. On start it reconciles the
 * primary's roles and passwords (over the socket), then creates the stanza.
 */
export class BackupCron extends Construct {
  public readonly container: Container;
  public readonly retention: Retention;
  public readonly schedules: Record<"full" | "diff" | "expire", string> & { logical?: string; drill?: string; maintenance?: string };
  public readonly logical?: LogicalSettings;

  constructor(scope: Construct, id: string, props: BackupCronProps) {
    super(scope, id);
    const primary = props.primary;
    const where = `${primary.environment}/backup`;
    const schedules = {
      full: props.fullSchedule ?? "0 1 * * 0",
      diff: props.diffSchedule ?? "0 1 * * 1-6",
      expire: props.expireSchedule ?? "30 3 * * *",
    };
    const processMax = props.processMax ?? 2;
    const memoryMiB = props.memoryMiB ?? 512;
    const cronRules = [...cronRule("fullSchedule", schedules.full), ...cronRule("diffSchedule", schedules.diff), ...cronRule("expireSchedule", schedules.expire)];
    const logical = props.logical;
    const drill = props.drill === false ? undefined : (props.drill ?? {});
    const logicalSchedule = logical ? (logical.schedule ?? "0 2 * * *") : undefined;
    const drillSchedule = drill ? (drill.schedule ?? "0 4 * * 6") : undefined;
    const maintenanceSchedule = props.maintenance === false ? undefined : (props.maintenance?.schedule ?? "0 5 * * 0");
    const logicalRetention = logical?.retentionDays ?? 30;
    const tolerance = drill?.heartbeatToleranceSeconds ?? 300;
    const recoveryTimeout = drill?.recoveryTimeoutSeconds ?? 7200;
    check(where, [
      ...cronRules,
      ...(logicalSchedule ? cronRule("logical.schedule", logicalSchedule) : []),
      ...(drillSchedule ? cronRule("drill.schedule", drillSchedule) : []),
      ...(maintenanceSchedule ? cronRule("maintenance.schedule", maintenanceSchedule) : []),
      ...recipientRules(logical),
      { when: logical !== undefined && (!isInt(logicalRetention) || logicalRetention < 1 || logicalRetention > 3650), field: "logical.retentionDays", value: logicalRetention, problem: "must be a whole number of days from 1 to 3650", fix: "use e.g. 30" },
      { when: drill !== undefined && (!isInt(tolerance) || tolerance < 10 || tolerance > 86400), field: "drill.heartbeatToleranceSeconds", value: tolerance, problem: "must be a whole number of seconds from 10 to 86400", fix: "use e.g. 300 (the heartbeat is written every 5 s)" },
      { when: drill !== undefined && (!isInt(recoveryTimeout) || recoveryTimeout < 60), field: "drill.recoveryTimeoutSeconds", value: recoveryTimeout, problem: "must be a whole number of seconds ≥ 60", fix: "use e.g. 7200" },
      { when: props.retentionDays !== undefined && props.retentionFullBackups !== undefined, field: "retentionFullBackups", value: props.retentionFullBackups, problem: "is set together with retentionDays", fix: "keep either retentionDays (time) or retentionFullBackups (count), not both" },
      { when: props.retentionDays !== undefined && (!isInt(props.retentionDays) || props.retentionDays < 1 || props.retentionDays > 3650), field: "retentionDays", value: props.retentionDays, problem: "must be a whole number of days from 1 to 3650", fix: "use e.g. 14" },
      { when: props.retentionFullBackups !== undefined && (!isInt(props.retentionFullBackups) || props.retentionFullBackups < 1 || props.retentionFullBackups > 999), field: "retentionFullBackups", value: props.retentionFullBackups, problem: "must be a whole number from 1 to 999", fix: "keep at least 2 full backups, e.g. 4" },
      { when: !isInt(processMax) || processMax < 1 || processMax > 32, field: "processMax", value: processMax, problem: "must be a whole number from 1 to 32", fix: "use the cores the host can spare, e.g. 2" },
      { when: !isInt(memoryMiB) || memoryMiB < 128 || memoryMiB > 1048576, field: "memoryMiB", value: memoryMiB, problem: "must be a whole number of MiB from 128 to 1048576", fix: "use e.g. 512" },
    ]);
    // pgBackRest's full, differential and expire runs take the same lock: the same minute means one fails.
    const lockHolders = [["fullSchedule", schedules.full], ["diffSchedule", schedules.diff], ["expireSchedule", schedules.expire]] as const;
    check(
      where,
      lockHolders.flatMap(([field, expr], i) =>
        lockHolders.slice(0, i).map(([other, otherExpr]): Rule => {
          const at = firstCommonMinute(parseCron(expr), parseCron(otherExpr));
          return {
            when: at !== undefined,
            field,
            value: expr,
            problem: `fires in the same minute as ${other} "${otherExpr}" (first at ${at?.toISOString().slice(0, 16).replace("T", " ")} UTC): both take pgBackRest's lock and one of them fails`,
            fix: `move one of them to another minute (or day), e.g. an hour apart`,
          };
        }),
      ),
    );
    this.retention = props.retentionFullBackups !== undefined ? { kind: "count", fullBackups: props.retentionFullBackups } : { kind: "time", days: props.retentionDays ?? 14 };
    if (this.retention.kind === "time") {
      const fullGapMinutes = maxIntervalMinutes(parseCron(schedules.full));
      check(where, [
        {
          when: this.retention.days * 1440 < fullGapMinutes,
          field: "retentionDays",
          value: this.retention.days,
          problem: `is shorter than the longest gap between full backups (${(fullGapMinutes / 1440).toFixed(1)} days for fullSchedule "${schedules.full}")`,
          fix: `keep at least ${Math.ceil(fullGapMinutes / 1440)} days, or take full backups more often`,
        },
      ]);
    }
    this.schedules = { ...schedules, logical: logicalSchedule, drill: drillSchedule, maintenance: maintenanceSchedule };
    this.logical = logical ? { recipients: [...logical.recipients], retentionDays: logicalRetention } : undefined;

    const host = primary.host;
    const cluster = primary.cluster;
    const name = `pgharbor-${primary.environment}-backup`;
    const archive = primary.archive;
    const job = (j: BackupJob) => `${PROGRAMS.backupJob} ${j} >/proc/1/fd/1 2>&1`;
    const crontab = [
      "# Rendered by pgharbor. Times are UTC.",
      "SHELL=/bin/sh",
      `PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/${primary.majorVersion}/bin`,
      cronLine(schedules.full, "root", job("full")),
      cronLine(schedules.diff, "root", job("diff")),
      cronLine(schedules.expire, "root", job("expire")),
      ...(logicalSchedule ? [cronLine(logicalSchedule, "root", job("logical"))] : []),
      ...(drillSchedule ? [cronLine(drillSchedule, "root", job("drill"))] : []),
      ...(maintenanceSchedule ? [cronLine(maintenanceSchedule, "root", job("maintenance"))] : []),
      "",
    ].join("\n");

    // Drills and logical restores work here: a volume, so a large restore never fills the container layer.
    const scratch = new Volume(this, "scratch", { provider: host.provider, name: `${name}-scratch` });
    // The jobs' records outlive the container: a redeploy or a rotated password replaces it.
    const status = new Volume(this, "status", { provider: host.provider, name: `${name}-status` });
    const ops = renderOpsConfig({
      environment: primary.environment,
      repo: archive.repoFor(host),
      appDatabase: primary.appDatabase,
      logical: this.logical,
      drill: { heartbeatToleranceSeconds: tolerance, marginSeconds: 60, recoveryTimeoutSeconds: recoveryTimeout, sharedBuffersMiB: 64, port: 5499 },
      replicas: primary.replicaNames,
    });

    this.container = new Container(this, "container", {
      provider: host.provider,
      name,
      hostname: name,
      image: host.backupImage(primary.majorVersion).imageId,
      // Roles reconciled, stanza created, first full backup (and drill) when the archive is empty,
      // heartbeat, then cron (images/backup/backup-entrypoint.sh).
      entrypoint: [PROGRAMS.backupEntrypoint],
      env: [
        ...archive.containerEnv("write"),
        ...archive.expirerEnv(),
        // Role passwords live here, not in the primary: a rotation recreates this container only.
        `${PASSWORD_ENV.app}=${primary.passwords.app.result}`,
        `${PASSWORD_ENV.appReadOnly}=${primary.passwords.appReadOnly.result}`,
        `${PASSWORD_ENV.replication}=${primary.passwords.replication.result}`,
        `${PASSWORD_ENV.pooler}=${primary.passwords.pooler.result}`,
        `${PASSWORD_ENV.monitor}=${primary.passwords.monitor.result}`,
        `PGHARBOR_APP_DATABASE=${primary.appDatabase}`,
        `PGHARBOR_INITIAL_FULL_BACKUP=${(props.initialFullBackup ?? true) ? 1 : 0}`,
        `PGHARBOR_INITIAL_DRILL=${drillSchedule !== undefined ? 1 : 0}`,
        ...(cluster ? [`PGHARBOR_MEMBERS=${cluster.members.map((m) => m.name).join(" ")}`, `PGHARBOR_ENVIRONMENT=${primary.environment}`] : []),
      ],
      volumes: [
        // With failover, every member's volumes; the data directory and socket paths become links to
        // the leader's (images/backup/follow-leader.sh). Without, the primary's.
        ...(cluster
          ? cluster.members.flatMap((m) => [
              { volumeName: m.dataVolume.name, containerPath: `${P.membersDir}/${m.name}/data`, readOnly: true },
              { volumeName: m.socketVolume.name, containerPath: `${P.membersDir}/${m.name}/socket` },
            ])
          : [
              { volumeName: primary.dataVolume.name, containerPath: P.dataDir, readOnly: true },
              { volumeName: primary.socketVolume.name, containerPath: P.socketDir },
            ]),
        { volumeName: scratch.name, containerPath: P.restoreScratchDir },
        { volumeName: status.name, containerPath: P.statusDir },
      ],
      upload: [
        configUpload(P.pgbackrestConf, literal(renderPgbackrestConf({ repo: archive.repoFor(host), role: "backup", retention: this.retention, processMax, compressLevel: 3 }))),
        // cron reads only root-owned files no one else may write.
        configUpload(P.crontab, literal(crontab)),
        configUpload(P.opsConf, literal(ops)),
        configUpload(P.rolesSql, literal(renderRolesSql({ appUser: primary.appUser, appDatabase: primary.appDatabase, major: primary.majorVersion }))),
        ...archive.containerUploads(),
      ],
      networksAdvanced: [{ name: host.network.name, aliases: [name] }],
      // Healthy once this container's own start passed stanza-create (a file in /run: the status volume
      // keeps earlier containers' records, which say nothing about this one).
      healthcheck: { test: ["CMD", "test", "-f", `${P.secretsDir}/ready`], interval: "30s", timeout: "5s", retries: 3, startPeriod: "15m" },
      restart: "unless-stopped",
      // The docker provider stops a container it replaces or destroys with this timeout (0 when unset).
      stopTimeout: 60,
      destroyGraceSeconds: 60,
      memory: memoryMiB,
      logDriver: "json-file",
      logOpts: { "max-size": "20m", "max-file": "3" },
      dependsOn: [primary.dependable, ...archive.dependables],
    });
  }
}
