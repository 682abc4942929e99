#!/bin/sh
# Restores the archive into a new or EMPTY directory on the backup container's scratch volume: to a time, an LSN, a named
# restore point or the latest WAL. The copy never archives into the environment's stanza
# (archive_mode=off is appended to its postgresql.auto.conf) until an operator promotes it on purpose.
# usage: restore.sh --into DIR [--to latest|'YYYY-MM-DD HH:MM:SS+00'|LSN|NAME] [--set BACKUP_LABEL]
set -eu
# shellcheck source=../postgres/lib.sh
. /usr/local/lib/pgharbor/lib.sh

usage() { echo "usage: restore.sh --into DIR [--to latest|'YYYY-MM-DD HH:MM:SS+00'|LSN] [--set BACKUP_LABEL]" >&2; exit 2; }
to=latest; into=""; set=""
while [ $# -gt 0 ]; do
  case "$1" in
    --to) to="${2:?}"; shift 2 ;;
    --into) into="${2:?}"; shift 2 ;;
    --set) set="${2:?}"; shift 2 ;;
    *) usage ;;
  esac
done
[ -n "$into" ] || usage
# Checked before anything is created or changed: only a new or empty directory on the scratch volume
# (never the live data directory, whose volume is mounted read-only here anyway), no `..` games.
case "$into" in
  /*) ;;
  *) die "--into $into: give an absolute path below $PGHARBOR_SCRATCH" ;;
esac
real=$(realpath -m -- "$into")
case "$real" in
  "$PGHARBOR_SCRATCH"/?*) ;;
  *) die "--into $into: restores go below $PGHARBOR_SCRATCH (the scratch volume), never elsewhere" ;;
esac
# What restore drills and logical restores own there is removed by the next of them.
case "${real#"$PGHARBOR_SCRATCH"/}" in
  drill|drill/*|drill-socket|drill-socket/*|logical-*|drill.lock)
    [ "${PGHARBOR_DRILL:-}" = 1 ] || die "--into $into: that name belongs to restore drills and logical restores, which remove it; choose another directory below $PGHARBOR_SCRATCH" ;;
esac
if [ -e "$real" ] || [ -L "$real" ]; then
  if [ -L "$real" ] || [ ! -d "$real" ]; then die "--into $into exists and is not a directory"; fi
  [ -z "$(ls -A "$real")" ] || die "$into is not empty: refusing to restore over it"
fi
into=$real
# shellcheck disable=SC1091
[ -r "$PGHARBOR_SECRETS/backup.env" ] && . "$PGHARBOR_SECRETS/backup.env"
# Only the expire job may hold the credentials that delete from the bucket (docker exec hands this
# script the container's whole environment).
unset PGHARBOR_EXPIRER_S3_KEY PGHARBOR_EXPIRER_S3_KEY_SECRET
case "$to" in
  latest) set -- --type=default ;;
  */*) set -- --type=lsn "--target=$to" --target-action=promote ;;
  [0-9][0-9][0-9][0-9]-*) set -- --type=time "--target=$to" --target-action=promote ;;
  *) set -- --type=name "--target=$to" --target-action=promote ;;
esac
[ -z "$set" ] || set -- "$@" "--set=$set"
as_postgres install -d -m 0700 "$into"
log "restoring to $to into $into"
as_postgres pgbackrest --config="$PGBACKREST_CONF" --stanza="$PGHARBOR_STANZA" "--pg1-path=$into" "$@" restore
printf "\n# pgharbor restore: this copy must not archive into the environment's stanza.\narchive_mode = 'off'\n" | as_postgres tee -a "$into/postgresql.auto.conf" >/dev/null
# A copy of a Patroni member (environments with failover) carries the postgresql.conf Patroni wrote:
# it includes the member's own configuration file and names its hba and ident files, none of which
# exist here. It is kept as postgresql.conf.patroni; the copy starts from PostgreSQL's defaults.
if grep -q "overwritten by Patroni" "$into/postgresql.conf" 2>/dev/null; then
  mv "$into/postgresql.conf" "$into/postgresql.conf.patroni"
  printf "# pgharbor restore of a Patroni member: the member's settings are in postgresql.conf.patroni.\n" | as_postgres tee "$into/postgresql.conf" >/dev/null
  log "the copy held Patroni's postgresql.conf: kept as postgresql.conf.patroni, the copy starts from PostgreSQL's defaults"
fi
log "restore complete: start it with postgres -D $into"
