#!/bin/sh
# Applies /etc/pgharbor/roles.sql (rendered from the stack; idempotent) over the primary's socket as
# soon as it accepts connections; retries for 10 minutes. Passwords reach psql through \getenv only.
set -eu
# shellcheck source=../postgres/lib.sh
. /usr/local/lib/pgharbor/lib.sh

tries=0
while :; do
  if as_postgres pg_isready -q -h "$PG_SOCKET_DIR" -p 5432 -d postgres \
     && as_postgres psql -X -q -h "$PG_SOCKET_DIR" -p 5432 -U postgres -d postgres -f /etc/pgharbor/roles.sql; then
    log "roles reconciled"
    exit 0
  fi
  tries=$((tries + 1))
  [ "$tries" -lt 300 ] || die "roles could not be reconciled after $tries attempts"
  sleep 2
done
