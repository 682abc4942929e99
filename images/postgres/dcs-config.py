#!/usr/bin/python3
"""pgharbor: the stack's settings as a Patroni cluster's dynamic configuration (environments with failover).

  dcs-config.py apply <ctl.json> <dcs.json>   write the stack's settings into etcd, then stay up
  dcs-config.py wait <patroni.yml>            return once etcd holds the cluster's configuration

`apply` runs in the environment's config container (pgharbor-<env>-patroni-config): a change of
settings replaces that container and nothing else. Patroni then reloads every member with the new
settings, and reports a setting that needs a restart as pending (`pgharbor cluster status`, then
`pgharbor cluster restart`). Before the cluster exists it writes the configuration Patroni will
bootstrap with; `wait` holds the bootstrapping member until then.

The keys the stack owns are replaced: the failover settings at the top level and, under
`postgresql`, use_pg_rewind, use_slots and the whole `parameters` map (a parameter removed from the
stack leaves the cluster; one set by hand with `patronictl edit-config` is undone whenever this
container starts: a deploy that changes settings, or a restart of Docker). The keys it does
not own (`pause`, set by `patronictl pause`, or anything else an operator set) are kept. The write is
a compare-and-set on the key's revision: a concurrent `patronictl edit-config` makes it read again.

Patroni's own DCS client does the talking (patroni.dcs); the configuration files are JSON.
"""
import json
import signal
import sys
import time

from patroni.dcs import get_dcs

MARKER = "/tmp/dcs-applied"


def log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} pgharbor dcs-config: {message}", flush=True)


def connect(path: str):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    # patroni.yml is written as JSON after a comment line.
    conf = json.loads("\n".join(line for line in text.splitlines() if not line.startswith("#")))
    dcs_conf = {k: conf[k] for k in ("scope", "namespace", "name", "etcd3") if k in conf}
    dcs_conf["patronictl"] = True  # linearizable reads
    dcs_conf.setdefault("retry_timeout", 10)
    return get_dcs(dcs_conf)


def merged(current: dict, stack: dict) -> dict:
    out = dict(current or {})
    for key, value in stack.items():
        if key != "postgresql":
            out[key] = value
    postgresql = dict(out.get("postgresql") or {})
    postgresql.update(stack.get("postgresql") or {})
    out["postgresql"] = postgresql
    return out


def changes(before: dict, after: dict) -> list:
    out = []
    for key in sorted(set(before) | set(after)):
        if key == "postgresql":
            continue
        if before.get(key) != after.get(key):
            out.append(f"{key}: {before.get(key)!r} -> {after.get(key)!r}")
    pb = (before.get("postgresql") or {}).get("parameters") or {}
    pa = (after.get("postgresql") or {}).get("parameters") or {}
    for name in sorted(set(pb) | set(pa)):
        if pb.get(name) != pa.get(name):
            out.append(f"{name}: {pb.get(name, '(unset)')!r} -> {pa.get(name, '(unset)')!r}")
    return out


def apply(ctl_path: str, dcs_path: str) -> None:
    with open(dcs_path, encoding="utf-8") as f:
        stack = json.load(f)
    dcs = None
    delay = 1
    while True:
        try:
            dcs = dcs or connect(ctl_path)
            cluster = dcs.get_cluster()
            config = cluster.config
            current = dict(config.data) if config and config.data else {}
            wanted = merged(current, stack)
            if current == wanted:
                log("the cluster's dynamic configuration already is the stack's")
                break
            version = config.version if config and config.data else None
            if dcs.set_config_value(json.dumps(wanted, separators=(",", ":")), version):
                if current:
                    log("dynamic configuration changed: " + "; ".join(changes(current, wanted)))
                    log("Patroni reloads the members; a setting that needs a restart shows as pending in `pgharbor cluster status`")
                else:
                    log(f"dynamic configuration written for the new cluster ({len(stack.get('postgresql', {}).get('parameters', {}))} parameters)")
                break
            log("the configuration changed while it was written: reading it again")
        except Exception as e:  # noqa: BLE001 - etcd not up yet, a lost connection: try again
            log(f"etcd not reachable yet ({type(e).__name__}: {str(e)[:200]}); trying again in {delay} s")
            time.sleep(delay)
            delay = min(delay * 2, 10)
    with open(MARKER, "w", encoding="utf-8") as f:
        f.write(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))
    # Stay up, the record of what was written (its log, its files), until Docker stops the container.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()


def wait(patroni_path: str) -> None:
    dcs = None
    started = time.time()
    said = 0.0
    while True:
        try:
            dcs = dcs or connect(patroni_path)
            config = dcs.get_cluster().config
            if config and config.data:
                return
            problem = "etcd holds no configuration for this cluster yet"
        except Exception as e:  # noqa: BLE001
            problem = f"etcd not reachable ({type(e).__name__})"
        if time.time() - said > 30:
            log(f"waiting for the config container to write the cluster's settings: {problem} ({int(time.time() - started)} s)")
            said = time.time()
        time.sleep(1)


def main(argv: list) -> int:
    if len(argv) == 3 and argv[0] == "apply":
        apply(argv[1], argv[2])
        return 0
    if len(argv) == 2 and argv[0] == "wait":
        wait(argv[1])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
