#!/bin/sh
# Patroni's first replica-creation method for pgharbor (create_replica_methods: pgbackrest, then
# basebackup): when the bucket holds a backup, restore it as a standby (the leader is not read for
# the copy; the standby catches up from the archive and then streams). Without a backup it exits 1
# and Patroni takes a pg_basebackup from the leader instead. Runs as postgres on an empty directory.
set -eu
# shellcheck source=lib.sh
. /usr/local/lib/pgharbor/lib.sh
if backrest --log-level-console=warn --output=json --io-timeout=5 info 2>/dev/null | grep -q '"label"'; then
  log "backup found in the archive: restoring as a standby from the bucket"
  backrest --type=standby --delta restore
  echo bucket > "$PGDATA/.pgharbor-bootstrap"
  exit 0
fi
log "no backup in the archive: Patroni takes a pg_basebackup from the leader"
exit 1
