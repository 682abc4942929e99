#!/bin/sh
# Heartbeat writer: one long-lived session on the primary updating pgharbor.heartbeat every
# HEARTBEAT_SECONDS (default 5), so WAL always moves and a restored copy has a clock to check.
# Every new session starts with a CHECKPOINT: after a primary restart PostgreSQL's checkpointer
# (started during recovery since PostgreSQL 15) sleeps a whole checkpoint_timeout before it honours
# archive_timeout again, so without it no WAL segment would be switched for up to 15 minutes and the
# RPO target would be breached after every restart.
# Environment: PGHARBOR_APP_DATABASE.
set -eu
# shellcheck source=../postgres/lib.sh
. /usr/local/lib/pgharbor/lib.sh

: "${PGHARBOR_APP_DATABASE:?PGHARBOR_APP_DATABASE is required}"
every="${HEARTBEAT_SECONDS:-5}"
while :; do
  {
    echo "CHECKPOINT;"
    while :; do echo "UPDATE pgharbor.heartbeat SET at = now();"; sleep "$every"; done
  } | as_postgres psql -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -U postgres -d "$PGHARBOR_APP_DATABASE" >/dev/null 2>&1 || true
  sleep "$every"
done
