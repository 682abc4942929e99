"""pgharbor_ops (images/backup/pgharbor_ops.py): window on canned pgBackRest answers, the boto3 S3
wrapper (Stubber, and on the wire against a strict fake S3), status with unreadable files, drill target
parsing, the age identity path, and a logical backup/restore round trip on a scratch PostgreSQL."""
import base64
import contextlib
import glob
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import warnings
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "images", "backup"))

try:
    import boto3  # noqa: F401
except ImportError:  # the monitoring image: pgharbor-ops runs in the postgres (backup) image
    raise unittest.SkipTest("boto3 is not installed (Debian: python3-boto3): pgharbor-ops' tests run in the postgres image")

import botocore.exceptions  # noqa: E402
import botocore.response  # noqa: E402
from botocore.stub import ANY, Stubber  # noqa: E402

import fake_s3  # noqa: E402
import pgharbor_ops as ops  # noqa: E402

KEY_ID, SECRET = "AKIATESTKEYID0000001", "tEsT/SeCrEt+kEy0000000000000000000000000"
EXPIRER = {"PGHARBOR_EXPIRER_S3_KEY": "AKIAEXPIRER000000001", "PGHARBOR_EXPIRER_S3_KEY_SECRET": "eXpIrEr/SeCrEt0000000000000000000000000"}
CREDS = {"PGBACKREST_REPO1_S3_KEY": KEY_ID, "PGBACKREST_REPO1_S3_KEY_SECRET": SECRET, **EXPIRER}


def setUpModule():
    # botocore 1.37 calls datetime.utcnow(); unittest shows DeprecationWarnings that a script never prints.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"botocore\.")


