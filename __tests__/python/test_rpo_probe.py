"""rpo_probe (images/monitoring/rpo_probe.py): metrics on canned pgBackRest answers, the RPO at scrape
time, the exposition served over HTTP, and certificate expiry over TLS and PostgreSQL's SSLRequest."""
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import unittest
import urllib.error
import urllib.request
from unittest import mock
from wsgiref.simple_server import make_server

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "images", "monitoring"))

try:
    import prometheus_client  # noqa: F401
except ImportError:  # the postgres image: the probe runs in the monitoring image
    raise unittest.SkipTest("prometheus_client is not installed (Debian: python3-prometheus-client): the probe's tests run in the monitoring image")

from prometheus_client import generate_latest  # noqa: E402
from prometheus_client.core import CollectorRegistry  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

import fake_s3  # noqa: E402  (its certificate helper)
import rpo_probe  # noqa: E402

WAL = "%s-" + "c" * 40 + ".zst"


def info(backups=(), archives=("17-1",)):
    return [{"name": "pgharbor", "backup": [{"type": t, "timestamp": {"start": stop - 30, "stop": stop}} for t, stop in backups], "archive": [{"id": a} for a in archives]}]


class Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


class FakeProbe(rpo_probe.Probe):
    """pgBackRest answers from a table: {("repo-ls", "drills"): {...}, ...}; repo_get from `files`."""

    def __init__(self, answers, files=None, targets="", now=10_000.0):
        super().__init__(rpo_probe.Settings({"PGHARBOR_TLS_TARGETS": targets, "PGHARBOR_STANZA": "pgharbor"}), Clock(now))
        self.answers, self.files, self.calls, self.gets = answers, files or {}, [], []

    def pgbackrest(self, *args):
        self.calls.append(args)
        answer = self.answers[args]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def repo_get(self, path):
        self.gets.append(path)
        return json.dumps(self.files[path]).encode()


def scrape(probe):
    registry = CollectorRegistry(auto_describe=False)
    registry.register(probe)
    text = generate_latest(registry).decode()
    samples = {}
    types = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return text, samples, types


def archive_answers(extra=None):
    answers = {
        ("info",): info(backups=[("full", 1000), ("diff", 2000), ("incr", 3000), ("incr", 3500)], archives=["16-1", "17-2"]),
        # the highest segment name wins across archive ids, with its upload time
        ("repo-ls", "--recurse", "archive/pgharbor/16-1"): {"0000000100000000/" + WAL % "000000010000000000000009": {"type": "file", "time": 9100},
                                                            "0000000100000000/" + WAL % "000000010000000000000003": {"type": "file", "time": 9000},
                                                            "0000000100000000": {"type": "path"}},
        ("repo-ls", "--recurse", "archive/pgharbor/17-2"): {"0000000200000000/" + WAL % "000000020000000000000004": {"type": "file", "time": 9400},
                                                            "0000000200000000/000000020000000000000004.00000028.backup": {"type": "file", "time": 9999},
                                                            "00000002.history": {"type": "file", "time": 9998}},
        ("repo-ls", "drills"): {},
        ("repo-ls", "--recurse", "logical"): {},
    }
    answers.update(extra or {})
    return answers


def drill(finished, ok, **extra):
    return {"kind": "restore-drill", "finishedAt": finished, "ok": ok, **extra}


