"""A small in-memory S3 over HTTPS for the tests (standard library only; the certificate comes from openssl).

It is strict where pgharbor depends on S3's behaviour:
  - like a bucket with Object Lock, it refuses PutObject/UploadPart without Content-MD5 or an
    x-amz-checksum-* header, and answers BadDigest when Content-MD5 does not match the body;
  - like S3-compatible servers that do not speak them, it refuses aws-chunked bodies and trailers;
  - ListObjectsV2 answers `page_size` keys per page, so clients must follow continuation tokens.
Every request is recorded (method, path, query, headers, body length) for the tests to inspect.
Path-style addressing only: /<bucket>/<key>.
"""
import base64
import hashlib
import http.server
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from email.utils import formatdate

NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def have_openssl():
    return shutil.which("openssl") is not None


def make_certificate(directory, days=2, cn="127.0.0.1"):
    """A self-signed certificate (its own CA) for 127.0.0.1; returns (cert path, key path)."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", str(days), "-subj", "/CN=%s" % cn, "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


class FakeS3:
    def __init__(self, bucket="pgharbor-test", page_size=2):
        self.bucket = bucket
        self.page_size = page_size
        self.objects = {}  # key -> (bytes, mtime)
        self.uploads = {}  # upload id -> {"key": key, "parts": {n: bytes}}
        self.requests = []
        self.fail_part = None  # a part number answered 403 AccessDenied (not retried): for abort tests
        self._dir = tempfile.mkdtemp(prefix="fake-s3-")
        self.ca_file, key = make_certificate(self._dir)
        handler = type("Handler", (_Handler,), {"s3": self})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.ca_file, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def config(self, **extra):
        """ops.json settings pointing at this server."""
        cfg = {"bucket": self.bucket, "endpoint": "127.0.0.1", "port": self.port, "region": "us-east-1", "uriStyle": "path",
               "path": "/pgharbor/test", "verifyTls": True, "caFile": self.ca_file, "kmsKeyId": None, "partSizeMiB": 64}
        cfg.update(extra)
        return cfg


def _xml(root_tag, children):
    root = ET.Element(root_tag, xmlns=NS)
    for tag, value in children:
        if isinstance(value, list):
            el = ET.SubElement(root, tag)
            for t, v in value:
                ET.SubElement(el, t).text = str(v)
        else:
            ET.SubElement(root, tag).text = str(value)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    s3 = None  # set per server

    def log_message(self, *args):
        pass

    # -- plumbing -------------------------------------------------------------------------
    def _answer(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amz-request-id", "TEST")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status, code, message):
        root = ET.Element("Error")  # S3's error documents carry no namespace
        for tag, value in (("Code", code), ("Message", message), ("RequestId", "TEST")):
            ET.SubElement(root, tag).text = value
        self._answer(status, b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root), {"Content-Type": "application/xml"})

    def _parse(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        path = urllib.parse.unquote(url.path)
        parts = path.lstrip("/").split("/", 1)
        bucket, key = parts[0], (parts[1] if len(parts) > 1 else "")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.s3.requests.append({"method": self.command, "path": path, "key": key, "query": query, "headers": {k.lower(): v for k, v in self.headers.items()}, "bytes": len(body)})
        return bucket, key, query, body

    def _integrity(self, body):
        """None when the upload is acceptable, else (status, code, message)."""
        h = {k.lower(): v for k, v in self.headers.items()}
        if "aws-chunked" in h.get("content-encoding", "") or "x-amz-trailer" in h or h.get("x-amz-content-sha256", "").startswith("STREAMING-") or "transfer-encoding" in h:
            return 400, "NotImplemented", "This server does not support aws-chunked encoding, trailers or chunked transfer"
        md5 = h.get("content-md5")
        if md5 is None and not any(k.startswith("x-amz-checksum-") for k in h):
            return 400, "InvalidRequest", "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters"
        if md5 is not None and md5 != base64.b64encode(hashlib.md5(body).digest()).decode():
            return 400, "BadDigest", "The Content-MD5 you specified did not match what we received."
        return None

    # -- verbs -----------------------------------------------------------------------------
    def do_PUT(self):
        bucket, key, query, body = self._parse()
        if bucket != self.s3.bucket:
            return self._error(404, "NoSuchBucket", "The specified bucket does not exist")
        bad = self._integrity(body)
        if bad:
            return self._error(*bad)
        etag = '"%s"' % hashlib.md5(body).hexdigest()
        if "uploadId" in query:
            upload = self.s3.uploads.get(query["uploadId"])
            if upload is None:
                return self._error(404, "NoSuchUpload", "The specified upload does not exist")
            number = int(query["partNumber"])
            if self.s3.fail_part == number:
                return self._error(403, "AccessDenied", "Access Denied")
            upload["parts"][number] = body
            return self._answer(200, b"", {"ETag": etag})
        self.s3.objects[key] = (body, time.time())
        return self._answer(200, b"", {"ETag": etag})

    def do_POST(self):
        bucket, key, query, body = self._parse()
        if "uploads" in query:
            upload_id = uuid.uuid4().hex
            self.s3.uploads[upload_id] = {"key": key, "parts": {}, "headers": dict(self.headers.items())}
            return self._answer(200, _xml("InitiateMultipartUploadResult", [("Bucket", bucket), ("Key", key), ("UploadId", upload_id)]), {"Content-Type": "application/xml"})
        if "uploadId" in query:
            upload = self.s3.uploads.get(query["uploadId"])
            if upload is None:
                return self._error(404, "NoSuchUpload", "The specified upload does not exist")
            doc = ET.fromstring(body)
            data = b""
            for part in doc.iter():
                if part.tag.rsplit("}", 1)[-1] != "Part":
                    continue
                fields = {c.tag.rsplit("}", 1)[-1]: c.text for c in part}
                chunk = upload["parts"].get(int(fields["PartNumber"]))
                if chunk is None or fields["ETag"] != '"%s"' % hashlib.md5(chunk).hexdigest():
                    return self._error(400, "InvalidPart", "One or more of the specified parts could not be found")
                data += chunk
            self.s3.objects[key] = (data, time.time())
            del self.s3.uploads[query["uploadId"]]
            return self._answer(200, _xml("CompleteMultipartUploadResult", [("Bucket", bucket), ("Key", key), ("ETag", '"multipart"')]), {"Content-Type": "application/xml"})
        return self._error(400, "InvalidRequest", "unsupported POST")

    def do_DELETE(self):
        bucket, key, query, body = self._parse()
        if "uploadId" in query:
            self.s3.uploads.pop(query["uploadId"], None)
            return self._answer(204)
        self.s3.objects.pop(key, None)
        return self._answer(204)

    def do_GET(self):
        bucket, key, query, body = self._parse()
        if bucket != self.s3.bucket:
            return self._error(404, "NoSuchBucket", "The specified bucket does not exist")
        if query.get("list-type") == "2":
            prefix = query.get("prefix", "")
            keys = sorted(k for k in self.s3.objects if k.startswith(prefix))
            start = int(query.get("continuation-token", "0"))
            page = keys[start:start + self.s3.page_size]
            truncated = start + self.s3.page_size < len(keys)
            root = ET.Element("ListBucketResult", xmlns=NS)
            for tag, value in (("Name", bucket), ("Prefix", prefix), ("KeyCount", len(page)), ("MaxKeys", self.s3.page_size), ("IsTruncated", "true" if truncated else "false")):
                ET.SubElement(root, tag).text = str(value)
            if truncated:
                ET.SubElement(root, "NextContinuationToken").text = str(start + self.s3.page_size)
            for k in page:
                data, mtime = self.s3.objects[k]
                c = ET.SubElement(root, "Contents")
                ET.SubElement(c, "Key").text = k
                ET.SubElement(c, "LastModified").text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(mtime)) + ".%03dZ" % int(mtime % 1 * 1000)
                ET.SubElement(c, "ETag").text = '"%s"' % hashlib.md5(data).hexdigest()
                ET.SubElement(c, "Size").text = str(len(data))
                ET.SubElement(c, "StorageClass").text = "STANDARD"
            return self._answer(200, b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root), {"Content-Type": "application/xml"})
        if key not in self.s3.objects:
            return self._error(404, "NoSuchKey", "The specified key does not exist.")
        data, mtime = self.s3.objects[key]
        return self._answer(200, data, {"Content-Type": "application/octet-stream", "ETag": '"%s"' % hashlib.md5(data).hexdigest(), "Last-Modified": formatdate(mtime, usegmt=True)})
