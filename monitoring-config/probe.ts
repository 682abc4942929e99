/**
 * The bucket-side RPO probe (Python 3, standard library only) and the heartbeat writer.
 *
 * The probe reads the archive with read-only credentials through pgBackRest and exports, on
 * /metrics: the time of the newest WAL segment in the bucket and `pgharbor_rpo_seconds` (now minus
 * that time: the data a loss of every database host would lose now, measured from the bucket's side,
 * whatever PostgreSQL believes), the last completed backup per type, and the expiry of every server
 * certificate it can reach.
 */
import { CONTAINER_PATHS as P, STANZA } from "../postgres-config/paths";

export const PROBE_PORT = 9188;

/** The Python HTTP handler both programs serve /metrics with; `bodyExpr` yields the exposition text. */
function metricsHandler(bodyExpr: string): string {
  return `class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/metrics":
            self.send_response(404)
            self.end_headers()
            return
        body = ${bodyExpr}.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass
`;
}

/**
 * PgBouncer exporter (Python 3 + psycopg2): SHOW POOLS on the admin console as the monitoring role.
 * Debian bookworm's prometheus-pgbouncer-exporter crashes against its own PgBouncer 1.18 (it reads
 * SHOW STATS' total_requests column, gone since PgBouncer 1.8), so pgharbor ships this one; it keeps
 * that exporter's metric names.
 */
export function renderPgbouncerExporter(): string {
  return `#!/usr/bin/env python3
# Rendered by pgharbor. PgBouncer exporter: SHOW POOLS / SHOW DATABASES as Prometheus gauges.
import os, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer
import psycopg2

PORT = int(os.environ.get("PGHARBOR_EXPORTER_PORT", "9127"))
LISTEN = os.environ.get("PGHARBOR_EXPORTER_LISTEN", "0.0.0.0")
POOLS = {"cl_active": "active_clients", "cl_waiting": "waiting_clients", "sv_active": "active_servers", "sv_idle": "idle_servers", "maxwait": "max_wait_seconds"}


def scrape():
    lines = []
    try:
        conn = psycopg2.connect(dbname="pgbouncer", connect_timeout=5)  # PGHOST, PGPORT, PGUSER, PGPASSWORD, PGSSLMODE... from the environment
        conn.set_session(autocommit=True)
        with conn.cursor() as cur:
            cur.execute("SHOW POOLS")
            cols = [c.name for c in cur.description]
            for row in cur.fetchall():
                r = dict(zip(cols, row))
                labels = 'database="%s",user="%s"' % (r["database"], r["user"])
                for col, name in POOLS.items():
                    if col in r:
                        lines.append("pgbouncer_%s{%s} %s" % (name, labels, r[col]))
        conn.close()
        lines.append("pgbouncer_up 1")
    except Exception as e:  # noqa: BLE001
        print("pgbouncer-exporter: %s" % e, file=sys.stderr, flush=True)
        lines.append("pgbouncer_up 0")
    return "\\n".join(lines) + "\\n"


${metricsHandler("scrape()")}

if __name__ == "__main__":
    HTTPServer((LISTEN, PORT), Handler).serve_forever()
`;
}

