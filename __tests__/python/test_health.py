"""health (images/backup/health.py): every check on canned rows at its ok/warn/critical boundaries, the
thresholds from cfg["health"], the bloat estimates, failures that become "could not check", and the
document's shape; then `pgharbor-ops health` itself, and on a scratch PostgreSQL with a streaming
replica, a bloated table, a transaction left idle, a blocked UPDATE and a long statement."""
import contextlib
import glob
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "images", "backup"))

import health  # noqa: E402

try:
    import psycopg2
    import pgharbor_ops as ops
except ImportError:  # health.py itself needs neither; the command and the real-server tests do
    psycopg2 = ops = None

PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))

MIB = 1048576


class FakeServer:
    """query(db, sql, params): rows by the statement's tag (/* pgharbor health: TAG */), per database when
    answers has (TAG, db), else answers[TAG]. An Exception as the answer is raised. Records every call."""

    def __init__(self, answers=None, databases=("app", "postgres")):
        self.answers = {**baseline(), **(answers or {})}
        self.answers.setdefault("databases", [(d,) for d in databases])
        self.calls = []

    def __call__(self, db, sql, params=None):
        tag = sql.split("*/")[0].split("pgharbor health:")[1].strip()
        self.calls.append((db, tag, params))
        answer = self.answers.get((tag, db), self.answers.get(tag))
        if answer is None:
            raise AssertionError("no canned answer for %s in %s" % (tag, db))
        if isinstance(answer, Exception):
            raise answer
        return answer

    def tags(self, db=None):
        return [c[1] for c in self.calls if db is None or c[0] == db]


def baseline():
    """A healthy primary with one streaming replica: every check ok."""
    return {
        "primary": [(False, "17.6 (Debian 17.6-1)", 3600.0)],
        "replication": [("replica-1", "streaming", "10.0.0.2", None, 0, "async")],
        "replication-slots": [("pgharbor_replica_1", "physical", True, False, "reserved", 1024, 8192 * MIB)],
        "connections": [(100, 3, 0, {"active": 2, "idle": 5})],
        "long-running-queries": [],
        "idle-in-transaction": [],
        "blocking-locks": [],
        "wraparound": [("app", 1000, 10, 200000000, 400000000), ("postgres", 900, 0, 200000000, 400000000)],
        "cache-hit-ratio": [(999000, 1000, 86400.0)],
        "wal-size": [(64 * MIB, 4, 1024 * MIB, 0)],
        "table-bloat": [],
        "index-bloat": [],
        "autovacuum": [],
        "largest": [],
    }


def report(answers=None, cfg=None, databases=("app", "postgres")):
    server = FakeServer(answers, databases)
    doc = health.report({"appDatabase": "app", "replicas": ["replica-1"], **(cfg or {})}, server)
    return doc, server


def check(doc, check_id):
    return next(c for c in doc["checks"] if c["check"] == check_id)


def status_of(answers, check_id, cfg=None):
    doc, _ = report(answers, cfg)
    return check(doc, check_id)["status"]


def session_row(seconds, pid=101, app="web", xact=None):
    return (pid, "app", "app", app, "10.0.0.9", seconds, xact if xact is not None else seconds, "Client:ClientRead", -4242, "SELECT")


class ThresholdTests(unittest.TestCase):
    def test_defaults_and_overrides(self):
        self.assertEqual(health.thresholds({}), health.DEFAULTS)
        t = health.thresholds({"health": {"longQueryWarnSeconds": 5, "bloatMinBytes": 0}})
        self.assertEqual((t["longQueryWarnSeconds"], t["bloatMinBytes"], t["longQueryCriticalSeconds"]), (5, 0, 300))

    def test_bad_thresholds_are_refused_with_their_name(self):
        for given, message in [({"longQueryWarnSecs": 5}, "unknown health threshold longQueryWarnSecs (known: "),
                                ({"replicaLagWarnSeconds": -1}, "replicaLagWarnSeconds = -1: must be a number >= 0"),
                                ({"replicaLagWarnSeconds": "60"}, "replicaLagWarnSeconds = '60': must be a number"),
                                ({"hotTables": True}, "hotTables = True: must be a number"),
                                ({"hotTables": 2.5}, "hotTables = 2.5: must be a whole number"),
                                ({"longQueryWarnSeconds": 400}, "longQueryWarnSeconds = 400 is above longQueryCriticalSeconds = 300"),
                                ([1], "must be an object")]:
            with self.assertRaises(health.ThresholdError) as e:
                health.report({"health": given}, FakeServer())
            self.assertIn(message, str(e.exception))

    def test_thresholds_in_the_document(self):
        doc, _ = report(cfg={"health": {"hotTables": 3}})
        self.assertEqual(doc["thresholds"], {**health.DEFAULTS, "hotTables": 3})


