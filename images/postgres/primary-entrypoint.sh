#!/bin/sh
# pgharbor primary: prepares the data directory (initdb with data checksums on an empty volume), hands
# the TLS key to postgres, then runs PostgreSQL as postgres with the arguments given (the stack passes
# -c config_file=/etc/postgresql/postgresql.conf). The superuser has no password: it logs in over the
# local socket only (peer).
set -eu
# shellcheck source=lib.sh
. /usr/local/lib/pgharbor/lib.sh

prepare_server_dirs
install_server_key
if [ -s "$PGDATA/PG_VERSION" ]; then
  check_major
else
  [ -z "$(ls -A "$PGDATA")" ] || die "$PGDATA holds files but no cluster; refusing to initialise over them"
  # An empty data volume where the archive already holds this environment's backups is a lost
  # volume, not a new cluster: a new one would take the application's writes while its history sits
  # in the bucket (and stanza-create would refuse the new cluster).
  tries=0
  until info=$(backrest --output=json --log-level-console=warn info 2>&1); do
    tries=$((tries + 1))
    [ "$tries" -lt 30 ] || die "cannot read the archive to tell whether it holds this environment's backups ($(printf '%s' "$info" | tail -n 1)); refusing to initialise a new cluster until it can (the restart policy retries)"
    sleep 2
  done
  case "$info" in
    *'"label"'*) die "the data volume is empty but the archive holds this environment's backups: restore them (README, runbook: the primary's data volume is lost) instead of starting a new, empty cluster. To start over on purpose, remove the stanza from the bucket first (pgbackrest stanza-stop, stanza-delete) or deploy under a new environment name." ;;
  esac
  log "initialising a new cluster in $PGDATA"
  as_postgres initdb --pgdata="$PGDATA" --username=postgres --data-checksums --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=peer --auth-host=scram-sha-256 >/dev/null
fi
exec gosu postgres postgres -D "$PGDATA" "$@"