def b64md5(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()


@contextlib.contextmanager
def captured_stderr():
    buf = io.StringIO()
    with mock.patch.object(sys, "stderr", buf):
        yield buf


# ---------------------------------------------------------------------------------------------
# window() on canned pgBackRest answers (ported from __tests__/ops-window.test.ts)
# ---------------------------------------------------------------------------------------------
def hex8(v):
    return "%08X" % v


def seg(tl, n):
    """WAL file name of segment number n (16 MiB segments: 256 per log file) on timeline tl."""
    return hex8(tl) + hex8(n // 256) + hex8(n % 256)


def window_of(backup_start, segments):
    info = [{"backup": [{"archive": {"start": backup_start}, "timestamp": {"stop": 1000}}], "archive": [{"id": "15-1"}]}]
    listing = {"0000000100000000/%s-%s.zst" % (n, "a" * 40): {"type": "file", "time": 2000 + i} for i, n in enumerate(segments)}
    calls = []

    def fake(cfg, *args, **kw):
        calls.append(args)
        return info if args[0] == "info" else listing
    with mock.patch.object(ops, "pgbackrest", fake):
        return ops.window({"stanza": "pgharbor"}), calls


class WindowTests(unittest.TestCase):
    def test_continuous(self):
        """oldest = end of the oldest backup, newest = upload time of the newest segment"""
        w, calls = window_of(seg(1, 3), [seg(1, 1), seg(1, 3), seg(1, 4), seg(1, 5)])
        self.assertEqual(w, {"oldest": 1000, "newest": 2003, "newestSegment": seg(1, 5), "continuous": True, "missingSegments": [], "backups": 1})
        self.assertEqual(calls, [("info",), ("repo-ls", "--recurse", "archive/pgharbor/15-1")])

    def test_gap_after_oldest_backup_is_named_one_before_does_not_matter(self):
        w, _ = window_of(seg(1, 3), [seg(1, 1), seg(1, 3), seg(1, 5), seg(1, 6)])
        self.assertEqual((w["continuous"], w["missingSegments"]), (False, [seg(1, 4)]))

    def test_after_a_promotion_the_new_timeline_is_checked_too(self):
        w, _ = window_of(seg(1, 3), [seg(1, 3), seg(1, 4), seg(2, 4), seg(2, 5), seg(2, 6)])
        self.assertEqual((w["continuous"], w["newestSegment"]), (True, seg(2, 6)))
        w, _ = window_of(seg(1, 3), [seg(1, 3), seg(1, 4), seg(2, 4), seg(2, 6)])
        self.assertEqual((w["continuous"], w["missingSegments"]), (False, [seg(2, 5)]))

    def test_segments_past_ff_roll_into_the_next_log_file(self):
        self.assertEqual(seg(1, 0x100), "000000010000000100000000")
        self.assertTrue(window_of(seg(1, 0xFE), [seg(1, 0xFE), seg(1, 0xFF), seg(1, 0x100)])[0]["continuous"])
        self.assertEqual(window_of(seg(1, 0xFE), [seg(1, 0xFE), seg(1, 0x100)])[0]["missingSegments"], ["0000000100000000000000FF"])

    def test_backups_but_no_wal_is_a_clear_refusal(self):
        with self.assertRaisesRegex(ops.Failure, "the archive holds backups but no WAL"):
            window_of(seg(1, 1), [])

    def test_no_backup_yet(self):
        with mock.patch.object(ops, "pgbackrest", lambda cfg, *a, **k: [{"status": {"message": "no valid backups"}}]):
            with self.assertRaisesRegex(ops.Failure, r"the archive holds no backup yet \(no valid backups\): nothing can be restored"):
                ops.window({"stanza": "pgharbor"})

    def test_window_command_prints_the_json(self):
        info = [{"backup": [{"archive": {"start": seg(1, 1)}, "timestamp": {"stop": 1000}}], "archive": [{"id": "17-1"}]}]
        listing = {"0000000100000000/%s-%s.zst" % (seg(1, 1), "b" * 40): {"type": "file", "time": 1500}}
        with tempfile.TemporaryDirectory() as d:
            conf = os.path.join(d, "ops.json")
            with open(conf, "w") as f:
                json.dump({"stanza": "pgharbor", "pgbackrestConf": "/x"}, f)
            out = io.StringIO()
            with mock.patch.dict(os.environ, {"PGHARBOR_OPS_CONFIG": conf}), mock.patch.object(ops, "pgbackrest", lambda cfg, *a, **k: info if a[0] == "info" else listing), mock.patch.object(sys, "stdout", out):
                self.assertEqual(ops.main(["window"]), 0)
        self.assertEqual(json.loads(out.getvalue()), {"backups": 1, "continuous": True, "missingSegments": [], "newest": 1500, "newestSegment": seg(1, 1), "oldest": 1000})

    def test_only_logical_cleanup_keeps_the_deleting_credentials(self):
        seen = {}

        def record(name):
            return lambda cfg, args: seen.setdefault(name, os.environ.get("PGHARBOR_EXPIRER_S3_KEY")) and {}

        creds = {"PGHARBOR_EXPIRER_S3_KEY": "k", "PGHARBOR_EXPIRER_S3_KEY_SECRET": "s"}
        for cmd, fn in (["logical-cleanup", "logical_cleanup"], ["logical-list", "logical_list"], ["drill-list", "drill_list"]):
            with mock.patch.dict(os.environ, creds), mock.patch.object(ops, fn, record(cmd)), mock.patch.object(ops, "load_config", lambda: {}), mock.patch.object(sys, "stdout", io.StringIO()):
                ops.main([cmd])
                self.assertEqual(os.environ.get("PGHARBOR_EXPIRER_S3_KEY_SECRET"), "s" if cmd == "logical-cleanup" else None)
        self.assertEqual(seen, {"logical-cleanup": "k", "logical-list": None, "drill-list": None})


# ---------------------------------------------------------------------------------------------
# The S3 wrapper with botocore's Stubber
# ---------------------------------------------------------------------------------------------
CFG = {"bucket": "pgharbor-dev-wal", "endpoint": "s3.eu-central-1.amazonaws.com", "port": 443, "region": "eu-central-1", "uriStyle": "host", "path": "/pgharbor/dev",
       "verifyTls": True, "caFile": None, "kmsKeyId": None, "partSizeMiB": 64}
KMS = "arn:aws:kms:eu-central-1:111122223333:key/0d6c1f0e-0000-4000-8000-000000000001"


class S3StubTests(unittest.TestCase):
    def setUp(self):
        env = mock.patch.dict(os.environ, CREDS)
        env.start()
        self.addCleanup(env.stop)
        os.environ.pop("PGHARBOR_S3_PART_SIZE", None)

    def s3(self, access="write", **cfg):
        s3 = ops.S3({**CFG, **cfg}, access)
        stub = Stubber(s3.client)
        stub.activate()
        self.addCleanup(stub.deactivate)
        return s3, stub

    def test_client_settings(self):
        s3, _ = self.s3()
        c = s3.client.meta.config
        self.assertEqual(s3.client.meta.endpoint_url, "https://s3.eu-central-1.amazonaws.com:443")
        self.assertEqual(s3.client.meta.region_name, "eu-central-1")
        self.assertEqual((c.request_checksum_calculation, c.response_checksum_validation), ("when_required", "when_required"))
        self.assertEqual(c.s3["addressing_style"], "virtual")
        self.assertEqual(c.retries, {"total_max_attempts": 6, "mode": "standard"})  # max_attempts 5 = 5 retries after the first try
        self.assertEqual((c.connect_timeout, c.read_timeout), (10, 60))
        self.assertEqual(s3.client._request_signer._credentials.access_key, KEY_ID)
        path, _ = self.s3(uriStyle="path")
        self.assertEqual(path.client.meta.config.s3["addressing_style"], "path")
        expire, _ = self.s3("expire")
        self.assertEqual(expire.client._request_signer._credentials.access_key, EXPIRER["PGHARBOR_EXPIRER_S3_KEY"])

    def test_tls_verification_follows_the_settings(self):
        captured = []
        real = ops.boto3.session.Session.client

        def spy(session, *args, **kw):
            captured.append(kw["verify"])
            return real(session, *args, **kw)
        with mock.patch.object(ops.boto3.session.Session, "client", spy):
            ops.S3(CFG, "write")
            ops.S3({**CFG, "caFile": "/etc/pgharbor/tls/s3-ca.crt"}, "write")
            ops.S3({**CFG, "caFile": "/etc/pgharbor/tls/s3-ca.crt", "verifyTls": False}, "write")
        self.assertEqual(captured, [True, "/etc/pgharbor/tls/s3-ca.crt", False])

    def test_missing_credentials(self):
        with mock.patch.dict(os.environ, {"PGBACKREST_REPO1_S3_KEY": ""}):
            with self.assertRaisesRegex(ops.Failure, "PGBACKREST_REPO1_S3_KEY/PGBACKREST_REPO1_S3_KEY_SECRET are not set"):
                ops.S3(CFG, "write")

    def test_put_bytes_sends_content_md5_and_no_sse_without_kms(self):
        s3, stub = self.s3()
        body = b'{"ok": true}'
        stub.add_response("put_object", {"ETag": '"x"'}, {"Bucket": "pgharbor-dev-wal", "Key": "pgharbor/dev/drills/20261121T101500Z.json", "Body": body, "ContentMD5": b64md5(body), "ContentType": "application/json"})
        s3.put_bytes("drills/20261121T101500Z.json", body, "application/json")
        stub.assert_no_pending_responses()

    def test_put_bytes_with_kms(self):
        s3, stub = self.s3(kmsKeyId=KMS)
        body = b"evidence"
        stub.add_response("put_object", {"ETag": '"x"'}, {"Bucket": "pgharbor-dev-wal", "Key": "pgharbor/dev/x", "Body": body, "ContentMD5": b64md5(body), "ContentType": "application/octet-stream",
                                                          "ServerSideEncryption": "aws:kms", "SSEKMSKeyId": KMS})
        s3.put_bytes("x", body)
        stub.assert_no_pending_responses()

    def test_put_stream_below_one_part_is_one_put(self):
        os.environ["PGHARBOR_S3_PART_SIZE"] = "16"
        s3, stub = self.s3(kmsKeyId=KMS)
        data = b"0123456789"
        stub.add_response("put_object", {"ETag": '"x"'}, {"Bucket": "pgharbor-dev-wal", "Key": "pgharbor/dev/logical/S/app.dump.age", "Body": data, "ContentMD5": b64md5(data),
                                                          "ServerSideEncryption": "aws:kms", "SSEKMSKeyId": KMS})
        self.assertEqual(s3.put_stream("logical/S/app.dump.age", io.BytesIO(data)), (10, hashlib.sha256(data).hexdigest()))
        stub.assert_no_pending_responses()

    def test_put_stream_multipart(self):
        os.environ["PGHARBOR_S3_PART_SIZE"] = "4"
        s3, stub = self.s3(kmsKeyId=KMS)
        data = b"abcdefghij"  # parts of 4, 4, 2 bytes
        key = {"Bucket": "pgharbor-dev-wal", "Key": "pgharbor/dev/logical/S/app.dump.age"}
        stub.add_response("create_multipart_upload", {"UploadId": "U1"}, {**key, "ServerSideEncryption": "aws:kms", "SSEKMSKeyId": KMS})
        for n, chunk in enumerate([b"abcd", b"efgh", b"ij"], 1):
            stub.add_response("upload_part", {"ETag": '"etag-%d"' % n}, {**key, "UploadId": "U1", "PartNumber": n, "Body": chunk, "ContentMD5": b64md5(chunk)})
        stub.add_response("complete_multipart_upload", {"ETag": '"done"'}, {**key, "UploadId": "U1", "MultipartUpload": {"Parts": [{"PartNumber": n, "ETag": '"etag-%d"' % n} for n in (1, 2, 3)]}})
        with captured_stderr() as err:
            self.assertEqual(s3.put_stream("logical/S/app.dump.age", io.BytesIO(data)), (10, hashlib.sha256(data).hexdigest()))
        stub.assert_no_pending_responses()
        self.assertIn("pgharbor-ops: uploaded part 1 of logical/S/app.dump.age (0 MiB so far)", err.getvalue())

    def test_put_stream_exact_multiple_of_the_part_size(self):
        os.environ["PGHARBOR_S3_PART_SIZE"] = "4"
        s3, stub = self.s3()
        key = {"Bucket": "pgharbor-dev-wal", "Key": "pgharbor/dev/k"}
        stub.add_response("create_multipart_upload", {"UploadId": "U2"}, key)
        stub.add_response("upload_part", {"ETag": '"a"'}, {**key, "UploadId": "U2", "PartNumber": 1, "Body": b"abcd", "ContentMD5": b64md5(b"abcd")})
        stub.add_response("upload_part", {"ETag": '"b"'}, {**key, "UploadId": "U2", "PartNumber": 2, "Body": b"efgh", "ContentMD5": b64md5(b"efgh")})
        stub.add_response("complete_multipart_upload", {}, {**key, "UploadId": "U2", "MultipartUpload": {"Parts": [{"PartNumber": 1, "ETag": '"a"'}, {"PartNumber": 2, "ETag": '"b"'}]}})
        with captured_stderr():
            self.assertEqual(s3.put_stream("k", io.BytesIO(b"abcdefgh"))[0], 8)
        stub.assert_no_pending_responses()

    def test_put_stream_aborts_on_a_failing_part(self):
        os.environ["PGHARBOR_S3_PART_SIZE"] = "4"
        s3, stub = self.s3()
        key = {"Bucket": "pgharbor-dev-wal", "Key": "pgharbor/dev/k"}
        stub.add_response("create_multipart_upload", {"UploadId": "U3"}, key)
        stub.add_response("upload_part", {"ETag": '"a"'}, {**key, "UploadId": "U3", "PartNumber": 1, "Body": b"abcd", "ContentMD5": ANY})
        stub.add_client_error("upload_part", service_error_code="AccessDenied", service_message="Access Denied", http_status_code=403, expected_params={**key, "UploadId": "U3", "PartNumber": 2, "Body": b"efgh", "ContentMD5": ANY})
        stub.add_response("abort_multipart_upload", {}, {**key, "UploadId": "U3"})
        with captured_stderr(), self.assertRaises(ops.Failure) as e:
            s3.put_stream("k", io.BytesIO(b"abcdefghij"))
        stub.assert_no_pending_responses()
        self.assertEqual(str(e.exception), "S3 upload_part pgharbor/dev/k answered HTTP 403 AccessDenied: Access Denied")

    def test_a_failing_abort_is_logged_and_the_first_error_kept(self):
        os.environ["PGHARBOR_S3_PART_SIZE"] = "4"
        s3, stub = self.s3()
        key = {"Bucket": "pgharbor-dev-wal", "Key": "pgharbor/dev/k"}
        stub.add_response("create_multipart_upload", {"UploadId": "U4"}, key)
        stub.add_client_error("upload_part", service_error_code="AccessDenied", http_status_code=403)
        stub.add_client_error("abort_multipart_upload", service_error_code="NoSuchUpload", service_message="gone", http_status_code=404)
        with captured_stderr() as err, self.assertRaisesRegex(ops.Failure, "S3 upload_part pgharbor/dev/k answered HTTP 403 AccessDenied"):
            s3.put_stream("k", io.BytesIO(b"abcdefghij"))
        self.assertIn("could not abort the multipart upload of k: S3 abort_multipart_upload pgharbor/dev/k answered HTTP 404 NoSuchUpload: gone", err.getvalue())

    def test_list_follows_pages_and_names_are_relative(self):
        s3, stub = self.s3()
        t = ops.dt.datetime(2026, 11, 21, 2, 0, 5, 750000, tzinfo=ops.dt.timezone.utc)
        stub.add_response("list_objects_v2", {"IsTruncated": True, "NextContinuationToken": "T", "Contents": [{"Key": "pgharbor/dev/logical/A/manifest.json", "Size": 10, "LastModified": t}]},
                          {"Bucket": "pgharbor-dev-wal", "Prefix": "pgharbor/dev/logical/"})
        stub.add_response("list_objects_v2", {"IsTruncated": False, "Contents": [{"Key": "pgharbor/dev/logical/B/app.dump.age", "Size": 20, "LastModified": t}]},
                          {"Bucket": "pgharbor-dev-wal", "Prefix": "pgharbor/dev/logical/", "ContinuationToken": "T"})
        epoch = float(int(t.timestamp()))
        self.assertEqual(s3.list("logical/"), [("logical/A/manifest.json", 10, epoch), ("logical/B/app.dump.age", 20, epoch)])
        stub.assert_no_pending_responses()

    def test_empty_listing(self):
        s3, stub = self.s3()
        stub.add_response("list_objects_v2", {"IsTruncated": False, "KeyCount": 0}, {"Bucket": "pgharbor-dev-wal", "Prefix": "pgharbor/dev/drills/"})
        self.assertEqual(s3.list("drills/"), [])

    def test_get_streams_and_get_bytes(self):
        s3, stub = self.s3()
        data = os.urandom(3 * 1048576 + 7)
        stub.add_response("get_object", {"Body": botocore.response.StreamingBody(io.BytesIO(data), len(data))}, {"Bucket": "pgharbor-dev-wal", "Key": "pgharbor/dev/o"})
        stub.add_response("get_object", {"Body": botocore.response.StreamingBody(io.BytesIO(b"small"), 5)}, {"Bucket": "pgharbor-dev-wal", "Key": "pgharbor/dev/p"})
        chunks = []
        s3.get("o", chunks.append)
        self.assertEqual((b"".join(chunks), len(chunks)), (data, 4))
        self.assertEqual(s3.get_bytes("p"), b"small")

    def test_delete(self):
        s3, stub = self.s3("expire")
        stub.add_response("delete_object", {}, {"Bucket": "pgharbor-dev-wal", "Key": "pgharbor/dev/logical/A/manifest.json"})
        s3.delete("logical/A/manifest.json")
        stub.assert_no_pending_responses()

    def test_client_errors_become_one_line_without_secrets(self):
        s3, stub = self.s3()
        stub.add_client_error("get_object", service_error_code="SignatureDoesNotMatch", http_status_code=403,
                              service_message="The request signature we calculated does not match (key %s, secret %s)\nCheck your key and signing method." % (KEY_ID, SECRET))
        with self.assertRaises(ops.Failure) as e:
            s3.get_bytes("logical/A/manifest.json")
        text = str(e.exception)
        self.assertTrue(text.startswith("S3 get_object pgharbor/dev/logical/A/manifest.json answered HTTP 403 SignatureDoesNotMatch: The request signature"), text)
        self.assertNotIn(SECRET, text)
        self.assertNotIn(KEY_ID, text)
        self.assertNotIn("\n", text)
        self.assertIsNone(e.exception.__cause__)
        self.assertTrue(e.exception.__suppress_context__)

    def test_connection_errors_become_failures(self):
        s3, _ = self.s3()
        cases = [
            botocore.exceptions.EndpointConnectionError(endpoint_url="https://s3.eu-central-1.amazonaws.com:443/pgharbor-dev-wal"),
            botocore.exceptions.ConnectTimeoutError(endpoint_url="https://s3.eu-central-1.amazonaws.com:443/"),
            botocore.exceptions.SSLError(endpoint_url="https://s3.eu-central-1.amazonaws.com:443/", error="certificate verify failed"),
        ]
        for exc in cases:
            with self.subTest(exc=type(exc).__name__), mock.patch.object(s3.client, "put_object", side_effect=exc):
                with self.assertRaises(ops.Failure) as e:
                    s3.put_bytes("drills/x.json", b"{}")
                self.assertRegex(str(e.exception), r"^S3 put_object pgharbor/dev/drills/x.json failed: .*(Could not connect|timeout|SSL)")
        with mock.patch.object(s3.client, "get_paginator", side_effect=botocore.exceptions.EndpointConnectionError(endpoint_url="https://x")):
            with self.assertRaisesRegex(ops.Failure, "^S3 list_objects_v2 pgharbor/dev/drills/ failed: Could not connect"):
                s3.list("drills/")

    def test_an_unreachable_endpoint_is_one_failure_line_from_main(self):
        """For real: nothing listens on the port; main() prints one line, no traceback."""
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with tempfile.TemporaryDirectory() as d:
            conf = os.path.join(d, "ops.json")
            with open(conf, "w") as f:
                json.dump({**CFG, "endpoint": "127.0.0.1", "port": port, "uriStyle": "path", "environment": "dev"}, f)
            out = io.StringIO()
            with mock.patch.dict(os.environ, {"PGHARBOR_OPS_CONFIG": conf}), captured_stderr() as err, mock.patch.object(sys, "stdout", out), \
                    mock.patch("botocore.retries.standard.ExponentialBackoff.delay_amount", return_value=0), warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # botocore 1.37's utcnow() (a script, unlike unittest, hides these)
                self.assertEqual(ops.main(["drill-list"]), 1)
        lines = err.getvalue().strip().split("\n")
        self.assertEqual(len(lines), 1, err.getvalue())
        self.assertRegex(lines[0], r"pgharbor-ops: S3 list_objects_v2 pgharbor/dev/drills/ failed: Could not connect to the endpoint URL")
        self.assertNotIn(SECRET, err.getvalue())
        self.assertEqual(out.getvalue(), "")


# ---------------------------------------------------------------------------------------------
# The S3 wrapper on the wire, against a strict fake S3 (Object Lock-like integrity rules, no aws-chunked)
# ---------------------------------------------------------------------------------------------
@unittest.skipUnless(fake_s3.have_openssl(), "openssl is needed to make the fake S3 server's certificate")
class S3WireTests(unittest.TestCase):
    def setUp(self):
        env = mock.patch.dict(os.environ, CREDS)
        env.start()
        self.addCleanup(env.stop)
        os.environ.pop("PGHARBOR_S3_PART_SIZE", None)
        self.server = fake_s3.FakeS3(page_size=2).__enter__()
        self.addCleanup(self.server.__exit__)

    def assert_plain_uploads_with_md5(self):
        uploads = [r for r in self.server.requests if r["method"] == "PUT"]
        self.assertTrue(uploads)
        for r in uploads:
            h = r["headers"]
            self.assertIn("content-md5", h, r)
            self.assertNotIn("aws-chunked", h.get("content-encoding", ""), r)
            self.assertFalse([k for k in h if k.startswith("x-amz-checksum-") or k in ("x-amz-trailer", "x-amz-decoded-content-length", "x-amz-sdk-checksum-algorithm")], r)
            self.assertFalse(h.get("x-amz-content-sha256", "").startswith("STREAMING-"), r)

    def test_objects_round_trip_with_content_md5_on_every_upload(self):
        os.environ["PGHARBOR_S3_PART_SIZE"] = "5"
        self.server.page_size = 1
        s3 = ops.S3(self.server.config(), "write")
        s3.put_bytes("drills/a.json", b'{"ok": true}', "application/json")
        data = os.urandom(23)
        with captured_stderr():
            self.assertEqual(s3.put_stream("logical/S/app.dump.age", io.BytesIO(data)), (23, hashlib.sha256(data).hexdigest()))
        self.assertEqual(s3.put_stream("logical/S/globals.sql.age", io.BytesIO(b"tiny")), (4, hashlib.sha256(b"tiny").hexdigest()))
        self.assertEqual(self.server.objects["pgharbor/test/logical/S/app.dump.age"][0], data)
        parts = [r for r in self.server.requests if r["method"] == "PUT" and "partNumber" in r["query"]]
        self.assertEqual([r["bytes"] for r in parts], [5, 5, 5, 5, 3])
        self.assert_plain_uploads_with_md5()
        got = []
        s3.get("logical/S/app.dump.age", got.append)
        self.assertEqual(b"".join(got), data)
        self.assertEqual(s3.get_bytes("drills/a.json"), b'{"ok": true}')
        listed = s3.list("logical/")  # 1 key per page: follows the continuation token
        self.assertEqual([n for n, _, _ in listed], ["logical/S/app.dump.age", "logical/S/globals.sql.age"])
        self.assertEqual(listed[0][1], 23)
        self.assertAlmostEqual(listed[0][2], time.time(), delta=5)
        self.assertEqual(len([r for r in self.server.requests if r["query"].get("list-type") == "2"]), 2)
        ops.S3(self.server.config(), "expire").delete("drills/a.json")
        self.assertNotIn("pgharbor/test/drills/a.json", self.server.objects)
        self.assertEqual(self.server.uploads, {})

    def test_sse_kms_headers_on_put_and_create_only(self):
        os.environ["PGHARBOR_S3_PART_SIZE"] = "5"
        s3 = ops.S3(self.server.config(kmsKeyId=KMS), "write")
        s3.put_bytes("drills/a.json", b"{}")
        with captured_stderr():
            s3.put_stream("logical/S/app.dump.age", io.BytesIO(b"x" * 7))
        sse = [(r["method"], "uploads" in r["query"], "partNumber" in r["query"], r["headers"].get("x-amz-server-side-encryption"), r["headers"].get("x-amz-server-side-encryption-aws-kms-key-id"))
               for r in self.server.requests if r["method"] in ("PUT", "POST")]
        self.assertEqual(sse, [("PUT", False, False, "aws:kms", KMS), ("POST", True, False, "aws:kms", KMS), ("PUT", False, True, None, None), ("PUT", False, True, None, None), ("POST", False, False, None, None)])

    def test_the_fake_server_really_refuses_uploads_without_an_integrity_header(self):
        s3 = ops.S3(self.server.config(), "write")
        with self.assertRaisesRegex(botocore.exceptions.ClientError, "InvalidRequest"):
            s3.client.put_object(Bucket=self.server.bucket, Key="pgharbor/test/x", Body=b"no md5")
        with self.assertRaisesRegex(botocore.exceptions.ClientError, "BadDigest"):
            s3.client.put_object(Bucket=self.server.bucket, Key="pgharbor/test/x", Body=b"wrong md5", ContentMD5=b64md5(b"other"))

    def test_a_refused_part_aborts_the_upload(self):
        os.environ["PGHARBOR_S3_PART_SIZE"] = "5"
        self.server.fail_part = 2
        s3 = ops.S3(self.server.config(), "write")
        with captured_stderr(), self.assertRaisesRegex(ops.Failure, r"^S3 upload_part pgharbor/test/logical/S/db.dump.age answered HTTP 403 AccessDenied: Access Denied$"):
            s3.put_stream("logical/S/db.dump.age", io.BytesIO(b"x" * 12))
        self.assertEqual(self.server.uploads, {})
        self.assertEqual([r["method"] for r in self.server.requests][-1], "DELETE")
        self.assertNotIn("pgharbor/test/logical/S/db.dump.age", self.server.objects)

    def test_an_unknown_ca_is_a_failure_not_a_traceback(self):
        with tempfile.TemporaryDirectory() as d:
            other, _ = fake_s3.make_certificate(d)
            s3 = ops.S3(self.server.config(caFile=other), "write")
            with mock.patch("botocore.retries.standard.ExponentialBackoff.delay_amount", return_value=0):  # retried 5 times, without the waits
                with self.assertRaisesRegex(ops.Failure, r"^S3 get_object pgharbor/test/x failed: SSL validation failed"):
                    s3.get_bytes("x")
            # verifyTls=false: the same server is accepted
            self.assertIsNone(ops.S3(self.server.config(caFile=other, verifyTls=False), "write").put_bytes("x", b"1"))

    def test_missing_key_names_operation_key_and_status(self):
        s3 = ops.S3(self.server.config(), "write")
        with self.assertRaisesRegex(ops.Failure, r"^S3 get_object pgharbor/test/nope answered HTTP 404 NoSuchKey: The specified key does not exist\.$"):
            s3.get_bytes("nope")


# ---------------------------------------------------------------------------------------------
# status
# ---------------------------------------------------------------------------------------------
class StatusTests(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.status = os.path.join(self.dir, "status")
        os.mkdir(self.status)
        self.conf = os.path.join(self.dir, "ops.json")
        with open(self.conf, "w") as f:
            json.dump({"statusDir": self.status}, f)

    def write(self, name, text, mode=0o644):
        p = os.path.join(self.status, name)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)
        return p

    def run_status(self):
        out = io.StringIO()
        with mock.patch.dict(os.environ, {"PGHARBOR_OPS_CONFIG": self.conf}), mock.patch.object(sys, "stdout", out):
            code = ops.main(["status"])
        return code, json.loads(out.getvalue())

    def test_readable_and_unparsable_files(self):
        self.write("full.json", '{"job":"full","ok":true,"exitCode":0,"startedAt":1,"finishedAt":61,"durationSeconds":60}\n')
        self.write("diff.json", "{not json")
        self.write("check.json", "[1, 2]")
        self.write("expire.json.tmp", "{")
        code, doc = self.run_status()
        self.assertEqual(code, 0)
        self.assertEqual(doc["full"], {"job": "full", "ok": True, "exitCode": 0, "startedAt": 1, "finishedAt": 61, "durationSeconds": 60})
        self.assertEqual(doc["diff"]["job"], "diff")
        self.assertRegex(doc["diff"]["unreadable"], r"^not JSON: Expecting property name")
        self.assertEqual(doc["check"], {"job": "check", "unreadable": "not JSON: not a JSON object"})
        self.assertEqual(set(doc), {"full", "diff", "check"})

    @unittest.skipIf(os.geteuid() == 0, "running as root, which reads any file: the unreadable-status case needs a non-root user (in the image: docker run --user postgres ...)")
    def test_an_unreadable_file_is_reported_not_skipped(self):
        p = self.write("full.json", '{"job":"full","ok":true}', 0o000)
        self.addCleanup(os.chmod, p, 0o644)
        self.write("diff.json", '{"job":"diff","ok":false}')
        code, doc = self.run_status()
        self.assertEqual(code, 0)
        self.assertEqual(doc["full"], {"job": "full", "unreadable": "Permission denied: %s" % p})
        self.assertEqual(doc["diff"], {"job": "diff", "ok": False})

    def test_no_status_directory_yet(self):
        os.rmdir(self.status)
        self.assertEqual(self.run_status(), (0, {}))

    def test_status_files_written_by_ops_are_readable_whatever_the_umask(self):
        old = os.umask(0o077)
        try:
            ops.write_status({"statusDir": self.status}, "drill-last.json", {"ok": True})
        finally:
            os.umask(old)
        self.assertEqual(os.stat(os.path.join(self.status, "drill-last.json")).st_mode & 0o777, 0o644)
        self.assertEqual(self.run_status(), (0, {"drill-last": {"ok": True}}))

    def test_a_missing_settings_file_is_one_line(self):
        with mock.patch.dict(os.environ, {"PGHARBOR_OPS_CONFIG": os.path.join(self.dir, "nope.json")}), captured_stderr() as err:
            self.assertEqual(ops.main(["status"]), 1)
        self.assertRegex(err.getvalue(), r"pgharbor-ops: cannot read the settings file .*nope.json: No such file or directory\n$")


# ---------------------------------------------------------------------------------------------
# drill --target
# ---------------------------------------------------------------------------------------------
class DrillTargetTests(unittest.TestCase):
    def test_accepted(self):
        t = ops.dt.datetime(2026, 11, 21, 10, 15, tzinfo=ops.dt.timezone.utc).timestamp()
        for text in ["2026-11-21T10:15:00Z", "2026-11-21 10:15:00+00", "2026-11-21T10:15:00+00:00", "2026-11-21T11:15:00+01:00", "20261121T101500Z", "2026-11-21T10:15:00.000Z"]:
            with self.subTest(text=text):
                self.assertEqual(ops.parse_target(text), t)

    def test_refused(self):
        for text, why in [("2026-02-30T10:00:00Z", "day is out of range"), ("2026-13-01T00:00:00Z", "month must be in 1..12"), ("2026-11-21T24:00:00Z", "hour must be in 0..23"),
                          ("2026-11-21T10:15:00", "has no zone"), ("2026-11-21", "has no zone"), ("yesterday", "is not a time"), ("", "is not a time")]:
            with self.subTest(text=text), self.assertRaisesRegex(ops.Failure, why):
                ops.parse_target(text)

    def test_a_bad_target_is_refused_before_the_drill_starts(self):
        """No lock, no restore, no evidence: main() exits 1 with one line."""
        with tempfile.TemporaryDirectory() as d:
            conf = os.path.join(d, "ops.json")
            with open(conf, "w") as f:
                json.dump({"scratchDir": os.path.join(d, "scratch-that-does-not-exist"), "statusDir": os.path.join(d, "status"), "environment": "dev"}, f)
            out = io.StringIO()
            with mock.patch.dict(os.environ, {"PGHARBOR_OPS_CONFIG": conf}), captured_stderr() as err, mock.patch.object(sys, "stdout", out), \
                    mock.patch.object(ops, "pgbackrest", side_effect=AssertionError("must not run")), mock.patch.object(ops, "S3", side_effect=AssertionError("must not run")):
                self.assertEqual(ops.main(["drill", "--target", "2026-02-30 10:00:00+00"]), 1)
            self.assertEqual(out.getvalue(), "")
            self.assertRegex(err.getvalue(), r"^\S+ pgharbor-ops: --target '2026-02-30 10:00:00\+00' is not a time .*day is out of range for month\n$")
            self.assertFalse(os.path.exists(os.path.join(d, "status")))


# ---------------------------------------------------------------------------------------------
# The age identity reaches age on its stdin, never through a file
# ---------------------------------------------------------------------------------------------
@unittest.skipUnless(shutil.which("age") and shutil.which("age-keygen"), "age and age-keygen are needed")
class AgeIdentityTests(unittest.TestCase):
    def test_decrypts_with_the_identity_on_stdin(self):
        with tempfile.TemporaryDirectory() as d:
            identity = subprocess.run(["age-keygen"], capture_output=True, check=True).stdout
            recipient = subprocess.run(["age-keygen", "-y"], input=identity, capture_output=True, check=True).stdout.decode().strip()
            cipher = os.path.join(d, "dump.age")
            plain = os.urandom(200000)
            subprocess.run(["age", "--encrypt", "-r", recipient, "-o", cipher], input=plain, check=True)
            before = sorted(os.listdir(d))
            dec = ops.age_decrypt(identity, cipher, subprocess.PIPE)
            self.assertEqual(dec.args, ["age", "--decrypt", "-i", "-", cipher])
            self.assertEqual(sorted(os.listdir(d)), before)  # no identity file next to the ciphertext
            out = dec.stdout.read()
            dec.stdout.close()
            dec.stderr.close()
            self.assertEqual((dec.wait(), out), (0, plain))
            other = subprocess.run(["age-keygen"], capture_output=True, check=True).stdout
            dec = ops.age_decrypt(other, cipher, subprocess.PIPE)
            dec.stdout.read()
            dec.stdout.close()
            err = dec.stderr.read().decode()
            dec.stderr.close()
            self.assertNotEqual(dec.wait(), 0)
            self.assertIn("no identity matched any of the recipients", err)


# ---------------------------------------------------------------------------------------------
# A logical backup and restore, for real: scratch PostgreSQL, pg_dump | age, fake S3 (multipart)
# ---------------------------------------------------------------------------------------------
PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


class Stdin:
    def __init__(self, data):
        self.buffer = io.BytesIO(data)


@unittest.skipIf(os.geteuid() == 0, "PostgreSQL refuses to run as root: run the suite as a non-root user (in the image: docker run --user postgres ...)")
@unittest.skipUnless(PG_BIN and all(shutil.which(b) for b in ("age", "age-keygen", "pg_dump", "psql", "openssl")), "needs PostgreSQL server binaries, pg_dump, age and openssl")
class LogicalRoundTripTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="pgharbor-ops-test-")
        cls.env = mock.patch.dict(os.environ, {**CREDS, "PATH": PG_BIN[-1] + os.pathsep + os.environ["PATH"], "PGHARBOR_S3_PART_SIZE": "4096", "PGUSER": "postgres"})
        cls.env.start()
        data, cls.sock = os.path.join(cls.dir, "data"), os.path.join(cls.dir, "sock")
        os.mkdir(cls.sock)
        subprocess.run(["initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"], check=True, capture_output=True)
        subprocess.run(["pg_ctl", "-D", data, "-w", "-l", os.path.join(cls.dir, "pg.log"), "-o", "-k %s -p 5432 -c listen_addresses=''" % cls.sock, "start"], check=True, capture_output=True)
        cls.data = data
        cls.s3 = fake_s3.FakeS3(page_size=3).__enter__()
        cls.identity = subprocess.run(["age-keygen"], capture_output=True, check=True).stdout
        recipient = subprocess.run(["age-keygen", "-y"], input=cls.identity, capture_output=True, check=True).stdout.decode().strip()
        scratch = os.path.join(cls.dir, "scratch")
        os.mkdir(scratch)
        cls.cfg = {**cls.s3.config(), "environment": "test", "stanza": "pgharbor", "socketDir": cls.sock, "scratchDir": scratch, "statusDir": os.path.join(cls.dir, "status"),
                   "appDatabase": "app", "logical": {"recipients": [recipient], "retentionDays": 7}}
        cls.conf = os.path.join(cls.dir, "ops.json")
        with open(cls.conf, "w") as f:
            json.dump(cls.cfg, f)
        cls.psql("postgres", "CREATE DATABASE app")
        cls.psql("app", "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g")

    @classmethod
    def tearDownClass(cls):
        subprocess.run(["pg_ctl", "-D", cls.data, "-m", "immediate", "stop"], capture_output=True)
        cls.s3.__exit__()
        cls.env.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def psql(cls, db, sql):
        return ops.query(cls.sock, 5432, db, sql)

    def ops(self, *argv, stdin=b""):
        out = io.StringIO()
        with mock.patch.dict(os.environ, {"PGHARBOR_OPS_CONFIG": self.conf}), captured_stderr() as err, mock.patch.object(sys, "stdout", out), mock.patch.object(sys, "stdin", Stdin(stdin)):
            code = ops.main(list(argv))
        return code, (json.loads(out.getvalue()) if out.getvalue() else None), err.getvalue()

    def test_backup_list_restore_cleanup(self):
        code, result, err = self.ops("logical-backup")
        self.assertEqual(code, 0, err)
        self.assertEqual(result["databases"], ["app", "postgres"])
        self.assertIn("uploaded part 1 of logical/%s/app.dump.age" % result["set"], err)  # several parts of 4 KiB
        with open(os.path.join(self.cfg["statusDir"], "logical-last.json")) as f:
            self.assertEqual(json.load(f)["set"], result["set"])
        uploads = [r for r in self.s3.requests if r["method"] == "PUT"]
        self.assertTrue(all("content-md5" in r["headers"] for r in uploads))
        manifest = json.loads(self.s3.objects["pgharbor/test/logical/%s/manifest.json" % result["set"]][0])
        self.assertEqual(manifest["databases"][0]["sha256"], hashlib.sha256(self.s3.objects["pgharbor/test/logical/%s/app.dump.age" % result["set"]][0]).hexdigest())

        code, sets, err = self.ops("logical-list")
        self.assertEqual((code, [(s["set"], s["complete"], s["databases"]) for s in sets]), (0, [(result["set"], True, ["app", "postgres"])]), err)

        code, restored, err = self.ops("logical-restore", "--database", "app", "--into-database", "app_restored", stdin=self.identity)
        self.assertEqual(code, 0, err)
        self.assertEqual((restored["set"], restored["into"]), (result["set"], "app_restored"))
        self.assertEqual(self.psql("app_restored", "SELECT count(*), sum(id) FROM t"), [(20000, 200010000)])
        self.assertEqual(os.listdir(self.cfg["scratchDir"]), [])
        # Any database name is a value bound as a parameter, never SQL text.
        code, _, err = self.ops("logical-restore", "--database", "app", "--into-database", "app's copy", stdin=self.identity)
        self.assertEqual(code, 0, err)
        self.assertEqual(self.psql("app's copy", "SELECT count(*) FROM t"), [(20000,)])
        code, _, err = self.ops("logical-restore", "--database", "app", "--into-database", "app's copy", stdin=self.identity)
        self.assertEqual(code, 1)
        self.assertIn("--into-database app's copy already exists", err)

        code, _, err = self.ops("logical-restore", "--database", "app", "--into-database", "app_restored", stdin=self.identity)
        self.assertEqual(code, 1)
        self.assertIn("--into-database app_restored already exists", err)
        code, _, err = self.ops("logical-restore", "--database", "app", "--into-database", "app_other", stdin=b"no key here")
        self.assertEqual(code, 1)
        self.assertIn("no age identity on stdin", err)
        wrong = subprocess.run(["age-keygen"], capture_output=True, check=True).stdout
        code, _, err = self.ops("logical-restore", "--database", "app", "--into-database", "app_other", stdin=wrong)
        self.assertEqual(code, 1)
        self.assertIn("age could not decrypt logical/%s/app.dump.age" % result["set"], err)
        self.assertEqual(self.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname = 'app_other'"), [(0,)])  # dropped again

        code, plan, err = self.ops("logical-cleanup", "--dry-run")
        self.assertEqual((code, plan), (0, {"wouldDelete": [], "kept": [result["set"]], "retentionDays": 7}), err)


if __name__ == "__main__":
    unittest.main()
