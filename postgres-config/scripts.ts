/**
 * Shell scripts the containers run. POSIX sh (the images' /bin/sh is dash). They use container
 * paths only (CONTAINER_PATHS): the runtime tests map those into a temporary root, as Docker's mount
 * namespace does, and run the very same scripts natively.
 */
import { CONTAINER_PATHS as P, STANZA } from "./paths";
import { PASSWORD_ENV, ROLE_NAMES } from "./roles";

const HEADER = `#!/bin/sh
# Rendered by pgharbor. Do not edit: change the stack.
set -eu
# Run as the postgres OS user: containers start as root, the tests already run as postgres.
as_postgres() { if [ "$(id -u)" = 0 ]; then gosu postgres "$@"; else "$@"; fi; }
log() { printf '%s pgharbor: %s\\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
`;

/** Copies an uploaded (root-owned) private key to where only the server's user can read it. */
const INSTALL_KEY = `install_key() {
  if [ "$(id -u)" = 0 ]; then install -D -o postgres -g postgres -m 0600 "$1" "$2"; else install -D -m 0600 "$1" "$2"; fi
}
`;

const BACKREST = `pgbackrest --config="${P.pgbackrestConf}" --stanza=${STANZA}`;

/** Primary: hand the TLS key to postgres, then the official entrypoint (initdb on first start). */
export function renderPrimaryEntrypoint(): string {
  return `${HEADER}${INSTALL_KEY}
install_key "${P.tlsKeyUpload}" "${P.tlsKey}"
exec docker-entrypoint.sh "$@"
`;
}

/**
 * Applies roles.sql (idempotent) over the primary's socket as soon as it accepts connections; retries
 * for 10 minutes. Runs in the backup container, which shares the socket volume.
 */
export function renderReconcileRoles(): string {
  return `${HEADER}
tries=0
while :; do
  if as_postgres pg_isready -q -h "${P.socketDir}" -p 5432 -d postgres \\
     && as_postgres psql -X -q -h "${P.socketDir}" -p 5432 -U postgres -d postgres -f "${P.scriptsDir}/roles.sql"; then
    log "roles reconciled"
    exit 0
  fi
  tries=$((tries + 1))
  if [ "$tries" -ge 300 ]; then log "roles could not be reconciled after $tries attempts"; exit 1; fi
  sleep 2
done
`;
}

export interface ReplicaBootstrapInput {
  slotName: string;
}

/**
 * Replica: on first start (empty data directory) restore from the bucket as a standby when the
 * archive holds a backup, else pg_basebackup from the primary; on every start make sure its slot
 * exists on the primary so WAL is kept for it.
 * Needs PRIMARY_HOST, PRIMARY_PORT and ${PASSWORD_ENV.replication}.
 */
