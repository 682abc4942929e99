"""pgharbor-ops' query insights and routine maintenance, on the primary (superuser over its socket).

  queries      the top statements of pg_stat_statements by total or mean time, calls, rows or blocks
               read; normalised text, share of total time, I/O time against the rest
  queries-reset  pg_stat_statements_reset()
  indexes      advice only, nothing is created or dropped: unused, duplicate, overlapping and invalid
               indexes; tables read mostly by sequential scans, with candidate indexes drawn from the
               captured statements' predicates, each checked with a hypothetical index (hypopg, in a
               transaction that is rolled back) for the planner's estimated cost before and after
  maintenance  ANALYZE where statistics are stale, VACUUM where dead rows or transaction-ID age call
               for it beyond autovacuum; SKIP_LOCKED, never VACUUM FULL; the run is recorded

Every function takes `connect(db)` returning a psycopg2 connection (pgharbor_ops.connect) and
returns a JSON-able dict. Importing this module has no side effects.
"""
import datetime as dt
import json
import re

import psycopg2
from psycopg2 import sql

ORDER_BY = {"total": "total_exec_time", "mean": "mean_exec_time", "calls": "calls", "rows": "rows", "reads": "shared_blks_read"}

# Where a statement's predicates are: after WHERE, up to the clause that ends them.
WHERE = re.compile(r"\bwhere\b(.*?)(?=\b(?:group\s+by|order\s+by|limit|offset|returning|having|window|for\s+update|for\s+share|union|except|intersect)\b|\)\s*(?:select|$)|$)", re.I | re.S)
EQUALITY = re.compile(r"(?:\b\w+\.)?\"?([a-z_][a-z0-9_]*)\"?\s*(?:=(?!>)|\bin\s*\(|=\s*any\s*\(|\bis\s+(?:not\s+)?null\b)", re.I)
EQUALITY_REVERSED = re.compile(r"(?:\$\d+|'[^']*'|\b\d+)\s*=\s*(?:\b\w+\.)?\"?([a-z_][a-z0-9_]*)\"?", re.I)
RANGE = re.compile(r"(?:\b\w+\.)?\"?([a-z_][a-z0-9_]*)\"?\s*(?:<=|>=|<(?!>)|>|\bbetween\b|\blike\b)", re.I)
PLANNABLE = re.compile(r"^\s*(?:/\*.*?\*/\s*)*(select|with|update|delete)\b", re.I | re.S)

DEFAULT_INDEX_ADVICE = {
    # A table is "read by sequential scans" when it has at least this many rows, was scanned
    # sequentially this often, and a sequential scan reads this many rows on average.
    "minRows": 1000, "minSeqScans": 5, "minRowsPerSeqScan": 1000,
    # A candidate index is proposed when the planner uses it and its estimated cost drops this much.
    "minCostReduction": 0.2,
    "statementsPerTable": 5,
}

DEFAULT_MAINTENANCE = {
    # ANALYZE when more than analyzeMinRows + analyzeFraction x rows changed since the last one
    # (autovacuum's own default is 50 + 10 %: the job catches what it has not reached yet) or never.
    "analyzeMinRows": 50, "analyzeFraction": 0.05,
    # VACUUM when dead rows exceed vacuumMinDeadRows + vacuumDeadFraction x live rows (autovacuum: 50 + 20 %).
    "vacuumMinDeadRows": 1000, "vacuumDeadFraction": 0.1,
    # VACUUM (an aggressive one, freezing) when a table's transaction-ID age passes this fraction of
    # autovacuum_freeze_max_age, well before the anti-wraparound autovacuum that cannot be cancelled.
    "freezeAgeFraction": 0.5,
    "keepRuns": 100,
}


class InsightError(Exception):
    """An expected failure (pgharbor_ops turns it into its Failure: one line, exit 1)."""


def _rows(conn, statement, params=None):
    with conn.cursor() as cur:
        cur.execute(statement, params)
        if not cur.description:
            return []
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]


