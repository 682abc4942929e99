#!/bin/sh
# pgharbor member under Patroni (environments with `failover`): prepares the directories, hands the TLS
# key to postgres, then runs Patroni as postgres. Patroni decides at run time whether this member leads
# or follows: it bootstraps a new cluster (patroni-bootstrap.sh, only on the member whose
# configuration has a bootstrap section), clones a replica (patroni-create-replica.sh: the bucket
# first, pg_basebackup otherwise), rewinds a former leader and promotes a replica when the leader's
# key expires. Once a leader runs, the stack's dynamic configuration (patroni-dcs.json) is applied to
# the cluster: a setting that needs a restart is then reported as pending by `pgharbor cluster status`.
# Secrets arrive in the environment (PATRONI_REPLICATION_PASSWORD, PATRONI_REWIND_PASSWORD,
# PATRONI_RESTAPI_PASSWORD), never in the configuration files.
set -eu
# shellcheck source=lib.sh
. /usr/local/lib/pgharbor/lib.sh

PATRONI_CONF=/etc/pgharbor/patroni.yml
PATRONI_DCS=/etc/pgharbor/patroni-dcs.json
prepare_server_dirs
install_server_key
[ ! -s "$PGDATA/PG_VERSION" ] || check_major

# The stack's dynamic configuration, applied once a leader answers (idempotent: unchanged keys are
# left alone). In the background: Patroni is PID 1 and reaps it. patronictl retries for ever while
# etcd cannot be reached: each call is bounded.
(
  tries=0
  while [ "$tries" -lt 300 ]; do
    if as_postgres timeout 20 patronictl -c "$PATRONI_CONF" list -f json 2>/dev/null \
      | python3 -c 'import json, sys; sys.exit(0 if any(m.get("Role") == "Leader" and m.get("State") == "running" for m in json.load(sys.stdin)) else 1)'; then
      if out=$(as_postgres timeout 60 patronictl -c "$PATRONI_CONF" edit-config --force --quiet --apply "$PATRONI_DCS" 2>&1); then
        log "dynamic configuration checked against the stack's${out:+: $out}"
      else
        log "applying the stack's dynamic configuration failed: $out"
      fi
      exit 0
    fi
    tries=$((tries + 1))
    sleep 2
  done
  log "no leader within 10 minutes: the stack's dynamic configuration was not applied"
) &
exec gosu postgres patroni "$PATRONI_CONF"
