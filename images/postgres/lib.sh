# shellcheck shell=sh
# shellcheck disable=SC2034 # the variables are for the programs that source this file
# Shared by pgharbor's PostgreSQL image programs: sourced, never run. POSIX sh (dash).
# The image's layout (paths below) is a contract with postgres-config/paths.ts; __tests__/images.test.ts checks it.

PGHARBOR_LIB=/usr/local/lib/pgharbor
PGHARBOR_SECRETS=/run/pgharbor
PGHARBOR_STATUS=/var/lib/pgharbor/status
PGHARBOR_SCRATCH=/var/lib/pgharbor/scratch
PG_SOCKET_DIR=/var/run/postgresql
PGBACKREST_CONF=/etc/pgbackrest/pgbackrest.conf
PGHARBOR_STANZA=pgharbor
TLS_KEY_UPLOAD=/etc/postgresql/tls/server.key
TLS_KEY=/run/pgharbor/server.key
: "${PGDATA:=/var/lib/postgresql/data}"

log() { printf '%s pgharbor: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

die() { log "$*"; exit 1; }

# Runs a command as the postgres OS user (the containers start as root; PostgreSQL refuses root).
as_postgres() {
  if [ "$(id -u)" = 0 ]; then gosu postgres "$@"; else "$@"; fi
}

# pgBackRest on the environment's stanza, with the rendered configuration, as postgres.
backrest() { as_postgres pgbackrest --config="$PGBACKREST_CONF" --stanza="$PGHARBOR_STANZA" "$@"; }

# The uploaded TLS key is root-owned; PostgreSQL wants its own 0600 copy.
install_server_key() {
  install -D -o postgres -g postgres -m 0600 "$TLS_KEY_UPLOAD" "$TLS_KEY"
}

# Directories a PostgreSQL server needs, owned by postgres whatever the volume brought.
prepare_server_dirs() {
  install -d -o postgres -g postgres -m 0700 "$PGDATA" "$PGHARBOR_SECRETS"
  install -d -o postgres -g postgres -m 2775 "$PG_SOCKET_DIR"
  chown postgres:postgres "$PGDATA"
  chmod 0700 "$PGDATA"
}

# The image runs one PostgreSQL major (PG_MAJOR); a data directory of another one cannot start.
check_major() {
  have=$(cat "$PGDATA/PG_VERSION")
  [ "$have" = "${PG_MAJOR:?}" ] || die "$PGDATA holds a PostgreSQL $have cluster and this image runs PostgreSQL $PG_MAJOR: a major upgrade needs pg_upgrade, or a logical dump restored into a new cluster; refusing to start"
}

# An empty data directory: a new cluster (initdb with data checksums; the superuser has no password and
# logs in over the local socket only), unless the archive says this environment already has one.
# The primary's entrypoint and Patroni's bootstrap (patroni-bootstrap.sh) both start here.
initialise_data_dir() {
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
}
