#!/bin/sh
# pgharbor PgBouncer: starts as root only to hand its TLS key and the lookup role's password to the
# postgres user (mode 0600), then runs PgBouncer as postgres.
# Environment: PGHARBOR_POOLER_PASSWORD, PGHARBOR_MONITOR_PASSWORD (optional).
set -eu
: "${PGHARBOR_POOLER_PASSWORD:?PGHARBOR_POOLER_PASSWORD is required}"
RUN_DIR=/run/pgbouncer
umask 077
install -d -o postgres -g postgres -m 0700 "$RUN_DIR"
install -o postgres -g postgres -m 0600 /etc/pgbouncer/tls/server.key "$RUN_DIR/server.key"
# Only the lookup role's password (and the monitoring role's, for the admin console, which
# auth_query does not serve) sits here, at run time; every other user is authenticated with the
# SCRAM secret auth_query fetches.
quote() { printf '%s' "$1" | sed 's/"/""/g'; }
{
  printf '"%s" "%s"\n' pgharbor_pgbouncer "$(quote "$PGHARBOR_POOLER_PASSWORD")"
  if [ -n "${PGHARBOR_MONITOR_PASSWORD:-}" ]; then
    printf '"%s" "%s"\n' pgharbor_monitor "$(quote "$PGHARBOR_MONITOR_PASSWORD")"
  fi
} > "$RUN_DIR/userlist.txt"
chown postgres:postgres "$RUN_DIR/userlist.txt"
exec gosu postgres pgbouncer /etc/pgbouncer/pgbouncer.ini
