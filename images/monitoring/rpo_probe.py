#!/usr/bin/python3
"""pgharbor's bucket-side RPO probe.

Reads the WAL archive with read-only credentials through pgBackRest and exports, on /metrics:

  pgharbor_archive_newest_wal_timestamp_seconds    upload time of the newest WAL segment in the bucket
  pgharbor_rpo_seconds                             now minus that time, computed at scrape time: what a loss
                                                   of every database host would lose now, measured from the
                                                   bucket's side, whatever PostgreSQL believes
  pgharbor_backup_last_completed_timestamp_seconds{type}   last completed backup per type (a full one
                                                   counts for diff and incr too, a diff for incr)
  pgharbor_drill_*, pgharbor_logical_backup_*      restore drills and logical backups, from the evidence
                                                   pgharbor-ops left in the bucket
  pgharbor_tls_certificate_expiry_timestamp_seconds{target}   expiry of every server certificate it reaches
  pgharbor_probe_success{check}                    archive, evidence, tls-<target>

Settings come from the environment (PGHARBOR_PGBACKREST_CONF, PGHARBOR_STANZA, PGHARBOR_CA_FILE,
PGHARBOR_PROBE_INTERVAL_SECONDS, PGHARBOR_PROBE_PORT, PGHARBOR_PROBE_LISTEN, PGHARBOR_TLS_TARGETS).
Metrics are served by prometheus_client (Debian: python3-prometheus-client) from a registry holding
only this probe's collector, as gauges. Importing this module has no side effects.
"""
import json
import os
import re
import socket
import socketserver
import signal
import ssl
import struct
import subprocess
import sys
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client.core import CollectorRegistry, GaugeMetricFamily
from prometheus_client.exposition import make_wsgi_app

WAL = re.compile(r"(^|/)([0-9A-F]{24})-[0-9a-f]{40}")

# Every metric the probe exports: name -> (help, label names). All are gauges.
METRICS = {
    "pgharbor_probe_success": ("1 when the probe's check succeeded on its last run (archive: within two intervals and a minute).", ("check",)),
    "pgharbor_archive_newest_wal_timestamp_seconds": ("Upload time of the newest WAL segment in the archive bucket.", ()),
    "pgharbor_rpo_seconds": ("Seconds since the newest WAL segment reached the bucket (at scrape time): the data losing every database host would lose now.", ()),
    "pgharbor_backup_last_completed_timestamp_seconds": ("End of the newest completed backup counting for this type (a full counts for diff and incr, a diff for incr).", ("type",)),
    "pgharbor_drill_last_run_timestamp_seconds": ("End of the newest restore drill recorded in the bucket.", ()),
    "pgharbor_drill_last_ok": ("1 when the newest restore drill passed.", ()),
    "pgharbor_drill_rto_seconds": ("Restore plus recovery time of the newest restore drill.", ()),
    "pgharbor_drill_restored_bytes": ("Bytes the newest restore drill restored.", ()),
    "pgharbor_drill_last_success_timestamp_seconds": ("End of the newest passed restore drill among the last five.", ()),
    "pgharbor_logical_backup_last_completed_timestamp_seconds": ("Upload time of the newest complete logical backup set's manifest.", ()),
    "pgharbor_logical_backup_sets": ("Complete logical backup sets in the bucket.", ()),
    "pgharbor_tls_certificate_expiry_timestamp_seconds": ("notAfter of the server certificate the target presents.", ("target",)),
    "pgharbor_probe_last_run_timestamp_seconds": ("Start of the probe's last run.", ()),
}


