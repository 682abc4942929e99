"""Clients of the S3 stand-in, run by s3-standin.runtime.test.ts in a Debian trixie container
(python3-boto3 1.37, pgBackRest 2.55). `python3 client.py SCENARIO` prints one JSON object of facts
for the test to check; it exits non-zero only when something unexpected breaks.

Env: S3_ENDPOINT (https://<container>:8333), S3_BUCKET, S3_CA (the CA file), S3_KEY/S3_SECRET (an
identity), S3_PGBACKREST_CONF (scenario pgbackrest; not PGBACKREST_*: pgBackRest reads those as options), RUN (a prefix unique to the test run).
"""
import base64
import datetime as dt
import hashlib
import hmac
import http.client
import io
import json
import os
import ssl
import subprocess
import sys
import urllib.parse
import zlib

import boto3
import botocore.config
import botocore.exceptions

ENDPOINT = os.environ["S3_ENDPOINT"]
BUCKET = os.environ["S3_BUCKET"]
CA = os.environ["S3_CA"]
KEY = os.environ["S3_KEY"]
SECRET = os.environ["S3_SECRET"]
RUN = os.environ.get("RUN", "run")
MiB = 1024 * 1024


def b64(data):
    return base64.b64encode(data).decode()


def md5_b64(data):
    return b64(hashlib.md5(data).digest())


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for byte in data:
        c = CRC32C_TABLE[(c ^ byte) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def crc_b64(value):
    return b64(value.to_bytes(4, "big"))


def client(secret=SECRET, **config):
    cfg = botocore.config.Config(s3={"addressing_style": "path"}, signature_version="s3v4", retries={"max_attempts": 1, "mode": "standard"}, **config)
    return boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1", verify=CA, aws_access_key_id=KEY, aws_secret_access_key=secret, config=cfg)


def when_required():
    return client(request_checksum_calculation="when_required", response_checksum_validation="when_required")


def error_of(call):
    """Runs call(); returns None when it succeeds, else the S3 error's status, code and message."""
    try:
        call()
        return None
    except botocore.exceptions.ClientError as e:
        return {"status": e.response["ResponseMetadata"]["HTTPStatusCode"], "code": e.response["Error"].get("Code"), "message": e.response["Error"].get("Message")}


def exists(c, key):
    err = error_of(lambda: c.head_object(Bucket=BUCKET, Key=key))
    if err is None:
        return True
    if err["status"] == 404:
        return False
    raise RuntimeError("HEAD %s: %r" % (key, err))


def capture(c):
    """The integrity-related headers of each request the client sends, by operation."""
    seen = []

    def hook(request, event_name, **_):
        h = {k.lower(): v for k, v in request.headers.items()}
        seen.append({
            "op": event_name.rsplit(".", 1)[-1],
            "content-md5": "content-md5" in h,
            "x-amz-content-sha256": h.get("x-amz-content-sha256", b"").decode() if isinstance(h.get("x-amz-content-sha256"), bytes) else h.get("x-amz-content-sha256"),
            "content-encoding": h.get("content-encoding").decode() if isinstance(h.get("content-encoding"), bytes) else h.get("content-encoding"),
            "x-amz-trailer": h.get("x-amz-trailer").decode() if isinstance(h.get("x-amz-trailer"), bytes) else h.get("x-amz-trailer"),
            "checksum-headers": sorted(k for k in h if k.startswith("x-amz-checksum-")),
        })

    c.meta.events.register("before-send.s3", hook)
    return seen


def scenario_roundtrip():
    """(1) when_required + explicit Content-MD5: put/get/head/list/multipart/delete."""
    c = when_required()
    seen = capture(c)
    prefix = "%s/roundtrip/" % RUN
    small = os.urandom(MiB + 123)
    c.put_object(Bucket=BUCKET, Key=prefix + "small", Body=small, ContentMD5=md5_b64(small))
    got = c.get_object(Bucket=BUCKET, Key=prefix + "small")["Body"].read()
    head = c.head_object(Bucket=BUCKET, Key=prefix + "small")
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB)]
    mpu = c.create_multipart_upload(Bucket=BUCKET, Key=prefix + "multi")
    done = []
    for number, part in enumerate(parts, 1):
        r = c.upload_part(Bucket=BUCKET, Key=prefix + "multi", UploadId=mpu["UploadId"], PartNumber=number, Body=part, ContentMD5=md5_b64(part))
        done.append({"PartNumber": number, "ETag": r["ETag"]})
    c.complete_multipart_upload(Bucket=BUCKET, Key=prefix + "multi", UploadId=mpu["UploadId"], MultipartUpload={"Parts": done})
    multi = c.get_object(Bucket=BUCKET, Key=prefix + "multi")["Body"].read()
    listed = sorted(o["Key"] for o in c.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))
    c.delete_object(Bucket=BUCKET, Key=prefix + "small")
    deleted = c.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": prefix + "multi"}]})
    after = c.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("KeyCount", 0)
    return {
        "small_equal": got == small,
        "small_length": head["ContentLength"] == len(small),
        "multi_equal": multi == b"".join(parts),
        "multi_length": len(multi),
        "listed": [k[len(prefix):] for k in listed],
        "delete_objects_deleted": [d["Key"][len(prefix):] for d in deleted.get("Deleted", [])],
        "delete_objects_errors": deleted.get("Errors", []),
        "after_delete": after,
        "requests": seen,
    }