def _num(v):
    """Numeric from the server (Decimal, int, float, None) as a float or int for JSON."""
    if v is None:
        return None
    f = float(v)
    return int(f) if f.is_integer() and abs(f) < 2 ** 53 else f


def _databases(conn):
    return [r["datname"] for r in _rows(conn, "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname")]


# ---------------------------------------------------------------------------------------------
# queries
# ---------------------------------------------------------------------------------------------
def queries(cfg, connect, by="total", limit=10, database=None, include_service_roles=False):
    if by not in ORDER_BY:
        raise InsightError("--by %s: use one of %s" % (by, ", ".join(ORDER_BY)))
    if not isinstance(limit, int) or limit < 1 or limit > 1000:
        raise InsightError("--limit %s: give a whole number from 1 to 1000" % limit)
    conn = connect(cfg["appDatabase"])
    try:
        conn.autocommit = True
        version = int(_rows(conn, "SHOW server_version_num")[0]["server_version_num"])
        if not _rows(conn, "SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'"):
            raise InsightError("pg_stat_statements is not installed in %s (role reconciliation creates it)" % cfg["appDatabase"])
        # PostgreSQL 17 split the block I/O timings into shared, local and temp.
        io = ("s.shared_blk_read_time + s.shared_blk_write_time + s.local_blk_read_time + s.local_blk_write_time + s.temp_blk_read_time + s.temp_blk_write_time"
              if version >= 170000 else "s.blk_read_time + s.blk_write_time + s.temp_blk_read_time + s.temp_blk_write_time")
        statement = sql.SQL("""
            WITH s AS (
              SELECT s.queryid, d.datname AS database, r.rolname AS role, s.query, s.calls, s.total_exec_time, s.mean_exec_time,
                     s.rows, s.shared_blks_hit, s.shared_blks_read, {io} AS io_time
              FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid JOIN pg_roles r ON r.oid = s.userid
              WHERE s.toplevel AND (%(db)s::text IS NULL OR d.datname = %(db)s)
                AND (%(all)s OR r.rolname <> ALL (%(service)s))
            )
            SELECT *, total_exec_time / NULLIF(sum(total_exec_time) OVER (), 0) AS share,
                   (SELECT stats_reset FROM pg_stat_statements_info) AS since
            FROM s ORDER BY {order} DESC NULLS LAST, queryid LIMIT %(limit)s""").format(io=sql.SQL(io), order=sql.Identifier(ORDER_BY[by]))
        rows = _rows(conn, statement, {"db": database, "all": include_service_roles, "service": list(cfg.get("serviceRoles", [])), "limit": limit})
    finally:
        conn.close()
    out = []
    for r in rows:
        total = float(r["total_exec_time"] or 0)
        io_ms = float(r["io_time"] or 0)
        blocks = int(r["shared_blks_hit"] or 0) + int(r["shared_blks_read"] or 0)
        out.append({
            "queryid": str(r["queryid"]), "database": r["database"], "role": r["role"], "query": r["query"],
            "calls": int(r["calls"]), "totalMs": round(total, 3), "meanMs": round(float(r["mean_exec_time"] or 0), 3), "rows": int(r["rows"]),
            "share": round(float(r["share"] or 0), 4),
            "ioMs": round(io_ms, 3), "ioShare": round(min(1.0, io_ms / total), 4) if total > 0 else 0.0,
            "sharedBlocksRead": int(r["shared_blks_read"] or 0), "cacheHitRatio": round(int(r["shared_blks_hit"] or 0) / blocks, 4) if blocks else None,
        })
    since = rows[0]["since"].isoformat() if rows and rows[0]["since"] else None
    return {"by": by, "statsSince": since, "statements": out}


