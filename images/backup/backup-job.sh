#!/bin/sh
# One job of the backup container (cron runs these as root): runs pgBackRest or pgharbor-ops as
# postgres and records the outcome in /var/lib/pgharbor/status/<job>.json (last run, exit code,
# duration), world-readable: `pgharbor status` reads it as postgres.
# usage: backup-job.sh full|diff|expire|check|stanza-create|logical|drill|maintenance
set -eu
# shellcheck source=../postgres/lib.sh
. /usr/local/lib/pgharbor/lib.sh

job="${1:?usage: backup-job.sh full|diff|expire|check|stanza-create|logical|drill|maintenance}"
# cron starts jobs with the umask it inherited (the entrypoint's); status files hold no secret.
umask 022
# shellcheck disable=SC1091
[ -r "$PGHARBOR_SECRETS/backup.env" ] && . "$PGHARBOR_SECRETS/backup.env"
# Only the expire job may hold the credentials that delete from the bucket.
[ "$job" = expire ] || unset PGHARBOR_EXPIRER_S3_KEY PGHARBOR_EXPIRER_S3_KEY_SECRET
case "$job" in
  full|diff) set -- pgbackrest --config="$PGBACKREST_CONF" --stanza="$PGHARBOR_STANZA" --type="$job" backup ;;
  expire)
    # Only expiry deletes from the bucket, and only it gets the credentials that may; logical sets
    # past their retention go in the same run (pgharbor-ops reads PGHARBOR_EXPIRER_* itself).
    : "${PGHARBOR_EXPIRER_S3_KEY:?}" "${PGHARBOR_EXPIRER_S3_KEY_SECRET:?}"
    # shellcheck disable=SC2016 # expanded by the inner shell, as postgres
    set -- sh -c 'PGBACKREST_REPO1_S3_KEY="$PGHARBOR_EXPIRER_S3_KEY" PGBACKREST_REPO1_S3_KEY_SECRET="$PGHARBOR_EXPIRER_S3_KEY_SECRET" pgbackrest --config="$1" --stanza="$2" expire && "$3/pgharbor-ops" logical-cleanup' \
      expire "$PGBACKREST_CONF" "$PGHARBOR_STANZA" "$PGHARBOR_LIB" ;;
  check) set -- pgbackrest --config="$PGBACKREST_CONF" --stanza="$PGHARBOR_STANZA" check ;;
  stanza-create) set -- pgbackrest --config="$PGBACKREST_CONF" --stanza="$PGHARBOR_STANZA" stanza-create ;;
  logical) set -- "$PGHARBOR_LIB/pgharbor-ops" logical-backup ;;
  drill) set -- "$PGHARBOR_LIB/pgharbor-ops" drill ;;
  maintenance) set -- "$PGHARBOR_LIB/pgharbor-ops" maintenance ;;
  *) log "unknown job $job"; exit 2 ;;
esac
start=$(date +%s)
rc=0
as_postgres "$@" || rc=$?
end=$(date +%s)
ok=true; [ "$rc" = 0 ] || ok=false
printf '{"job":"%s","ok":%s,"exitCode":%d,"startedAt":%d,"finishedAt":%d,"durationSeconds":%d}\n' \
  "$job" "$ok" "$rc" "$start" "$end" "$((end - start))" > "$PGHARBOR_STATUS/$job.json.tmp"
mv "$PGHARBOR_STATUS/$job.json.tmp" "$PGHARBOR_STATUS/$job.json"
if [ "$rc" = 0 ]; then log "$job succeeded in $((end - start)) s"; else log "$job FAILED with exit code $rc"; fi
exit "$rc"
