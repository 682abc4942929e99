#!/bin/sh
# Docker healthcheck of PgBouncer: a real client login, the way applications come in (TLS verified
# against the environment's CA, SCRAM), as the monitoring role, on the admin console: SHOW VERSION.
# Environment: PGHARBOR_MONITOR_PASSWORD.
set -eu
: "${PGHARBOR_MONITOR_PASSWORD:?PGHARBOR_MONITOR_PASSWORD is required}"
PGPASSWORD="$PGHARBOR_MONITOR_PASSWORD" PGAPPNAME=pgharbor-healthcheck \
  psql -X -A -t -q "host=localhost port=6432 dbname=pgbouncer user=pgharbor_monitor sslmode=verify-full sslrootcert=/etc/pgbouncer/tls/ca.crt connect_timeout=3" \
  -c 'SHOW VERSION' >/dev/null