export function renderReplicaBootstrap(input: ReplicaBootstrapInput): string {
  return `${HEADER}
: "\${PRIMARY_HOST:?PRIMARY_HOST is required}"
: "\${PRIMARY_PORT:=5432}"
: "\${${PASSWORD_ENV.replication}:?${PASSWORD_ENV.replication} is required}"
PGDATA="\${PGDATA:-${P.dataDir}}"
SLOT=${input.slotName}
umask 077
mkdir -p "${P.secretsDir}"
# libpq passfile: the password never lands in the data directory or in postgresql.conf.
esc() { printf '%s' "$1" | sed 's/\\\\/\\\\\\\\/g; s/:/\\\\:/g'; }
printf '%s:%s:*:%s:%s\\n' "$(esc "$PRIMARY_HOST")" "$PRIMARY_PORT" ${ROLE_NAMES.replication} "$(esc "$${PASSWORD_ENV.replication}")" > "${P.secretsDir}/pgpass"
export PGPASSFILE="${P.secretsDir}/pgpass"
CONN="host=$PRIMARY_HOST port=$PRIMARY_PORT user=${ROLE_NAMES.replication} connect_timeout=5 sslmode=verify-full sslrootcert=${P.tlsCa}"

tries=0
until pg_isready -q -h "$PRIMARY_HOST" -p "$PRIMARY_PORT"; do
  tries=$((tries + 1))
  [ "$tries" -lt 150 ] || { log "primary $PRIMARY_HOST:$PRIMARY_PORT not reachable"; exit 1; }
  sleep 2
done

# The slot first: from here on the primary keeps the WAL this replica has not received.
tries=0
while :; do
  if out=$(psql -X -q "$CONN replication=true" -c "CREATE_REPLICATION_SLOT $SLOT PHYSICAL RESERVE_WAL" 2>&1); then
    log "created replication slot $SLOT"; break
  fi
  case "$out" in
    *"already exists"*) break ;;
  esac
  # The replication role appears once the backup container has reconciled the roles: wait for it.
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { log "cannot create replication slot $SLOT: $out"; exit 1; }
  sleep 5
done

if [ -s "$PGDATA/PG_VERSION" ]; then
  log "data directory already initialised; starting as a standby"
  exit 0
fi
mkdir -p "$PGDATA"
chmod 700 "$PGDATA"
if [ -n "$(ls -A "$PGDATA")" ]; then
  log "$PGDATA is not empty but holds no cluster; refusing to overwrite it. Empty it by hand to re-bootstrap."
  exit 1
fi
cleanup() { log "bootstrap failed; emptying $PGDATA for the next attempt"; find "$PGDATA" -mindepth 1 -delete; }
trap cleanup EXIT
if ${BACKREST} --output=json info 2>/dev/null | grep -q '"label"'; then
  log "backup found in the archive: restoring as a standby from the bucket"
  ${BACKREST} --type=standby restore
  echo bucket > "$PGDATA/.pgharbor-bootstrap"
else
  log "no backup in the archive: pg_basebackup from $PRIMARY_HOST"
  pg_basebackup -D "$PGDATA" -d "$CONN" -X stream -S "$SLOT" -c fast --no-password
  touch "$PGDATA/standby.signal"
  echo basebackup > "$PGDATA/.pgharbor-bootstrap"
fi
trap - EXIT
log "bootstrap complete"
`;
}

export function renderReplicaEntrypoint(): string {
  return `${HEADER}${INSTALL_KEY}
PGDATA="\${PGDATA:-${P.dataDir}}"
if [ "$(id -u)" = 0 ]; then
  install -d -o postgres -g postgres -m 0700 "$PGDATA" "${P.secretsDir}"
fi
install_key "${P.tlsKeyUpload}" "${P.tlsKey}"
as_postgres "${P.scriptsDir}/replica-bootstrap.sh"
exec docker-entrypoint.sh "$@"
`;
}

/**
 * Heartbeat writer: one long-lived session updating pgharbor.heartbeat every HEARTBEAT_SECONDS
 * (default 5), reconnecting when the primary restarts.
 */
export function renderHeartbeat(appDatabase: string): string {
  return `${HEADER}
every="\${HEARTBEAT_SECONDS:-5}"
while :; do
  while :; do echo "UPDATE pgharbor.heartbeat SET at = now();"; sleep "$every"; done \\
    | as_postgres psql -X -q -v ON_ERROR_STOP=1 -h "${P.socketDir}" -U postgres -d "${appDatabase}" >/dev/null 2>&1 || true
  sleep "$every"
done
`;
}

export type BackupJob = "full" | "diff" | "expire" | "check" | "stanza-create" | "logical" | "drill";
export const BACKUP_JOBS: readonly BackupJob[] = ["full", "diff", "expire", "check", "stanza-create", "logical", "drill"];

/**
 * One scheduled job: runs pgBackRest (or pgharbor-ops for logical backups and drills) as postgres
 * and records the outcome as JSON in the status directory (last run, last success, duration).
 */
