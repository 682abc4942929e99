#!/bin/sh
# pgharbor member under Patroni (environments with `failover`): prepares the directories, hands the TLS
# key to postgres, then runs Patroni as postgres. Patroni decides at run time whether this member leads
# or follows: it bootstraps a new cluster (patroni-bootstrap.sh, only on the member whose
# configuration has a bootstrap section), clones a replica (patroni-create-replica.sh: the bucket
# first, pg_basebackup otherwise), rewinds a former leader and promotes a replica when the leader's
# key expires. The settings are the cluster's dynamic configuration in etcd (written by the
# environment's config container, dcs-config.py): Patroni reloads the members when they change and
# reports a setting that needs a restart as pending (`pgharbor cluster status`).
# Secrets arrive in the environment (PATRONI_REPLICATION_PASSWORD, PATRONI_REWIND_PASSWORD,
# PATRONI_RESTAPI_PASSWORD), never in the configuration files.
set -eu
# shellcheck source=lib.sh
. /usr/local/lib/pgharbor/lib.sh

PATRONI_CONF=/etc/pgharbor/patroni.yml
prepare_server_dirs
install_server_key
[ ! -s "$PGDATA/PG_VERSION" ] || check_major

# The member that may bootstrap a cluster starts Patroni on an empty volume only once the config
# container has written the cluster's settings into etcd: Patroni then bootstraps with them (its own
# bootstrap.dcs is empty). Every other start reads them from etcd as it is.
if grep -q '"bootstrap"' "$PATRONI_CONF" && [ ! -s "$PGDATA/PG_VERSION" ]; then
  as_postgres python3 "$PGHARBOR_LIB/dcs-config.py" wait "$PATRONI_CONF"
fi
exec gosu postgres patroni "$PATRONI_CONF"