def queries_reset(cfg, connect):
    conn = connect(cfg["appDatabase"])
    try:
        conn.autocommit = True
        _rows(conn, "SELECT pg_stat_statements_reset()")
        return {"reset": True, "at": dt.datetime.now(dt.timezone.utc).isoformat()}
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# indexes
# ---------------------------------------------------------------------------------------------
USER_INDEXES = """
SELECT i.indexrelid, i.indrelid, n.nspname AS schema, t.relname AS "table", c.relname AS "index", am.amname AS method,
       i.indisunique AS is_unique, i.indisprimary AS is_primary, i.indisvalid AS is_valid, i.indisexclusion AS is_exclusion,
       string_to_array(i.indkey::text, ' ')::int[] AS keys, i.indclass::text AS opclasses, i.indcollation::text AS collations,
       pg_get_expr(i.indexprs, i.indrelid) AS exprs, pg_get_expr(i.indpred, i.indrelid) AS pred,
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) AS backs_constraint,
       COALESCE(s.idx_scan, 0) AS scans, pg_relation_size(i.indexrelid) AS bytes, pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace JOIN pg_am am ON am.oid = c.relam
LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = i.indexrelid
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
ORDER BY n.nspname, t.relname, c.relname"""

SEQ_SCAN_TABLES = """
SELECT s.relid, s.schemaname AS schema, s.relname AS "table", s.seq_scan, s.seq_tup_read, COALESCE(s.idx_scan, 0) AS idx_scan,
       s.n_live_tup AS rows, pg_relation_size(s.relid) AS bytes
FROM pg_stat_user_tables s
WHERE s.n_live_tup >= %(minRows)s AND s.seq_scan >= %(minSeqScans)s AND s.seq_tup_read / s.seq_scan >= %(minRowsPerSeqScan)s
ORDER BY s.seq_tup_read DESC LIMIT 20"""


def _name(ix):
    return "%s.%s" % (ix["schema"], ix["index"])


def _overlaps(indexes):
    """(redundant, covering) pairs: a plain btree index whose key columns (and operator classes) are a
    leading prefix of another btree index's on the same table. Unique, expression and partial
    indexes are left alone: they say more than their columns."""
    out = []
    plain = [ix for ix in indexes if ix["method"] == "btree" and ix["is_valid"] and not ix["exprs"] and not ix["pred"] and 0 not in ix["keys"]]
    for a in plain:
        if a["is_unique"] or a["backs_constraint"]:
            continue
        for b in plain:
            if b is a or b["indrelid"] != a["indrelid"] or len(b["keys"]) <= len(a["keys"]):
                continue
            n = len(a["keys"])
            if b["keys"][:n] == a["keys"] and b["opclasses"].split()[:n] == a["opclasses"].split() and b["collations"].split()[:n] == a["collations"].split():
                out.append((a, b))
                break
    return out


def _columns(conn, relid):
    return [r["attname"] for r in _rows(conn, "SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum", (relid,))]


def predicate_columns(statement, columns):
    """Candidate index columns of one normalised statement for a table with `columns`: the columns
    compared for equality in its WHERE clauses (in order of appearance), then the first one compared
    by range. Column names are matched case-insensitively; others (another table's) are ignored."""
    known = {c.lower(): c for c in columns}
    eq, rng = [], []
    for m in WHERE.finditer(statement):
        clause = m.group(1)
        for pattern, into in ((EQUALITY, eq), (EQUALITY_REVERSED, eq), (RANGE, rng)):
            for c in pattern.findall(clause):
                col = known.get(c.lower())
                if col and col not in into:
                    into.append(col)
    rng = [c for c in rng if c not in eq]
    return (eq + rng[:1])[:3]


def _plan_cost(cur, statement):
    cur.execute("EXPLAIN (GENERIC_PLAN, FORMAT JSON) " + statement)
    doc = cur.fetchone()[0]
    plan = (json.loads(doc) if isinstance(doc, str) else doc)[0]["Plan"]
    return float(plan["Total Cost"]), json.dumps(plan)


