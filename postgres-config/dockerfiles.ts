/**
 * Image build files. The images hold packages only; every script and configuration file reaches the
 * containers through the docker provider's uploads, so a configuration change never needs a rebuild
 * and the synthesised JSON holds everything a container runs.
 */
import { CONTAINER_PATHS as P } from "./paths";

/**
 * The official postgres image (major pinned) with pgBackRest and cron: primary, replicas and backup
 * container; age and Python 3 (standard library) for the backup container's pgharbor-ops.
 */
export function renderPostgresDockerfile(major: number): string {
  return `# Rendered by pgharbor.
FROM postgres:${major}-bookworm
RUN set -eux; \\
    apt-get update; \\
    apt-get install -y --no-install-recommends pgbackrest cron ca-certificates age python3; \\
    rm -rf /var/lib/apt/lists/*; \\
    install -d -o postgres -g postgres -m 0750 ${P.pgbackrestSpool} ${P.pgbackrestLock} /var/log/pgbackrest /var/lib/pgharbor ${P.statusDir} ${P.restoreScratchDir}; \\
    install -d -m 0755 /etc/pgbackrest ${P.scriptsDir}; \\
    pgbackrest version; age --version; python3 --version
ENV PGDATA=${P.dataDir}
`;
}

/** PgBouncer from Debian bookworm: the same 1.18 build the runtime tests run; runs as postgres. */
export function renderPgbouncerDockerfile(): string {
  return `# Rendered by pgharbor.
FROM debian:bookworm-slim
RUN set -eux; \\
    apt-get update; \\
    apt-get install -y --no-install-recommends pgbouncer postgresql-client-15 ca-certificates; \\
    rm -rf /var/lib/apt/lists/*; \\
    install -d -o postgres -g postgres -m 0700 ${P.pgbouncerRunDir}; \\
    install -d -m 0755 ${P.scriptsDir}
# Starts as root only to hand its TLS key and userlist to postgres, then drops to it (setpriv).
`;
}

/**
 * Monitoring image: Debian bookworm's postgres_exporter, Prometheus (with promtool), pgBackRest and
 * Python with psycopg2 for the RPO probe and the PgBouncer exporter: the same builds the tests run.
 */
export function renderMonitoringDockerfile(): string {
  return `# Rendered by pgharbor.
FROM debian:bookworm-slim
RUN set -eux; \\
    apt-get update; \\
    apt-get install -y --no-install-recommends prometheus prometheus-postgres-exporter pgbackrest python3 python3-psycopg2 ca-certificates; \\
    rm -rf /var/lib/apt/lists/*; \\
    install -d -o prometheus -g prometheus -m 0750 ${P.pgbackrestSpool} ${P.pgbackrestLock} /var/lib/prometheus/pgharbor; \\
    install -d -m 0755 ${P.scriptsDir}
USER prometheus
`;
}
