#!/usr/bin/env python3
# pgharbor-ops: the backup container's operations tool (Python 3 standard library only).
# Shipped by pgharbor as is; its settings come from the rendered ops.json, its secrets from the
# environment. Commands print one JSON document on stdout and progress lines on stderr.
#
#   window                    oldest/newest restorable time and WAL continuity
#   logical-backup            pg_dump -Fc of every database + globals, encrypted with age, to the bucket
#   logical-list              logical backup sets in the bucket
#   logical-restore           one database of a set into a NEW database (age identity on stdin)
#   logical-cleanup [--dry-run]  delete logical sets past their retention (never the newest complete one)
#   drill [--target T]        restore drill: restore to a random time in the window, verify, evidence
#   drill-list                drill evidence records in the bucket
#   status                    the last outcome of every scheduled job
import argparse
import datetime as dt
import fcntl
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse
import xml.etree.ElementTree as ET

CONFIG_FILE = os.environ.get("PGHARBOR_OPS_CONFIG", "/etc/pgharbor/ops.json")
WAL = re.compile(r"(^|/)([0-9A-F]{24})-[0-9a-f]{40}")


class Failure(Exception):
    """An expected failure: reported as one clear line (and in drill evidence), never a traceback."""


def log(msg):
    print("%s pgharbor-ops: %s" % (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), msg), file=sys.stderr, flush=True)


def iso(t):
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_config():
    with open(CONFIG_FILE) as f:
        return json.load(f)


