/**
 * Paths inside the containers. One table so the renderers, the constructs, the images' programs
 * (images/<image>/, which hard-code the same layout; __tests__/images.test.ts checks they agree) and
 * the runtime tests agree on them.
 */
export const CONTAINER_PATHS = {
  dataDir: "/var/lib/postgresql/data",
  socketDir: "/var/run/postgresql",
  configDir: "/etc/postgresql",
  postgresqlConf: "/etc/postgresql/postgresql.conf",
  hbaConf: "/etc/postgresql/pg_hba.conf",
  identConf: "/etc/postgresql/pg_ident.conf",
  pgbackrestConf: "/etc/pgbackrest/pgbackrest.conf",
  pgbackrestSpool: "/var/spool/pgbackrest",
  pgbackrestLock: "/tmp/pgbackrest",
  s3CaFile: "/etc/pgharbor/tls/s3-ca.crt",
  /** Server certificate, CA and the key as uploaded (root-owned); the entrypoint copies the key to tlsKey. */
  tlsCert: "/etc/postgresql/tls/server.crt",
  tlsCa: "/etc/postgresql/tls/ca.crt",
  tlsKeyUpload: "/etc/postgresql/tls/server.key",
  tlsKey: "/run/pgharbor/server.key",
  pgbouncerTlsCert: "/etc/pgbouncer/tls/server.crt",
  pgbouncerTlsCa: "/etc/pgbouncer/tls/ca.crt",
  pgbouncerTlsKeyUpload: "/etc/pgbouncer/tls/server.key",
  pgbouncerTlsKey: "/run/pgbouncer/server.key",
  /** Where every image keeps pgharbor's programs (images/<image>/*). */
  scriptsDir: "/usr/local/lib/pgharbor",
  secretsDir: "/run/pgharbor",
  statusDir: "/var/lib/pgharbor/status",
  restoreScratchDir: "/var/lib/pgharbor/scratch",
  /** With failover: each member's data and socket volumes in the backup container (<member>/data, <member>/socket). */
  membersDir: "/var/lib/pgharbor/members",
  /** The backup container's operations tool (logical backups, restore drills, window) and its settings. */
  opsTool: "/usr/local/lib/pgharbor/pgharbor-ops",
  opsConf: "/etc/pgharbor/ops.json",
  /** The roles, database and lookup function the backup container reconciles on the primary. */
  rolesSql: "/etc/pgharbor/roles.sql",
  crontab: "/etc/cron.d/pgharbor",
  pgbouncerIni: "/etc/pgbouncer/pgbouncer.ini",
  pgbouncerRunDir: "/run/pgbouncer",
} as const;

/** The programs of the images (images/<image>/), at CONTAINER_PATHS.scriptsDir. */
export const PROGRAMS = {
  primaryEntrypoint: `${CONTAINER_PATHS.scriptsDir}/primary-entrypoint.sh`,
  replicaEntrypoint: `${CONTAINER_PATHS.scriptsDir}/replica-entrypoint.sh`,
  backupEntrypoint: `${CONTAINER_PATHS.scriptsDir}/backup-entrypoint.sh`,
  backupJob: `${CONTAINER_PATHS.scriptsDir}/backup-job.sh`,
  restore: `${CONTAINER_PATHS.scriptsDir}/restore.sh`,
  reconcileRoles: `${CONTAINER_PATHS.scriptsDir}/reconcile-roles.sh`,
  postgresHealthcheck: `${CONTAINER_PATHS.scriptsDir}/healthcheck.sh`,
  pgbouncerEntrypoint: `${CONTAINER_PATHS.scriptsDir}/entrypoint.sh`,
  pgbouncerHealthcheck: `${CONTAINER_PATHS.scriptsDir}/healthcheck.sh`,
  rpoProbe: `${CONTAINER_PATHS.scriptsDir}/rpo_probe.py`,
  httpCheck: `${CONTAINER_PATHS.scriptsDir}/http_check.py`,
} as const;

/** The backup container's jobs (backup-job.sh <job>). */
export type BackupJob = "full" | "diff" | "expire" | "check" | "stanza-create" | "logical" | "drill" | "maintenance";
export const BACKUP_JOBS: readonly BackupJob[] = ["full", "diff", "expire", "check", "stanza-create", "logical", "drill", "maintenance"];

/** The pgBackRest stanza every environment uses: one cluster per environment. */
export const STANZA = "pgharbor";