export function renderBackupJob(): string {
  return `${HEADER}
job="\${1:?usage: backup-job.sh full|diff|expire|check|stanza-create|logical|drill}"
[ -r "${P.secretsDir}/backup.env" ] && . "${P.secretsDir}/backup.env"
case "$job" in
  full|diff) set -- ${BACKREST} --type="$job" backup ;;
  expire)
    # Only expiry deletes from the bucket, and only it gets the credentials that may; logical sets
    # past their retention go in the same run (pgharbor-ops reads PGHARBOR_EXPIRER_* itself).
    : "\${PGHARBOR_EXPIRER_S3_KEY:?}" "\${PGHARBOR_EXPIRER_S3_KEY_SECRET:?}"
    set -- sh -c 'PGBACKREST_REPO1_S3_KEY="$PGHARBOR_EXPIRER_S3_KEY" PGBACKREST_REPO1_S3_KEY_SECRET="$PGHARBOR_EXPIRER_S3_KEY_SECRET" ${BACKREST} expire && ${P.opsTool} logical-cleanup' ;;
  check) set -- ${BACKREST} check ;;
  stanza-create) set -- ${BACKREST} stanza-create ;;
  logical) set -- ${P.opsTool} logical-backup ;;
  drill) set -- ${P.opsTool} drill ;;
  *) log "unknown job $job"; exit 2 ;;
esac
start=$(date +%s)
rc=0
as_postgres "$@" || rc=$?
end=$(date +%s)
mkdir -p "${P.statusDir}"
ok=true; [ "$rc" = 0 ] || ok=false
printf '{"job":"%s","ok":%s,"exitCode":%d,"startedAt":%d,"finishedAt":%d,"durationSeconds":%d}\\n' \\
  "$job" "$ok" "$rc" "$start" "$end" "$((end - start))" > "${P.statusDir}/$job.json.tmp"
mv "${P.statusDir}/$job.json.tmp" "${P.statusDir}/$job.json"
[ "$rc" = 0 ] && log "$job succeeded in $((end - start)) s" || log "$job FAILED with exit code $rc"
exit "$rc"
`;
}

/**
 * Backup container: cron gives its jobs no environment, so the pgBackRest secrets go to a file only
 * root can read (jobs run as root and drop to postgres). The stanza is created (idempotently) before
 * cron starts, retrying while the primary boots.
 */
export function renderBackupEntrypoint(o: { initialFullBackup: boolean; initialDrill: boolean } = { initialFullBackup: true, initialDrill: true }): string {
  // A new environment is restorable minutes after deploy, not after the first scheduled full backup,
  // and its first drill evidence exists from then on (so "drill overdue" means something from day one).
  const drill = o.initialDrill ? ` && "${P.scriptsDir}/backup-job.sh" drill` : "";
  const initial = o.initialFullBackup
    ? `if ! as_postgres ${BACKREST} --log-level-console=warn --output=json info 2>/dev/null | grep -q '"label"'; then
  log "the archive holds no backup yet: taking the first full backup now${o.initialDrill ? ", then a first restore drill" : ""} (in the background)"
  ( "${P.scriptsDir}/backup-job.sh" full${drill} || log "the first full backup${o.initialDrill ? " or drill" : ""} failed; the schedule retries" ) &
fi
`
    : "";
  return `${HEADER}
umask 077
mkdir -p "${P.secretsDir}" "${P.statusDir}"
[ "$(id -u)" = 0 ] && chown postgres:postgres "${P.statusDir}" "${P.restoreScratchDir}"
# dash's export -p prints NAME='value' lines quoted for re-reading by the shell.
export -p | grep -E '^export (PGBACKREST|PGHARBOR_EXPIRER)_[A-Z0-9_]+=' > "${P.secretsDir}/backup.env" || true
"${P.scriptsDir}/reconcile-roles.sh"
tries=0
until "${P.scriptsDir}/backup-job.sh" stanza-create; do
  tries=$((tries + 1))
  [ "$tries" -lt 90 ] || { log "stanza-create kept failing; see the errors above"; exit 1; }
  sleep 10
done
"${P.scriptsDir}/backup-job.sh" check || log "pgbackrest check failed: archiving is not healthy yet"
${initial}"${P.scriptsDir}/heartbeat.sh" &
exec cron -f -L 15
`;
}