def scenario_default():
    """(2) boto3's default config: flexible checksums, aws-chunked with a CRC32 trailer over HTTPS."""
    c = client()
    seen = capture(c)
    prefix = "%s/default/" % RUN
    data = os.urandom(3 * MiB + 17)
    put = c.put_object(Bucket=BUCKET, Key=prefix + "put", Body=data)
    got = c.get_object(Bucket=BUCKET, Key=prefix + "put")
    body = got["Body"].read()
    big = os.urandom(12 * MiB + 5)
    c.upload_fileobj(io.BytesIO(big), BUCKET, prefix + "transfer")
    big_got = c.get_object(Bucket=BUCKET, Key=prefix + "transfer")["Body"].read()
    return {
        "equal": body == data,
        "length": len(body),
        "expected_length": len(data),
        "content_encoding": got.get("ContentEncoding"),
        "put_checksum_crc32": put.get("ChecksumCRC32"),
        "expected_crc32": crc_b64(zlib.crc32(data)),
        "transfer_equal": big_got == big,
        "sha256": sha256(data),
        "requests": seen,
    }


def scenario_no_md5():
    """(3) when_required without Content-MD5: an Object Lock bucket refuses PutObject and UploadPart."""
    c = when_required()
    seen = capture(c)
    key = "%s/no-md5/object" % RUN
    data = os.urandom(4096)
    put = error_of(lambda: c.put_object(Bucket=BUCKET, Key=key, Body=data))
    mpu = c.create_multipart_upload(Bucket=BUCKET, Key=key)
    part = error_of(lambda: c.upload_part(Bucket=BUCKET, Key=key, UploadId=mpu["UploadId"], PartNumber=1, Body=data))
    abort = error_of(lambda: c.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=mpu["UploadId"]))
    abort_again = error_of(lambda: c.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=mpu["UploadId"]))
    return {"put": put, "upload_part": part, "abort": abort, "abort_again": abort_again, "stored": exists(c, key), "requests": seen}


def scenario_bad_md5():
    """(4) a Content-MD5 of other bytes: 400 BadDigest, and nothing stored."""
    c = when_required()
    key = "%s/bad-md5/object" % RUN
    data = os.urandom(70000)
    err = error_of(lambda: c.put_object(Bucket=BUCKET, Key=key, Body=data, ContentMD5=md5_b64(data + b"x")))
    malformed = error_of(lambda: c.put_object(Bucket=BUCKET, Key=key, Body=data, ContentMD5="not-an-md5"))
    return {"error": err, "malformed": malformed, "stored": exists(c, key)}


def scenario_bad_secret():
    """(5) a wrong secret key: 403 SignatureDoesNotMatch."""
    c = client(secret=SECRET[:-1] + ("A" if SECRET[-1] != "A" else "B"), request_checksum_calculation="when_required")
    key = "%s/bad-secret/object" % RUN
    return {
        "list": error_of(lambda: c.list_objects_v2(Bucket=BUCKET)),
        "put": error_of(lambda: c.put_object(Bucket=BUCKET, Key=key, Body=b"x", ContentMD5=md5_b64(b"x"))),
        "stored": exists(when_required(), key),
    }


