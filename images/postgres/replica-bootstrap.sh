#!/bin/sh
# Runs as postgres before every replica start. First its physical slot on the primary (from then on
# the primary keeps the WAL this replica has not received); then, on an empty data directory, a
# restore from the bucket as a standby when the archive holds a backup, else a pg_basebackup through
# the slot. A failed bootstrap empties the directory for the next attempt; a directory holding files
# but no cluster is never overwritten.
# Environment: PRIMARY_HOST, PRIMARY_PORT, PGHARBOR_SLOT, PGHARBOR_REPLICATION_PASSWORD.
set -eu
# shellcheck source=lib.sh
. /usr/local/lib/pgharbor/lib.sh

: "${PRIMARY_HOST:?PRIMARY_HOST is required}"
: "${PRIMARY_PORT:=5432}"
: "${PGHARBOR_SLOT:?PGHARBOR_SLOT is required}"
: "${PGHARBOR_REPLICATION_PASSWORD:?PGHARBOR_REPLICATION_PASSWORD is required}"
REPLICATION_USER=replicator
umask 077

# libpq passfile: the password never lands in the data directory or in postgresql.conf.
esc() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/:/\\:/g'; }
printf '%s:%s:*:%s:%s\n' "$(esc "$PRIMARY_HOST")" "$PRIMARY_PORT" "$REPLICATION_USER" "$(esc "$PGHARBOR_REPLICATION_PASSWORD")" > "$PGHARBOR_SECRETS/pgpass"
export PGPASSFILE="$PGHARBOR_SECRETS/pgpass"
CONN="host=$PRIMARY_HOST port=$PRIMARY_PORT user=$REPLICATION_USER connect_timeout=5 sslmode=verify-full sslrootcert=/etc/postgresql/tls/ca.crt application_name=$PGHARBOR_SLOT-bootstrap"

# Reachability as the replication connection itself would look: pg_hba answers it with a SCRAM
# challenge pg_isready does not take up, so the primary logs no FATAL line for the probe.
tries=0
until pg_isready -q -d "$CONN replication=true"; do
  tries=$((tries + 1))
  [ "$tries" -lt 150 ] || die "primary $PRIMARY_HOST:$PRIMARY_PORT not reachable"
  sleep 2
done

# The replication role appears once the backup container has reconciled the roles: wait for it.
tries=0
while :; do
  if out=$(psql -X -q "$CONN replication=true" -c "CREATE_REPLICATION_SLOT $PGHARBOR_SLOT PHYSICAL RESERVE_WAL" 2>&1); then
    log "created replication slot $PGHARBOR_SLOT"; break
  fi
  case "$out" in
    *"already exists"*) break ;;
  esac
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || die "cannot create replication slot $PGHARBOR_SLOT: $out"
  sleep 5
done

# A bootstrap that completed leaves .pgharbor-bootstrap (how it was done). A copy without it was cut
# short (the container stopped, killed or its host lost mid-restore): it is this replica's own,
# re-creatable copy, so it is emptied and the bootstrap starts again. A copy a server has run in
# (postmaster.opts: neither pgBackRest nor pg_basebackup copies it) completed before the marker
# existed, and files that are no PostgreSQL data directory at all are never touched.
if [ ! -e "$PGDATA/.pgharbor-bootstrap" ] && [ ! -e "$PGDATA/postmaster.opts" ] \
  && { [ -e "$PGDATA/PG_VERSION" ] || [ -e "$PGDATA/backup_label" ] || [ -d "$PGDATA/global" ]; }; then
  log "an interrupted bootstrap left $PGDATA half-filled; emptying it to start again"
  find "$PGDATA" -mindepth 1 -delete
fi
if [ -s "$PGDATA/PG_VERSION" ]; then
  check_major
  log "data directory already initialised; starting as a standby"
  exit 0
fi
[ -z "$(ls -A "$PGDATA")" ] || die "$PGDATA is not empty but holds no cluster; refusing to overwrite it. Empty it by hand to re-bootstrap."
cleanup() { log "bootstrap failed; emptying $PGDATA for the next attempt"; find "$PGDATA" -mindepth 1 -delete; }
trap cleanup EXIT
trap 'exit 143' INT TERM
if backrest --log-level-console=warn --output=json info 2>/dev/null | grep -q '"label"'; then
  log "backup found in the archive: restoring as a standby from the bucket"
  backrest --type=standby restore
  echo bucket > "$PGDATA/.pgharbor-bootstrap"
else
  log "no backup in the archive: pg_basebackup from $PRIMARY_HOST"
  pg_basebackup -D "$PGDATA" -d "$CONN" -X stream -S "$PGHARBOR_SLOT" -c fast --no-password
  touch "$PGDATA/standby.signal"
  echo basebackup > "$PGDATA/.pgharbor-bootstrap"
fi
trap - EXIT
log "bootstrap complete"