# ---------------------------------------------------------------------------------------------
# S3 (SigV4, path- or host-style, SSE-KMS when configured, multipart for large objects)
# ---------------------------------------------------------------------------------------------
class S3:
    def __init__(self, cfg, access):
        self.cfg = cfg
        env = {"write": ("PGBACKREST_REPO1_S3_KEY", "PGBACKREST_REPO1_S3_KEY_SECRET"), "expire": ("PGHARBOR_EXPIRER_S3_KEY", "PGHARBOR_EXPIRER_S3_KEY_SECRET")}[access]
        self.key, self.secret = os.environ.get(env[0]), os.environ.get(env[1])
        if not self.key or not self.secret:
            raise Failure("%s/%s are not set: run inside the backup container (its environment carries the bucket credentials)" % env)
        self.part_size = int(os.environ.get("PGHARBOR_S3_PART_SIZE", str(cfg.get("partSizeMiB", 64) * 1048576)))
        ctx = ssl.create_default_context(cafile=cfg.get("caFile")) if cfg.get("verifyTls", True) else ssl._create_unverified_context()  # noqa: S323 - only when the stack says verifyTls=false
        self.ctx = ctx
        if cfg["uriStyle"] == "path":
            self.host, self.base = cfg["endpoint"], "/" + cfg["bucket"]
        else:
            self.host, self.base = cfg["bucket"] + "." + cfg["endpoint"], ""
        self.prefix = cfg["path"].strip("/")

    def _key(self, name):
        return "%s/%s" % (self.prefix, name.lstrip("/"))

    def _request(self, method, key, query=None, body=b"", headers=None, stream_to=None, ok=(200, 204)):
        query = query or {}
        headers = dict(headers or {})
        path = self.base + "/" + urllib.parse.quote(key, safe="/-_.~") if key is not None else (self.base or "/")
        payload_hash = hashlib.sha256(body).hexdigest()
        now = dt.datetime.now(dt.timezone.utc)
        amz_date, date = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        host = self.host if self.cfg["port"] == 443 else "%s:%d" % (self.host, self.cfg["port"])
        headers.update({"host": host, "x-amz-date": amz_date, "x-amz-content-sha256": payload_hash})
        lower = {k.lower(): str(v).strip() for k, v in headers.items()}
        signed = ";".join(sorted(lower))
        q = lambda s: urllib.parse.quote(str(s), safe="-_.~")  # noqa: E731
        canonical_query = "&".join("%s=%s" % (q(k), q(v)) for k, v in sorted(query.items()))
        canonical = "\n".join([method, path, canonical_query, "".join("%s:%s\n" % (k, lower[k]) for k in sorted(lower)), signed, payload_hash])
        scope = "%s/%s/s3/aws4_request" % (date, self.cfg["region"])
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        k = ("AWS4" + self.secret).encode()
        for part in (date, self.cfg["region"], "s3", "aws4_request"):
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (self.key, scope, signed, signature)
        url = path + ("?" + canonical_query if canonical_query else "")
        for attempt in range(4):
            conn = http.client.HTTPSConnection(self.host, self.cfg["port"], context=self.ctx, timeout=60)
            try:
                conn.request(method, url, body=body, headers=headers)
                res = conn.getresponse()
                if res.status in ok:
                    if stream_to is None:
                        return res.status, res.getheaders(), res.read()
                    while True:
                        chunk = res.read(1048576)
                        if not chunk:
                            return res.status, res.getheaders(), b""
                        stream_to(chunk)
                data = res.read()
                if res.status < 500:
                    raise Failure("S3 %s %s answered %d: %s" % (method, key or "/", res.status, data[:300].decode(errors="replace")))
                err = "HTTP %d" % res.status
            except (OSError, http.client.HTTPException) as e:
                if stream_to is not None:
                    raise Failure("S3 %s %s failed: %s" % (method, key, e))
                err = str(e)
            finally:
                conn.close()
            time.sleep(2 ** attempt)
        raise Failure("S3 %s %s failed after retries: %s" % (method, key or "/", err))

    def _sse(self):
        kms = self.cfg.get("kmsKeyId")
        return {"x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id": kms} if kms else {}

    def put_bytes(self, name, data, content_type="application/octet-stream"):
        self._request("PUT", self._key(name), body=data, headers={"content-type": content_type, **self._sse()}, ok=(200,))

    def put_stream(self, name, reader):
        """Uploads everything `reader` yields; multipart past one part. Returns (bytes, sha256)."""
        key = self._key(name)
        digest = hashlib.sha256()
        total = 0
        first = _read_full(reader, self.part_size)
        digest.update(first)
        total += len(first)
        if len(first) < self.part_size:
            self._request("PUT", key, body=first, headers=self._sse(), ok=(200,))
            return total, digest.hexdigest()
        _, _, body = self._request("POST", key, query={"uploads": ""}, headers=self._sse(), ok=(200,))
        upload_id = _xml(body).findtext("UploadId")
        parts = []
        try:
            chunk, number = first, 1
            while chunk:
                _, hdrs, _ = self._request("PUT", key, query={"partNumber": str(number), "uploadId": upload_id}, body=chunk, ok=(200,))
                parts.append((number, dict((k.lower(), v) for k, v in hdrs)["etag"]))
                log("uploaded part %d of %s (%d MiB so far)" % (number, name, total // 1048576))
                chunk = _read_full(reader, self.part_size)
                digest.update(chunk)
                total += len(chunk)
                number += 1
            doc = "<CompleteMultipartUpload>%s</CompleteMultipartUpload>" % "".join("<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>" % p for p in parts)
            self._request("POST", key, query={"uploadId": upload_id}, body=doc.encode(), ok=(200,))
        except BaseException:
            try:
                self._request("DELETE", key, query={"uploadId": upload_id}, ok=(204, 200))
            except Failure as e:
                log("could not abort the multipart upload of %s: %s" % (name, e))
            raise
        return total, digest.hexdigest()

    def get(self, name, write):
        self._request("GET", self._key(name), stream_to=write, ok=(200,))

    def get_bytes(self, name):
        return self._request("GET", self._key(name), ok=(200,))[2]

    def list(self, prefix):
        """[(name relative to the repository path, size, last modified epoch)]"""
        out, token = [], None
        while True:
            query = {"list-type": "2", "prefix": self._key(prefix)}
            if token:
                query["continuation-token"] = token
            _, _, body = self._request("GET", None, query=query, ok=(200,))
            root = _xml(body)
            for c in root.findall("Contents"):
                key = c.findtext("Key")
                modified = dt.datetime.strptime(c.findtext("LastModified")[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.timezone.utc).timestamp()
                out.append((key[len(self.prefix) + 1:], int(c.findtext("Size")), modified))
            if (root.findtext("IsTruncated") or "false") != "true":
                return out
            token = root.findtext("NextContinuationToken")

    def delete(self, name):
        self._request("DELETE", self._key(name), ok=(204, 200))


def _xml(body):
    """Parses an S3 answer, dropping the namespace (AWS sends one, some S3-compatible servers do not)."""
    root = ET.fromstring(body)
    for el in root.iter():
        el.tag = el.tag.rsplit("}", 1)[-1]
    return root


def _read_full(reader, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = reader.read(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


# ---------------------------------------------------------------------------------------------
# pgBackRest and PostgreSQL helpers
# ---------------------------------------------------------------------------------------------
def pgbackrest(cfg, *args, json_out=True, timeout=None):
    cmd = ["pgbackrest", "--config=" + cfg["pgbackrestConf"], "--stanza=" + cfg["stanza"], "--log-level-console=warn"]
    if json_out:
        cmd.append("--output=json")
    r = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise Failure("pgbackrest %s failed (exit %d): %s" % (" ".join(args), r.returncode, (r.stderr or r.stdout).strip()[-600:]))
    return json.loads(r.stdout) if json_out else r.stdout


def psql(sock, port, db, sql):
    r = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", sock, "-p", str(port), "-U", "postgres", "-d", db, "-c", sql], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise Failure("psql on %s: %s" % (db, r.stderr.strip()[-400:]))
    return r.stdout.strip()


def segno(name):
    return int(name[8:16], 16) * 256 + int(name[16:24], 16)


def segname(timeline, n):
    return "%s%08X%08X" % (timeline, n // 256, n % 256)


def window(cfg, info=None):
    """The recoverability window; `info` is pgbackrest info's stanza entry when the caller has it."""
    info = info if info is not None else pgbackrest(cfg, "info")[0]
    backups = info.get("backup", [])
    if not backups:
        message = info.get("status", {}).get("message")
        raise Failure("the archive holds no backup yet%s: nothing can be restored (run `pgharbor backup now --type full`)" % (" (%s)" % message if message else ""))
    segments = {}
    for archive in info.get("archive", []):
        listing = pgbackrest(cfg, "repo-ls", "--recurse", "archive/%s/%s" % (cfg["stanza"], archive["id"]))
        for name, entry in listing.items():
            m = WAL.search(name)
            if m and entry.get("type") == "file":
                segments[m.group(2)] = max(segments.get(m.group(2), 0), entry.get("time", 0))
    if not segments:
        raise Failure("the archive holds backups but no WAL: nothing can be restored")
    # Continuity per timeline: from the oldest backup's first segment on its timeline, and over the
    # whole range of every later timeline (a promotion starts one where the previous one was).
    first = backups[0]["archive"]["start"]
    missing = []
    for timeline in sorted({n[:8] for n in segments if n[:8] >= first[:8]}):
        names = sorted(n for n in segments if n[:8] == timeline and (timeline != first[:8] or n >= first))
        for a, b in zip(names, names[1:]):
            missing += [segname(timeline, s) for s in range(segno(a) + 1, segno(b))]
    newest = max(segments)
    return {
        "oldest": backups[0]["timestamp"]["stop"],
        "newest": segments[newest],
        "newestSegment": newest,
        "continuous": not missing,
        "missingSegments": missing,
        "backups": len(backups),
    }


def databases(sock, port=5432):
    return psql(sock, port, "postgres", "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1").split("\n")


def write_status(cfg, name, doc):
    os.makedirs(cfg["statusDir"], exist_ok=True)
    tmp = os.path.join(cfg["statusDir"], name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(doc, f, sort_keys=True)
        f.write("\n")
    os.replace(tmp, os.path.join(cfg["statusDir"], name))


def stamp(t):
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t))


def unstamp(s):
    return dt.datetime.strptime(s, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc).timestamp()


# ---------------------------------------------------------------------------------------------
# Logical backups
# ---------------------------------------------------------------------------------------------
def logical_backup(cfg, args):
    lc = cfg.get("logical")
    if not lc:
        raise Failure("logical backups are not configured for this environment (BackupCron logical)")
    s3 = S3(cfg, "write")
    started = time.time()
    set_id = stamp(started)
    sock = cfg["socketDir"]
    recipients = [a for r in lc["recipients"] for a in ("-r", r)]
    version = psql(sock, 5432, "postgres", "SHOW server_version")
    items = [("globals", ["pg_dumpall", "-h", sock, "-U", "postgres", "--globals-only", "--no-role-passwords"], "globals.sql.age")]
    items += [(db, ["pg_dump", "-h", sock, "-U", "postgres", "-Fc", "-d", db], "%s.dump.age" % urllib.parse.quote(db, safe="")) for db in databases(sock)]
    manifest = {"format": 1, "environment": cfg["environment"], "set": set_id, "startedAt": int(started), "serverVersion": version, "recipients": lc["recipients"], "databases": [], "globals": None}
    for what, cmd, obj in items:
        t = time.time()
        log("dumping %s" % what)
        # stderr to files: a chatty pg_dump must never block on a full pipe while we read its stdout.
        with tempfile.TemporaryFile() as dump_log, tempfile.TemporaryFile() as enc_log:
            dump = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=dump_log)
            enc = subprocess.Popen(["age", "--encrypt", *recipients], stdin=dump.stdout, stdout=subprocess.PIPE, stderr=enc_log)
            dump.stdout.close()
            name = "logical/%s/%s" % (set_id, obj)
            try:
                size, digest = s3.put_stream(name, enc.stdout)
            finally:
                enc.stdout.close()  # on a failed upload this stops age, and with it pg_dump
                dump.wait()
                enc.wait()
                dump_log.seek(0)
                enc_log.seek(0)
                dump_err = dump_log.read().decode(errors="replace")
                enc_err = enc_log.read().decode(errors="replace")
        if dump.returncode != 0 or enc.returncode != 0:
            try:
                s3.delete(name)
            except Failure:
                pass
            raise Failure("dump of %s failed: %s" % (what, (dump_err + enc_err).strip()[-400:]))
        entry = {"name": what, "object": name, "bytes": size, "sha256": digest, "seconds": round(time.time() - t, 1)}
        if what == "globals":
            manifest["globals"] = entry
        else:
            manifest["databases"].append(entry)
        log("%s: %d bytes encrypted in %.1f s" % (what, size, time.time() - t))
    manifest["finishedAt"] = int(time.time())
    # The manifest goes last: a set without one is incomplete and never offered for restore.
    s3.put_bytes("logical/%s/manifest.json" % set_id, json.dumps(manifest, indent=1, sort_keys=True).encode(), "application/json")
    result = {"set": set_id, "databases": [d["name"] for d in manifest["databases"]], "bytes": sum(d["bytes"] for d in manifest["databases"]) + manifest["globals"]["bytes"], "seconds": manifest["finishedAt"] - manifest["startedAt"]}
    write_status(cfg, "logical-last.json", {**result, "ok": True, "finishedAt": manifest["finishedAt"]})
    return result


def logical_sets(s3):
    sets = {}
    for name, size, modified in s3.list("logical/"):
        parts = name.split("/")
        if len(parts) != 3:
            continue
        entry = sets.setdefault(parts[1], {"set": parts[1], "objects": 0, "bytes": 0, "complete": False, "modified": 0})
        entry["objects"] += 1
        entry["bytes"] += size
        entry["modified"] = max(entry["modified"], modified)
        if parts[2] == "manifest.json":
            entry["complete"] = True
    return [sets[k] for k in sorted(sets)]


def logical_list(cfg, args):
    s3 = S3(cfg, "write")
    out = []
    for s in logical_sets(s3):
        if s["complete"]:
            m = json.loads(s3.get_bytes("logical/%s/manifest.json" % s["set"]))
            s.update({"startedAt": m["startedAt"], "finishedAt": m["finishedAt"], "databases": [d["name"] for d in m["databases"]]})
        out.append(s)
    return out


def logical_restore(cfg, args):
    s3 = S3(cfg, "write")
    complete = [s["set"] for s in logical_sets(s3) if s["complete"]]
    if not complete:
        raise Failure("the bucket holds no complete logical backup set")
    set_id = complete[-1] if args.set == "latest" else args.set
    if set_id not in complete:
        raise Failure("--set %s is not a complete logical backup set (have: %s)" % (args.set, ", ".join(complete[-5:])))
    manifest = json.loads(s3.get_bytes("logical/%s/manifest.json" % set_id))
    entry = next((d for d in manifest["databases"] if d["name"] == args.database), None)
    if entry is None:
        raise Failure("set %s holds no database %s (it holds %s)" % (set_id, args.database, ", ".join(d["name"] for d in manifest["databases"])))
    target = args.into_database
    sock = cfg["socketDir"]
    if psql(sock, 5432, "postgres", "SELECT count(*) FROM pg_database WHERE datname = '%s'" % target.replace("'", "''")) != "0":
        raise Failure("--into-database %s already exists: a logical restore never writes into an existing database; choose a new name" % target)
    identity = sys.stdin.buffer.read()
    if b"AGE-SECRET-KEY-" not in identity:
        raise Failure("no age identity on stdin: pass the private key matching one of the set's recipients (pgharbor restore --logical --identity FILE)")
    work = tempfile.mkdtemp(prefix="logical-", dir=cfg["scratchDir"])
    created = False
    try:
        key_file = os.path.join(work, "identity")
        with open(os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(identity)
        cipher = os.path.join(work, "dump.age")
        digest = hashlib.sha256()
        t = time.time()
        with open(cipher, "wb") as f:
            def write(chunk):
                digest.update(chunk)
                f.write(chunk)
            s3.get(entry["object"], write)
        if digest.hexdigest() != entry["sha256"]:
            raise Failure("%s does not match its manifest checksum (%s != %s): the object was changed or damaged" % (entry["object"], digest.hexdigest(), entry["sha256"]))
        log("downloaded %s (%d bytes, checksum matches the manifest)" % (entry["object"], entry["bytes"]))
        subprocess.run(["createdb", "-h", sock, "-U", "postgres", "-T", "template0", target], check=True, capture_output=True)
        created = True
        dec = subprocess.Popen(["age", "--decrypt", "-i", key_file, cipher], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        res = subprocess.run(["pg_restore", "-h", sock, "-U", "postgres", "-d", target, "--exit-on-error", "--single-transaction"], stdin=dec.stdout, capture_output=True, text=True)
        dec.stdout.close()
        dec_err = dec.stderr.read().decode(errors="replace")
        dec.wait()
        if dec.returncode != 0:
            raise Failure("age could not decrypt %s: %s" % (entry["object"], dec_err.strip()[-300:]))
        if res.returncode != 0:
            raise Failure("pg_restore into %s failed: %s" % (target, res.stderr.strip()[-400:]))
        created = False
        return {"set": set_id, "database": args.database, "into": target, "bytes": entry["bytes"], "seconds": round(time.time() - t, 1)}
    except subprocess.CalledProcessError as e:
        raise Failure("createdb %s failed: %s" % (target, e.stderr.decode(errors="replace").strip()))
    finally:
        if created:
            subprocess.run(["dropdb", "-h", sock, "-U", "postgres", "--if-exists", target], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def logical_cleanup(cfg, args):
    lc = cfg.get("logical")
    if not lc:
        return {"deleted": [], "kept": []}
    cutoff = time.time() - lc["retentionDays"] * 86400
    sets = logical_sets(S3(cfg, "write"))
    complete = [s["set"] for s in sets if s["complete"]]
    doomed = []
    for s in sets:
        if s["complete"] and s["set"] == complete[-1]:
            continue  # never the newest complete set, however old
        if (s["complete"] and unstamp(s["set"]) < cutoff) or (not s["complete"] and s["modified"] < time.time() - 86400):
            doomed.append(s["set"])
    if not args.dry_run and doomed:
        s3 = S3(cfg, "expire")
        for set_id in doomed:
            names = sorted((n for n, _, _ in s3.list("logical/%s/" % set_id)), key=lambda n: n.endswith("manifest.json"), reverse=True)
            for n in names:  # manifest first: a half-deleted set reads as incomplete, never as restorable
                s3.delete(n)
            log("deleted logical set %s" % set_id)
    return {"deleted" if not args.dry_run else "wouldDelete": doomed, "kept": [s["set"] for s in sets if s["set"] not in doomed], "retentionDays": lc["retentionDays"]}


# ---------------------------------------------------------------------------------------------
# Restore drill
# ---------------------------------------------------------------------------------------------
def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def drill(cfg, args):
    # One drill at a time (cron and `drill now` may meet): they share the scratch directory. A refused
    # drill writes no evidence, it is not a failed restore.
    lock = open(os.path.join(cfg["scratchDir"], "drill.lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise Failure("another restore drill is running in this container; wait for it (drill list shows its evidence when it ends)")
    dc = cfg["drill"]
    started = time.time()
    ev = {"kind": "restore-drill", "environment": cfg["environment"], "startedAt": int(started), "ok": False, "checks": {}}
    scratch = os.path.join(cfg["scratchDir"], "drill")
    sock_dir = os.path.join(cfg["scratchDir"], "drill-socket")
    server = None
    try:
        for stale in (scratch, sock_dir):  # a drill killed half-way leaves its scratch behind
            shutil.rmtree(stale, ignore_errors=True)
        info = pgbackrest(cfg, "info")[0]
        w = window(cfg, info)
        ev["window"] = {"oldest": w["oldest"], "newest": w["newest"], "newestSegment": w["newestSegment"], "continuous": w["continuous"]}
        if not w["continuous"]:
            ev["window"]["missingSegments"] = w["missingSegments"][:20]
            raise Failure("the archive has a WAL gap (missing %s): point-in-time recovery past %s is impossible" % (", ".join(w["missingSegments"][:3]), w["missingSegments"][0]))
        need = max(b["info"]["size"] for b in info["backup"])
        free = shutil.disk_usage(cfg["scratchDir"]).free
        if free < need * 1.1:
            raise Failure("the scratch volume has %d MiB free; restoring the largest backup needs about %d MiB" % (free // 1048576, need * 1.1 // 1048576))
        # A time target needs a commit after it in the archive (the heartbeat writes one every few
        # seconds) and must fall after the backup it starts from has become consistent.
        lo, hi = w["oldest"] + 5, w["newest"] - dc["marginSeconds"]
        if args.target:
            target_epoch = dt.datetime.fromisoformat(args.target.replace("Z", "+00:00")).timestamp()
        elif hi > lo:
            target_epoch = int(random.uniform(lo, hi))
        else:
            target_epoch = None
        target_text = "latest" if target_epoch is None else dt.datetime.fromtimestamp(target_epoch, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S+00")
        ev["target"] = {"kind": "latest" if target_epoch is None else "time", "time": target_text, "epoch": target_epoch}
        log("drill: restoring to %s (window %s .. %s)" % (target_text, iso(w["oldest"]), iso(w["newest"])))

        t0 = time.time()
        r = subprocess.run([cfg["restoreScript"], "--to", target_text, "--into", scratch], capture_output=True, text=True)
        if r.returncode != 0:
            raise Failure("restore failed (exit %d): %s" % (r.returncode, r.stderr.strip()[-500:]))
        label = re.search(r"restore backup set (\S+)", r.stdout + r.stderr)
        ev["backupSet"] = label.group(1).rstrip(",") if label else None
        ev["restoreSeconds"] = round(time.time() - t0, 1)
        ev["restoredBytes"] = dir_bytes(scratch)
        log("drill: %d MiB restored in %.1f s; starting it" % (ev["restoredBytes"] // 1048576, ev["restoreSeconds"]))

        os.makedirs(sock_dir, mode=0o700)
        hba = os.path.join(sock_dir, "pg_hba.conf")
        with open(hba, "w") as f:
            f.write("local all postgres peer\n")
        port = dc["port"]
        t1 = time.time()
        logf = open(os.path.join(sock_dir, "postgres.log"), "w")
        server = subprocess.Popen(["postgres", "-D", scratch, "-c", "port=%d" % port, "-c", "listen_addresses=", "-c", "unix_socket_directories=" + sock_dir, "-c", "hba_file=" + hba,
                                   "-c", "archive_mode=off", "-c", "hot_standby=off", "-c", "shared_buffers=%dMB" % dc["sharedBuffersMiB"], "-c", "max_connections=20", "-c", "ssl=off",
                                   "-c", "logging_collector=off", "-c", "shared_preload_libraries="], stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = t1 + dc["recoveryTimeoutSeconds"]
        while True:
            if server.poll() is not None:
                raise Failure("the restored server stopped during recovery (exit %s): %s" % (server.returncode, _tail(os.path.join(sock_dir, "postgres.log"))))
            ready = subprocess.run(["psql", "-X", "-At", "-h", sock_dir, "-p", str(port), "-U", "postgres", "-d", "postgres", "-c", "SELECT pg_is_in_recovery()"], capture_output=True, text=True)
            if ready.returncode == 0 and ready.stdout.strip() == "f":
                break
            if time.time() > deadline:
                raise Failure("recovery did not finish within %d s: %s" % (dc["recoveryTimeoutSeconds"], _tail(os.path.join(sock_dir, "postgres.log"))))
            time.sleep(0.5)
        ev["recoverySeconds"] = round(time.time() - t1, 1)
        ev["rtoSeconds"] = round(ev["restoreSeconds"] + ev["recoverySeconds"], 1)
        log("drill: recovered and promoted after %.1f s (RTO %.1f s); verifying" % (ev["recoverySeconds"], ev["rtoSeconds"]))

        # 1. The heartbeat: the newest one at or before the target is there, nothing after it.
        beat = float(psql(sock_dir, port, cfg["appDatabase"], "SELECT extract(epoch FROM at) FROM pgharbor.heartbeat"))
        reference = target_epoch if target_epoch is not None else w["newest"]
        lag = reference - beat
        ok = (beat <= reference + (0 if target_epoch is not None else 1)) and lag <= dc["heartbeatToleranceSeconds"]
        ev["checks"]["heartbeat"] = {"ok": ok, "at": iso(beat), "secondsBeforeTarget": round(lag, 3), "toleranceSeconds": dc["heartbeatToleranceSeconds"]}
        # 2. Every heap and B-tree index (amcheck), with the extension installed in the scratch copy only.
        t = time.time()
        am = subprocess.run(["pg_amcheck", "-h", sock_dir, "-p", str(port), "-U", "postgres", "--all", "--install-missing", "--heapallindexed"], capture_output=True, text=True)
        ev["checks"]["amcheck"] = {"ok": am.returncode == 0, "seconds": round(time.time() - t, 1), **({"output": (am.stdout + am.stderr)[-800:]} if am.returncode else {})}
        # 3. Every database dumps (reads every row through the executor).
        t = time.time()
        dumped, failed = [], {}
        for db in databases(sock_dir, port):
            d = subprocess.run(["pg_dump", "-h", sock_dir, "-p", str(port), "-U", "postgres", "-d", db, "-f", os.devnull], capture_output=True, text=True)
            dumped.append(db)
            if d.returncode != 0:
                failed[db] = d.stderr.strip()[-300:]
        ev["checks"]["dump"] = {"ok": not failed, "databases": dumped, "seconds": round(time.time() - t, 1), **({"errors": failed} if failed else {})}
        bad = [k for k, v in ev["checks"].items() if not v["ok"]]
        if bad:
            raise Failure("verification failed: %s" % ", ".join(bad))
        ev["ok"] = True
    except Failure as e:
        ev["error"] = str(e)
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(2)  # fast shutdown
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(sock_dir, ignore_errors=True)
    ev["finishedAt"] = int(time.time())
    ev["durationSeconds"] = ev["finishedAt"] - ev["startedAt"]
    name = "drills/%s.json" % stamp(started)
    try:
        S3(cfg, "write").put_bytes(name, json.dumps(ev, indent=1, sort_keys=True).encode(), "application/json")
        ev["evidence"] = name
    except Failure as e:
        ev["evidenceError"] = str(e)
    write_status(cfg, "drill-last.json", ev)
    log("drill %s%s" % ("passed" if ev["ok"] else "FAILED: ", "" if ev["ok"] else ev["error"]))
    return ev


def _tail(path, n=5):
    try:
        with open(path, errors="replace") as f:
            return " | ".join(line.strip() for line in f.readlines()[-n:])
    except OSError:
        return "(no log)"


def drill_list(cfg, args):
    s3 = S3(cfg, "write")
    names = sorted(n for n, _, _ in s3.list("drills/") if n.endswith(".json"))[-args.last:]
    return [json.loads(s3.get_bytes(n)) for n in names]


def status(cfg, args):
    out = {}
    d = cfg["statusDir"]
    for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        if f.endswith(".json"):
            try:
                with open(os.path.join(d, f)) as fh:
                    out[f[:-5]] = json.load(fh)
            except (OSError, ValueError):
                pass
    return out


def main(argv):
    p = argparse.ArgumentParser(prog="pgharbor-ops")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("window")
    sub.add_parser("logical-backup")
    sub.add_parser("logical-list")
    r = sub.add_parser("logical-restore")
    r.add_argument("--set", default="latest")
    r.add_argument("--database", required=True)
    r.add_argument("--into-database", required=True)
    c = sub.add_parser("logical-cleanup")
    c.add_argument("--dry-run", action="store_true")
    d = sub.add_parser("drill")
    d.add_argument("--target")
    dl = sub.add_parser("drill-list")
    dl.add_argument("--last", type=int, default=10)
    sub.add_parser("status")
    args = p.parse_args(argv)
    cfg = load_config()
    fn = {"window": lambda c, a: window(c), "logical-backup": logical_backup, "logical-list": logical_list, "logical-restore": logical_restore, "logical-cleanup": logical_cleanup,
          "drill": drill, "drill-list": drill_list, "status": status}[args.cmd]
    try:
        result = fn(cfg, args)
    except Failure as e:
        log(str(e))
        return 1
    print(json.dumps(result, sort_keys=True))
    if args.cmd == "drill":
        # Monitoring reads the evidence from the bucket: a drill whose evidence is not there failed too.
        return 0 if result["ok"] and "evidenceError" not in result else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
