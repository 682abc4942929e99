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
  # `pgbackrest info` exits 0 whatever it found: the stanza's status code says (1: no stanza path,
  # the archive has never seen this environment; 2/3: a stanza without backups; 99: the bucket could
  # not be read, wrong credentials, wrong cipher passphrase).
  tries=0
  while :; do
    # io-timeout 5 s: pgBackRest's default retries an unreachable bucket for minutes per attempt.
    info=$(backrest --output=json --log-level-console=warn --io-timeout=5 info 2>&1) || true
    case "$info" in
      *'"label"'*) die "the data volume is empty but the archive holds this environment's backups: restore them (README, runbook: the primary's data volume is lost) instead of starting a new, empty cluster. To start over on purpose, remove the stanza from the bucket first (pgbackrest stanza-stop, stanza-delete) or deploy under a new environment name." ;;
    esac
    code=$(printf '%s' "$info" | grep -o '"status":{"code":[0-9]*' | tail -n 1 | grep -o '[0-9]*$') || code=""
    case "$code" in
      1) break ;;
      2|3) die "the data volume is empty and the archive holds a stanza for this environment without a backup (pgBackRest status $code): its WAL cannot be restored without one, and a new cluster could not archive into it. To start over, remove the stanza first (pgbackrest stanza-stop, stanza-delete) or deploy under a new environment name." ;;
    esac
    tries=$((tries + 1))
    answer=$(printf '%s' "$info" | tr '\n' ' ' | cut -c 1-400)
    [ "$tries" -lt 30 ] || die "cannot read the archive to tell whether it holds this environment's backups (pgBackRest said: $answer); refusing to initialise a new cluster until it can (the restart policy retries)"
    log "waiting for the archive (attempt $tries of 30) before initialising: pgBackRest said: $answer"
    sleep 2
  done
  log "initialising a new cluster in $PGDATA"
  as_postgres initdb --pgdata="$PGDATA" --username=postgres --data-checksums --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=peer --auth-host=scram-sha-256 >/dev/null
fi
exec gosu postgres postgres -D "$PGDATA" "$@"
