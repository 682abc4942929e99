#!/bin/sh
# Patroni's bootstrap method for pgharbor (bootstrap.method: pgharbor): run by the member that may
# start the cluster (PostgresPrimary's) when the store has no cluster yet. The same guard as the
# primary without failover: an empty volume next to an archive holding this environment's backups is
# a lost cluster, never a reason to start an empty one. Patroni passes --scope and --datadir.
set -eu
# shellcheck source=lib.sh
. /usr/local/lib/pgharbor/lib.sh
for a in "$@"; do
  case "$a" in
    --datadir=*) PGDATA=${a#--datadir=} ;;
  esac
done
initialise_data_dir