export function renderProbe(): string {
  return `#!/usr/bin/env python3
# Rendered by pgharbor. Bucket-side RPO probe.
import json, os, re, socket, ssl, struct, subprocess, sys, threading, time
from http.server import BaseHTTPRequestHandler, HTTPServer

CONF = os.environ.get("PGHARBOR_PGBACKREST_CONF", "${P.pgbackrestConf}")
CA = os.environ.get("PGHARBOR_CA_FILE", "${P.tlsCa}")
INTERVAL = float(os.environ.get("PGHARBOR_PROBE_INTERVAL_SECONDS", "15"))
PORT = int(os.environ.get("PGHARBOR_PROBE_PORT", "${PROBE_PORT}"))
LISTEN = os.environ.get("PGHARBOR_PROBE_LISTEN", "0.0.0.0")
# name=host:port:protocol, protocol "postgres" (SSLRequest first) or "tls"
TARGETS = [t for t in os.environ.get("PGHARBOR_TLS_TARGETS", "").split(",") if t]
WAL = re.compile(r"(^|/)([0-9A-F]{24})-[0-9a-f]{40}")

state = {"lines": [], "newest": None, "archive_ok_at": 0.0, "drills": {}}


def log(msg):
    print(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rpo-probe:", msg, file=sys.stderr, flush=True)


def pgbackrest(*args):
    out = subprocess.run(["pgbackrest", "--config=" + CONF, "--stanza=${STANZA}", "--output=json", "--log-level-console=warn", "--io-timeout=10", *args],
                         capture_output=True, text=True, timeout=45)
    if out.returncode != 0:
        raise RuntimeError("pgbackrest %s: %s" % (" ".join(args), (out.stderr or out.stdout).strip()))
    return json.loads(out.stdout)


def probe_archive(lines, now):
    info = pgbackrest("info")[0]
    newest = None
    for archive in info.get("archive", []):
        listing = pgbackrest("repo-ls", "--recurse", "archive/${STANZA}/" + archive["id"])
        for name, entry in listing.items():
            m = WAL.search(name)
            if entry.get("type") == "file" and m and (newest is None or m.group(2) > newest[0]):
                newest = (m.group(2), entry.get("time", 0))
    if newest is None:
        raise RuntimeError("no WAL in the archive yet")
    state["newest"] = newest[1]
    last = {}
    for b in info.get("backup", []):
        stop = b.get("timestamp", {}).get("stop", 0)
        kinds = ["full", "diff", "incr"] if b.get("type") == "full" else (["diff", "incr"] if b.get("type") == "diff" else ["incr"])
        for k in kinds:
            last[k] = max(last.get(k, 0), stop)
    for k, v in sorted(last.items()):
        lines.append("pgharbor_backup_last_completed_timestamp_seconds{type=\\"%s\\"} %d" % (k, v))


def repo_get(path):
    out = subprocess.run(["pgbackrest", "--config=" + CONF, "--stanza=${STANZA}", "--log-level-console=warn", "--io-timeout=10", "--raw", "repo-get", path],
                         capture_output=True, timeout=45)
    if out.returncode != 0:
        raise RuntimeError("pgbackrest repo-get %s: %s" % (path, out.stderr.decode(errors="replace").strip()))
    return out.stdout


def probe_evidence(lines):
    """Restore drills and logical backups, from what they left in the bucket (pgharbor-ops)."""
    names = sorted(n for n, e in pgbackrest("repo-ls", "drills").items() if n.endswith(".json") and e.get("type") == "file")
    for n in names[-5:]:  # evidence files never change: read each once
        if n not in state["drills"]:
            state["drills"][n] = json.loads(repo_get("drills/" + n))
    if names:
        last = state["drills"][names[-1]]
        lines.append("pgharbor_drill_last_run_timestamp_seconds %d" % last["finishedAt"])
        lines.append("pgharbor_drill_last_ok %d" % (1 if last["ok"] else 0))
        if "rtoSeconds" in last:
            lines.append("pgharbor_drill_rto_seconds %s" % last["rtoSeconds"])
            lines.append("pgharbor_drill_restored_bytes %d" % last["restoredBytes"])
        ok = [state["drills"][n]["finishedAt"] for n in names[-5:] if state["drills"][n]["ok"]]
        if ok:
            lines.append("pgharbor_drill_last_success_timestamp_seconds %d" % max(ok))
    sets = [(n, e.get("time", 0)) for n, e in pgbackrest("repo-ls", "--recurse", "logical").items() if n.endswith("/manifest.json")]
    if sets:
        lines.append("pgharbor_logical_backup_last_completed_timestamp_seconds %d" % max(t for _, t in sets))
    lines.append("pgharbor_logical_backup_sets %d" % len(sets))


def certificate_expiry(host, port, protocol):
    ctx = ssl.create_default_context(cafile=CA)
    ctx.check_hostname = False
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        if protocol == "postgres":
            sock.sendall(struct.pack("!ii", 8, 80877103))
            if sock.recv(1) != b"S":
                raise RuntimeError("server refused TLS")
        with ctx.wrap_socket(sock) as tls:
            return ssl.cert_time_to_seconds(tls.getpeercert()["notAfter"])


def collect():
    now = time.time()
    lines = []
    try:
        probe_archive(lines, now)
        state["archive_ok_at"] = now
    except Exception as e:  # noqa: BLE001 - any failure is a failed probe
        log("archive: %s" % e)
    try:
        probe_evidence(lines)
        lines.append("pgharbor_probe_success{check=\\"evidence\\"} 1")
    except Exception as e:  # noqa: BLE001
        log("evidence: %s" % e)
        lines.append("pgharbor_probe_success{check=\\"evidence\\"} 0")
    for target in TARGETS:
        name, rest = target.split("=", 1)
        host, port, protocol = rest.rsplit(":", 2)
        try:
            lines.append("pgharbor_tls_certificate_expiry_timestamp_seconds{target=\\"%s\\"} %d" % (name, certificate_expiry(host, port, protocol)))
            lines.append("pgharbor_probe_success{check=\\"tls-%s\\"} 1" % name)
        except Exception as e:  # noqa: BLE001
            log("tls %s: %s" % (name, e))
            lines.append("pgharbor_probe_success{check=\\"tls-%s\\"} 0" % name)
    lines.append("pgharbor_probe_last_run_timestamp_seconds %d" % now)
    state["lines"] = lines


def live_lines():
    # Computed at scrape time, so the RPO keeps growing while the bucket cannot be read (nothing newer
    # is known to be in it) even when a pgBackRest call hangs.
    now = time.time()
    ok = now - state["archive_ok_at"] < 2 * INTERVAL + 60
    lines = ["pgharbor_probe_success{check=\\"archive\\"} %d" % ok]
    if state["newest"] is not None:
        lines.append("pgharbor_archive_newest_wal_timestamp_seconds %d" % state["newest"])
        lines.append("pgharbor_rpo_seconds %d" % max(0, now - state["newest"]))
    return lines


def loop():
    while True:
        collect()
        time.sleep(INTERVAL)


${metricsHandler('("\\n".join(live_lines() + state["lines"]) + "\\n")')}

if __name__ == "__main__":
    threading.Thread(target=loop, daemon=True).start()
    log("serving on %s:%d" % (LISTEN, PORT))
    HTTPServer((LISTEN, PORT), Handler).serve_forever()
`;
}
