"""pgharbor health: one look at the primary, its replicas and its databases, with ok/warn/critical per check.

Installed next to pgharbor_ops.py, whose `health` subcommand calls report(cfg, query) with a `query(db,
sql, params=None)` that runs one statement as the superuser over the primary's Unix socket (values bound
as parameters, never spliced into SQL text) and returns its rows. Importing this module has no side
effects; it needs nothing but the standard library.

The document report() returns (format 1; keys are stable, scripts may rely on them):

  {"format": 1,
   "status": "ok" | "warn" | "critical",           the worst status of the checks
   "thresholds": {name: value, ...},              the effective thresholds (DEFAULTS, then cfg["health"])
   "checks": [{"check": id,                       stable id, one of CHECKS, always all of them, in that order
               "status": "ok" | "warn" | "critical",
               "summary": str,                    one line for a person: the value and the threshold
               "value": number | null,            the figure the status comes from (per check, below)
               "details": [{...}, ...]}, ...],    the sessions, relations, databases ... behind it
   "largest": [{"database", "schema", "relation", "kind": "table" | "materialized view",
                "totalBytes", "tableBytes" (heap with TOAST, free space and visibility maps),
                "indexBytes", "exact": bool}],    the largest relations of every database, largest first;
                                                  exact=false: sized from pg_class (the relation holds or
                                                  awaits an ACCESS EXCLUSIVE lock, which sizing would wait for)
   "largestErrors": [{"database", "error"}]}

Checks and their value (cluster-wide ones run in cfg["appDatabase"]; per-database ones in every database
that accepts connections and is not a template; sessions of pgharbor-ops itself are left out; a session is
shown by pid, user, database, application, client, times, and its statement's query_id (pg_stat_statements)
and first word, never the statement's text, which may hold data):

  primary              seconds up; critical when it cannot be reached or is in recovery
  replicas             replicas streaming; critical when one of cfg["replicas"] (application_name) is not
                       connected, warn when it is connected but not streaming yet (catchup)
  replication-lag      largest replay lag of a streaming replica, seconds
  replication-slots    largest WAL a slot retains, bytes; warn: inactive slot or retaining more than
                       slotRetainedWarnFraction of max_slot_wal_keep_size; critical: wal_status unreserved
                       or lost, or more than slotRetainedCriticalFraction
  connections          client connections / max_connections
  long-running-queries longest running statement (state active), seconds
  idle-in-transaction  longest time a transaction has sat idle, seconds
  blocking-locks       longest time a session has waited for a lock another one holds, seconds
  wraparound           largest transaction-ID or multixact age of a database (every database, templates too)
  table-bloat          largest estimated bloat fraction of a table of bloatMinBytes or more (warn only)
  index-bloat          the same for B-tree indexes (warn only)
  cache-hit-ratio      blocks found in shared buffers / blocks needed, since the statistics reset (warn only)
  wal-size             bytes in pg_wal, against max_wal_size + wal_keep_size
  autovacuum           hot tables (most rows written) and any table autovacuum is behind on, with their last
                       autovacuum/autoanalyze; value: tables behind (dead tuples or changes since the last
                       analyze more than autovacuumBehindFactor times the point autovacuum would start; warn only)

A check whose queries fail is "warn" with the error in its summary ("could not check"): what was not
looked at is never reported as ok. When the primary cannot be reached every other check says so.

Bloat is an estimate from statistics (pg_class relpages/reltuples of the last VACUUM or ANALYZE, column
widths and null fractions from pg_statistic, fillfactor), in the spirit of check_postgres' and ioguix's
estimates: the size the live rows would need, compared with the size the relation has. It reads no table
(no pgstattuple) and takes no lock; relations without statistics are skipped and said so; system catalogs
and indexes other than B-tree are not estimated.
"""
import math

STATUSES = ("ok", "warn", "critical")
OWN_APPLICATION = "pgharbor-ops"
MIB = 1048576

CHECKS = ("primary", "replicas", "replication-lag", "replication-slots", "connections", "long-running-queries", "idle-in-transaction",
          "blocking-locks", "wraparound", "table-bloat", "index-bloat", "cache-hit-ratio", "wal-size", "autovacuum")

DEFAULTS = {
    "replicaLagWarnSeconds": 60,
    "replicaLagCriticalSeconds": 300,
    "slotRetainedWarnFraction": 0.5,
    "slotRetainedCriticalFraction": 0.8,
    "connectionsWarnFraction": 0.8,
    "connectionsCriticalFraction": 0.95,
    "longQueryWarnSeconds": 60,
    "longQueryCriticalSeconds": 300,
    "idleInTransactionWarnSeconds": 30,
    "idleInTransactionCriticalSeconds": 300,
    "blockingLockWarnSeconds": 10,
    "blockingLockCriticalSeconds": 120,
    "wraparoundWarnAge": 500000000,
    "wraparoundCriticalAge": 1000000000,
    "tableBloatWarnFraction": 0.5,
    "indexBloatWarnFraction": 0.5,
    "bloatMinBytes": 10 * MIB,
    "cacheHitWarnRatio": 0.9,
    "cacheHitMinBlocks": 100000,
    "walSizeWarnFactor": 1.5,
    "walSizeCriticalFactor": 3,
    "autovacuumBehindFactor": 2,
    "hotTables": 5,
    "largestRelations": 10,
}
PAIRS = [("replicaLagWarnSeconds", "replicaLagCriticalSeconds"), ("slotRetainedWarnFraction", "slotRetainedCriticalFraction"),
         ("connectionsWarnFraction", "connectionsCriticalFraction"), ("longQueryWarnSeconds", "longQueryCriticalSeconds"),
         ("idleInTransactionWarnSeconds", "idleInTransactionCriticalSeconds"), ("blockingLockWarnSeconds", "blockingLockCriticalSeconds"),
         ("wraparoundWarnAge", "wraparoundCriticalAge"), ("walSizeWarnFactor", "walSizeCriticalFactor")]
COUNTS = ("hotTables", "largestRelations")


class ThresholdError(ValueError):
    """cfg["health"] names an unknown threshold or gives one a value that cannot be one."""