class DocumentTests(unittest.TestCase):
    def test_healthy(self):
        doc, server = report()
        self.assertEqual([c["check"] for c in doc["checks"]], list(health.CHECKS))
        self.assertEqual({c["check"]: c["status"] for c in doc["checks"]}, {c: "ok" for c in health.CHECKS})
        self.assertEqual((doc["format"], doc["status"], doc["largest"], doc["largestErrors"]), (1, "ok", [], []))
        for c in doc["checks"]:
            self.assertEqual(sorted(c), ["check", "details", "status", "summary", "value"])
            self.assertTrue(c["summary"] and "\n" not in c["summary"], c)
        json.dumps(doc)  # JSON as it is

    def test_cluster_checks_in_the_app_database_per_database_checks_in_every_one(self):
        _, server = report(databases=("app", "postgres", "shop"))
        per_db = ["table-bloat", "index-bloat", "autovacuum", "largest"]
        self.assertEqual(sorted(set(server.tags("app")) - set(per_db)), sorted(["primary", "databases", "replication", "replication-slots", "connections", "long-running-queries",
                                                                                 "idle-in-transaction", "blocking-locks", "wraparound", "cache-hit-ratio", "wal-size"]))
        for db in ("postgres", "shop"):
            self.assertEqual(sorted(server.tags(db)), sorted(per_db))

    def test_overall_status_is_the_worst(self):
        doc, _ = report({"long-running-queries": [session_row(61)]})
        self.assertEqual(doc["status"], "warn")
        doc, _ = report({"long-running-queries": [session_row(61)], "replication": []})
        self.assertEqual(doc["status"], "critical")

    def test_primary_unreachable_is_critical_and_nothing_else_is_called_ok(self):
        doc, server = report({"primary": RuntimeError("cannot connect to app: connection refused\n\tIs the server running?")})
        self.assertEqual(doc["status"], "critical")
        primary = check(doc, "primary")
        self.assertEqual((primary["status"], primary["summary"]), ("critical", "the primary did not answer: cannot connect to app: connection refused Is the server running?"))
        self.assertEqual({c["status"] for c in doc["checks"][1:]}, {"warn"})
        self.assertEqual({c["summary"] for c in doc["checks"][1:]}, {"not checked: the primary did not answer"})
        self.assertEqual(server.tags(), ["primary"])

    def test_primary_in_recovery_is_critical(self):
        c = check(report({"primary": [(True, "17.6", 10.0)]})[0], "primary")
        self.assertEqual(c["status"], "critical")
        self.assertIn("is in recovery (a standby)", c["summary"])
        self.assertEqual(check(report()[0], "primary")["summary"], "primary up for 60 min, accepting writes (PostgreSQL 17.6)")

    def test_a_check_that_fails_says_so_and_the_others_still_run(self):
        doc, _ = report({"connections": RuntimeError("query on app: canceling statement due to statement timeout")})
        c = check(doc, "connections")
        self.assertEqual((c["status"], c["summary"], c["value"]), ("warn", "could not check: query on app: canceling statement due to statement timeout", None))
        self.assertEqual(check(doc, "wal-size")["status"], "ok")
        self.assertEqual(doc["status"], "warn")

    def test_databases_that_cannot_be_listed(self):
        doc, _ = report({"databases": RuntimeError("boom")})
        for c in ("table-bloat", "index-bloat", "autovacuum"):
            self.assertEqual((check(doc, c)["status"], check(doc, c)["summary"]), ("warn", "could not check: cannot list the databases: boom"))
        self.assertEqual(doc["largestErrors"], [{"database": None, "error": "boom"}])


class ReplicationTests(unittest.TestCase):
    def test_replicas(self):
        streaming = ("replica-1", "streaming", "10.0.0.2", 0.1, 0, "async")
        cases = [
            ([streaming], ["replica-1"], "ok", "1 of 1 replicas streaming (replica-1)"),
            ([], ["replica-1"], "critical", "0 of 1 replicas streaming: replica-1 not connected"),
            ([("replica-1", "catchup", "10.0.0.2", None, 99, "async")], ["replica-1"], "warn", "0 of 1 replicas streaming: replica-1 connected but not streaming yet (catchup)"),
            ([streaming, ("pg_basebackup", "backup", "10.0.0.3", None, None, "async")], ["replica-1", "replica-2"], "critical", "1 of 2 replicas streaming: replica-2 not connected"),
            ([], [], "ok", "no replicas configured"),
            ([streaming], [], "ok", "no replicas configured (streaming anyway: replica-1)"),
        ]
        for rows, expected, status, summary in cases:
            c = check(report({"replication": rows}, {"replicas": expected})[0], "replicas")
            self.assertEqual((c["status"], c["summary"]), (status, summary), (rows, expected))
        c = check(report({"replication": []})[0], "replicas")
        self.assertEqual(c["details"], [{"application": "replica-1", "state": "not connected", "client": None, "replayLagSeconds": None, "replayLagBytes": None, "syncState": None, "expected": True}])

    def test_lag_boundaries(self):
        for lag, status in [(None, "ok"), (59.9, "ok"), (60, "warn"), (299.9, "warn"), (300, "critical")]:
            c = check(report({"replication": [("replica-1", "streaming", "10.0.0.2", lag, 4096, "async")]})[0], "replication-lag")
            self.assertEqual((lag, c["status"], c["value"]), (lag, status, lag or 0.0))
        self.assertEqual(status_of({"replication": [("replica-1", "streaming", "x", 20.0, 0, "async")]}, "replication-lag", {"health": {"replicaLagWarnSeconds": 10, "replicaLagCriticalSeconds": 20}}), "critical")
        c = check(report({"replication": [("replica-1", "streaming", "x", 75.0, 3 * MIB, "async")]})[0], "replication-lag")
        self.assertEqual(c["summary"], "largest replay lag 75 s (replica-1, 3 MiB behind); warn at 60 s, critical at 5 min")
        # Only streaming replicas lag; a base backup's walsender does not.
        self.assertEqual(status_of({"replication": [("pg_basebackup", "backup", "x", 900.0, None, "async")]}, "replication-lag", {"replicas": []}), "ok")

    def test_slots(self):
        cap = 1000 * MIB

        def slot(active=True, wal_status="reserved", retained=MIB, cap=cap, name="pgharbor_replica_1"):
            return (name, "physical", active, False, wal_status, retained, cap)
        cases = [
            ([slot()], "ok"),
            ([slot(retained=499 * MIB)], "ok"),
            ([slot(retained=500 * MIB)], "warn"),
            ([slot(retained=800 * MIB)], "critical"),
            ([slot(wal_status="extended", retained=700 * MIB)], "warn"),
            ([slot(wal_status="unreserved", retained=990 * MIB)], "critical"),
            ([slot(active=False, wal_status="lost", retained=None)], "critical"),
            ([slot(), slot(active=False, name="spare")], "warn"),
            ([slot(retained=50 * 1024 * MIB, cap=-1)], "ok"),  # no cap: only an inactive slot or lost WAL is a finding
            ([], "ok"),
        ]
        for rows, status in cases:
            self.assertEqual((rows, status_of({"replication-slots": rows}, "replication-slots")), (rows, status))
        c = check(report({"replication-slots": [slot(), slot(active=False, retained=3 * MIB, name="spare")]})[0], "replication-slots")
        self.assertTrue(c["summary"].startswith("spare inactive: no replica streams through it, it retains 3 MiB ("), c["summary"])
        self.assertEqual(c["value"], 3 * MIB)
        self.assertEqual([d["status"] for d in c["details"]], ["ok", "warn"])


