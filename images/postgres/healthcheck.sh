#!/bin/sh
# Docker healthcheck of a PostgreSQL container: as the postgres OS user (peer authentication on the
# socket, so nothing is refused and nothing logs a FATAL line), a real query that also checks the
# role the server should have. usage: healthcheck.sh primary|replica
set -eu
role="${1:?usage: healthcheck.sh primary|replica}"
case "$role" in
  primary) want=f ;;
  replica) want=t ;;
  *) echo "usage: healthcheck.sh primary|replica" >&2; exit 2 ;;
esac
got=$(PGOPTIONS='-c log_disconnections=off' PGAPPNAME=pgharbor-healthcheck PGCONNECT_TIMEOUT=3 \
  gosu postgres psql -X -A -t -q -h /var/run/postgresql -d postgres -c 'SELECT pg_is_in_recovery()' 2>&1) || { echo "$got"; exit 1; }
[ "$got" = "$want" ] || { echo "pg_is_in_recovery() is $got on a $role"; exit 1; }