def quoted(conn, names):
    """Names as PostgreSQL's quote_ident writes them: quoted only when they need it."""
    return [r["q"] for r in _rows(conn, "SELECT quote_ident(x) AS q FROM unnest(%s::text[]) WITH ORDINALITY AS u(x, n) ORDER BY n", (list(names),))]


def _check_candidate(conn, table, columns, statement, role):
    """The planner's estimated cost of `statement` without and with a hypothetical index on
    `columns`, in a transaction that is rolled back (the hypopg extension included). The statement
    is planned as the role that ran it, never as the superuser: planning can call the functions it
    names (constant folding), and those are the application's."""
    schema, name, *cols = quoted(conn, [table["schema"], table["table"], *columns])
    target = "%s.%s (%s)" % (schema, name, ", ".join(cols))
    try:
        with conn.cursor() as cur:
            cur.execute("SET LOCAL statement_timeout = '30s'")
            try:
                cur.execute("CREATE EXTENSION IF NOT EXISTS hypopg")
            except psycopg2.Error as e:
                raise InsightError("hypopg is not available on the server (%s): the image ships postgresql-<major>-hypopg" % str(e).strip().splitlines()[0])
            cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
            before, _ = _plan_cost(cur, statement)
            cur.execute("SELECT indexname FROM hypopg_create_index(%s)", ("CREATE INDEX ON " + target,))
            hypothetical = cur.fetchone()[0]
            after, plan = _plan_cost(cur, statement)
        return {"costBefore": before, "costAfter": after, "usesIndex": hypothetical in plan, "create": "CREATE INDEX CONCURRENTLY ON %s;" % target}
    finally:
        conn.rollback()