def thresholds(cfg):
    """DEFAULTS overridden by cfg["health"], checked: numbers >= 0, counts whole, warn <= critical."""
    given = cfg.get("health") or {}
    if not isinstance(given, dict):
        raise ThresholdError("health thresholds must be an object of name: number, not %r" % (given,))
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ThresholdError("unknown health threshold%s %s (known: %s)" % ("s" if len(unknown) > 1 else "", ", ".join(unknown), ", ".join(sorted(DEFAULTS))))
    t = {**DEFAULTS, **given}
    for name, v in t.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or (isinstance(v, float) and math.isnan(v)):
            raise ThresholdError("health threshold %s = %r: must be a number >= 0" % (name, v))
        if name in COUNTS and int(v) != v:
            raise ThresholdError("health threshold %s = %r: must be a whole number" % (name, v))
    for warn, crit in PAIRS:
        if t[warn] > t[crit]:
            raise ThresholdError("health threshold %s = %r is above %s = %r: warn must come before critical" % (warn, t[warn], crit, t[crit]))
    return t


# ---------------------------------------------------------------------------------------------
# Formatting: numbers as a person reads them
# ---------------------------------------------------------------------------------------------
def worst(statuses):
    return max(statuses, key=STATUSES.index, default="ok")


def graded(value, warn, crit):
    """critical at or past `crit`, warn at or past `warn` (both None: never)."""
    if value is None:
        return "ok"
    if crit is not None and value >= crit:
        return "critical"
    if warn is not None and value >= warn:
        return "warn"
    return "ok"


