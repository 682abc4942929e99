"""pgharbor-ops health: one report on the primary and what it sees of its replicas.

report(cfg, connect) returns {"status": worst, "checks": [{"check", "status", "summary", "value",
"details"}], "largest": [...]}, status one of ok / warn / critical. Thresholds are cfg["health"]
over DEFAULTS. Session details carry who and how long, never statement text (it may hold data).
Importing this module has no side effects.
"""
import datetime as dt

DEFAULTS = {
    "replicaLagWarnSeconds": 30, "replicaLagCriticalSeconds": 300,
    "connectionsWarn": 0.8, "connectionsCritical": 0.95,
    "activeQueryWarnSeconds": 60, "activeQueryCriticalSeconds": 300,
    "idleInTransactionWarnSeconds": 30, "idleInTransactionCriticalSeconds": 300,
    "lockWaitWarnSeconds": 5, "lockWaitCriticalSeconds": 60,
    "wraparoundWarnAge": 500_000_000, "wraparoundCriticalAge": 1_000_000_000,
    "bloatWarnRatio": 0.5, "bloatMinBytes": 64 * 1048576,
    "cacheHitWarn": 0.9, "cacheHitMinBlocks": 100_000,
    "walWarnRatio": 1.5, "walCriticalRatio": 3.0,
    "deadRowsWarnFraction": 0.2, "deadRowsMinRows": 10_000,
}
RANK = {"ok": 0, "warn": 1, "critical": 2}
SELF = "pgharbor-ops"


def _rows(conn, statement, params=None):
    with conn.cursor() as cur:
        cur.execute(statement, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]


def level(value, warn, critical, higher_is_worse=True):
    if value is None:
        return "ok"
    if not higher_is_worse:
        value, warn, critical = -value, -warn, (None if critical is None else -critical)
    if critical is not None and value >= critical:
        return "critical"
    return "warn" if value >= warn else "ok"


def check(name, status, summary, value=None, details=None):
    return {"check": name, "status": status, "summary": summary, "value": value, "details": details or []}


def _iso(t):
    return t.isoformat() if isinstance(t, (dt.datetime, dt.date)) else t