class SessionTests(unittest.TestCase):
    def test_connections(self):
        for used, status in [(79, "ok"), (80, "warn"), (94, "warn"), (95, "critical"), (100, "critical")]:
            c = check(report({"connections": [(100, 3, 0, {"active": 1, "idle": used - 1})]})[0], "connections")
            self.assertEqual((used, c["status"], c["value"]), (used, status, used / 100))
        c = check(report({"connections": [(200, 3, 0, {"idle": 7, "active": 2, "idle in transaction": 1})]})[0], "connections")
        self.assertEqual(c["summary"], "10 of 200 connections in use (5.0%: 7 idle, 2 active, 1 idle in transaction); warn at 80%, critical at 95%")
        self.assertEqual(c["details"], [{"used": 10, "maxConnections": 200, "superuserReserved": 3, "reserved": 0, "byState": {"idle": 7, "active": 2, "idle in transaction": 1}}])

    def test_long_running_queries(self):
        for seconds, status in [(59.9, "ok"), (60, "warn"), (299, "warn"), (300, "critical")]:
            c = check(report({"long-running-queries": [session_row(seconds), session_row(1.0, pid=7)]})[0], "long-running-queries")
            self.assertEqual((seconds, c["status"], c["value"], len(c["details"])), (seconds, status, seconds, 0 if status == "ok" else 1))
        c = check(report({"long-running-queries": [session_row(412.0, pid=123), session_row(70.0, pid=124)]})[0], "long-running-queries")
        self.assertEqual(c["summary"], "2 sessions running a statement longer than 60 s, longest 6 min 52 s: pid 123 (app@app, web); warn at 60 s, critical at 5 min")
        self.assertEqual(c["details"][0], {"pid": 123, "user": "app", "database": "app", "application": "web", "client": "10.0.0.9", "seconds": 412.0, "transactionSeconds": 412.0,
                                           "waitEvent": "Client:ClientRead", "queryId": -4242, "command": "SELECT", "status": "critical"})
        self.assertEqual(c["details"][1]["status"], "warn")
        self.assertEqual(check(report()[0], "long-running-queries")["summary"], "no statement has run long; warn at 60 s, critical at 5 min")

    def test_idle_in_transaction(self):
        for seconds, status in [(29.9, "ok"), (30, "warn"), (300, "critical")]:
            self.assertEqual((seconds, status_of({"idle-in-transaction": [session_row(seconds)]}, "idle-in-transaction")), (seconds, status))
        self.assertEqual(status_of({"idle-in-transaction": [session_row(6)]}, "idle-in-transaction", {"health": {"idleInTransactionWarnSeconds": 2, "idleInTransactionCriticalSeconds": 5}}), "critical")

    def test_pgharbor_ops_and_the_states_are_bound_as_parameters(self):
        _, server = report()
        params = {tag: p for _, tag, p in server.calls}
        self.assertEqual(params["long-running-queries"], ("pgharbor-ops", ["active"]))
        self.assertEqual(params["idle-in-transaction"], ("pgharbor-ops", ["idle in transaction", "idle in transaction (aborted)"]))
        self.assertEqual(params["blocking-locks"], ("pgharbor-ops",))
        for sql in (health.SQL_SESSIONS, health.SQL_BLOCKING):
            self.assertIn("application_name IS DISTINCT FROM %s", sql.replace("%%s", "%s"))
            self.assertIn("pid <> pg_backend_pid()", sql)

    def test_blocking_locks(self):
        holder = {"pid": 80, "user": "app", "database": "app", "application": None, "state": "idle in transaction", "transactionSeconds": 68.2, "queryId": 77, "command": "SELECT"}

        def waiter(waited, blockers=(holder,), pid=88):
            return (pid, "app", "app", "worker", None, waited, "transactionid", "ShareLock", None, 78, "UPDATE", list(blockers))
        for waited, status in [(9.9, "ok"), (10, "warn"), (119, "warn"), (120, "critical")]:
            c = check(report({"blocking-locks": [waiter(waited)]})[0], "blocking-locks")
            self.assertEqual((waited, c["status"], c["value"]), (waited, status, waited))
        c = check(report({"blocking-locks": [waiter(66.0)]})[0], "blocking-locks")
        self.assertEqual(c["summary"], "1 session waiting for a lock, longest 66 s: pid 88 (app@app, worker) waits for transactionid ShareLock held by pid 80 "
                                       "(idle in transaction, transaction open 68 s); warn at 10 s, critical at 2 min")
        self.assertEqual(c["details"][0]["blockedBy"], [{**holder, "application": ""}])
        # Granted between the two looks: no blocker, not reported. A prepared transaction blocks as pid 0.
        self.assertEqual(status_of({"blocking-locks": [waiter(500.0, blockers=())]}, "blocking-locks"), "ok")
        prepared = {"pid": 0, "user": None, "database": None, "application": None, "state": None, "transactionSeconds": None, "queryId": None, "command": None}
        c = check(report({"blocking-locks": [(9, "app", "app", "", None, 30.0, "relation", "AccessExclusiveLock", "public.t", None, "ALTER", [prepared])]})[0], "blocking-locks")
        self.assertIn("waits for relation AccessExclusiveLock on public.t held by a prepared transaction;", c["summary"])


