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