def cluster_checks(conn, cfg, t):
    out = []
    recovery = _rows(conn, "SELECT pg_is_in_recovery() AS r, current_setting('max_connections')::int AS maxc, current_setting('max_wal_size') AS maxwal, pg_size_bytes(current_setting('max_wal_size')) AS maxwal_bytes")[0]
    out.append(check("primary", "critical" if recovery["r"] else "ok", "the primary is in recovery (a standby?)" if recovery["r"] else "the primary accepts writes"))

    repl = {r["application_name"]: r for r in _rows(conn, "SELECT application_name, state, COALESCE(EXTRACT(EPOCH FROM replay_lag), 0)::float AS lag, COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::bigint AS bytes FROM pg_stat_replication")}
    expected = list(cfg.get("replicas") or [])
    missing = [n for n in expected if repl.get(n, {}).get("state") != "streaming"]
    out.append(check("replicas", "critical" if missing else "ok",
                     ("not streaming: %s (%d of %d expected)" % (", ".join(missing), len(expected) - len(missing), len(expected))) if missing else "%d of %d streaming" % (len(expected), len(expected)),
                     len(expected) - len(missing), [{"replica": n, "state": repl.get(n, {}).get("state", "absent")} for n in expected]))
    lag = max([r["lag"] for r in repl.values()] or [0.0])
    out.append(check("replication-lag", level(lag, t["replicaLagWarnSeconds"], t["replicaLagCriticalSeconds"]),
                     "worst replay lag %.1f s (warn %s s)" % (lag, t["replicaLagWarnSeconds"]) if repl else "no replica connected",
                     lag, [{"replica": n, "lagSeconds": round(r["lag"], 1), "lagBytes": int(r["bytes"])} for n, r in sorted(repl.items())]))
    slots = _rows(conn, "SELECT slot_name, active, COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint AS retained FROM pg_replication_slots ORDER BY slot_name")
    inactive = [s["slot_name"] for s in slots if not s["active"]]
    out.append(check("replication-slots", "warn" if inactive else "ok",
                     ("inactive: %s (they hold WAL back)" % ", ".join(inactive)) if inactive else "%d slots, all active" % len(slots),
                     len(inactive), [{"slot": s["slot_name"], "active": s["active"], "retainedBytes": int(s["retained"])} for s in slots]))

    states = _rows(conn, "SELECT COALESCE(state, 'unknown') AS state, count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1 ORDER BY 1")
    used = sum(s["n"] for s in states)
    ratio = used / recovery["maxc"]
    out.append(check("connections", level(ratio, t["connectionsWarn"], t["connectionsCritical"]),
                     "%d of max_connections %d (%.0f%%): %s" % (used, recovery["maxc"], 100 * ratio, ", ".join("%s %d" % (s["state"], s["n"]) for s in states)),
                     used, states))

    sessions = _rows(conn, """
        SELECT pid, usename AS "user", datname AS database, application_name AS application, state,
               EXTRACT(EPOCH FROM now() - query_start)::float AS query_seconds, EXTRACT(EPOCH FROM now() - state_change)::float AS state_seconds,
               EXTRACT(EPOCH FROM now() - xact_start)::float AS xact_seconds, cardinality(pg_blocking_pids(pid)) AS blockers, pg_blocking_pids(pid) AS blocked_by
        FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND application_name <> %s""", (SELF,))

    def who(s, seconds):
        return {"pid": s["pid"], "user": s["user"], "database": s["database"], "application": s["application"], "state": s["state"], "seconds": round(seconds or 0, 1)}

    active = sorted(((s["query_seconds"], s) for s in sessions if s["state"] == "active" and s["query_seconds"] is not None and not s["blockers"]), key=lambda x: -x[0])
    worst = active[0][0] if active else 0.0
    out.append(check("long-running-queries", level(worst, t["activeQueryWarnSeconds"], t["activeQueryCriticalSeconds"]),
                     "longest running statement %.0f s (warn %s s)" % (worst, t["activeQueryWarnSeconds"]), worst, [who(s, q) for q, s in active[:5] if q >= t["activeQueryWarnSeconds"]]))
    idle = sorted(((s["state_seconds"], s) for s in sessions if (s["state"] or "").startswith("idle in transaction")), key=lambda x: -x[0])
    worst = idle[0][0] if idle else 0.0
    out.append(check("idle-in-transaction", level(worst, t["idleInTransactionWarnSeconds"], t["idleInTransactionCriticalSeconds"]),
                     ("%d sessions idle in a transaction, the longest for %.0f s (warn %s s)" % (len(idle), worst, t["idleInTransactionWarnSeconds"])) if idle else "no session idle in a transaction",
                     worst, [{**who(s, q), "transactionSeconds": round(s["xact_seconds"] or 0, 1)} for q, s in idle[:5]]))
    waiting = sorted(((s["query_seconds"], s) for s in sessions if s["blockers"]), key=lambda x: -(x[0] or 0))
    worst = (waiting[0][0] or 0.0) if waiting else 0.0
    out.append(check("blocking-locks", level(worst, t["lockWaitWarnSeconds"], t["lockWaitCriticalSeconds"]) if waiting else "ok",
                     ("%d sessions waiting for a lock, the longest for %.0f s, blocked by pid %s" % (len(waiting), worst, ", ".join(str(p) for p in waiting[0][1]["blocked_by"]))) if waiting else "no session waits for a lock",
                     len(waiting), [{**who(s, q), "blockedBy": list(s["blocked_by"])} for q, s in waiting[:5]]))

    ages = _rows(conn, "SELECT datname, age(datfrozenxid)::bigint AS age FROM pg_database WHERE datallowconn ORDER BY 2 DESC")
    oldest = ages[0] if ages else {"datname": "-", "age": 0}
    out.append(check("wraparound", level(oldest["age"], t["wraparoundWarnAge"], t["wraparoundCriticalAge"]),
                     "oldest unfrozen transaction ID age %d in %s (warn %d, PostgreSQL stops at 2^31)" % (oldest["age"], oldest["datname"], t["wraparoundWarnAge"]),
                     int(oldest["age"]), [{"database": a["datname"], "age": int(a["age"])} for a in ages]))

    wal = _rows(conn, "SELECT COALESCE(sum(size), 0)::bigint AS b FROM pg_ls_waldir()")[0]["b"]
    wratio = wal / recovery["maxwal_bytes"]
    out.append(check("pg-wal", level(wratio, t["walWarnRatio"], t["walCriticalRatio"]),
                     "pg_wal holds %.0f MiB (%.1f x max_wal_size %s)" % (wal / 1048576, wratio, recovery["maxwal"]), int(wal)))
    return out


TABLE_BLOAT = """
WITH t AS (
  SELECT c.oid, n.nspname, c.relname, c.relpages::bigint AS pages, c.reltuples,
         COALESCE((SELECT sum(s.avg_width) FROM pg_stats s WHERE s.schemaname = n.nspname AND s.tablename = c.relname), 0) + 28 AS row_bytes,
         COALESCE((SELECT split_part(o, '=', 2)::int FROM unnest(c.reloptions) o WHERE o LIKE 'fillfactor=%%'), 100) AS ff
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast' AND c.reltuples > 0
)
SELECT nspname || '.' || relname AS relation, pages * current_setting('block_size')::int AS bytes,
       GREATEST(0, pages - ceil(reltuples * row_bytes / (current_setting('block_size')::int * ff / 100.0 - 24))) * current_setting('block_size')::int AS bloat_bytes
FROM t ORDER BY bloat_bytes DESC LIMIT 5"""