class MetricsTests(unittest.TestCase):
    def test_newest_wal_across_archive_ids_rpo_and_backups_per_type(self):
        p = FakeProbe(archive_answers())
        p.collect_once()
        _, m, types = scrape(p)
        self.assertEqual(m[("pgharbor_archive_newest_wal_timestamp_seconds", ())], 9400)
        self.assertEqual(m[("pgharbor_rpo_seconds", ())], 600)
        self.assertEqual(m[("pgharbor_probe_success", (("check", "archive"),))], 1)
        self.assertEqual(m[("pgharbor_probe_success", (("check", "evidence"),))], 1)
        backups = {k[1][0][1]: v for k, v in m.items() if k[0] == "pgharbor_backup_last_completed_timestamp_seconds"}
        self.assertEqual(backups, {"full": 1000, "diff": 2000, "incr": 3500})
        self.assertEqual(m[("pgharbor_probe_last_run_timestamp_seconds", ())], 10000)
        self.assertEqual(m[("pgharbor_logical_backup_sets", ())], 0)
        self.assertNotIn(("pgharbor_drill_last_ok", ()), m)
        self.assertEqual(set(types.values()), {"gauge"})
        self.assertTrue(set(types) <= set(rpo_probe.METRICS), set(types) - set(rpo_probe.METRICS))

    def test_a_newer_full_backup_counts_for_diff_and_incr(self):
        p = FakeProbe(archive_answers({("info",): info(backups=[("diff", 2000), ("incr", 2500), ("full", 4000)], archives=["16-1", "17-2"])}))
        p.collect_once()
        _, m, _ = scrape(p)
        self.assertEqual({k[1][0][1]: v for k, v in m.items() if k[0] == "pgharbor_backup_last_completed_timestamp_seconds"}, {"full": 4000, "diff": 4000, "incr": 4000})

    def test_rpo_is_computed_at_scrape_time(self):
        clock = Clock(10_000.0)
        p = FakeProbe(archive_answers())
        p.clock = clock
        p.collect_once()
        self.assertEqual(scrape(p)[1][("pgharbor_rpo_seconds", ())], 600)
        clock.t = 10_075.9  # no new run: the RPO keeps growing, the archive check is still fresh
        _, m, _ = scrape(p)
        self.assertEqual((m[("pgharbor_rpo_seconds", ())], m[("pgharbor_probe_success", (("check", "archive"),))]), (675, 1))
        clock.t = 10_000 + 2 * 15 + 60  # two intervals and a minute without a successful run
        _, m, _ = scrape(p)
        self.assertEqual((m[("pgharbor_rpo_seconds", ())], m[("pgharbor_probe_success", (("check", "archive"),))]), (690, 0))
        clock.t = 9000.0  # a clock behind the bucket never yields a negative RPO
        self.assertEqual(scrape(p)[1][("pgharbor_rpo_seconds", ())], 0)

    def test_when_the_bucket_cannot_be_read_the_last_known_wal_stays_and_the_rpo_grows(self):
        p = FakeProbe(archive_answers())
        p.collect_once()
        p.answers[("info",)] = RuntimeError("pgbackrest info: [039]: unable to connect")
        p.clock.t = 10_050.0
        with mock.patch.object(rpo_probe, "log") as log:
            p.collect_once()
        log.assert_any_call("archive: pgbackrest info: [039]: unable to connect")
        _, m, _ = scrape(p)
        self.assertEqual(m[("pgharbor_rpo_seconds", ())], 650)
        self.assertEqual(m[("pgharbor_archive_newest_wal_timestamp_seconds", ())], 9400)
        self.assertFalse([k for k in m if k[0] == "pgharbor_backup_last_completed_timestamp_seconds"])
        self.assertEqual(m[("pgharbor_probe_success", (("check", "archive"),))], 1)  # still within 2 intervals + 60 s of the last success
        p.clock.t = 10_091.0
        _, m, _ = scrape(p)
        self.assertEqual((m[("pgharbor_rpo_seconds", ())], m[("pgharbor_probe_success", (("check", "archive"),))]), (691, 0))

    def test_before_any_wal_there_is_no_rpo(self):
        p = FakeProbe(archive_answers({("repo-ls", "--recurse", "archive/pgharbor/16-1"): {}, ("repo-ls", "--recurse", "archive/pgharbor/17-2"): {}}))
        with mock.patch.object(rpo_probe, "log"):
            p.collect_once()
        _, m, _ = scrape(p)
        self.assertEqual(m[("pgharbor_probe_success", (("check", "archive"),))], 0)
        self.assertNotIn(("pgharbor_rpo_seconds", ()), m)
        self.assertNotIn(("pgharbor_archive_newest_wal_timestamp_seconds", ()), m)

    def test_drill_evidence_passed(self):
        names = ["2026111%dT030000Z.json" % d for d in range(1, 8)]  # 7 drills: the last five are read
        files = {"drills/" + n: drill(1000 + i, i != 5, rtoSeconds=12.5 + i, restoredBytes=4096 * i) for i, n in enumerate(names)}
        p = FakeProbe(archive_answers({("repo-ls", "drills"): {**{n: {"type": "file", "time": 1} for n in names}, "notes.txt": {"type": "file"}, "old": {"type": "path"}}}), files)
        p.collect_once()
        _, m, _ = scrape(p)
        self.assertEqual(p.gets, ["drills/" + n for n in names[-5:]])
        self.assertEqual(m[("pgharbor_drill_last_run_timestamp_seconds", ())], 1006)
        self.assertEqual(m[("pgharbor_drill_last_ok", ())], 1)
        self.assertEqual(m[("pgharbor_drill_rto_seconds", ())], 18.5)
        self.assertEqual(m[("pgharbor_drill_restored_bytes", ())], 4096 * 6)
        self.assertEqual(m[("pgharbor_drill_last_success_timestamp_seconds", ())], 1006)
        p.gets.clear()
        p.collect_once()
        self.assertEqual(p.gets, [])  # evidence never changes: read once
        self.assertEqual(sorted(p.drills), names[-5:])

    def test_drill_evidence_failed(self):
        files = {"drills/20261120T030000Z.json": drill(500, True, rtoSeconds=10, restoredBytes=1),
                 "drills/20261121T030000Z.json": drill(900, False, error="the archive has a WAL gap")}
        p = FakeProbe(archive_answers({("repo-ls", "drills"): {n[len("drills/"):]: {"type": "file"} for n in files}}), files)
        p.collect_once()
        _, m, _ = scrape(p)
        self.assertEqual(m[("pgharbor_drill_last_ok", ())], 0)
        self.assertEqual(m[("pgharbor_drill_last_run_timestamp_seconds", ())], 900)
        self.assertNotIn(("pgharbor_drill_rto_seconds", ()), m)  # the failed drill has none
        self.assertEqual(m[("pgharbor_drill_last_success_timestamp_seconds", ())], 500)

    def test_logical_sets_from_their_manifests(self):
        listing = {"20261120T020000Z/manifest.json": {"type": "file", "time": 7000}, "20261120T020000Z/app.dump.age": {"type": "file", "time": 6990},
                   "20261121T020000Z/manifest.json": {"type": "file", "time": 8000}, "20261122T020000Z/app.dump.age": {"type": "file", "time": 9000},
                   "20261120T020000Z": {"type": "path"}}
        p = FakeProbe(archive_answers({("repo-ls", "--recurse", "logical"): listing}))
        p.collect_once()
        _, m, _ = scrape(p)
        self.assertEqual(m[("pgharbor_logical_backup_sets", ())], 2)  # the set without a manifest is incomplete
        self.assertEqual(m[("pgharbor_logical_backup_last_completed_timestamp_seconds", ())], 8000)

    def test_a_failing_evidence_read_is_a_failed_check(self):
        p = FakeProbe(archive_answers({("repo-ls", "drills"): RuntimeError("pgbackrest repo-ls drills: [049]: permission denied")}))
        with mock.patch.object(rpo_probe, "log"):
            p.collect_once()
        _, m, _ = scrape(p)
        self.assertEqual(m[("pgharbor_probe_success", (("check", "evidence"),))], 0)
        self.assertEqual(m[("pgharbor_probe_success", (("check", "archive"),))], 1)

    def test_exposition_text(self):
        """One family per name, HELP and TYPE gauge, the probe's own metrics only (no process_/python_ ones)."""
        files = {"drills/20261121T030000Z.json": drill(900, True, rtoSeconds=42.3, restoredBytes=123456789)}
        p = FakeProbe(archive_answers({("repo-ls", "drills"): {"20261121T030000Z.json": {"type": "file"}}}), files)
        p.collect_once()
        text, m, _ = scrape(p)
        self.assertEqual(text.count("# TYPE pgharbor_probe_success gauge\n"), 1)
        self.assertIn('pgharbor_probe_success{check="archive"} 1.0\n', text)
        self.assertIn('pgharbor_probe_success{check="evidence"} 1.0\n', text)
        self.assertIn('pgharbor_backup_last_completed_timestamp_seconds{type="full"} 1000.0\n', text)
        self.assertIn("pgharbor_rpo_seconds 600.0\n", text)
        self.assertIn("pgharbor_drill_rto_seconds 42.3\n", text)
        self.assertEqual(m[("pgharbor_drill_restored_bytes", ())], 123456789)
        names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
        self.assertEqual(names, {"pgharbor_probe_success", "pgharbor_archive_newest_wal_timestamp_seconds", "pgharbor_rpo_seconds", "pgharbor_backup_last_completed_timestamp_seconds",
                                 "pgharbor_drill_last_run_timestamp_seconds", "pgharbor_drill_last_ok", "pgharbor_drill_rto_seconds", "pgharbor_drill_restored_bytes",
                                 "pgharbor_drill_last_success_timestamp_seconds", "pgharbor_logical_backup_sets", "pgharbor_probe_last_run_timestamp_seconds"})
        self.assertFalse([line for line in text.splitlines() if line and not line.startswith("#") and not line.startswith("pgharbor_")])

    def test_pgbackrest_argv(self):
        p = rpo_probe.Probe(rpo_probe.Settings({"PGHARBOR_PGBACKREST_CONF": "/etc/x.conf", "PGHARBOR_STANZA": "s1"}))
        with mock.patch.object(rpo_probe.subprocess, "run", return_value=subprocess.CompletedProcess([], 0, "{}", "")) as run:
            self.assertEqual(p.pgbackrest("repo-ls", "drills"), {})
        self.assertEqual(run.call_args[0][0], ["pgbackrest", "--config=/etc/x.conf", "--stanza=s1", "--output=json", "--log-level-console=warn", "--io-timeout=10", "repo-ls", "drills"])
        with mock.patch.object(rpo_probe.subprocess, "run", return_value=subprocess.CompletedProcess([], 0, b"{}", b"")) as run:
            self.assertEqual(p.repo_get("drills/a.json"), b"{}")
        self.assertEqual(run.call_args[0][0], ["pgbackrest", "--config=/etc/x.conf", "--stanza=s1", "--log-level-console=warn", "--io-timeout=10", "--raw", "repo-get", "drills/a.json"])
        with mock.patch.object(rpo_probe.subprocess, "run", return_value=subprocess.CompletedProcess([], 82, "", "ERROR: [082]: no stanza")):
            with self.assertRaisesRegex(RuntimeError, r"pgbackrest info: ERROR: \[082\]: no stanza"):
                p.pgbackrest("info")

    def test_settings_defaults(self):
        s = rpo_probe.Settings({})
        self.assertEqual((s.conf, s.stanza, s.ca, s.interval, s.port, s.listen, s.targets),
                         ("/etc/pgbackrest/pgbackrest.conf", "pgharbor", "/etc/postgresql/tls/ca.crt", 15.0, 9188, "0.0.0.0", []))
        s = rpo_probe.Settings({"PGHARBOR_TLS_TARGETS": "primary=pgharbor-dev-primary:5432:postgres,,pgbouncer=pgharbor-dev-pgbouncer:6432:postgres", "PGHARBOR_PROBE_INTERVAL_SECONDS": "5"})
        self.assertEqual((s.targets, s.interval), (["primary=pgharbor-dev-primary:5432:postgres", "pgbouncer=pgharbor-dev-pgbouncer:6432:postgres"], 5.0))


