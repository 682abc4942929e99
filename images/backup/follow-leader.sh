#!/bin/sh
# Environments with failover: the backup container mounts every member's data (read-only) and socket
# volume under /var/lib/pgharbor/members/<member>/, and the paths every job uses (the data directory
# pgBackRest copies, the socket psql and pgharbor-ops connect through) are symbolic links to the member
# that leads now. Patroni's REST API says which one: /primary answers 200 only on the leader, and a
# leader cut off from this container's network is not followed (its writes are not the cluster's).
#   follow-leader.sh once    points the links at the leader, waiting up to 10 minutes for one
#   follow-leader.sh         keeps them pointed, checking every 2 s (runs in the background)
# A job running while the leader changes fails (its server goes away) and the next run succeeds.
# Environment: PGHARBOR_MEMBERS (member names), PGHARBOR_ENVIRONMENT.
set -eu
# shellcheck source=../postgres/lib.sh
. /usr/local/lib/pgharbor/lib.sh

: "${PGHARBOR_MEMBERS:?PGHARBOR_MEMBERS is required}" "${PGHARBOR_ENVIRONMENT:?PGHARBOR_ENVIRONMENT is required}"
MEMBERS_DIR=/var/lib/pgharbor/members

leader() {
  for m in $PGHARBOR_MEMBERS; do
    if python3 - "http://pgharbor-$PGHARBOR_ENVIRONMENT-$m:8008/primary" <<'PY' 2>/dev/null
import sys, urllib.request
req = urllib.request.Request(sys.argv[1], method="OPTIONS")
try:
    sys.exit(0 if urllib.request.urlopen(req, timeout=2).status == 200 else 1)
except Exception:
    sys.exit(1)
PY
    then echo "$m"; return 0; fi
  done
  return 1
}

# ln then rename: a job opening the path sees the old target or the new one, never none.
point() {
  ln -sfn "$1" "$2.next"
  mv -Tf "$2.next" "$2"
}

follow() {
  m=$1
  point "$MEMBERS_DIR/$m/data" "$PGDATA"
  point "$MEMBERS_DIR/$m/socket" "$PG_SOCKET_DIR"
}

current() { readlink "$PG_SOCKET_DIR" 2>/dev/null | sed -n "s|^$MEMBERS_DIR/\([^/]*\)/socket\$|\1|p"; }

# The image's own directories give way to the links (empty: nothing is mounted there with failover).
for d in "$PGDATA" "$PG_SOCKET_DIR"; do
  if [ -d "$d" ] && [ ! -L "$d" ]; then rmdir "$d"; fi
done

if [ "${1:-}" = once ]; then
  tries=0
  until m=$(leader); do
    tries=$((tries + 1))
    [ "$tries" -lt 300 ] || die "no member of $PGHARBOR_MEMBERS says it leads (Patroni's /primary) after 10 minutes"
    sleep 2
  done
  follow "$m"
  log "following the leader: $m"
  exit 0
fi

while :; do
  if m=$(leader) && [ "$m" != "$(current)" ]; then
    log "the leader is now $m (was $(current)): following it"
    follow "$m"
  fi
  sleep 2
done