INDEX_BLOAT = """
WITH i AS (
  SELECT ci.oid, n.nspname, ci.relname, ci.relpages::bigint AS pages, ci.reltuples,
         COALESCE((SELECT sum(s.avg_width) FROM pg_attribute a JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = ct.relname AND s.attname = a.attname
                   WHERE a.attrelid = ct.oid AND a.attnum = ANY (x.indkey)), 8) + 12 AS entry_bytes
  FROM pg_index x JOIN pg_class ci ON ci.oid = x.indexrelid JOIN pg_class ct ON ct.oid = x.indrelid
  JOIN pg_namespace n ON n.oid = ci.relnamespace JOIN pg_am am ON am.oid = ci.relam
  WHERE am.amname = 'btree' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast' AND ci.reltuples > 0
)
SELECT nspname || '.' || relname AS relation, pages * current_setting('block_size')::int AS bytes,
       GREATEST(0, pages - 1 - ceil(reltuples * entry_bytes / (current_setting('block_size')::int * 0.9 - 24))) * current_setting('block_size')::int AS bloat_bytes
FROM i ORDER BY bloat_bytes DESC LIMIT 5"""

HOT_TABLES = """
SELECT schemaname || '.' || relname AS relation, n_live_tup AS live, n_dead_tup AS dead, n_tup_ins + n_tup_upd + n_tup_del AS writes,
       last_autovacuum, last_autoanalyze, last_vacuum, last_analyze
FROM pg_stat_user_tables ORDER BY n_tup_ins + n_tup_upd + n_tup_del DESC LIMIT 5"""

LARGEST = """
SELECT n.nspname || '.' || c.relname AS relation, c.relkind AS kind, pg_total_relation_size(c.oid) AS bytes
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
ORDER BY 3 DESC LIMIT 5"""


def database_checks(connect, dbs, t):
    bloat_t, bloat_i, hot, largest, cache = [], [], [], [], []
    for db in dbs:
        conn = connect(db)
        try:
            conn.autocommit = True
            for rows, statement in ((bloat_t, TABLE_BLOAT), (bloat_i, INDEX_BLOAT)):
                rows.extend({"database": db, "relation": r["relation"], "bytes": int(r["bytes"]), "bloatBytes": int(r["bloat_bytes"])} for r in _rows(conn, statement))
            for r in _rows(conn, HOT_TABLES):
                hot.append({"database": db, "relation": r["relation"], "live": int(r["live"]), "dead": int(r["dead"]), "writes": int(r["writes"]),
                            "lastAutovacuum": _iso(r["last_autovacuum"] or r["last_vacuum"]), "lastAutoanalyze": _iso(r["last_autoanalyze"] or r["last_analyze"])})
            largest.extend({"database": db, **{k: (int(v) if k == "bytes" else v) for k, v in r.items()}} for r in _rows(conn, LARGEST))
            c = _rows(conn, "SELECT blks_hit::bigint AS hit, blks_read::bigint AS read FROM pg_stat_database WHERE datname = current_database()")[0]
            cache.append({"database": db, "hit": int(c["hit"]), "read": int(c["read"])})
        finally:
            conn.close()
    out = []
    for name, rows in (("table-bloat", bloat_t), ("index-bloat", bloat_i)):
        bad = [r for r in rows if r["bloatBytes"] >= t["bloatMinBytes"] and r["bloatBytes"] >= t["bloatWarnRatio"] * r["bytes"]]
        top = max(rows, key=lambda r: r["bloatBytes"], default=None)
        out.append(check(name, "warn" if bad else "ok",
                         ("estimated %.0f MiB of %.0f MiB bloat in %s (an estimate from statistics)" % (top["bloatBytes"] / 1048576, top["bytes"] / 1048576, top["relation"])) if top else "nothing to estimate yet",
                         top["bloatBytes"] if top else 0, sorted(rows, key=lambda r: -r["bloatBytes"])[:5]))
    hit = sum(c["hit"] for c in cache)
    total = hit + sum(c["read"] for c in cache)
    ratio = hit / total if total else None
    out.append(check("cache-hit", level(ratio, t["cacheHitWarn"], None, higher_is_worse=False) if total >= t["cacheHitMinBlocks"] else "ok",
                     "cache hit ratio %.3f over %d block reads" % (ratio, total) if ratio is not None else "no block reads yet", ratio, cache))
    dead = [h for h in hot if h["dead"] >= t["deadRowsMinRows"] and h["dead"] >= t["deadRowsWarnFraction"] * max(1, h["live"])]
    out.append(check("autovacuum", "warn" if dead else "ok",
                     ("dead rows pile up in %s (%d dead, %d live; last autovacuum %s)" % (dead[0]["relation"], dead[0]["dead"], dead[0]["live"], dead[0]["lastAutovacuum"] or "never")) if dead else "the busiest tables are within autovacuum's reach",
                     len(dead), sorted(hot, key=lambda h: -h["writes"])[:5]))
    return out, sorted(largest, key=lambda r: -r["bytes"])[:5]


def report(cfg, connect):
    t = {**DEFAULTS, **(cfg.get("health") or {})}
    conn = connect(cfg["appDatabase"])
    try:
        conn.autocommit = True
        checks = cluster_checks(conn, cfg, t)
        dbs = [r["datname"] for r in _rows(conn, "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1")]
    finally:
        conn.close()
    more, largest = database_checks(connect, dbs, t)
    checks.extend(more)
    worst = max((c["status"] for c in checks), key=RANK.get, default="ok")
    return {"status": worst, "checks": checks, "largest": largest, "at": dt.datetime.now(dt.timezone.utc).isoformat()}