class HttpTests(unittest.TestCase):
    def test_metrics_served_404_elsewhere(self):
        p = FakeProbe(archive_answers())
        p.collect_once()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(p)
        server = make_server("127.0.0.1", 0, rpo_probe.metrics_app(registry), server_class=rpo_probe._Server, handler_class=rpo_probe._QuietHandler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        base = "http://127.0.0.1:%d" % server.server_address[1]
        # Prometheus asks for OpenMetrics first: the probe answers the classic text format regardless.
        req = urllib.request.Request(base + "/metrics", headers={"Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"})
        with urllib.request.urlopen(req, timeout=5) as r:
            self.assertEqual(r.status, 200)
            self.assertEqual(r.headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
            body = r.read().decode()
        self.assertIn("pgharbor_rpo_seconds 600.0\n", body)
        self.assertNotIn("# EOF", body)
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + "/", timeout=5)
        self.assertEqual(e.exception.code, 404)


def serve_tls(cert, key, postgres):
    """One TLS (or SSLRequest-then-TLS) handshake on 127.0.0.1; returns the port."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))

    def run():
        with listener:
            conn, _ = listener.accept()
            with conn:
                if postgres:
                    if conn.recv(8) != b"\x00\x00\x00\x08\x04\xd2\x16\x2f":
                        return
                    conn.sendall(b"S")
                try:
                    with ctx.wrap_socket(conn, server_side=True) as tls:
                        tls.recv(1)
                except (ssl.SSLError, OSError):
                    pass
    threading.Thread(target=run, daemon=True).start()
    return listener.getsockname()[1]


@unittest.skipUnless(fake_s3.have_openssl(), "openssl is needed to make a test certificate")
class CertificateTests(unittest.TestCase):
    def test_expiry_over_tls_and_postgres_and_a_failing_target(self):
        with tempfile.TemporaryDirectory() as d:
            cert, key = fake_s3.make_certificate(d, days=3)
            end = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", cert], capture_output=True, text=True, check=True).stdout.strip().split("=", 1)[1]
            expiry = ssl.cert_time_to_seconds(end)
            tls_port, pg_port = serve_tls(cert, key, False), serve_tls(cert, key, True)
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                closed = s.getsockname()[1]
            targets = "s3=127.0.0.1:%d:tls,primary=127.0.0.1:%d:postgres,gone=127.0.0.1:%d:postgres" % (tls_port, pg_port, closed)
            p = FakeProbe(archive_answers(), targets=targets)
            p.settings.ca = cert
            with mock.patch.object(rpo_probe, "log") as log:
                p.collect_once()
            _, m, _ = scrape(p)
        self.assertEqual(m[("pgharbor_tls_certificate_expiry_timestamp_seconds", (("target", "s3"),))], expiry)
        self.assertEqual(m[("pgharbor_tls_certificate_expiry_timestamp_seconds", (("target", "primary"),))], expiry)
        self.assertNotIn(("pgharbor_tls_certificate_expiry_timestamp_seconds", (("target", "gone"),)), m)
        self.assertEqual([m[("pgharbor_probe_success", (("check", "tls-%s" % n),))] for n in ("s3", "primary", "gone")], [1, 1, 0])
        self.assertTrue(any("tls gone:" in c.args[0] for c in log.call_args_list))


if __name__ == "__main__":
    unittest.main()
