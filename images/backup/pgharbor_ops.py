#!/usr/bin/python3
"""pgharbor-ops: the backup container's operations tool.

Installed as /usr/local/lib/pgharbor/pgharbor_ops.py, with /usr/local/lib/pgharbor/pgharbor-ops a
symlink to it. Its settings come from the rendered ops.json (PGHARBOR_OPS_CONFIG overrides the path),
its secrets from the environment. Commands print one JSON document on stdout and progress lines on
stderr; an expected failure is one line on stderr and exit code 1, never a traceback.

  window                       oldest/newest restorable time and WAL continuity
  logical-backup               pg_dump -Fc of every database + globals, encrypted with age, to the bucket
  logical-list                 logical backup sets in the bucket
  logical-restore              one database of a set into a NEW database (age identity on stdin)
  logical-cleanup [--dry-run]  delete logical sets past their retention (never the newest complete one)
  drill [--target T]           restore drill: restore to a random time in the window, verify, evidence
  drill-list                   drill evidence records in the bucket
  status                       the last outcome of every scheduled job
  queries, queries-reset, indexes, maintenance   query insights and routine upkeep (insights.py)
  health                       primary, replicas, slots, sessions, locks, wraparound, bloat, cache, pg_wal,
                               autovacuum: ok/warn/critical per check (health.py documents the document);
                               exit 0 whatever the checks say, 1 when no report could be made

Objects pgBackRest has no command for (logical dumps, drill evidence) go through boto3. Importing this
module has no side effects: nothing runs until main() is called.
"""
import argparse
import base64
import datetime as dt
import fcntl
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import warnings

import boto3.session
import health
import insights
import psycopg2
import botocore.config
import botocore.exceptions

DEFAULT_CONFIG_FILE = "/etc/pgharbor/ops.json"
WAL = re.compile(r"(^|/)([0-9A-F]{24})-[0-9a-f]{40}")
MIB = 1048576


class Failure(Exception):
    """An expected failure: reported as one clear line (and in drill evidence), never a traceback."""


def log(msg):
    print("%s pgharbor-ops: %s" % (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), msg), file=sys.stderr, flush=True)


def iso(t):
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def config_file():
    return os.environ.get("PGHARBOR_OPS_CONFIG", DEFAULT_CONFIG_FILE)


def load_config():
    path = config_file()
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise Failure("cannot read the settings file %s: %s" % (path, e.strerror if isinstance(e, OSError) else _reason(e)))


def _reason(e):
    """One line for an OSError or a parse error: "Permission denied: /path", "not JSON: ..."."""
    if isinstance(e, OSError):
        return "%s: %s" % (e.strerror or e.__class__.__name__, e.filename) if e.filename else (e.strerror or str(e))
    if isinstance(e, ValueError):
        return "not JSON: %s" % e
    return str(e)


# ---------------------------------------------------------------------------------------------
# S3, through boto3: SigV4, retries, path- or virtual-host-style, SSE-KMS when configured, multipart
# for large objects. Every upload carries Content-MD5 (the MD5 of exactly the bytes of that request):
# S3 refuses uploads without an integrity header on Object Lock buckets, and with
# request_checksum_calculation="when_required" botocore adds no aws-chunked body or checksum
# trailer, which several S3-compatible servers do not understand.
# ---------------------------------------------------------------------------------------------
CREDENTIALS_ENV = {
    "write": ("PGBACKREST_REPO1_S3_KEY", "PGBACKREST_REPO1_S3_KEY_SECRET"),
    "expire": ("PGHARBOR_EXPIRER_S3_KEY", "PGHARBOR_EXPIRER_S3_KEY_SECRET"),
}


