#!/bin/sh
# pgharbor backup container: reconciles the primary's roles, creates the stanza (idempotently; a stanza
# of another cluster makes it fail loudly), checks archiving, takes the first full backup (and a first
# restore drill) when the archive holds none, keeps the heartbeat going and runs cron.
# Environment: the bucket credentials (PGBACKREST_REPO1_*, PGHARBOR_EXPIRER_*), the role passwords,
# PGHARBOR_APP_DATABASE, PGHARBOR_INITIAL_FULL_BACKUP (1|0), PGHARBOR_INITIAL_DRILL (1|0), with failover
# PGHARBOR_MEMBERS and PGHARBOR_ENVIRONMENT.
set -eu
# `docker stop` while the start-up steps run: stop at once (PID 1 has no default action for SIGTERM).
trap 'exit 143' INT TERM
# shellcheck source=../postgres/lib.sh
. /usr/local/lib/pgharbor/lib.sh
# The readiness file of an earlier container (/run/pgharbor is not a tmpfs) must not pass the healthcheck.
rm -f "$PGHARBOR_SECRETS/ready"

# cron gives its jobs no environment: the bucket secrets go to a file only root can read (the jobs
# run as root and drop to postgres). dash's export -p prints NAME='value' lines quoted for the shell.
umask 077
mkdir -p "$PGHARBOR_SECRETS"
export -p | grep -E '^export (PGBACKREST|PGHARBOR_EXPIRER)_[A-Z0-9_]+=' > "$PGHARBOR_SECRETS/backup.env" || true
# Everything else this container writes (status files, cron's jobs) is not secret and must be readable
# by postgres, whom `pgharbor status` runs as.
umask 022
install -d -o postgres -g postgres -m 0755 "$PGHARBOR_STATUS"
install -d -o postgres -g postgres -m 0750 "$PGHARBOR_SCRATCH"

# With failover the data directory and socket are links to the member that leads (follow-leader.sh).
follower=""
if [ -n "${PGHARBOR_MEMBERS:-}" ]; then
  "$PGHARBOR_LIB/follow-leader.sh" once
  "$PGHARBOR_LIB/follow-leader.sh" &
  follower=$!
fi

"$PGHARBOR_LIB/reconcile-roles.sh"
tries=0
until "$PGHARBOR_LIB/backup-job.sh" stanza-create; do
  tries=$((tries + 1))
  [ "$tries" -lt 90 ] || die "stanza-create kept failing; see the errors above"
  sleep 10
done
"$PGHARBOR_LIB/backup-job.sh" check || log "pgbackrest check failed: archiving is not healthy yet"

# A new environment is restorable minutes after deploy, not after the first scheduled full backup,
# and its first drill evidence exists from then on (so "drill overdue" means something from day one).
if [ "${PGHARBOR_INITIAL_FULL_BACKUP:-1}" = 1 ] && ! backrest --log-level-console=warn --output=json info 2>/dev/null | grep -q '"label"'; then
  if [ "${PGHARBOR_INITIAL_DRILL:-1}" = 1 ]; then
    log "the archive holds no backup yet: taking the first full backup now, then a first restore drill (in the background)"
    ( if ! { "$PGHARBOR_LIB/backup-job.sh" full && "$PGHARBOR_LIB/backup-job.sh" drill; }; then log "the first full backup or drill failed; the schedule retries"; fi ) &
  else
    log "the archive holds no backup yet: taking the first full backup now (in the background)"
    ( if ! "$PGHARBOR_LIB/backup-job.sh" full; then log "the first full backup failed; the schedule retries"; fi ) &
  fi
fi
"$PGHARBOR_LIB/heartbeat.sh" &
heartbeat=$!
# Ready for the healthcheck: this container's own stanza-create passed (the status volume keeps the
# records of earlier containers, so it cannot tell).
touch "$PGHARBOR_SECRETS/ready"
# cron as a child, not PID 1: PID 1 ignores signals it has no handler for, and cron has none for
# SIGTERM, so `docker stop` would wait out its whole timeout.
cron -f -L 15 &
cron=$!
trap 'set +e; kill -TERM "$cron" "$heartbeat" $follower 2>/dev/null; wait "$cron"; exit 0' INT TERM
wait "$cron"
