#!/bin/sh
# Docker healthcheck of a PostgreSQL container: as the postgres OS user (peer authentication on the
# socket, so nothing is refused and nothing logs a FATAL line), a real query that also checks the
# role the server should have (a Patroni member's role changes at run time: `member` only asks that
# the server answers). usage: healthcheck.sh primary|replica|member
set -eu
role="${1:?usage: healthcheck.sh primary|replica|member}"
case "$role" in
  primary) want=f ;;
  replica) want=t ;;
  member) want=any ;;
  *) echo "usage: healthcheck.sh primary|replica|member" >&2; exit 2 ;;
esac
got=$(PGOPTIONS='-c log_disconnections=off' PGAPPNAME=pgharbor-healthcheck PGCONNECT_TIMEOUT=3 \
  gosu postgres psql -X -A -t -q -h /var/run/postgresql -d postgres -c 'SELECT pg_is_in_recovery()' 2>&1) || { echo "$got"; exit 1; }
[ "$want" = any ] || [ "$got" = "$want" ] || { echo "pg_is_in_recovery() is $got on a $role"; exit 1; }