def scenario_checksums():
    """x-amz-checksum-* headers given explicitly: verified per algorithm."""
    c = when_required()
    seen = capture(c)
    prefix = "%s/checksums/" % RUN
    data = os.urandom(300001)
    ok = {
        "sha256": error_of(lambda: c.put_object(Bucket=BUCKET, Key=prefix + "sha256", Body=data, ChecksumSHA256=b64(hashlib.sha256(data).digest()))),
        "sha1": error_of(lambda: c.put_object(Bucket=BUCKET, Key=prefix + "sha1", Body=data, ChecksumSHA1=b64(hashlib.sha1(data).digest()))),
        "crc32": error_of(lambda: c.put_object(Bucket=BUCKET, Key=prefix + "crc32", Body=data, ChecksumCRC32=crc_b64(zlib.crc32(data)))),
        "crc32c": error_of(lambda: c.put_object(Bucket=BUCKET, Key=prefix + "crc32c", Body=data, ChecksumCRC32C=crc_b64(crc32c(data)))),
    }
    bad = {
        "crc32": error_of(lambda: c.put_object(Bucket=BUCKET, Key=prefix + "bad-crc32", Body=data, ChecksumCRC32=crc_b64(zlib.crc32(data) ^ 1))),
        "crc32c": error_of(lambda: c.put_object(Bucket=BUCKET, Key=prefix + "bad-crc32c", Body=data, ChecksumCRC32C=crc_b64(crc32c(data[1:])))),
        "sha256": error_of(lambda: c.put_object(Bucket=BUCKET, Key=prefix + "bad-sha256", Body=data, ChecksumSHA256=b64(hashlib.sha256(b"other").digest()))),
    }
    stored = sorted(o["Key"][len(prefix):] for o in c.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))
    equal = all(c.get_object(Bucket=BUCKET, Key=prefix + k)["Body"].read() == data for k in ok)
    return {"crc32c_check": "%08x" % crc32c(b"123456789"), "ok": ok, "bad": bad, "stored": stored, "equal": equal, "requests": seen}


def signed_request(method, path, body, headers, payload_hash):
    """One HTTPS request signed with SigV4 by hand (header form), for what boto3 will not send."""
    host = urllib.parse.urlsplit(ENDPOINT).netloc
    now = dt.datetime.now(dt.timezone.utc)
    amz_date, date = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    headers = dict(headers, host=host)
    headers["x-amz-date"] = amz_date
    headers["x-amz-content-sha256"] = payload_hash
    lower = {k.lower(): str(v).strip() for k, v in headers.items()}
    signed = ";".join(sorted(lower))
    canonical = "\n".join([method, path, "", "".join("%s:%s\n" % (k, lower[k]) for k in sorted(lower)), signed, payload_hash])
    scope = "%s/us-east-1/s3/aws4_request" % date
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, sha256(canonical.encode())])
    k = ("AWS4" + SECRET).encode()
    for part in (date, "us-east-1", "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (KEY, scope, signed, hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest())
    return raw(method, path, body, headers)


def raw(method, path, body, headers):
    u = urllib.parse.urlsplit(ENDPOINT)
    conn = http.client.HTTPSConnection(u.hostname, u.port, context=ssl.create_default_context(cafile=CA), timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        res = conn.getresponse()
        text = res.read().decode(errors="replace")
        code = text.split("<Code>")[1].split("</Code>")[0] if "<Code>" in text else None
        return {"status": res.status, "code": code}
    finally:
        conn.close()


def aws_chunked(data, trailer_name, trailer_value, chunk=65536):
    out = b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + chunk]), data[i:i + chunk]) for i in range(0, len(data), chunk))
    return out + b"0\r\n%s:%s\r\n\r\n" % (trailer_name.encode(), trailer_value.encode())