/**
 * Restores the archive into an empty directory: to a time, an LSN, a named restore point or the
 * latest WAL. The copy never archives into the environment's stanza (archive_mode=off is appended to
 * its postgresql.auto.conf) until an operator promotes it to be the primary on purpose.
 */
export function renderRestoreScript(): string {
  return `${HEADER}
usage() { echo "usage: restore.sh --into DIR [--to latest|'YYYY-MM-DD HH:MM:SS+00'|LSN] [--set BACKUP_LABEL]" >&2; exit 2; }
to=latest; into=""; set=""
while [ $# -gt 0 ]; do
  case "$1" in
    --to) to="\${2:?}"; shift 2 ;;
    --into) into="\${2:?}"; shift 2 ;;
    --set) set="\${2:?}"; shift 2 ;;
    *) usage ;;
  esac
done
[ -n "$into" ] || usage
[ -d "$into" ] || mkdir -p "$into"
chmod 700 "$into"
if [ -n "$(ls -A "$into")" ]; then log "$into is not empty: refusing to restore over it"; exit 1; fi
[ -r "${P.secretsDir}/backup.env" ] && . "${P.secretsDir}/backup.env"
case "$to" in
  latest) set -- --type=default ;;
  */*) set -- --type=lsn "--target=$to" --target-action=promote ;;
  [0-9][0-9][0-9][0-9]-*) set -- --type=time "--target=$to" --target-action=promote ;;
  *) set -- --type=name "--target=$to" --target-action=promote ;;
esac
[ -z "$set" ] || set -- "$@" "--set=$set"
log "restoring to $to into $into"
as_postgres ${BACKREST} "--pg1-path=$into" "$@" restore
printf "\\n# pgharbor restore: this copy must not archive into the environment's stanza.\\narchive_mode = 'off'\\n" >> "$into/postgresql.auto.conf"
log "restore complete: start it with postgres -D $into"
`;
}

export function renderPgbouncerEntrypoint(): string {
  return `${HEADER}
: "\${${PASSWORD_ENV.pooler}:?${PASSWORD_ENV.pooler} is required}"
umask 077
# The container starts as root to hand the TLS key and the lookup role's password to the postgres user only.
own() { if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$@"; fi; }
mkdir -p "${P.pgbouncerRunDir}"
own "${P.pgbouncerRunDir}"
install -m 0600 "${P.pgbouncerTlsKeyUpload}" "${P.pgbouncerTlsKey}"
own "${P.pgbouncerTlsKey}"
# Only the lookup role's password sits here, at run time; every other user is authenticated with the
# SCRAM secret that auth_query fetches.
quote() { printf '%s' "$1" | sed 's/"/""/g'; }
printf '"%s" "%s"\\n' ${ROLE_NAMES.pooler} "$(quote "$${PASSWORD_ENV.pooler}")" > "${P.pgbouncerRunDir}/userlist.txt"
# The monitoring role reads SHOW POOLS/STATS on the admin console, which auth_query does not serve.
if [ -n "\${${PASSWORD_ENV.monitor}:-}" ]; then
  printf '"%s" "%s"\\n' ${ROLE_NAMES.monitor} "$(quote "$${PASSWORD_ENV.monitor}")" >> "${P.pgbouncerRunDir}/userlist.txt"
fi
own "${P.pgbouncerRunDir}/userlist.txt"
if [ "$(id -u)" = 0 ]; then
  exec setpriv --reuid=postgres --regid=postgres --init-groups pgbouncer "${P.pgbouncerIni}"
fi
exec pgbouncer "${P.pgbouncerIni}"
`;
}
