#!/bin/sh
# pgharbor replica: hands the TLS key to postgres, bootstraps an empty data directory (from the bucket,
# else pg_basebackup), makes sure its slot exists on the primary, then runs PostgreSQL as a hot standby.
set -eu
# shellcheck source=lib.sh
. /usr/local/lib/pgharbor/lib.sh

prepare_server_dirs
install_server_key
as_postgres "$PGHARBOR_LIB/replica-bootstrap.sh"
exec gosu postgres postgres -D "$PGDATA" "$@"