def scenario_raw():
    """Requests boto3 does not send: bad aws-chunked trailers, signed streaming, anonymous."""
    c = when_required()
    prefix = "/%s/%s/raw/" % (BUCKET, RUN)
    data = os.urandom(200000)
    chunked = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data)), "x-amz-trailer": "x-amz-checksum-crc32", "x-amz-sdk-checksum-algorithm": "CRC32"}
    good = signed_request("PUT", prefix + "good", aws_chunked(data, "x-amz-checksum-crc32", crc_b64(zlib.crc32(data)), chunk=1000), chunked, "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    good_bytes = c.get_object(Bucket=BUCKET, Key="%s/raw/good" % RUN)["Body"].read() == data
    bad_trailer = signed_request("PUT", prefix + "bad-trailer", aws_chunked(data, "x-amz-checksum-crc32", crc_b64(zlib.crc32(data) ^ 1)), chunked, "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    short = signed_request("PUT", prefix + "short", aws_chunked(data[:-1], "x-amz-checksum-crc32", crc_b64(zlib.crc32(data[:-1]))), chunked, "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    no_trailer = signed_request("PUT", prefix + "no-trailer", aws_chunked(data, "x-amz-meta-x", "y"), chunked, "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    signed_streaming = signed_request("PUT", prefix + "signed", b"", {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": "0", "content-md5": md5_b64(b"")}, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    sha_mismatch = signed_request("PUT", prefix + "sha", data, {"content-md5": md5_b64(data)}, sha256(data + b"x"))
    anonymous = raw("GET", "/%s?list-type=2" % BUCKET, None, {})
    anonymous_put = raw("PUT", prefix + "anonymous", b"x", {"content-md5": md5_b64(b"x")})
    return {
        "good": good,
        "good_bytes": good_bytes,
        "bad_trailer": bad_trailer,
        "short": short,
        "no_trailer": no_trailer,
        "signed_streaming": signed_streaming,
        "sha_mismatch": sha_mismatch,
        "anonymous": anonymous,
        "anonymous_put": anonymous_put,
        "stored": sorted(o["Key"].rsplit("/", 1)[-1] for o in c.list_objects_v2(Bucket=BUCKET, Prefix="%s/raw/" % RUN).get("Contents", [])),
    }


def pgbackrest(*args, stdin=None):
    conf = os.environ["S3_PGBACKREST_CONF"]
    env = dict(os.environ, PGBACKREST_REPO1_S3_KEY=KEY, PGBACKREST_REPO1_S3_KEY_SECRET=SECRET)
    p = subprocess.run(["pgbackrest", "--config=" + conf, *args], input=stdin, capture_output=True, env=env, timeout=120)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace").strip()


def scenario_pgbackrest():
    """(6) pgBackRest 2.55 as the client: repo-put (single PUT and multipart), repo-get, repo-ls, repo-rm."""
    small = os.urandom(100000)
    big = os.urandom(7 * MiB + 3)  # over repo-storage-upload-chunk-size (5 MiB for S3): multipart
    out = {}
    for name, data in (("small", small), ("big", big)):
        rc, _, err = pgbackrest("repo-put", "%s/pgbackrest/%s" % (RUN, name), stdin=data)
        out["put_" + name] = {"rc": rc, "stderr": err}
        rc, got, err = pgbackrest("repo-get", "%s/pgbackrest/%s" % (RUN, name))
        out["get_" + name] = {"rc": rc, "stderr": err, "equal": got == data}
    rc, listing, err = pgbackrest("repo-ls", "--output=json", "--recurse", "%s/pgbackrest" % RUN)
    out["ls"] = {"rc": rc, "stderr": err, "listing": json.loads(listing) if rc == 0 else None}
    rc, _, err = pgbackrest("repo-rm", "--recurse", "%s/pgbackrest" % RUN)
    out["rm"] = {"rc": rc, "stderr": err}
    rc, listing, err = pgbackrest("repo-ls", "--output=json", "--recurse", "%s/pgbackrest" % RUN)
    out["ls_after_rm"] = {"rc": rc, "stderr": err, "listing": json.loads(listing) if rc == 0 else None}
    return out


if __name__ == "__main__":
    print(json.dumps(globals()["scenario_" + sys.argv[1].replace("-", "_")]()))