def content_md5(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324 - an integrity header, not security


class S3:
    def __init__(self, cfg, access):
        self.cfg = cfg
        env = CREDENTIALS_ENV[access]
        self.key, self.secret = os.environ.get(env[0]), os.environ.get(env[1])
        if not self.key or not self.secret:
            raise Failure("%s/%s are not set: run inside the backup container (its environment carries the bucket credentials)" % env)
        self.part_size = int(os.environ.get("PGHARBOR_S3_PART_SIZE", str(int(cfg.get("partSizeMiB") or 64) * MIB)))
        if self.part_size < 1:
            raise Failure("the S3 part size must be positive (PGHARBOR_S3_PART_SIZE=%s)" % os.environ.get("PGHARBOR_S3_PART_SIZE"))
        self.bucket = cfg["bucket"]
        self.prefix = cfg["path"].strip("/")
        if cfg.get("verifyTls", True):
            verify = cfg.get("caFile") or True
        else:
            verify = False  # only when the stack says verifyTls=false (as pgBackRest's repo1-storage-verify-tls=n)
            # said once in the settings, not on every request: urllib3 would warn on stderr each time
            warnings.filterwarnings("ignore", message="Unverified HTTPS request")
        endpoint = "https://%s:%d" % (cfg["endpoint"], int(cfg["port"]))
        try:
            self.client = self._client(endpoint, verify)
        except (ValueError, botocore.exceptions.BotoCoreError) as e:
            raise Failure(self._scrub("cannot set up the S3 client for %s: %s" % (endpoint, e))) from None

    def _client(self, endpoint, verify):
        cfg = self.cfg
        return boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            region_name=cfg["region"],
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
            verify=verify,
            config=botocore.config.Config(
                s3={"addressing_style": "path" if cfg["uriStyle"] == "path" else "virtual"},
                retries={"max_attempts": 5, "mode": "standard"},
                connect_timeout=10,
                read_timeout=60,
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def _key(self, name):
        name = name.lstrip("/")
        return "%s/%s" % (self.prefix, name) if self.prefix else name

    def _relative(self, key):
        return key[len(self.prefix) + 1:] if self.prefix else key

    def _sse(self):
        kms = self.cfg.get("kmsKeyId")
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms} if kms else {}

    def _scrub(self, text):
        for s in (self.secret, self.key):
            if s:
                text = text.replace(s, "***")
        return text

    def _failure(self, operation, key, e):
        """botocore's exception as one line naming the operation, the key and the HTTP status/code."""
        if isinstance(e, botocore.exceptions.ClientError):
            err = e.response.get("Error", {})
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = err.get("Code") or "?"
            message = " ".join(str(err.get("Message") or "").split())
            text = "S3 %s %s answered HTTP %s %s%s" % (operation, key, status or "?", code, ": " + message[:300] if message else "")
        else:
            text = "S3 %s %s failed: %s" % (operation, key, " ".join(str(e).split())[:400] or e.__class__.__name__)
        return Failure(self._scrub(text))

    def _call(self, operation, key, **params):
        try:
            return getattr(self.client, operation)(Bucket=self.bucket, **({"Key": key} if key is not None else {}), **params)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            raise self._failure(operation, key, e) from None

    def put_bytes(self, name, data, content_type="application/octet-stream"):
        self._call("put_object", self._key(name), Body=data, ContentMD5=content_md5(data), ContentType=content_type, **self._sse())

    def put_stream(self, name, reader):
        """Uploads everything `reader` yields; multipart past one part. Returns (bytes, sha256)."""
        key = self._key(name)
        digest = hashlib.sha256()
        total = 0
        first = _read_full(reader, self.part_size)
        digest.update(first)
        total += len(first)
        if len(first) < self.part_size:
            self._call("put_object", key, Body=first, ContentMD5=content_md5(first), **self._sse())
            return total, digest.hexdigest()
        upload_id = self._call("create_multipart_upload", key, **self._sse())["UploadId"]
        parts = []
        try:
            chunk, number = first, 1
            while chunk:
                answer = self._call("upload_part", key, UploadId=upload_id, PartNumber=number, Body=chunk, ContentMD5=content_md5(chunk))
                parts.append({"PartNumber": number, "ETag": answer["ETag"]})
                log("uploaded part %d of %s (%d MiB so far)" % (number, name, total // MIB))
                chunk = _read_full(reader, self.part_size)
                digest.update(chunk)
                total += len(chunk)
                number += 1
            self._call("complete_multipart_upload", key, UploadId=upload_id, MultipartUpload={"Parts": parts})
        except BaseException:
            try:
                self._call("abort_multipart_upload", key, UploadId=upload_id)
            except Failure as e:
                log("could not abort the multipart upload of %s: %s" % (name, e))
            raise
        return total, digest.hexdigest()

    def get(self, name, write):
        key = self._key(name)
        body = self._call("get_object", key)["Body"]
        try:
            for chunk in body.iter_chunks(MIB):
                write(chunk)
        except (botocore.exceptions.BotoCoreError, OSError) as e:
            raise self._failure("get_object", key, e) from None
        finally:
            body.close()

    def get_bytes(self, name):
        key = self._key(name)
        body = self._call("get_object", key)["Body"]
        try:
            return body.read()
        except (botocore.exceptions.BotoCoreError, OSError) as e:
            raise self._failure("get_object", key, e) from None
        finally:
            body.close()

    def list(self, prefix):
        """[(name relative to the repository path, size, last modified epoch)]"""
        key = self._key(prefix)
        out = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=key):
                for c in page.get("Contents", []):
                    # Whole seconds, as the listing's LastModified was read before.
                    out.append((self._relative(c["Key"]), int(c["Size"]), c["LastModified"].replace(microsecond=0).timestamp()))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            raise self._failure("list_objects_v2", key, e) from None
        return out

    def delete(self, name):
        self._call("delete_object", self._key(name))


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


def connect(sock, port, db, statement_timeout_ms=600000, lock_timeout_ms=None):
    """A connection as the superuser over the local socket (peer authentication). Timeouts in
    milliseconds; without lock_timeout_ms the server's lock_timeout applies."""
    options = "-c statement_timeout=%d" % statement_timeout_ms + (" -c lock_timeout=%d" % lock_timeout_ms if lock_timeout_ms is not None else "")
    try:
        return psycopg2.connect(host=sock, port=port, user="postgres", dbname=db, connect_timeout=10,
                                application_name="pgharbor-ops", options=options)
    except psycopg2.Error as e:
        raise Failure("cannot connect to %s: %s" % (db, str(e).strip()[-400:]))


def query(sock, port, db, sql, params=None, statement_timeout_ms=600000, lock_timeout_ms=None):
    """The rows of one statement, run as the superuser over the local socket (peer authentication),
    values passed as parameters (psycopg2 binds them; nothing is spliced into SQL text)."""
    conn = connect(sock, port, db, statement_timeout_ms, lock_timeout_ms)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
    except psycopg2.Error as e:
        raise Failure("query on %s: %s" % (db, str(e).strip()[-400:]))
    finally:
        conn.close()


def scalar(sock, port, db, sql, params=None):
    """The first column of the only row of one statement (None when there is no row)."""
    rows = query(sock, port, db, sql, params)
    return rows[0][0] if rows else None


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
    return [r[0] for r in query(sock, port, "postgres", "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1")]


def write_status(cfg, name, doc):
    os.makedirs(cfg["statusDir"], exist_ok=True)
    tmp = os.path.join(cfg["statusDir"], name + ".tmp")
    with open(tmp, "w") as f:
        # Readable by whoever runs `status` (it holds no secret), whatever the caller's umask.
        os.fchmod(f.fileno(), 0o644)
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
    version = scalar(sock, 5432, "postgres", "SHOW server_version")
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


def age_decrypt(identity, cipher_path, stdout):
    """Starts `age --decrypt` on the file `cipher_path`, writing the plaintext to `stdout`.

    The identity goes to age on its standard input (`-i -`, which age accepts because the ciphertext
    comes from a file argument), never through a file: nothing on disk ever holds the private key.
    age reads its identities to the end before it writes any plaintext, so writing and closing its
    stdin here cannot deadlock against the reader of `stdout`. Returns the Popen (stderr piped).
    """
    dec = subprocess.Popen(["age", "--decrypt", "-i", "-", cipher_path], stdin=subprocess.PIPE, stdout=stdout, stderr=subprocess.PIPE)
    try:
        dec.stdin.write(identity)
        dec.stdin.close()
    except BrokenPipeError:
        pass  # age stopped early (bad arguments): its exit code and stderr say why
    return dec


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
    if scalar(sock, 5432, "postgres", "SELECT count(*) FROM pg_database WHERE datname = %s", (target,)) != 0:
        raise Failure("--into-database %s already exists: a logical restore never writes into an existing database; choose a new name" % target)
    identity = sys.stdin.buffer.read()
    if b"AGE-SECRET-KEY-" not in identity:
        raise Failure("no age identity on stdin: pass the private key matching one of the set's recipients (pgharbor restore --logical --identity FILE)")
    work = tempfile.mkdtemp(prefix="logical-", dir=cfg["scratchDir"])
    created = False
    try:
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
        dec = age_decrypt(identity, cipher, subprocess.PIPE)
        res = subprocess.run(["pg_restore", "-h", sock, "-U", "postgres", "-d", target, "--exit-on-error", "--single-transaction"], stdin=dec.stdout, capture_output=True, text=True)
        dec.stdout.close()
        dec_err = dec.stderr.read().decode(errors="replace")
        dec.wait()
        # age dies of SIGPIPE when pg_restore stops reading early (--exit-on-error): then pg_restore's
        # error is the cause. A wrong identity makes age fail on its own, before it writes anything.
        if dec.returncode != 0 and dec.returncode != -signal.SIGPIPE:
            raise Failure("age could not decrypt %s: %s" % (entry["object"], dec_err.strip()[-300:]))
        if res.returncode != 0:
            raise Failure("pg_restore into %s failed: %s" % (target, res.stderr.strip()[-400:]))
        if dec.returncode != 0:
            raise Failure("age could not decrypt %s: %s" % (entry["object"], dec_err.strip()[-300:] or "killed by SIGPIPE"))
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


def parse_target(text):
    """A drill's --target: an ISO 8601 time with a zone ("2026-11-21T10:15:00Z", "2026-11-21 10:15:00+00").

    Returns epoch seconds; a time without a zone, or one that does not exist (2026-02-30, 24:00), is
    refused with a Failure."""
    try:
        t = dt.datetime.fromisoformat(text.strip())
    except ValueError as e:
        raise Failure("--target %r is not a time (ISO 8601 with a zone, e.g. 2026-11-21T10:15:00Z): %s" % (text, e)) from None
    if t.tzinfo is None or t.utcoffset() is None:
        raise Failure("--target %r has no zone: give one (2026-11-21T10:15:00Z or 2026-11-21 10:15:00+00)" % text)
    return t.timestamp()


def drill(cfg, args):
    # A bad --target is refused before anything starts: it writes no evidence (it is not a failed restore).
    requested = parse_target(args.target) if args.target else None
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
            raise Failure("the scratch volume has %d MiB free; restoring the largest backup needs about %d MiB" % (free // MIB, need * 1.1 // MIB))
        # A time target needs a commit after it in the archive (the heartbeat writes one every few
        # seconds) and must fall after the backup it starts from has become consistent.
        lo, hi = w["oldest"] + 5, w["newest"] - dc["marginSeconds"]
        if requested is not None:
            target_epoch = requested
        elif hi > lo:
            target_epoch = int(random.uniform(lo, hi))
        else:
            target_epoch = None
        target_text = "latest" if target_epoch is None else dt.datetime.fromtimestamp(target_epoch, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S+00")
        ev["target"] = {"kind": "latest" if target_epoch is None else "time", "time": target_text, "epoch": target_epoch}
        log("drill: restoring to %s (window %s .. %s)" % (target_text, iso(w["oldest"]), iso(w["newest"])))

        t0 = time.time()
        r = subprocess.run([cfg["restoreScript"], "--to", target_text, "--into", scratch], capture_output=True, text=True, env={**os.environ, "PGHARBOR_DRILL": "1"})
        if r.returncode != 0:
            raise Failure("restore failed (exit %d): %s" % (r.returncode, r.stderr.strip()[-500:]))
        label = re.search(r"restore backup set (\S+)", r.stdout + r.stderr)
        ev["backupSet"] = label.group(1).rstrip(",") if label else None
        ev["restoreSeconds"] = round(time.time() - t0, 1)
        ev["restoredBytes"] = dir_bytes(scratch)
        log("drill: %d MiB restored in %.1f s; starting it" % (ev["restoredBytes"] // MIB, ev["restoreSeconds"]))

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
        logf.close()  # the server holds its own descriptor
        deadline = t1 + dc["recoveryTimeoutSeconds"]
        while True:
            if server.poll() is not None:
                raise Failure("the restored server stopped during recovery (exit %s): %s" % (server.returncode, _tail(os.path.join(sock_dir, "postgres.log"))))
            try:
                if scalar(sock_dir, port, "postgres", "SELECT pg_is_in_recovery()") is False:
                    break
            except Failure:
                pass  # not accepting connections yet
            if time.time() > deadline:
                raise Failure("recovery did not finish within %d s: %s" % (dc["recoveryTimeoutSeconds"], _tail(os.path.join(sock_dir, "postgres.log"))))
            time.sleep(0.5)
        ev["recoverySeconds"] = round(time.time() - t1, 1)
        ev["rtoSeconds"] = round(ev["restoreSeconds"] + ev["recoverySeconds"], 1)
        log("drill: recovered and promoted after %.1f s (RTO %.1f s); verifying" % (ev["recoverySeconds"], ev["rtoSeconds"]))

        # 1. The heartbeat: the newest one at or before the target is there, nothing after it.
        beat = scalar(sock_dir, port, cfg["appDatabase"], "SELECT extract(epoch FROM at)::float8 FROM pgharbor.heartbeat")
        if beat is None:
            raise Failure("the restored copy holds no heartbeat row (pgharbor.heartbeat in %s is empty)" % cfg["appDatabase"])
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
    except Exception as e:  # noqa: BLE001 - anything unexpected is a failed drill, with evidence, not a traceback
        ev["error"] = "unexpected %s: %s" % (e.__class__.__name__, e)
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
    lock.close()
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
    """Every status file of the status directory. One that cannot be read or parsed is reported as
    {"job": <name>, "unreadable": <reason>}: a job that ran must never look as if it never ran."""
    out = {}
    d = cfg["statusDir"]
    if not os.path.isdir(d):
        return out
    try:
        names = sorted(os.listdir(d))
    except OSError as e:
        raise Failure("cannot list the status directory: %s" % _reason(e))
    for f in names:
        if not f.endswith(".json"):
            continue
        job = f[:-5]
        try:
            with open(os.path.join(d, f)) as fh:
                doc = json.load(fh)
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
            out[job] = doc
        except (OSError, ValueError) as e:
            out[job] = {"job": job, "unreadable": _reason(e)}
    return out


def server(cfg):
    """connect(db) for insights: the primary over the shared socket."""
    return lambda db: connect(cfg["socketDir"], 5432, db)


def health_report(cfg, args):
    """The health document (health.py). Its statements run for at most a minute and wait at most two
    seconds for a lock: a look at a struggling server must neither hang nor queue behind a lock."""
    sock = cfg["socketDir"]

    def q(db, sql, params=None):
        return query(sock, 5432, db, sql, params, statement_timeout_ms=60000, lock_timeout_ms=2000)
    try:
        return health.report(cfg, q)
    except health.ThresholdError as e:
        raise Failure("%s (in the settings file %s)" % (e, config_file())) from None


def maintenance(cfg, args):
    report = insights.maintenance(cfg, server(cfg), dry_run=args.dry_run)
    for d in report["databases"]:
        for kind in ("vacuumed", "analyzed", "skipped"):
            for t in d[kind]:
                log("%s %s %s: %s" % ("would have" if args.dry_run and kind != "skipped" else "", kind, t["table"], t["why"]))
        if "error" in d:
            log("maintenance of %s FAILED: %s" % (d["database"], d["error"]))
    if not args.dry_run:
        write_status(cfg, "maintenance-last.json", report)
    return report


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
    q = sub.add_parser("queries")
    q.add_argument("--by", default="total", choices=sorted(insights.ORDER_BY))
    q.add_argument("--limit", type=int, default=10)
    q.add_argument("--database")
    q.add_argument("--all-roles", action="store_true")
    sub.add_parser("queries-reset")
    ix = sub.add_parser("indexes")
    ix.add_argument("--database")
    sub.add_parser("health")
    mt = sub.add_parser("maintenance")
    mt.add_argument("--dry-run", action="store_true")
    args = p.parse_args(argv)
    if args.cmd != "logical-cleanup":
        # The container's environment carries the deleting credentials for the expire job; no other
        # command (nor the pgBackRest and PostgreSQL processes a drill starts) gets to hold them.
        for name in CREDENTIALS_ENV["expire"]:
            os.environ.pop(name, None)
    fn = {"window": lambda c, a: window(c), "logical-backup": logical_backup, "logical-list": logical_list, "logical-restore": logical_restore, "logical-cleanup": logical_cleanup,
          "drill": drill, "drill-list": drill_list, "status": status,
          "queries": lambda c, a: insights.queries(c, server(c), a.by, a.limit, a.database, a.all_roles),
          "queries-reset": lambda c, a: insights.queries_reset(c, server(c)),
          "indexes": lambda c, a: insights.indexes(c, server(c), a.database),
          "health": health_report,
          "maintenance": maintenance}[args.cmd]
    try:
        result = fn(load_config(), args)
    except (Failure, insights.InsightError) as e:
        log(str(e))
        return 1
    except psycopg2.Error as e:
        log("%s: %s" % (args.cmd, str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__))
        return 1
    print(json.dumps(result, sort_keys=True))
    if args.cmd == "maintenance":
        return 0 if result["ok"] else 1
    if args.cmd == "drill":
        # Monitoring reads the evidence from the bucket: a drill whose evidence is not there failed too.
        return 0 if result["ok"] and "evidenceError" not in result else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
