#!/bin/sh
# pgharbor's etcd member: the store Patroni keeps the leader key and the cluster's dynamic
# configuration in. One member, reached by its fixed address (PGHARBOR_ETCD_ADDRESS): the loop that must demote
# an isolated leader within the key's lease cannot wait on DNS lookups. Patroni rewrites its member
# keys every loop: history older than an hour is compacted away, or etcd would grow until its quota
# (2 GiB) stops every write, the leader key's included.
set -eu
: "${PGHARBOR_ETCD_NAME:?PGHARBOR_ETCD_NAME is required}" "${PGHARBOR_ETCD_ADDRESS:?PGHARBOR_ETCD_ADDRESS is required}"
install -d -o etcd -g etcd -m 0700 /var/lib/etcd/data
chown etcd:etcd /var/lib/etcd /var/lib/etcd/data
exec gosu etcd etcd --name "$PGHARBOR_ETCD_NAME" --data-dir /var/lib/etcd/data \
  --listen-client-urls http://0.0.0.0:2379 --advertise-client-urls "http://$PGHARBOR_ETCD_ADDRESS:2379" \
  --listen-peer-urls http://0.0.0.0:2380 --initial-advertise-peer-urls "http://$PGHARBOR_ETCD_ADDRESS:2380" \
  --initial-cluster "$PGHARBOR_ETCD_NAME=http://$PGHARBOR_ETCD_ADDRESS:2380" --initial-cluster-state new \
  --auto-compaction-mode periodic --auto-compaction-retention 1h \
  --heartbeat-interval 100 --election-timeout 1000 --log-level warn