def log(msg):
    print(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rpo-probe:", msg, file=sys.stderr, flush=True)


class Settings:
    def __init__(self, environ=None):
        env = os.environ if environ is None else environ
        self.conf = env.get("PGHARBOR_PGBACKREST_CONF", "/etc/pgbackrest/pgbackrest.conf")
        self.stanza = env.get("PGHARBOR_STANZA", "pgharbor")
        self.ca = env.get("PGHARBOR_CA_FILE", "/etc/postgresql/tls/ca.crt")
        self.interval = float(env.get("PGHARBOR_PROBE_INTERVAL_SECONDS", "15"))
        self.port = int(env.get("PGHARBOR_PROBE_PORT", "9188"))
        self.listen = env.get("PGHARBOR_PROBE_LISTEN", "0.0.0.0")
        # name=host:port:protocol, protocol "postgres" (SSLRequest first) or "tls"
        self.targets = [t for t in env.get("PGHARBOR_TLS_TARGETS", "").split(",") if t]


def certificate_expiry(host, port, protocol, ca):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        if protocol == "postgres":
            sock.sendall(struct.pack("!ii", 8, 80877103))
            if sock.recv(1) != b"S":
                raise RuntimeError("server refused TLS")
        with ctx.wrap_socket(sock) as tls:
            return ssl.cert_time_to_seconds(tls.getpeercert()["notAfter"])


class Probe:
    """The probe's state and its Prometheus collector.

    collect_once() runs pgBackRest and the TLS checks (from the background loop) and keeps a snapshot
    of samples; collect() (called by prometheus_client at every scrape) adds the live samples, so the
    RPO keeps growing while the bucket cannot be read, even when a pgBackRest call hangs."""

    def __init__(self, settings=None, clock=time.time):
        self.settings = settings or Settings()
        self.clock = clock
        self.newest = None  # upload time of the newest WAL segment seen
        self.archive_ok_at = 0.0
        self.drills = {}  # evidence files never change: each is read once
        self.samples = []  # [(name, labels, value)] of the last run, in the order they were found

    # pgBackRest ----------------------------------------------------------------------------
    def _argv(self, *options):
        return ["pgbackrest", "--config=" + self.settings.conf, "--stanza=" + self.settings.stanza, *options, "--log-level-console=warn", "--io-timeout=10"]

    def pgbackrest(self, *args):
        out = subprocess.run(self._argv("--output=json") + list(args), capture_output=True, text=True, timeout=45)
        if out.returncode != 0:
            raise RuntimeError("pgbackrest %s: %s" % (" ".join(args), (out.stderr or out.stdout).strip()))
        return json.loads(out.stdout)

    def repo_get(self, path):
        out = subprocess.run(self._argv() + ["--raw", "repo-get", path], capture_output=True, timeout=45)
        if out.returncode != 0:
            raise RuntimeError("pgbackrest repo-get %s: %s" % (path, out.stderr.decode(errors="replace").strip()))
        return out.stdout

    # One run ---------------------------------------------------------------------------------
    def probe_archive(self, samples):
        info = self.pgbackrest("info")[0]
        newest = None
        for archive in info.get("archive", []):
            listing = self.pgbackrest("repo-ls", "--recurse", "archive/%s/%s" % (self.settings.stanza, archive["id"]))
            for name, entry in listing.items():
                m = WAL.search(name)
                if entry.get("type") == "file" and m and (newest is None or m.group(2) > newest[0]):
                    newest = (m.group(2), entry.get("time", 0))
        if newest is None:
            raise RuntimeError("no WAL in the archive yet")
        self.newest = newest[1]
        last = {}
        for b in info.get("backup", []):
            stop = b.get("timestamp", {}).get("stop", 0)
            kinds = ["full", "diff", "incr"] if b.get("type") == "full" else (["diff", "incr"] if b.get("type") == "diff" else ["incr"])
            for k in kinds:
                last[k] = max(last.get(k, 0), stop)
        for k, v in sorted(last.items()):
            samples.append(("pgharbor_backup_last_completed_timestamp_seconds", {"type": k}, int(v)))

    def probe_evidence(self, samples):
        """Restore drills and logical backups, from what they left in the bucket (pgharbor-ops)."""
        names = sorted(n for n, e in self.pgbackrest("repo-ls", "drills").items() if n.endswith(".json") and e.get("type") == "file")
        recent = names[-5:]
        for n in recent:
            if n not in self.drills:
                self.drills[n] = json.loads(self.repo_get("drills/" + n))
        self.drills = {n: self.drills[n] for n in recent}  # keep only what the next run can need
        if names:
            last = self.drills[names[-1]]
            samples.append(("pgharbor_drill_last_run_timestamp_seconds", {}, int(last["finishedAt"])))
            samples.append(("pgharbor_drill_last_ok", {}, 1 if last["ok"] else 0))
            if "rtoSeconds" in last:
                samples.append(("pgharbor_drill_rto_seconds", {}, float(last["rtoSeconds"])))
                samples.append(("pgharbor_drill_restored_bytes", {}, int(last["restoredBytes"])))
            ok = [self.drills[n]["finishedAt"] for n in recent if self.drills[n]["ok"]]
            if ok:
                samples.append(("pgharbor_drill_last_success_timestamp_seconds", {}, int(max(ok))))
        sets = [(n, e.get("time", 0)) for n, e in self.pgbackrest("repo-ls", "--recurse", "logical").items() if n.endswith("/manifest.json")]
        if sets:
            samples.append(("pgharbor_logical_backup_last_completed_timestamp_seconds", {}, int(max(t for _, t in sets))))
        samples.append(("pgharbor_logical_backup_sets", {}, len(sets)))

    def collect_once(self, now=None):
        now = self.clock() if now is None else now
        samples = []
        try:
            self.probe_archive(samples)
            self.archive_ok_at = now
        except Exception as e:  # noqa: BLE001 - any failure is a failed probe
            log("archive: %s" % e)
        try:
            self.probe_evidence(samples)
            samples.append(("pgharbor_probe_success", {"check": "evidence"}, 1))
        except Exception as e:  # noqa: BLE001
            log("evidence: %s" % e)
            samples.append(("pgharbor_probe_success", {"check": "evidence"}, 0))
        for target in self.settings.targets:
            name, rest = target.split("=", 1)
            host, port, protocol = rest.rsplit(":", 2)
            try:
                samples.append(("pgharbor_tls_certificate_expiry_timestamp_seconds", {"target": name}, int(certificate_expiry(host, port, protocol, self.settings.ca))))
                samples.append(("pgharbor_probe_success", {"check": "tls-%s" % name}, 1))
            except Exception as e:  # noqa: BLE001
                log("tls %s: %s" % (name, e))
                samples.append(("pgharbor_probe_success", {"check": "tls-%s" % name}, 0))
        samples.append(("pgharbor_probe_last_run_timestamp_seconds", {}, int(now)))
        self.samples = samples  # one assignment: a scrape sees the whole previous run or the whole new one

    # Scrape ----------------------------------------------------------------------------------
    def live_samples(self):
        now = self.clock()
        ok = now - self.archive_ok_at < 2 * self.settings.interval + 60
        out = [("pgharbor_probe_success", {"check": "archive"}, 1 if ok else 0)]
        if self.newest is not None:
            out.append(("pgharbor_archive_newest_wal_timestamp_seconds", {}, int(self.newest)))
            out.append(("pgharbor_rpo_seconds", {}, int(max(0, now - self.newest))))
        return out

    def collect(self):
        families = {}
        for name, labels, value in self.live_samples() + self.samples:
            if name not in families:
                help_text, label_names = METRICS[name]
                families[name] = GaugeMetricFamily(name, help_text, labels=list(label_names))
            families[name].add_metric([labels[k] for k in METRICS[name][1]], value)
        return list(families.values())

    def describe(self):
        return []  # the families depend on the archive's content: nothing to check at registration

    def loop(self):
        while True:
            self.collect_once()
            time.sleep(self.settings.interval)


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def metrics_app(registry):
    """/metrics in the Prometheus text format (0.0.4), 404 elsewhere."""
    app = make_wsgi_app(registry)

    def serve(environ, start_response):
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        environ = {k: v for k, v in environ.items() if k != "HTTP_ACCEPT"}  # always the classic text format
        return app(environ, start_response)
    return serve


def main(argv=None):
    settings = Settings()
    probe = Probe(settings)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(probe)
    threading.Thread(target=probe.loop, daemon=True).start()
    server = make_server(settings.listen, settings.port, metrics_app(registry), server_class=_Server, handler_class=_QuietHandler)
    # As a container's PID 1 it gets no default action for SIGTERM: without a handler `docker stop`
    # would wait out its whole timeout.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log("serving on %s:%d" % (settings.listen, settings.port))
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
