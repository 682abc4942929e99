/**
 * Paths inside the containers. One table so the renderers, the constructs and the runtime harness
 * (which maps every container path into a temporary root) agree on them.
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
  scriptsDir: "/usr/local/lib/pgharbor",
  secretsDir: "/run/pgharbor",
  statusDir: "/var/lib/pgharbor/status",
  restoreScratchDir: "/var/lib/pgharbor/scratch",
  /** The backup container's operations tool (logical backups, restore drills, window) and its settings. */
  opsTool: "/usr/local/lib/pgharbor/pgharbor-ops",
  opsConf: "/etc/pgharbor/ops.json",
  crontab: "/etc/cron.d/pgharbor",
  pgbouncerIni: "/etc/pgbouncer/pgbouncer.ini",
  pgbouncerRunDir: "/run/pgbouncer",
} as const;

/** The pgBackRest stanza every environment uses: one cluster per environment. */
export const STANZA = "pgharbor";
