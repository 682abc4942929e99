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
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  [ -z "$(ls -A "$PGDATA")" ] || die "$PGDATA holds files but no cluster; refusing to initialise over them"
  log "initialising a new cluster in $PGDATA"
  as_postgres initdb --pgdata="$PGDATA" --username=postgres --data-checksums --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=peer --auth-host=scram-sha-256 >/dev/null
fi
exec gosu postgres postgres -D "$PGDATA" "$@"