def indexes(cfg, connect, database=None):
    advice = {**DEFAULT_INDEX_ADVICE, **(cfg.get("indexAdvice") or {})}
    db = database or cfg["appDatabase"]
    conn = connect(db)
    try:
        conn.autocommit = True
        every = _rows(conn, USER_INDEXES)
        reset = _rows(conn, "SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()")
        stats_since = reset[0]["stats_reset"].isoformat() if reset and reset[0]["stats_reset"] else None
        described = lambda ix: {"index": _name(ix), "table": "%s.%s" % (ix["schema"], ix["table"]), "bytes": int(ix["bytes"]), "scans": int(ix["scans"]), "definition": ix["definition"]}  # noqa: E731
        unused = [{**described(ix), "drop": "DROP INDEX CONCURRENTLY %s.%s;" % tuple(quoted(conn, [ix["schema"], ix["index"]]))}
                  for ix in every if ix["scans"] == 0 and ix["is_valid"] and not (ix["is_unique"] or ix["is_primary"] or ix["is_exclusion"] or ix["backs_constraint"])]
        groups = {}
        for ix in every:
            key = (ix["indrelid"], ix["method"], tuple(ix["keys"]), ix["opclasses"], ix["collations"], ix["exprs"] or "", ix["pred"] or "")
            groups.setdefault(key, []).append(ix)
        duplicates = [{"table": "%s.%s" % (g[0]["schema"], g[0]["table"]), "indexes": [described(ix) for ix in g]} for g in groups.values() if len(g) > 1]
        overlapping = [{"redundant": described(a), "coveredBy": described(b)} for a, b in _overlaps(every)]
        invalid = [described(ix) for ix in every if not ix["is_valid"]]

        heavy = []
        statements = []
        if _rows(conn, "SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'"):
            # Statements of login roles other than superusers: each is planned as its own role below.
            statements = _rows(conn, "SELECT s.queryid, s.query, s.calls, s.total_exec_time, s.mean_exec_time, r.rolname AS role FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid "
                                     "WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND s.toplevel AND NOT r.rolsuper ORDER BY s.total_exec_time DESC LIMIT 500")
        conn.autocommit = False
        for t in _rows(conn, SEQ_SCAN_TABLES, advice):
            conn.rollback()
            columns = _columns(conn, t["relid"])
            word = re.compile(r'(?<![\w."])(?:\w+\.)?"?%s"?(?![\w"])' % re.escape(t["table"]), re.I)
            mine = [s for s in statements if word.search(s["query"]) and PLANNABLE.match(s["query"])][: advice["statementsPerTable"]]
            existing = [ix["keys"] for ix in every if ix["indrelid"] == t["relid"] and ix["is_valid"]]
            attnums = {c: i + 1 for i, c in enumerate(columns)}
            candidates, seen = [], set()
            for s in mine:
                cols = predicate_columns(s["query"], columns)
                if not cols or tuple(cols) in seen:
                    continue
                seen.add(tuple(cols))
                keys = [attnums[c] for c in cols]
                if any(k[: len(keys)] == keys for k in existing):
                    continue  # an index already leads with these columns
                try:
                    check = _check_candidate(conn, t, cols, s["query"], s["role"])
                except psycopg2.Error as e:
                    conn.rollback()
                    candidates.append({"columns": cols, "queryid": str(s["queryid"]), "error": str(e).strip().splitlines()[0]})
                    continue
                reduction = 1 - check["costAfter"] / check["costBefore"] if check["costBefore"] > 0 else 0.0
                candidates.append({
                    "columns": cols, "queryid": str(s["queryid"]), "query": s["query"], "calls": int(s["calls"]), "meanMs": round(float(s["mean_exec_time"]), 3),
                    "costBefore": check["costBefore"], "costAfter": check["costAfter"], "costReduction": round(reduction, 4),
                    "usesIndex": check["usesIndex"], "recommended": check["usesIndex"] and reduction >= advice["minCostReduction"], "create": check["create"],
                })
            heavy.append({"table": "%s.%s" % (t["schema"], t["table"]), "rows": int(t["rows"]), "bytes": int(t["bytes"]), "seqScans": int(t["seq_scan"]),
                          "rowsPerSeqScan": int(t["seq_tup_read"]) // max(1, int(t["seq_scan"])), "indexScans": int(t["idx_scan"]), "candidates": candidates})
        conn.rollback()
    finally:
        conn.close()
    return {"database": db, "statsSince": stats_since, "unused": unused, "duplicates": duplicates, "overlapping": overlapping, "invalid": invalid,
            "seqScanTables": heavy,
            "note": "scans on replicas are not counted here: an index only replicas use looks unused; check them before dropping anything"}


# ---------------------------------------------------------------------------------------------
# maintenance
# ---------------------------------------------------------------------------------------------
STALE_TABLES = """
SELECT c.oid, n.nspname AS schema, c.relname AS "table", c.relkind AS kind,
       COALESCE(s.n_live_tup, 0) AS live, COALESCE(s.n_dead_tup, 0) AS dead, COALESCE(s.n_mod_since_analyze, 0) AS modified,
       GREATEST(c.reltuples, 0) AS reltuples, age(c.relfrozenxid) AS xid_age,
       COALESCE(s.last_analyze, s.last_autoanalyze) IS NULL AS never_analyzed
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
ORDER BY n.nspname, c.relname"""


def plan_table(t, m, freeze_max_age):
    """What the job does to one table: (analyze, vacuum, reasons)."""
    reasons = []
    analyze = vacuum = False
    if t["never_analyzed"] and (t["live"] > 0 or t["reltuples"] > 0):
        analyze = True
        reasons.append("never analysed")
    elif t["modified"] > m["analyzeMinRows"] + m["analyzeFraction"] * t["reltuples"]:
        analyze = True
        reasons.append("%d rows changed since the last analyse" % t["modified"])
    if t["dead"] > m["vacuumMinDeadRows"] + m["vacuumDeadFraction"] * t["live"]:
        vacuum = True
        reasons.append("%d dead rows (%d live)" % (t["dead"], t["live"]))
    if t["kind"] == "r" and t["xid_age"] is not None and t["xid_age"] > m["freezeAgeFraction"] * freeze_max_age:
        vacuum = True
        reasons.append("transaction-ID age %d (autovacuum_freeze_max_age %d)" % (t["xid_age"], freeze_max_age))
    if t["kind"] == "m" and vacuum:
        vacuum, analyze = False, True  # a materialised view is refreshed, not vacuumed by us
    return analyze, vacuum, reasons


def maintenance(cfg, connect, dry_run=False, now=None):
    m = {**DEFAULT_MAINTENANCE, **(cfg.get("maintenance") or {})}
    started = now or dt.datetime.now(dt.timezone.utc)
    root = connect(cfg["appDatabase"])
    try:
        root.autocommit = True
        dbs = _databases(root)
        freeze_max_age = int(_rows(root, "SELECT current_setting('autovacuum_freeze_max_age')::bigint AS v")[0]["v"])
    finally:
        root.close()
    report = {"startedAt": started.isoformat(), "dryRun": dry_run, "databases": []}
    for db in dbs:
        entry = {"database": db, "analyzed": [], "vacuumed": [], "skipped": []}
        report["databases"].append(entry)
        try:
            conn = connect(db)
        except Exception as e:  # noqa: BLE001 - one database's failure is recorded, the others go on
            entry["error"] = str(e).strip().splitlines()[0]
            continue
        try:
            conn.autocommit = True  # VACUUM cannot run in a transaction block
            _rows(conn, "SET statement_timeout = 0")
            for t in _rows(conn, STALE_TABLES):
                analyze, vacuum, reasons = plan_table(t, m, freeze_max_age)
                if not (analyze or vacuum):
                    continue
                name = "%s.%s" % (t["schema"], t["table"])
                target = sql.SQL("{}.{}").format(sql.Identifier(t["schema"]), sql.Identifier(t["table"]))
                if vacuum:
                    command = sql.SQL("VACUUM (SKIP_LOCKED{}) {}").format(sql.SQL(", ANALYZE") if analyze else sql.SQL(""), target)
                else:
                    command = sql.SQL("ANALYZE (SKIP_LOCKED) {}").format(target)
                done = {"table": name, "why": "; ".join(reasons), "command": command.as_string(conn)}
                if not dry_run:
                    del conn.notices[:]
                    _rows(conn, command)
                    if any("skipping" in n for n in conn.notices):
                        entry["skipped"].append({**done, "why": "locked by another session; the next run retries"})
                        continue
                if vacuum:
                    entry["vacuumed"].append(done)
                if analyze:
                    entry["analyzed"].append(done)
        except psycopg2.Error as e:
            entry["error"] = str(e).strip().splitlines()[0]
        finally:
            conn.close()
    finished = dt.datetime.now(dt.timezone.utc)
    report["finishedAt"] = finished.isoformat()
    report["analyzed"] = sum(len(d["analyzed"]) for d in report["databases"])
    report["vacuumed"] = sum(len(d["vacuumed"]) for d in report["databases"])
    report["ok"] = not any("error" in d for d in report["databases"])
    if not dry_run:
        record_run(cfg, connect, report, m["keepRuns"])
    return report


def record_run(cfg, connect, report, keep):
    """The run in pgharbor.maintenance_runs (the exporter reads the newest one); older rows pruned."""
    conn = connect(cfg["appDatabase"])
    try:
        with conn:
            _rows(conn, "INSERT INTO pgharbor.maintenance_runs (started_at, finished_at, ok, analyzed, vacuumed, details) VALUES (%s, %s, %s, %s, %s, %s)",
                  (report["startedAt"], report["finishedAt"], report["ok"], report["analyzed"], report["vacuumed"], json.dumps(report["databases"])))
            _rows(conn, "DELETE FROM pgharbor.maintenance_runs WHERE id <= (SELECT max(id) FROM pgharbor.maintenance_runs) - %s", (keep,))
    finally:
        conn.close()
