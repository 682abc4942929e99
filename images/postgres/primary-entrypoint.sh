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
if [ -s "$PGDATA/PG_VERSION" ]; then
  check_major
else
  initialise_data_dir
fi
exec gosu postgres postgres -D "$PGDATA" "$@"
