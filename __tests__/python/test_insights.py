"""insights (images/backup/insights.py): candidate index columns from normalised statements, the
maintenance job's decision per table, overlapping-index detection and argument checks. What needs
a server (pg_stat_statements, hypopg, VACUUM) is run on the engine by insights.runtime.test.ts."""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "images", "backup"))

import insights  # noqa: E402

COLUMNS = ["id", "customer_id", "status", "created_at", "note"]


class PredicateColumns(unittest.TestCase):
    def cols(self, statement):
        return insights.predicate_columns(statement, COLUMNS)

    def test_equality_then_one_range(self):
        self.assertEqual(self.cols("SELECT * FROM orders WHERE customer_id = $1 AND created_at > $2 AND status = $3"), ["customer_id", "status", "created_at"])

    def test_reversed_in_any_and_qualified_names(self):
        self.assertEqual(self.cols("SELECT o.id FROM orders o WHERE $1 = o.customer_id"), ["customer_id"])
        self.assertEqual(self.cols("SELECT id FROM orders WHERE status IN ($1, $2)"), ["status"])
        self.assertEqual(self.cols("SELECT id FROM orders WHERE customer_id = ANY($1)"), ["customer_id"])
        self.assertEqual(self.cols('SELECT id FROM orders WHERE "customer_id" = $1'), ["customer_id"])

    def test_clauses_after_where_are_not_predicates(self):
        self.assertEqual(self.cols("SELECT status, count(*) FROM orders WHERE customer_id = $1 GROUP BY status ORDER BY created_at LIMIT $2"), ["customer_id"])

    def test_other_tables_columns_and_no_where(self):
        self.assertEqual(self.cols("SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.region = $1"), [])
        self.assertEqual(self.cols("SELECT count(*) FROM orders"), [])

    def test_at_most_three_columns(self):
        self.assertEqual(len(self.cols("SELECT 1 FROM orders WHERE id = $1 AND customer_id = $2 AND status = $3 AND note = $4")), 3)


def table(**kw):
    base = {"kind": "r", "live": 10000, "dead": 0, "modified": 0, "reltuples": 10000.0, "xid_age": 1000, "never_analyzed": False}
    base.update(kw)
    return base


class MaintenancePlan(unittest.TestCase):
    M = insights.DEFAULT_MAINTENANCE
    FREEZE = 200_000_000

    def plan(self, **kw):
        return insights.plan_table(table(**kw), self.M, self.FREEZE)

    def test_a_tidy_table_is_left_alone(self):
        self.assertEqual(self.plan(), (False, False, []))

    def test_stale_statistics_analyse(self):
        analyze, vacuum, why = self.plan(modified=551)
        self.assertEqual((analyze, vacuum), (True, False))
        self.assertIn("551 rows changed", why[0])
        self.assertEqual(self.plan(modified=550)[:2], (False, False))  # 50 + 5 % of 10000

    def test_never_analysed_with_rows(self):
        self.assertEqual(self.plan(never_analyzed=True)[:2], (True, False))
        self.assertEqual(self.plan(never_analyzed=True, live=0, reltuples=0)[:2], (False, False))

    def test_dead_rows_vacuum(self):
        self.assertEqual(self.plan(dead=2001)[:2], (False, True))  # 1000 + 10 % of 10000
        self.assertEqual(self.plan(dead=2000)[:2], (False, False))

    def test_transaction_id_age_vacuums(self):
        analyze, vacuum, why = self.plan(xid_age=100_000_001)
        self.assertTrue(vacuum)
        self.assertIn("transaction-ID age 100000001", why[0])

    def test_a_materialised_view_is_analysed_never_vacuumed(self):
        self.assertEqual(self.plan(kind="m", dead=50_000)[:2], (True, False))


def index(oid, keys, unique=False, method="btree", exprs=None, pred=None, relid=1, constraint=False):
    return {"indexrelid": oid, "indrelid": relid, "schema": "public", "table": "t", "index": "i%d" % oid, "method": method, "is_unique": unique,
            "is_valid": True, "keys": keys, "opclasses": " ".join(["3124"] * len(keys)), "collations": " ".join(["0"] * len(keys)), "exprs": exprs, "pred": pred, "backs_constraint": constraint}


class Overlaps(unittest.TestCase):
    def test_a_leading_prefix_is_redundant(self):
        pairs = insights._overlaps([index(1, [2]), index(2, [2, 3])])
        self.assertEqual([(a["index"], b["index"]) for a, b in pairs], [("i1", "i2")])

    def test_unique_partial_expression_other_table_and_other_order_are_not(self):
        self.assertEqual(insights._overlaps([index(1, [2], unique=True), index(2, [2, 3])]), [])
        self.assertEqual(insights._overlaps([index(1, [2], pred="x > 0"), index(2, [2, 3])]), [])
        self.assertEqual(insights._overlaps([index(1, [0], exprs="lower(x)"), index(2, [0, 3])]), [])
        self.assertEqual(insights._overlaps([index(1, [2]), index(2, [2, 3], relid=9)]), [])
        self.assertEqual(insights._overlaps([index(1, [3]), index(2, [2, 3])]), [])
        self.assertEqual(insights._overlaps([index(1, [2]), index(2, [2, 3], method="hash")]), [])


class Arguments(unittest.TestCase):
    def test_order_and_limit_are_checked_before_connecting(self):
        def connect(db):
            raise AssertionError("must not connect")
        with self.assertRaisesRegex(insights.InsightError, "--by fastest: use one of total, mean, calls, rows, reads"):
            insights.queries({"appDatabase": "app"}, connect, by="fastest")
        with self.assertRaisesRegex(insights.InsightError, "--limit 0: give a whole number from 1 to 1000"):
            insights.queries({"appDatabase": "app"}, connect, limit=0)


if __name__ == "__main__":
    unittest.main()