def fmt_bytes(n):
    n = float(n or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            text = "%d" % n if unit == "B" else "%.1f" % n
            return "%s %s" % (text[:-2] if text.endswith(".0") else text, unit)
        n /= 1024
    return "%d B" % n  # not reached


def fmt_seconds(s):
    s = float(s or 0)
    if s < 10:
        return "%.1f s" % s
    if s < 120:
        return "%d s" % s
    if s < 7200:
        return _two(s // 60, "min", s % 60, "s")
    if s < 172800:
        return _two(s // 3600, "h", s % 3600 // 60, "min")
    return _two(s // 86400, "d", s % 86400 // 3600, "h")


def _two(a, unit_a, b, unit_b):
    return "%d %s" % (a, unit_a) + (" %d %s" % (b, unit_b) if int(b) else "")


def fmt_count(n):
    n = float(n or 0)
    for limit, unit, suffix in ((1e9, 1e9, "B"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if abs(n) >= limit:
            text = "%.1f" % (n / unit)
            return (text[:-2] if text.endswith(".0") else text) + suffix
    return "%d" % n


def fmt_fraction(f):
    return "%.0f%%" % (100 * f) if f >= 0.1 or f == 0 else "%.1f%%" % (100 * f)


def plural(n, word, words=None):
    return "%d %s" % (n, word if n == 1 else (words or word + "s"))


def result(check_id, status, summary, value=None, details=None):
    return {"check": check_id, "status": status, "summary": summary, "value": value, "details": details or []}


def session(row_pid, user, db, app, client):
    return {"pid": row_pid, "user": user, "database": db, "application": app or "", "client": client}


def who(d):
    return "pid %s (%s@%s%s)" % (d["pid"], d.get("user") or "?", d.get("database") or "?", ", " + d["application"] if d.get("application") else "")


# ---------------------------------------------------------------------------------------------
# Cluster-wide checks: one statement each, in the application database
# ---------------------------------------------------------------------------------------------
SQL_PRIMARY = """/* pgharbor health: primary */
SELECT pg_is_in_recovery(), current_setting('server_version'), extract(epoch FROM now() - pg_postmaster_start_time())::float8"""

SQL_DATABASES = """/* pgharbor health: databases */
SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1"""

SQL_REPLICATION = """/* pgharbor health: replication */
SELECT application_name, state, client_addr::text, extract(epoch FROM replay_lag)::float8,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint, sync_state
FROM pg_stat_replication ORDER BY application_name, pid"""

SQL_SLOTS = """/* pgharbor health: replication-slots */
SELECT slot_name, slot_type, active, temporary, wal_status, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint,
       pg_size_bytes(current_setting('max_slot_wal_keep_size'))
FROM pg_replication_slots ORDER BY slot_name"""

SQL_CONNECTIONS = """/* pgharbor health: connections */
SELECT current_setting('max_connections')::int, current_setting('superuser_reserved_connections')::int,
       current_setting('reserved_connections')::int,
       COALESCE((SELECT json_object_agg(state, n) FROM (
           SELECT COALESCE(state, 'unknown') AS state, count(*) AS n FROM pg_stat_activity
           WHERE backend_type = 'client backend' GROUP BY 1) s), '{}')"""

# Sessions of one state, longest first: pid, user, database, application, client, seconds (since the
# statement started for active ones, since the session went idle in its transaction for the others),
# transaction seconds, wait event, the statement's query_id and first word (never its text).
SQL_SESSIONS = """/* pgharbor health: %s */
SELECT pid, usename, datname, application_name, client_addr::text,
       extract(epoch FROM now() - CASE WHEN state = 'active' THEN query_start ELSE state_change END)::float8 AS seconds,
       extract(epoch FROM now() - xact_start)::float8, concat_ws(':', wait_event_type, wait_event), query_id, upper(substring(ltrim(query) FROM '^[A-Za-z]+'))
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND application_name IS DISTINCT FROM %%s AND state = ANY (%%s)
ORDER BY seconds DESC NULLS LAST LIMIT 100"""

# Sessions waiting for a lock another session holds (or waits for ahead of them), longest wait first,
# with what they wait for and who blocks them (pid 0: a prepared transaction).
SQL_BLOCKING = """/* pgharbor health: blocking-locks */
SELECT a.pid, a.usename, a.datname, a.application_name, a.client_addr::text,
       extract(epoch FROM now() - COALESCE(l.waitstart, a.state_change))::float8 AS waited,
       l.locktype, l.mode, l.relation, a.query_id, upper(substring(ltrim(a.query) FROM '^[A-Za-z]+')), b.blockers
FROM pg_stat_activity a
CROSS JOIN LATERAL (
    SELECT min(waitstart) AS waitstart, min(locktype) AS locktype, min(mode) AS mode,
           min(CASE WHEN relation IS NULL THEN NULL
                    WHEN database = (SELECT oid FROM pg_database WHERE datname = current_database()) THEN relation::regclass::text
                    ELSE relation::text END) AS relation
    FROM pg_locks WHERE pid = a.pid AND NOT granted) l
CROSS JOIN LATERAL (
    SELECT COALESCE(json_agg(json_build_object(
               'pid', p.pid, 'user', s.usename, 'database', s.datname, 'application', s.application_name, 'state', s.state,
               'transactionSeconds', round(extract(epoch FROM now() - s.xact_start)::numeric, 1), 'queryId', s.query_id,
               'command', upper(substring(ltrim(s.query) FROM '^[A-Za-z]+')))
               ORDER BY p.pid), '[]') AS blockers
    FROM unnest(pg_blocking_pids(a.pid)) AS p(pid) LEFT JOIN pg_stat_activity s ON s.pid = p.pid) b
WHERE a.wait_event_type = 'Lock' AND a.pid <> pg_backend_pid() AND a.application_name IS DISTINCT FROM %s
ORDER BY waited DESC NULLS LAST LIMIT 100"""

SQL_WRAPAROUND = """/* pgharbor health: wraparound */
SELECT datname, age(datfrozenxid)::bigint, mxid_age(datminmxid)::bigint,
       current_setting('autovacuum_freeze_max_age')::bigint, current_setting('autovacuum_multixact_freeze_max_age')::bigint
FROM pg_database ORDER BY greatest(age(datfrozenxid), mxid_age(datminmxid)) DESC, datname"""

SQL_CACHE = """/* pgharbor health: cache-hit-ratio */
SELECT COALESCE(sum(blks_hit), 0)::bigint, COALESCE(sum(blks_read), 0)::bigint,
       extract(epoch FROM now() - min(stats_reset))::float8
FROM pg_stat_database"""

SQL_WAL = """/* pgharbor health: wal-size */
SELECT COALESCE(sum(size), 0)::bigint, count(*)::int, pg_size_bytes(current_setting('max_wal_size')),
       pg_size_bytes(current_setting('wal_keep_size'))
FROM pg_ls_waldir()"""


def check_primary(q, t):
    in_recovery, version, uptime = q(SQL_PRIMARY)[0]
    version = version.split()[0]  # "17.6 (Debian 17.6-1.pgdg13+1)": the release
    if in_recovery:
        return result("primary", "critical", "the server the backup container reaches as the primary is in recovery (a standby): PostgreSQL %s" % version,
                      float(uptime), [{"version": version, "inRecovery": True}])
    return result("primary", "ok", "primary up for %s, accepting writes (PostgreSQL %s)" % (fmt_seconds(uptime), version), float(uptime),
                  [{"version": version, "inRecovery": False}])


def check_replicas(q, t, expected):
    rows = q(SQL_REPLICATION)
    details = [{"application": r[0], "state": r[1], "client": r[2], "replayLagSeconds": r[3], "replayLagBytes": r[4], "syncState": r[5], "expected": r[0] in expected}
               for r in rows]
    missing = [name for name in expected if not any(d["application"] == name for d in details)]
    waiting = [name for name in expected if name not in missing and not any(d["application"] == name and d["state"] == "streaming" for d in details)]
    streaming = [name for name in expected if name not in missing + waiting]
    details += [{"application": name, "state": "not connected", "client": None, "replayLagSeconds": None, "replayLagBytes": None, "syncState": None, "expected": True}
                for name in missing]
    if not expected:
        others = [d["application"] for d in details if d["state"] == "streaming"]
        return result("replicas", "ok", "no replicas configured" + (" (streaming anyway: %s)" % ", ".join(others) if others else ""), 0, details)
    parts = []
    if missing:
        parts.append("%s not connected" % ", ".join(missing))
    if waiting:
        parts.append("%s connected but not streaming yet (%s)" % (", ".join(waiting), ", ".join(sorted({d["state"] for d in details if d["application"] in waiting}))))
    status = "critical" if missing else "warn" if waiting else "ok"
    summary = "%d of %d replicas streaming" % (len(streaming), len(expected)) + (": " + "; ".join(parts) if parts else " (%s)" % ", ".join(streaming))
    return result("replicas", status, summary, len(streaming), details)


def check_replication_lag(q, t):
    warn, crit = t["replicaLagWarnSeconds"], t["replicaLagCriticalSeconds"]
    rows = [r for r in q(SQL_REPLICATION) if r[1] == "streaming"]
    details = [{"application": r[0], "replayLagSeconds": float(r[3] or 0), "replayLagBytes": r[4]} for r in rows]
    limits = "warn at %s, critical at %s" % (fmt_seconds(warn), fmt_seconds(crit))
    if not details:
        return result("replication-lag", "ok", "no replica streaming; nothing lags (%s)" % limits, None, details)
    top = max(details, key=lambda d: d["replayLagSeconds"])
    status = graded(top["replayLagSeconds"], warn, crit)
    summary = "largest replay lag %s (%s, %s behind); %s" % (fmt_seconds(top["replayLagSeconds"]), top["application"],
                                                           fmt_bytes(top["replayLagBytes"]) if top["replayLagBytes"] is not None else "? bytes", limits)
    return result("replication-lag", status, summary, top["replayLagSeconds"], details)


def check_slots(q, t):
    rows = q(SQL_SLOTS)
    details, statuses, problems = [], [], []
    for name, kind, active, temporary, wal_status, retained, cap in rows:
        d = {"slot": name, "type": kind, "active": bool(active), "temporary": bool(temporary), "walStatus": wal_status, "retainedBytes": retained,
             "maxSlotWalKeepSizeBytes": cap if cap is not None and cap >= 0 else None}
        status, why = "ok", []
        if wal_status in ("lost", "unreserved"):
            status, why = "critical", ["wal_status %s: %s" % (wal_status, "the WAL it needs is gone; rebuild the replica" if wal_status == "lost" else "its WAL goes at the next checkpoint")]
        if cap is not None and cap > 0 and retained is not None:
            fraction = retained / cap
            d["retainedFraction"] = round(fraction, 4)
            s = graded(fraction, t["slotRetainedWarnFraction"], t["slotRetainedCriticalFraction"])
            if s != "ok":
                why.append("retains %s, %s of max_slot_wal_keep_size %s" % (fmt_bytes(retained), fmt_fraction(fraction), fmt_bytes(cap)))
                status = worst([status, s])
        if not active:
            why.append("inactive: no replica streams through it%s" % (", it retains %s" % fmt_bytes(retained) if retained is not None else ""))
            status = worst([status, "warn"])
        d["status"] = status
        details.append(d)
        statuses.append(status)
        if why:
            problems.append("%s %s" % (name, "; ".join(why)))
    top = max((d["retainedBytes"] or 0 for d in details), default=0)
    limits = "warn: inactive or over %s of max_slot_wal_keep_size, critical: over %s, unreserved or lost" % (
        fmt_fraction(t["slotRetainedWarnFraction"]), fmt_fraction(t["slotRetainedCriticalFraction"]))
    if not details:
        return result("replication-slots", "ok", "no replication slots", 0, details)
    if problems:
        return result("replication-slots", worst(statuses), "; ".join(problems) + " (%s)" % limits, top, details)
    return result("replication-slots", "ok", "%s, all active, retaining %s at most (%s)" % (plural(len(details), "slot"), fmt_bytes(top), limits), top, details)


def check_connections(q, t):
    max_conn, su_reserved, reserved, states = q(SQL_CONNECTIONS)[0]
    states = {k: int(v) for k, v in (states or {}).items()}
    used = sum(states.values())
    fraction = used / max_conn if max_conn else 0
    status = graded(fraction, t["connectionsWarnFraction"], t["connectionsCriticalFraction"])
    by_state = ", ".join("%d %s" % (n, s) for s, n in sorted(states.items(), key=lambda kv: (-kv[1], kv[0])))
    summary = "%d of %d connections in use (%s%s); warn at %s, critical at %s" % (
        used, max_conn, fmt_fraction(fraction), ": " + by_state if by_state else "", fmt_fraction(t["connectionsWarnFraction"]), fmt_fraction(t["connectionsCriticalFraction"]))
    return result("connections", status, summary, round(fraction, 4),
                  [{"used": used, "maxConnections": max_conn, "superuserReserved": su_reserved, "reserved": reserved, "byState": states}])


def _sessions(q, which, states):
    rows = q(SQL_SESSIONS % which, (OWN_APPLICATION, list(states)))
    out = []
    for pid, user, db, app, client, seconds, xact, wait, query_id, command in rows:
        d = session(pid, user, db, app, client)
        d.update({"seconds": round(float(seconds or 0), 1), "transactionSeconds": round(float(xact), 1) if xact is not None else None, "waitEvent": wait or None,
                  "queryId": query_id, "command": command})
        out.append(d)
    return out


def _session_check(check_id, rows, warn, crit, what, none):
    limits = "warn at %s, critical at %s" % (fmt_seconds(warn), fmt_seconds(crit))
    longest = rows[0]["seconds"] if rows else 0
    over = [d for d in rows if d["seconds"] >= warn]
    for d in rows:
        d["status"] = graded(d["seconds"], warn, crit)
    if not over:
        return result(check_id, "ok", "%s (longest %s); %s" % (none, fmt_seconds(longest), limits) if rows else "%s; %s" % (none, limits), longest, over)
    status = graded(longest, warn, crit)
    summary = "%s %s longer than %s, longest %s: %s; %s" % (plural(len(over), "session"), what, fmt_seconds(warn), fmt_seconds(longest), who(over[0]), limits)
    return result(check_id, status, summary, longest, over)


def check_long_queries(q, t):
    rows = _sessions(q, "long-running-queries", ["active"])
    return _session_check("long-running-queries", rows, t["longQueryWarnSeconds"], t["longQueryCriticalSeconds"], "running a statement", "no statement has run long")


def check_idle_in_transaction(q, t):
    rows = _sessions(q, "idle-in-transaction", ["idle in transaction", "idle in transaction (aborted)"])
    return _session_check("idle-in-transaction", rows, t["idleInTransactionWarnSeconds"], t["idleInTransactionCriticalSeconds"],
                          "idle in a transaction", "no transaction sits idle long")


def check_blocking(q, t):
    warn, crit = t["blockingLockWarnSeconds"], t["blockingLockCriticalSeconds"]
    limits = "warn at %s, critical at %s" % (fmt_seconds(warn), fmt_seconds(crit))
    details = []
    for pid, user, db, app, client, waited, locktype, mode, relation, query_id, command, blockers in q(SQL_BLOCKING, (OWN_APPLICATION,)):
        if not blockers:
            continue  # granted between the two looks
        d = session(pid, user, db, app, client)
        d.update({"waitedSeconds": round(float(waited or 0), 1), "lockType": locktype, "mode": mode, "relation": relation, "queryId": query_id, "command": command,
                  "blockedBy": [{**b, "application": b.get("application") or ""} for b in blockers]})
        d["status"] = graded(d["waitedSeconds"], warn, crit)
        details.append(d)
    if not details:
        return result("blocking-locks", "ok", "no session waits for a lock another one holds; %s" % limits, 0, [])
    top = details[0]
    by = ", ".join("a prepared transaction" if b["pid"] == 0 else "pid %s (%s%s)" % (
        b["pid"], b.get("state") or "?", ", transaction open %s" % fmt_seconds(b["transactionSeconds"]) if b.get("transactionSeconds") is not None else "")
        for b in top["blockedBy"])
    waits_for = "%s %s%s" % (top["lockType"] or "?", top["mode"] or "?", " on " + top["relation"] if top["relation"] else "")
    summary = "%s waiting for a lock, longest %s: %s waits for %s held by %s; %s" % (
        plural(len(details), "session"), fmt_seconds(top["waitedSeconds"]), who(top), waits_for, by, limits)
    return result("blocking-locks", graded(top["waitedSeconds"], warn, crit), summary, top["waitedSeconds"], details)


def check_wraparound(q, t):
    warn, crit = t["wraparoundWarnAge"], t["wraparoundCriticalAge"]
    rows = q(SQL_WRAPAROUND)
    details = [{"database": r[0], "xidAge": r[1], "multixactAge": r[2], "status": graded(max(r[1], r[2]), warn, crit)} for r in rows]
    if not details:
        raise RuntimeError("pg_database returned no rows")
    top = details[0]
    freeze, mfreeze = rows[0][3], rows[0][4]
    age = max(top["xidAge"], top["multixactAge"])
    summary = "oldest unfrozen age %s, in %s (transaction IDs %s, multixacts %s; autovacuum freezes from %s and %s); warn at %s, critical at %s, wraparound at 2.1B" % (
        fmt_count(age), top["database"], fmt_count(top["xidAge"]), fmt_count(top["multixactAge"]), fmt_count(freeze), fmt_count(mfreeze), fmt_count(warn), fmt_count(crit))
    return result("wraparound", graded(age, warn, crit), summary, age, details)


def check_cache(q, t):
    hit, read, since = q(SQL_CACHE)[0]
    total = hit + read
    ratio = hit / total if total else None
    warn, floor = t["cacheHitWarnRatio"], t["cacheHitMinBlocks"]
    detail = [{"blocksHit": hit, "blocksRead": read, "secondsSinceReset": round(since, 0) if since is not None else None}]
    since_text = " in the last %s" % fmt_seconds(since) if since is not None else ""
    if total == 0 or total < floor:
        return result("cache-hit-ratio", "ok", "%s blocks needed%s, fewer than the %s it takes to judge the ratio%s; warn below %s" % (
            fmt_count(total), since_text, fmt_count(floor), " (%s so far)" % fmt_fraction(ratio) if ratio is not None else "", fmt_fraction(warn)), ratio, detail)
    status = "warn" if ratio < warn else "ok"
    return result("cache-hit-ratio", status, "cache hit ratio %s over %s blocks needed%s; warn below %s" % (
        fmt_fraction(ratio) if ratio < 0.999 or ratio == 1 else "%.2f%%" % (100 * ratio), fmt_count(total), since_text, fmt_fraction(warn)), round(ratio, 5), detail)


def check_wal(q, t):
    size, files, max_wal, keep = q(SQL_WAL)[0]
    base = max_wal + max(keep, 0)
    factor = size / base if base else 0
    status = graded(factor, t["walSizeWarnFactor"], t["walSizeCriticalFactor"])
    summary = "pg_wal holds %s in %s, %.2f× max_wal_size %s + wal_keep_size %s; warn at %g×, critical at %g×" % (
        fmt_bytes(size), plural(files, "file"), factor, fmt_bytes(max_wal), fmt_bytes(keep), t["walSizeWarnFactor"], t["walSizeCriticalFactor"])
    return result("wal-size", status, summary, size, [{"bytes": size, "files": files, "maxWalSizeBytes": max_wal, "walKeepSizeBytes": keep, "factor": round(factor, 3)}])


# ---------------------------------------------------------------------------------------------
# Per-database checks: one statement each in every connectable database
# ---------------------------------------------------------------------------------------------
# Tables and materialized views of at least %s bytes (heap + TOAST) with what the estimate needs: pages
# and live rows of the last VACUUM/ANALYZE, TOAST pages and chunks, fillfactor, columns, columns whose
# width is unknown (no statistics and not of a fixed-length type), the average width of a row's data,
# whether any column holds nulls, block size and MAXALIGN.
SQL_TABLE_BLOAT = """/* pgharbor health: table-bloat */
SELECT n.nspname, c.relname, c.relpages::bigint, c.reltuples::float8, COALESCE(t.relpages, 0)::bigint, COALESCE(t.reltuples, 0)::float8,
       COALESCE((SELECT option_value FROM pg_options_to_table(c.reloptions) WHERE option_name = 'fillfactor'), '100')::int,
       count(*)::int, (count(*) FILTER (WHERE st.stawidth IS NULL AND ty.typlen < 0))::int,
       COALESCE(sum(CASE WHEN st.stawidth IS NOT NULL THEN (1 - st.stanullfrac) * st.stawidth ELSE ty.typlen END), 0)::float8,
       COALESCE(bool_or(st.stanullfrac > 0 OR (st.stawidth IS NULL AND NOT a.attnotnull)), false),
       current_setting('block_size')::int, (SELECT max_data_alignment FROM pg_control_init())
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type ty ON ty.oid = a.atttypid
LEFT JOIN pg_statistic st ON st.starelid = c.oid AND st.staattnum = a.attnum AND NOT st.stainherit
WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%%'
  AND (c.relpages + COALESCE(t.relpages, 0))::bigint * current_setting('block_size')::bigint >= %s
GROUP BY c.oid, n.nspname, c.relname, c.relpages, c.reltuples, t.relpages, t.reltuples, c.reloptions"""

# B-tree indexes of at least %s bytes: schema, table, index, pages, entries, fillfactor, columns (key and
# INCLUDE), columns of unknown width, average data width, nullable, block size, MAXALIGN. A column's
# statistics are the table column's, or the index's own for an expression.
SQL_INDEX_BLOAT = """/* pgharbor health: index-bloat */
SELECT n.nspname, ct.relname, ci.relname, ci.relpages::bigint, ci.reltuples::float8,
       COALESCE((SELECT option_value FROM pg_options_to_table(ci.reloptions) WHERE option_name = 'fillfactor'), '90')::int,
       count(*)::int, (count(*) FILTER (WHERE st.stawidth IS NULL AND ty.typlen < 0))::int,
       COALESCE(sum(CASE WHEN st.stawidth IS NOT NULL THEN (1 - st.stanullfrac) * st.stawidth ELSE ty.typlen END), 0)::float8,
       COALESCE(bool_or(st.stanullfrac > 0 OR st.stawidth IS NULL), false),
       current_setting('block_size')::int, (SELECT max_data_alignment FROM pg_control_init())
FROM pg_index i
JOIN pg_class ci ON ci.oid = i.indexrelid
JOIN pg_class ct ON ct.oid = i.indrelid
JOIN pg_namespace n ON n.oid = ci.relnamespace
JOIN pg_am am ON am.oid = ci.relam
CROSS JOIN LATERAL (SELECT k, CASE WHEN i.indkey[k] <> 0 THEN i.indrelid ELSE i.indexrelid END AS srel,
                           CASE WHEN i.indkey[k] <> 0 THEN i.indkey[k] ELSE k + 1 END AS satt
                    FROM generate_series(0, i.indnatts - 1) AS k) col
JOIN pg_attribute ia ON ia.attrelid = i.indexrelid AND ia.attnum = col.k + 1
JOIN pg_type ty ON ty.oid = ia.atttypid
LEFT JOIN pg_statistic st ON st.starelid = col.srel AND st.staattnum = col.satt AND NOT st.stainherit
WHERE am.amname = 'btree' AND ci.relkind = 'i' AND ci.relpersistence <> 't' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%%'
  AND ci.relpages::bigint * current_setting('block_size')::bigint >= %s
GROUP BY n.nspname, ct.relname, ci.relname, ci.relpages, ci.reltuples, ci.reloptions"""

SQL_AUTOVACUUM = """/* pgharbor health: autovacuum */
WITH t AS (
    SELECT s.relid, s.schemaname, s.relname, s.n_live_tup, s.n_dead_tup, s.n_mod_since_analyze,
           s.n_tup_ins + s.n_tup_upd + s.n_tup_del AS writes,
           extract(epoch FROM now() - s.last_autovacuum)::float8 AS autovacuum_ago, extract(epoch FROM now() - s.last_vacuum)::float8 AS vacuum_ago,
           extract(epoch FROM now() - s.last_autoanalyze)::float8 AS autoanalyze_ago, extract(epoch FROM now() - s.last_analyze)::float8 AS analyze_ago,
           current_setting('autovacuum')::bool AND COALESCE(o.enabled::bool, true) AS autovacuum_enabled,
           COALESCE(o.vthreshold::float8, current_setting('autovacuum_vacuum_threshold')::float8)
             + COALESCE(o.vscale::float8, current_setting('autovacuum_vacuum_scale_factor')::float8) * greatest(c.reltuples, 0) AS vacuum_trigger,
           COALESCE(o.athreshold::float8, current_setting('autovacuum_analyze_threshold')::float8)
             + COALESCE(o.ascale::float8, current_setting('autovacuum_analyze_scale_factor')::float8) * greatest(c.reltuples, 0) AS analyze_trigger,
           EXISTS (SELECT 1 FROM pg_stat_progress_vacuum p WHERE p.relid = s.relid) AS vacuum_running
    FROM pg_stat_user_tables s
    JOIN pg_class c ON c.oid = s.relid
    CROSS JOIN LATERAL (
        SELECT max(CASE WHEN option_name = 'autovacuum_enabled' THEN option_value END) AS enabled,
               max(CASE WHEN option_name = 'autovacuum_vacuum_threshold' THEN option_value END) AS vthreshold,
               max(CASE WHEN option_name = 'autovacuum_vacuum_scale_factor' THEN option_value END) AS vscale,
               max(CASE WHEN option_name = 'autovacuum_analyze_threshold' THEN option_value END) AS athreshold,
               max(CASE WHEN option_name = 'autovacuum_analyze_scale_factor' THEN option_value END) AS ascale
        FROM pg_options_to_table(c.reloptions)) o
    WHERE c.relkind IN ('r', 'm')
), ranked AS (
    SELECT t.*, row_number() OVER (ORDER BY writes DESC, schemaname, relname) AS hot_rank FROM t
)
SELECT schemaname, relname, writes, n_live_tup, n_dead_tup, n_mod_since_analyze, vacuum_trigger, analyze_trigger,
       autovacuum_ago, vacuum_ago, autoanalyze_ago, analyze_ago, autovacuum_enabled, vacuum_running, hot_rank
FROM ranked
WHERE (hot_rank <= %s AND writes > 0) OR n_dead_tup > %s * vacuum_trigger OR n_mod_since_analyze > %s * analyze_trigger
ORDER BY hot_rank LIMIT 200"""

# The largest tables and materialized views. One that holds or awaits an ACCESS EXCLUSIVE lock (itself,
# its TOAST table or an index) is sized from pg_class: pg_table_size would wait for that lock.
SQL_LARGEST = """/* pgharbor health: largest */
WITH locked AS (
    SELECT DISTINCT relation FROM pg_locks
    WHERE locktype = 'relation' AND mode = 'AccessExclusiveLock' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
), r AS (
    SELECT c.oid, n.nspname, c.relname, c.relkind, c.relpages, c.reltoastrelid,
           (c.oid IN (SELECT relation FROM locked) OR c.reltoastrelid IN (SELECT relation FROM locked)
            OR EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indexrelid IN (SELECT relation FROM locked))) AS locked
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't'
), sized AS (
    SELECT nspname, relname, relkind, NOT locked AS exact,
           CASE WHEN locked THEN (relpages::bigint + COALESCE((SELECT relpages FROM pg_class WHERE oid = reltoastrelid), 0)) * current_setting('block_size')::bigint
                ELSE pg_table_size(oid) END AS table_bytes,
           CASE WHEN locked THEN COALESCE((SELECT sum(ci.relpages) FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid WHERE i.indrelid = r.oid), 0)::bigint * current_setting('block_size')::bigint
                ELSE pg_indexes_size(oid) END AS index_bytes
    FROM r
)
SELECT nspname, relname, relkind, table_bytes + index_bytes, table_bytes, index_bytes, exact FROM sized
ORDER BY 4 DESC, 1, 2 LIMIT %s"""


def maxalign(n, align):
    return int(math.ceil(n / align) * align)


def table_estimate(relpages, reltuples, toastpages, toasttuples, fillfactor, columns, width, has_nulls, bs, align):
    """Pages the live rows would fill: heap tuples (header with null bitmap, data, line pointer) at the
    table's fillfactor, plus TOAST chunks (about 4 to a page). Returns (actual pages, expected pages)."""
    header = maxalign(23 + (int(math.ceil(columns / 8)) if has_nulls else 0), align)
    tuple_bytes = maxalign(header + math.ceil(width), align) + 4
    per_page = max(1, min(int((bs - 24) * fillfactor / 100 // tuple_bytes), (bs - 24) // (maxalign(23, align) + 4)))
    expected = math.ceil(reltuples / per_page) + math.ceil(toasttuples / 4)
    return relpages + toastpages, expected


def index_estimate(relpages, reltuples, fillfactor, width, has_nulls, bs, align):
    """Pages a freshly built B-tree would have: a metapage and leaf pages of index tuples (8-byte header,
    null bitmap, data, line pointer) at the index's fillfactor. Internal pages and deduplication are
    left out, so the estimate errs towards less bloat. Returns (actual pages, expected pages)."""
    data_offset = maxalign(8 + (4 if has_nulls else 0), align)
    entry = maxalign(data_offset + math.ceil(width), align) + 4
    per_page = max(1, int((bs - 24 - 16) * fillfactor / 100 // entry))
    return relpages, 1 + math.ceil(reltuples / per_page)


def _bloat_entry(db, names, actual, expected, bs):
    extra = max(0, actual - expected)
    return {"database": db, **names, "bytes": actual * bs, "bloatBytes": extra * bs, "bloatFraction": round(extra / actual, 4) if actual else 0}


def _per_database(q_db, dbs, fn):
    """fn(db) for every database: ([results], [{"database", "error"}])."""
    out, errors = [], []
    for db in dbs:
        try:
            out.extend(fn(db))
        except Exception as e:  # noqa: BLE001 - one database's failure is reported, the others still checked
            errors.append({"database": db, "error": one_line(e)})
    return out, errors


def _bloat_check(check_id, one, many, entries, skipped, errors, warn, min_bytes):
    """The status of a bloat estimate: warn for any relation at or past `warn`, or a database not checked."""
    entries.sort(key=lambda e: (-e["bloatFraction"], -e["bloatBytes"]))
    over = [e for e in entries if e["bloatFraction"] >= warn]
    for e in entries:
        e["status"] = "warn" if e["bloatFraction"] >= warn else "ok"
    details = over + [e for e in entries if e["status"] == "ok"][:max(0, 5 - len(over))] + errors
    name = lambda e: ".".join([e["database"], e["schema"], e.get("index") or e["table"]])  # noqa: E731
    notes = []
    if skipped:
        notes.append("%s without statistics (never analyzed) not estimated" % plural(len(skipped), one, many))
    if errors:
        notes.append("could not check %s: %s" % (", ".join(e["database"] for e in errors), errors[0]["error"]))
    note = " (%s)" % "; ".join(notes) if notes else ""
    scope = "%s of %s or more" % (many, fmt_bytes(min_bytes))
    if over:
        top = over[0]
        summary = "estimate: %d of the %s %s over %s bloat, most %s ~%s (%s of %s)%s" % (
            len(over), scope, "is" if len(over) == 1 else "are", fmt_fraction(warn), name(top), fmt_fraction(top["bloatFraction"]), fmt_bytes(top["bloatBytes"]),
            fmt_bytes(top["bytes"]), note)
    elif entries:
        top = entries[0]
        summary = "estimate: none of the %s is over %s bloat, most %s ~%s%s" % (scope, fmt_fraction(warn), name(top), fmt_fraction(top["bloatFraction"]), note)
    else:
        summary = "estimate: no %s to estimate%s" % (scope, note)
    return result(check_id, "warn" if over or errors else "ok", summary, entries[0]["bloatFraction"] if entries else 0, details)


def check_table_bloat(query, dbs, t):
    skipped = []

    def one(db):
        out = []
        for schema, table, relpages, reltuples, toastpages, toasttuples, ff, columns, unknown, width, nulls, bs, align in query(db, SQL_TABLE_BLOAT, (t["bloatMinBytes"],)):
            if reltuples < 0 or unknown:
                skipped.append({"database": db, "schema": schema, "table": table})
                continue
            actual, expected = table_estimate(relpages, reltuples, toastpages, toasttuples, ff, columns, width, nulls, bs, align)
            out.append({**_bloat_entry(db, {"schema": schema, "table": table}, actual, expected, bs), "rows": int(reltuples)})
        return out
    entries, errors = _per_database(query, dbs, one)
    return _bloat_check("table-bloat", "table", "tables", entries, skipped, errors, t["tableBloatWarnFraction"], t["bloatMinBytes"])


def check_index_bloat(query, dbs, t):
    skipped = []

    def one(db):
        out = []
        for schema, table, index, relpages, reltuples, ff, columns, unknown, width, nulls, bs, align in query(db, SQL_INDEX_BLOAT, (t["bloatMinBytes"],)):
            if reltuples < 0 or unknown:
                skipped.append({"database": db, "schema": schema, "index": index})
                continue
            actual, expected = index_estimate(relpages, reltuples, ff, width, nulls, bs, align)
            out.append({**_bloat_entry(db, {"schema": schema, "table": table, "index": index}, actual, expected, bs), "entries": int(reltuples)})
        return out
    entries, errors = _per_database(query, dbs, one)
    return _bloat_check("index-bloat", "B-tree index", "B-tree indexes", entries, skipped, errors, t["indexBloatWarnFraction"], t["bloatMinBytes"])


def _ago(seconds):
    return None if seconds is None else round(float(seconds), 0)


def check_autovacuum(query, dbs, t):
    factor, hot = t["autovacuumBehindFactor"], int(t["hotTables"])

    def one(db):
        out = []
        for (schema, table, writes, live, dead, mods, vtrigger, atrigger, av_ago, v_ago, aa_ago, a_ago, enabled, running, rank) in query(db, SQL_AUTOVACUUM, (hot, factor, factor)):
            behind = []
            if dead > factor * vtrigger:
                behind.append("vacuum")
            if mods > factor * atrigger:
                behind.append("analyze")
            out.append({"database": db, "schema": schema, "table": table, "hot": rank <= hot and writes > 0, "rowsWritten": writes, "liveTuples": live, "deadTuples": dead,
                        "modifiedSinceAnalyze": mods, "vacuumStartsAt": round(vtrigger), "analyzeStartsAt": round(atrigger), "autovacuumEnabled": bool(enabled),
                        "vacuumRunning": bool(running), "lastAutovacuumSecondsAgo": _ago(av_ago), "lastVacuumSecondsAgo": _ago(v_ago),
                        "lastAutoanalyzeSecondsAgo": _ago(aa_ago), "lastAnalyzeSecondsAgo": _ago(a_ago), "behind": behind, "status": "warn" if behind else "ok"})
        return out
    details, errors = _per_database(query, dbs, one)
    behind = [d for d in details if d["behind"]]
    def when(auto, manual):
        text = "never" if auto is None else fmt_seconds(auto) + " ago"
        return text + (" (by hand %s ago)" % fmt_seconds(manual) if manual is not None and (auto is None or manual < auto) else "")
    name = lambda d: "%s.%s.%s" % (d["database"], d["schema"], d["table"])  # noqa: E731
    notes = " (could not check %s: %s)" % (", ".join(e["database"] for e in errors), errors[0]["error"]) if errors else ""
    if behind:
        d = behind[0]
        what = []
        if "vacuum" in d["behind"]:
            what.append("%s dead tuples where autovacuum starts at %s" % (fmt_count(d["deadTuples"]), fmt_count(d["vacuumStartsAt"])))
        if "analyze" in d["behind"]:
            what.append("%s rows changed since the last analyze where autoanalyze starts at %s" % (fmt_count(d["modifiedSinceAnalyze"]), fmt_count(d["analyzeStartsAt"])))
        extra = ("; autovacuum is off for it" if not d["autovacuumEnabled"] else "") + ("; a vacuum is running on it now" if d["vacuumRunning"] else "")
        summary = "autovacuum is behind on %s: %s has %s (last autovacuum %s, last autoanalyze %s%s); warn past %g× the start point%s" % (
            plural(len(behind), "table"), name(d), " and ".join(what), when(d["lastAutovacuumSecondsAgo"], d["lastVacuumSecondsAgo"]), when(d["lastAutoanalyzeSecondsAgo"], d["lastAnalyzeSecondsAgo"]), extra, factor, notes)
        return result("autovacuum", "warn", summary, len(behind), behind + [x for x in details if not x["behind"]] + errors)
    hot_tables = [d for d in details if d["hot"]]
    if not hot_tables:
        return result("autovacuum", "warn" if errors else "ok", "no table has been written to yet%s" % notes, 0, errors)
    d = max(hot_tables, key=lambda x: x["rowsWritten"])
    summary = "autovacuum keeps up with the %s: hottest %s (last autovacuum %s, last autoanalyze %s); warn past %g× the start point%s" % (
        plural(len(hot_tables), "hot table"), name(d), when(d["lastAutovacuumSecondsAgo"], d["lastVacuumSecondsAgo"]), when(d["lastAutoanalyzeSecondsAgo"], d["lastAnalyzeSecondsAgo"]), factor, notes)
    return result("autovacuum", "warn" if errors else "ok", summary, 0, details + errors)


def largest(query, dbs, t):
    n = int(t["largestRelations"])

    def one(db):
        return [{"database": db, "schema": r[0], "relation": r[1], "kind": "materialized view" if r[2] == "m" else "table", "totalBytes": r[3], "tableBytes": r[4],
                 "indexBytes": r[5], "exact": bool(r[6])} for r in query(db, SQL_LARGEST, (n,))]
    rows, errors = _per_database(query, dbs, one)
    rows.sort(key=lambda r: (-r["totalBytes"], r["database"], r["schema"], r["relation"]))
    return rows[:n], errors


# ---------------------------------------------------------------------------------------------
def one_line(e):
    text = " ".join(str(e).split())
    return text[:400] or e.__class__.__name__


def report(cfg, query):
    """The health document (see the module docstring). `query(db, sql, params=None)` returns rows."""
    t = thresholds(cfg)
    app = cfg.get("appDatabase") or "postgres"
    expected = list(cfg.get("replicas") or [])

    def q(sql, params=None):
        return query(app, sql, params)

    checks = {}

    def run(check_id, fn, *args):
        try:
            checks[check_id] = fn(*args)
        except Exception as e:  # noqa: BLE001 - a check that could not run says so; the others still run
            checks[check_id] = result(check_id, "warn", "could not check: %s" % one_line(e), None, [{"error": one_line(e)}])

    try:
        checks["primary"] = check_primary(q, t)
    except Exception as e:  # noqa: BLE001
        checks["primary"] = result("primary", "critical", "the primary did not answer: %s" % one_line(e), None, [{"error": one_line(e)}])
        for check_id in CHECKS[1:]:
            checks[check_id] = result(check_id, "warn", "not checked: the primary did not answer", None)
        return document(t, checks, [], [])

    run("replicas", check_replicas, q, t, expected)
    run("replication-lag", check_replication_lag, q, t)
    run("replication-slots", check_slots, q, t)
    run("connections", check_connections, q, t)
    run("long-running-queries", check_long_queries, q, t)
    run("idle-in-transaction", check_idle_in_transaction, q, t)
    run("blocking-locks", check_blocking, q, t)
    run("wraparound", check_wraparound, q, t)
    run("cache-hit-ratio", check_cache, q, t)
    run("wal-size", check_wal, q, t)
    try:
        dbs = [r[0] for r in q(SQL_DATABASES)]
    except Exception as e:  # noqa: BLE001
        for check_id in ("table-bloat", "index-bloat", "autovacuum"):
            checks[check_id] = result(check_id, "warn", "could not check: cannot list the databases: %s" % one_line(e), None, [{"error": one_line(e)}])
        return document(t, checks, [], [{"database": None, "error": one_line(e)}])
    run("table-bloat", check_table_bloat, query, dbs, t)
    run("index-bloat", check_index_bloat, query, dbs, t)
    run("autovacuum", check_autovacuum, query, dbs, t)
    try:
        big, big_errors = largest(query, dbs, t)
    except Exception as e:  # noqa: BLE001
        big, big_errors = [], [{"database": None, "error": one_line(e)}]
    return document(t, checks, big, big_errors)


def document(t, checks, big, big_errors):
    ordered = [checks[c] for c in CHECKS]
    return {"format": 1, "status": worst(c["status"] for c in ordered), "thresholds": t, "checks": ordered, "largest": big, "largestErrors": big_errors}