class WraparoundCacheWalTests(unittest.TestCase):
    def test_wraparound(self):
        for xid, mxid, status in [(499999999, 0, "ok"), (500000000, 0, "warn"), (999999999, 0, "warn"), (1000000000, 0, "critical"), (1000, 600000000, "warn")]:
            c = check(report({"wraparound": [("app", xid, mxid, 200000000, 400000000)]})[0], "wraparound")
            self.assertEqual((xid, mxid, c["status"], c["value"]), (xid, mxid, status, max(xid, mxid)))
        c = check(report({"wraparound": [("template0", 650000000, 0, 200000000, 400000000), ("app", 1000, 0, 200000000, 400000000)]})[0], "wraparound")
        self.assertEqual(c["summary"], "oldest unfrozen age 650M, in template0 (transaction IDs 650M, multixacts 0; autovacuum freezes from 200M and 400M); warn at 500M, critical at 1B, wraparound at 2.1B")
        self.assertEqual([d["status"] for d in c["details"]], ["warn", "ok"])

    def test_cache_hit_ratio(self):
        cases = [((899, 101, 60.0), "ok"),  # 1000 blocks: too few to judge
                 ((0, 0, None), "ok"),
                 ((89900, 10100, 60.0), "warn"),
                 ((90000, 10000, 60.0), "ok")]
        for row, status in cases:
            self.assertEqual((row, status_of({"cache-hit-ratio": [row]}, "cache-hit-ratio")), (row, status))
        c = check(report({"cache-hit-ratio": [(89900, 10100, 7200.0)]})[0], "cache-hit-ratio")
        self.assertEqual((c["summary"], c["value"]), ("cache hit ratio 90% over 100k blocks needed in the last 2 h; warn below 90%", 0.899))
        self.assertEqual(check(report({"cache-hit-ratio": [(899, 101, None)]})[0], "cache-hit-ratio")["summary"],
                         "1000 blocks needed, fewer than the 100k it takes to judge the ratio (90% so far); warn below 90%")

    def test_wal_size(self):
        for size, keep, status in [(1535 * MIB, 0, "ok"), (1536 * MIB, 0, "warn"), (3072 * MIB, 0, "critical"), (3072 * MIB, 1024 * MIB, "warn")]:
            c = check(report({"wal-size": [(size, size // (16 * MIB), 1024 * MIB, keep)]})[0], "wal-size")
            self.assertEqual((size, keep, c["status"], c["value"]), (size, keep, status, size))
        c = check(report()[0], "wal-size")
        self.assertEqual(c["summary"], "pg_wal holds 64 MiB in 4 files, 0.06× max_wal_size 1 GiB + wal_keep_size 0 B; warn at 1.5×, critical at 3×")


def table_row(schema, table, relpages, reltuples, toastpages=0, toasttuples=0, ff=100, columns=2, unknown=0, width=37.0, nulls=False):
    return (schema, table, relpages, reltuples, toastpages, toasttuples, ff, columns, unknown, width, nulls, 8192, 8)


def index_row(schema, table, index, relpages, reltuples, ff=90, columns=1, unknown=0, width=4.0, nulls=False):
    return (schema, table, index, relpages, reltuples, ff, columns, unknown, width, nulls, 8192, 8)


class BloatTests(unittest.TestCase):
    def test_table_estimate(self):
        # int + md5 text: a 24-byte header, 37 bytes of data -> 64 bytes MAXALIGNed, + a 4-byte line
        # pointer = 68; 8168 usable bytes hold 120 of them; 200000 rows need 1667 pages. PostgreSQL 17
        # builds that table in 1728 pages (its per-column alignment is not modelled): 3.5 % "bloat".
        self.assertEqual(health.table_estimate(1728, 200000, 0, 0, 100, 2, 37.0, False, 8192, 8), (1728, 1667))
        self.assertEqual(health.table_estimate(1728, 200000, 0, 0, 50, 2, 37.0, False, 8192, 8), (1728, 3334))  # 60 a page at fillfactor 50
        self.assertEqual(health.table_estimate(10, 100, 40, 400, 100, 2, 37.0, False, 8192, 8), (50, 1 + 100))  # TOAST: 4 chunks a page
        self.assertEqual(health.table_estimate(10, 100, 0, 0, 100, 9, 37.0, True, 8192, 8)[1], 1)  # a null bitmap: header 32 bytes
        self.assertEqual(health.table_estimate(3000, 1000000, 0, 0, 100, 1, 0.0, False, 8192, 8)[1], 3437)  # at most 291 tuples a page

    def test_index_estimate(self):
        # int4 keys: 8-byte header + 4 bytes -> 16 + 4 = 20 bytes; (8192 - 40) * 0.9 = 7336 usable: 366
        # a leaf page; 200000 entries need 547 leaf pages + the metapage. PostgreSQL 17 builds it in 551.
        self.assertEqual(health.index_estimate(551, 200000, 90, 4.0, False, 8192, 8), (551, 548))
        self.assertEqual(health.index_estimate(551, 200000, 100, 4.0, False, 8192, 8), (551, 1 + 492))  # 407 a page

    def test_table_bloat_boundaries_and_skips(self):
        _, expected = health.table_estimate(0, 200000, 0, 0, 100, 2, 37.0, False, 8192, 8)
        rows = [table_row("public", "half", 2 * expected, 200000), table_row("public", "almost", 2 * expected - 1, 200000),
                table_row("public", "never_analyzed", 5000, -1), table_row("public", "no_stats", 5000, 100, unknown=1)]
        c = check(report({("table-bloat", "app"): rows})[0], "table-bloat")
        self.assertEqual((c["status"], c["value"]), ("warn", 0.5))
        self.assertEqual(c["summary"], "estimate: 1 of the tables of 10 MiB or more is over 50% bloat, most app.public.half ~50% (13 MiB of 26 MiB) "
                                       "(2 tables without statistics (never analyzed) not estimated)")
        self.assertEqual([(d["table"], d["status"]) for d in c["details"]], [("half", "warn"), ("almost", "ok")])
        self.assertEqual(c["details"][0], {"database": "app", "schema": "public", "table": "half", "bytes": 2 * expected * 8192, "bloatBytes": expected * 8192,
                                           "bloatFraction": 0.5, "rows": 200000, "status": "warn"})
        c = check(report({("table-bloat", "app"): rows[1:2]})[0], "table-bloat")
        self.assertEqual((c["status"], c["summary"]), ("ok", "estimate: none of the tables of 10 MiB or more is over 50% bloat, most app.public.almost ~50%"))
        self.assertEqual(status_of({("table-bloat", "app"): rows[1:2]}, "table-bloat", {"health": {"tableBloatWarnFraction": 0.4}}), "warn")
        self.assertEqual(check(report()[0], "table-bloat")["summary"], "estimate: no tables of 10 MiB or more to estimate")

    def test_min_size_is_bound_and_each_database_estimated(self):
        _, server = report(cfg={"health": {"bloatMinBytes": 123}})
        self.assertEqual([(db, p) for db, tag, p in server.calls if tag in ("table-bloat", "index-bloat")], [("app", (123,)), ("postgres", (123,))] * 2)
        c = check(report({("table-bloat", "postgres"): [table_row("public", "t", 4000, 200000)], ("table-bloat", "app"): [table_row("s", "u", 1700, 200000)]})[0], "table-bloat")
        self.assertEqual([(d["database"], d["table"], d["status"]) for d in c["details"]], [("postgres", "t", "warn"), ("app", "u", "ok")])

    def test_a_database_that_fails_is_named(self):
        c = check(report({("table-bloat", "postgres"): RuntimeError("cannot connect to postgres: too many clients")})[0], "table-bloat")
        self.assertEqual(c["status"], "warn")
        self.assertEqual(c["summary"], "estimate: no tables of 10 MiB or more to estimate (could not check postgres: cannot connect to postgres: too many clients)")
        self.assertEqual(c["details"], [{"database": "postgres", "error": "cannot connect to postgres: too many clients"}])

    def test_index_bloat(self):
        _, expected = health.index_estimate(0, 200000, 90, 4.0, False, 8192, 8)
        rows = [index_row("public", "t", "t_pkey", 2 * expected, 200000), index_row("public", "t", "t_fresh", expected, 200000)]
        c = check(report({("index-bloat", "app"): rows})[0], "index-bloat")
        self.assertEqual((c["status"], c["value"]), ("warn", 0.5))
        self.assertTrue(c["summary"].startswith("estimate: 1 of the B-tree indexes of 10 MiB or more is over 50% bloat, most app.public.t_pkey ~50%"), c["summary"])
        self.assertEqual(c["details"][1], {"database": "app", "schema": "public", "table": "t", "index": "t_fresh", "bytes": expected * 8192, "bloatBytes": 0, "bloatFraction": 0,
                                           "entries": 200000, "status": "ok"})
        self.assertEqual(status_of({("index-bloat", "app"): rows[1:]}, "index-bloat"), "ok")


def vacuum_row(table, dead=0, mods=0, vtrigger=4050.0, atrigger=2050.0, writes=1000, enabled=True, running=False, rank=1, av_ago=None, v_ago=None):
    return ("public", table, writes, 20000, dead, mods, vtrigger, atrigger, av_ago, v_ago, None, None, enabled, running, rank)


class AutovacuumTests(unittest.TestCase):
    def test_behind_at_the_factor(self):
        for dead, mods, status in [(8100, 0, "ok"), (8101, 0, "warn"), (0, 4100, "ok"), (0, 4101, "warn")]:
            c = check(report({("autovacuum", "app"): [vacuum_row("t", dead, mods)]})[0], "autovacuum")
            self.assertEqual((dead, mods, c["status"], c["value"]), (dead, mods, status, 1 if status == "warn" else 0))
        self.assertEqual(status_of({("autovacuum", "app"): [vacuum_row("t", 5000)]}, "autovacuum", {"health": {"autovacuumBehindFactor": 1}}), "warn")
        _, server = report(cfg={"health": {"hotTables": 3, "autovacuumBehindFactor": 1.5}})
        self.assertEqual([p for _, tag, p in server.calls if tag == "autovacuum"], [(3, 1.5, 1.5)] * 2)

    def test_summaries(self):
        c = check(report({("autovacuum", "app"): [vacuum_row("hot", av_ago=30.0), vacuum_row("stuck", dead=600000, vtrigger=40050.0, writes=800000, enabled=False, rank=7, v_ago=5.0)]})[0], "autovacuum")
        self.assertEqual(c["summary"], "autovacuum is behind on 1 table: app.public.stuck has 600k dead tuples where autovacuum starts at 40k (last autovacuum never (by hand 5.0 s ago), "
                                       "last autoanalyze never; autovacuum is off for it); warn past 2× the start point")
        self.assertEqual([(d["table"], d["status"], d["behind"], d["hot"]) for d in c["details"]], [("stuck", "warn", ["vacuum"], False), ("hot", "ok", [], True)])
        c = check(report({("autovacuum", "app"): [vacuum_row("hot", writes=5000, av_ago=30.0)], ("autovacuum", "postgres"): [vacuum_row("cool", writes=10)]})[0], "autovacuum")
        self.assertEqual((c["status"], c["summary"]), ("ok", "autovacuum keeps up with the 2 hot tables: hottest app.public.hot (last autovacuum 30 s ago, last autoanalyze never); warn past 2× the start point"))
        self.assertEqual(c["details"][0]["lastAutovacuumSecondsAgo"], 30)
        self.assertEqual(check(report()[0], "autovacuum")["summary"], "no table has been written to yet")


class LargestTests(unittest.TestCase):
    def test_largest_of_every_database(self):
        rows = {("largest", "app"): [("public", "events", "r", 900, 600, 300, True), ("public", "users", "r", 100, 80, 20, True)],
                ("largest", "postgres"): [("public", "mv", "m", 500, 500, 0, False)]}
        doc, server = report(rows, {"health": {"largestRelations": 2}})
        self.assertEqual(doc["largest"], [{"database": "app", "schema": "public", "relation": "events", "kind": "table", "totalBytes": 900, "tableBytes": 600, "indexBytes": 300, "exact": True},
                                          {"database": "postgres", "schema": "public", "relation": "mv", "kind": "materialized view", "totalBytes": 500, "tableBytes": 500, "indexBytes": 0, "exact": False}])
        self.assertEqual([p for _, tag, p in server.calls if tag == "largest"], [(2,), (2,)])
        doc, _ = report({**rows, ("largest", "postgres"): RuntimeError("canceling statement due to lock timeout")})
        self.assertEqual([r["relation"] for r in doc["largest"]], ["events", "users"])
        self.assertEqual(doc["largestErrors"], [{"database": "postgres", "error": "canceling statement due to lock timeout"}])
        self.assertEqual(doc["status"], "ok")


class FormatTests(unittest.TestCase):
    def test_numbers_for_people(self):
        self.assertEqual([health.fmt_seconds(s) for s in (0.04, 9.94, 10, 119, 120, 300, 7199, 7200, 90000, 200000)],
                         ["0.0 s", "9.9 s", "10 s", "119 s", "2 min", "5 min", "119 min 59 s", "2 h", "25 h", "2 d 7 h"])
        self.assertEqual([health.fmt_bytes(b) for b in (0, 1023, 1024, 10 * MIB, 1.5 * 1024 * MIB)], ["0 B", "1023 B", "1 KiB", "10 MiB", "1.5 GiB"])
        self.assertEqual([health.fmt_count(n) for n in (9999, 10000, 1234567, 500000000, 1000000000)], ["9999", "10k", "1.2M", "500M", "1B"])


# ---------------------------------------------------------------------------------------------
# `pgharbor-ops health`
# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def ops_config(cfg):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "ops.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        with mock.patch.dict(os.environ, {"PGHARBOR_OPS_CONFIG": path}):
            yield path


def run_ops(*argv):
    out, err = io.StringIO(), io.StringIO()
    with mock.patch.object(sys, "stdout", out), mock.patch.object(sys, "stderr", err):
        code = ops.main(list(argv))
    return code, (json.loads(out.getvalue()) if out.getvalue() else None), err.getvalue()


@unittest.skipIf(ops is None, "psycopg2/boto3 are not installed: pgharbor-ops runs in the backup image")
class HealthCommandTests(unittest.TestCase):
    def test_prints_the_document_and_exits_0_whatever_the_checks_say(self):
        server = FakeServer({"idle-in-transaction": [session_row(400.0)]})
        seen = []

        def fake_query(sock, port, db, sql, params=None, statement_timeout_ms=None, lock_timeout_ms=None):
            seen.append((sock, port, statement_timeout_ms, lock_timeout_ms))
            return server(db, sql, params)
        with ops_config({"socketDir": "/run/pg", "appDatabase": "app", "replicas": ["replica-1"]}), mock.patch.object(ops, "query", fake_query):
            code, doc, err = run_ops("health")
        self.assertEqual((code, doc["status"], check(doc, "idle-in-transaction")["status"], err), (0, "critical", "critical", ""))
        # At most a minute a statement, two seconds a lock: a look at a struggling server never hangs on it.
        self.assertEqual(set(seen), {("/run/pg", 5432, 60000, 2000)})

    def test_bad_thresholds_are_one_line_and_exit_1(self):
        with ops_config({"socketDir": "/run/pg", "appDatabase": "app", "health": {"lagWarn": 1}}) as path, mock.patch.object(ops, "query", FakeServer()):
            code, doc, err = run_ops("health")
        self.assertEqual((code, doc), (1, None))
        self.assertRegex(err, r"^\S+ pgharbor-ops: unknown health threshold lagWarn \(known: .*\) \(in the settings file %s\)\n$" % path)


# ---------------------------------------------------------------------------------------------
# On a real PostgreSQL: a primary and a streaming replica on Unix sockets in a scratch directory
# ---------------------------------------------------------------------------------------------
@unittest.skipIf(os.geteuid() == 0, "PostgreSQL refuses to run as root: run the suite as a non-root user (in the image: docker run --user postgres ...)")
@unittest.skipUnless(PG_BIN and ops is not None, "needs PostgreSQL server binaries, psycopg2 and boto3 (the backup image has them)")
class RealServerTests(unittest.TestCase):
    THRESHOLDS = {"longQueryWarnSeconds": 1, "idleInTransactionWarnSeconds": 1, "blockingLockWarnSeconds": 0.5, "blockingLockCriticalSeconds": 2, "bloatMinBytes": 65536}

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="pgharbor-health-test-")
        cls.env = mock.patch.dict(os.environ, {"PATH": PG_BIN[-1] + os.pathsep + os.environ["PATH"]})
        cls.env.start()
        cls.servers, cls.conns, cls.threads = [], [], []
        cls.sock = cls.start("primary", 5432, ["initdb", "-D", os.path.join(cls.dir, "primary"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"],
                             ["-c", "compute_query_id=on"])  # as pg_stat_statements, which the primary preloads, turns it on
        cls.sql("postgres", "CREATE DATABASE app")
        for statement in [
            # Three new versions of every row, autovacuum kept away: about 75 % of the table and of
            # the index on the changing column is dead. ANALYZE records the pages it now has.
            "CREATE TABLE bloated (id int PRIMARY KEY, v text) WITH (autovacuum_enabled = false)",
            "CREATE INDEX bloated_v ON bloated (v)",
            "INSERT INTO bloated SELECT g, md5(g::text) FROM generate_series(1, 20000) g",
            "UPDATE bloated SET v = md5(v)", "UPDATE bloated SET v = md5(v)", "UPDATE bloated SET v = md5(v)",
            "ANALYZE bloated",
            "CREATE TABLE fresh AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g",
            "CREATE INDEX fresh_v ON fresh (v)",
            "VACUUM ANALYZE fresh",
            "CREATE TABLE locked (id int PRIMARY KEY, n int)", "INSERT INTO locked VALUES (1, 0)",
        ]:
            cls.sql("app", statement)
        # replica-1 streams through its slot; pgharbor_spare is a slot nobody uses.
        replica = os.path.join(cls.dir, "replica")
        subprocess.run(["pg_basebackup", "-h", cls.sock, "-p", "5432", "-U", "postgres", "-D", replica, "-R", "-C", "-S", "pgharbor_replica_1", "-X", "stream", "-c", "fast"],
                       check=True, capture_output=True)
        cls.start("replica", 5433, None, ["-c", "cluster_name=replica-1"])
        cls.sql("postgres", "SELECT pg_create_physical_replication_slot('pgharbor_spare', true)")
        cls.wait_for("replica-1 streams", "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'replica-1' AND state = 'streaming'")
        # A transaction left idle holding a row lock, an UPDATE waiting for it, a long statement, a
        # table locked ACCESS EXCLUSIVE (sizing it would wait), and pgharbor-ops' own idle transaction.
        cls.session("holder", "SELECT txid_current()", "SELECT * FROM locked WHERE id = 1 AND 'tell-no-one' <> '' FOR UPDATE")
        cls.session("locker", "LOCK TABLE fresh IN ACCESS EXCLUSIVE MODE")
        cls.session("pgharbor-ops", "SELECT txid_current()")
        cls.background("blocked", "UPDATE locked SET n = n + 1 WHERE id = 1")
        cls.background("sleeper", "SELECT 'tell-no-one', pg_sleep(120)")
        cls.wait_for("the UPDATE waits", "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'blocked' AND wait_event_type = 'Lock'")
        cls.wait_for("the sleep runs", "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'sleeper' AND state = 'active'")
        time.sleep(2.5)  # past blockingLockCriticalSeconds
        cls.cfg = {"socketDir": cls.sock, "appDatabase": "app", "replicas": ["replica-1", "replica-2"], "health": cls.THRESHOLDS}
        with ops_config(cls.cfg):
            cls.code, cls.doc, cls.err = run_ops("health")

    @classmethod
    def tearDownClass(cls):
        for conn in cls.conns:
            with contextlib.suppress(Exception):
                conn.cancel()
                conn.close()
        for t in cls.threads:
            t.join(30)
        for data in reversed(cls.servers):
            subprocess.run(["pg_ctl", "-D", data, "-m", "immediate", "stop"], capture_output=True)
        cls.env.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def start(cls, name, port, initdb, options=()):
        data, sock = os.path.join(cls.dir, name), os.path.join(cls.dir, name + "-sock")
        os.mkdir(sock)
        if initdb:
            subprocess.run(initdb, check=True, capture_output=True)
        subprocess.run(["pg_ctl", "-D", data, "-w", "-l", os.path.join(cls.dir, name + ".log"), "-o",
                        " ".join(["-k", sock, "-p", str(port), "-c", "listen_addresses=''", *options]), "start"], check=True, capture_output=True)
        cls.servers.append(data)
        return sock

    @classmethod
    def sql(cls, db, statement):
        return ops.query(cls.sock, 5432, db, statement)

    @classmethod
    def wait_for(cls, what, count_sql):
        deadline = time.time() + 60
        while cls.sql("postgres", count_sql) != [(1,)]:
            if time.time() > deadline:
                raise AssertionError("timed out waiting until %s" % what)
            time.sleep(0.2)

    @classmethod
    def connect(cls, application):
        conn = psycopg2.connect(host=cls.sock, port=5432, user="postgres", dbname="app", application_name=application)
        cls.conns.append(conn)
        return conn

    @classmethod
    def session(cls, application, *statements):
        """A transaction that runs `statements` and is then left open, idle."""
        cur = cls.connect(application).cursor()
        for s in statements:
            cur.execute(s)

    @classmethod
    def background(cls, application, statement):
        conn = cls.connect(application)
        conn.autocommit = True

        def run():
            with contextlib.suppress(psycopg2.Error):
                conn.cursor().execute(statement)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        cls.threads.append(t)

    def test_the_command_succeeds(self):
        self.assertEqual((self.code, self.err), (0, ""))
        self.assertEqual([c["check"] for c in self.doc["checks"]], list(health.CHECKS))

    def test_statuses(self):
        self.assertEqual({c["check"]: c["status"] for c in self.doc["checks"]}, {
            "primary": "ok", "replicas": "critical", "replication-lag": "ok", "replication-slots": "warn", "connections": "ok",
            "long-running-queries": "warn", "idle-in-transaction": "warn", "blocking-locks": "critical", "wraparound": "ok",
            "table-bloat": "warn", "index-bloat": "warn", "cache-hit-ratio": "ok", "wal-size": "ok", "autovacuum": "warn"}, json.dumps(self.doc, indent=1))
        self.assertEqual(self.doc["status"], "critical")

    def test_replicas_and_slots(self):
        replicas = check(self.doc, "replicas")
        self.assertEqual(replicas["summary"], "1 of 2 replicas streaming: replica-2 not connected")
        self.assertEqual([(d["application"], d["state"]) for d in replicas["details"]], [("replica-1", "streaming"), ("replica-2", "not connected")])
        slots = check(self.doc, "replication-slots")
        self.assertEqual([(d["slot"], d["active"], d["status"]) for d in slots["details"]], [("pgharbor_replica_1", True, "ok"), ("pgharbor_spare", False, "warn")])
        self.assertTrue(slots["summary"].startswith("pgharbor_spare inactive: no replica streams through it"), slots["summary"])

    def test_sessions_and_locks(self):
        self.assertEqual(sorted(d["application"] for d in check(self.doc, "long-running-queries")["details"]), ["blocked", "sleeper"])
        self.assertEqual(sorted(d["application"] for d in check(self.doc, "idle-in-transaction")["details"]), ["holder", "locker"])  # not pgharbor-ops
        locks = check(self.doc, "blocking-locks")
        self.assertEqual([(d["application"], d["lockType"], d["mode"], d["command"], [(b["application"], b["command"]) for b in d["blockedBy"]]) for d in locks["details"]],
                         [("blocked", "transactionid", "ShareLock", "UPDATE", [("holder", "SELECT")])])
        # Who and what, never the statement's text (it may hold data): its query_id links to pg_stat_statements.
        self.assertNotIn("tell-no-one", json.dumps(self.doc))
        self.assertIsInstance(locks["details"][0]["queryId"], int)
        self.assertGreaterEqual(locks["value"], 2)
        self.assertRegex(locks["summary"], r"^1 session waiting for a lock, longest \d\.\d s: pid \d+ \(postgres@app, blocked\) waits for transactionid ShareLock held by pid \d+ "
                                           r"\(idle in transaction, transaction open \d\.\d s\); warn at 0\.5 s, critical at 2\.0 s$")
        connections = check(self.doc, "connections")["details"][0]
        self.assertGreaterEqual(connections["byState"]["idle in transaction"], 3)

    def test_bloat_estimates(self):
        tables = {d["table"]: d["bloatFraction"] for d in check(self.doc, "table-bloat")["details"]}
        self.assertTrue(0.65 < tables["bloated"] < 0.85 and tables["fresh"] < 0.15, tables)
        indexes = {d["index"]: d["bloatFraction"] for d in check(self.doc, "index-bloat")["details"]}
        self.assertTrue(indexes["bloated_v"] > 0.6 and indexes["fresh_v"] < 0.15, indexes)
        self.assertNotIn("locked", tables)  # one page: under bloatMinBytes
        autovacuum = check(self.doc, "autovacuum")
        behind = [(d["table"], d["behind"], d["autovacuumEnabled"]) for d in autovacuum["details"] if d["behind"]]
        self.assertEqual(behind, [("bloated", ["vacuum"], False)])
        self.assertIn("app.public.bloated has 60k dead tuples", autovacuum["summary"])

    def test_largest_relations_do_not_wait_for_a_lock(self):
        self.assertEqual(self.doc["largestErrors"], [])
        largest = {(r["database"], r["relation"]): r for r in self.doc["largest"]}
        self.assertEqual(self.doc["largest"][0]["relation"], "bloated")
        self.assertTrue(largest[("app", "bloated")]["exact"])
        self.assertFalse(largest[("app", "fresh")]["exact"])  # held ACCESS EXCLUSIVE: sized from pg_class
        self.assertGreater(largest[("app", "fresh")]["tableBytes"], 1000000)


if __name__ == "__main__":
    unittest.main()
