// pgharbor test stand-in for the dev stack's S3 server (SeaweedFS there), run in a container under the
// same name, alias, env, uploads and volume (see the Dockerfile beside this file for the mounts):
// s3rver 3.7 over HTTPS, path-style only, with the checks below in front of it, so that the clients
// pgharbor runs meet the S3 behaviour they depend on.
//
// Env: S3_<WHO>_ACCESS_KEY/S3_<WHO>_SECRET_KEY (any number of identities; pgharbor gives WRITER,
// READER, EXPIRER), S3_BUCKET (created at start), S3_PORT (8333), S3_DIRECTORY (/data),
// S3_CERT_FILE/S3_KEY_FILE (/etc/pgharbor/tls/s3.crt and s3.key), S3_OBJECT_LOCK=1 (an Object Lock
// bucket), S3_ADDRESS (0.0.0.0), S3_SPOOL_DIR (os.tmpdir()), S3_LOG_ACCEPTED=1 (one stdout line per
// accepted request: operation and the integrity headers it was verified with), S3_VERBOSE=1 (s3rver's
// own log).
//
// What is checked, as S3 does, before s3rver sees a request:
// - authentication: every request needs a header-form SigV4 signature (AWS4-HMAC-SHA256), recomputed
//   here from the request as received with the identity's secret key (s3rver 3.7 accepts any V4
//   signature). None: 403 AccessDenied. Unknown key: 403 InvalidAccessKeyId. Wrong signature: 403
//   SignatureDoesNotMatch. Other schemes: 400 InvalidRequest. Presigned (query-string) requests:
//   501 NotImplemented (nothing pgharbor runs sends them). s3rver then checks the clock skew (15 min).
// - payload integrity (body read and verified before anything is stored; a refused upload leaves no
//   object or part): x-amz-content-sha256 when it is a hash (400 XAmzContentSHA256Mismatch),
//   Content-MD5 (400 InvalidDigest when malformed, 400 BadDigest on mismatch), one
//   x-amz-checksum-crc32|crc32c|sha1|sha256 in a header or an aws-chunked trailer (400 InvalidRequest
//   when malformed or more than one, 400 BadDigest on mismatch; crc64nvme: 501 NotImplemented).
// - aws-chunked uploads (STREAMING-UNSIGNED-PAYLOAD-TRAILER, boto3's default over HTTPS): decoded, the
//   trailing checksum verified, the decoded length checked against x-amz-decoded-content-length, and
//   s3rver stores the decoded bytes. The signed streaming variants: 501 NotImplemented.
// - Object Lock (S3_OBJECT_LOCK=1, a bucket with default retention): PutObject and UploadPart without
//   Content-MD5 and without any x-amz-checksum-* are refused with S3's 400 InvalidRequest. S3 asks
//   the same of DeleteObjects on every bucket.
// Every refused request is logged to stderr in one line (method, path, code, reason; never a key).
//
// How it hooks into s3rver (lib/controllers/object.js): PutObject and UploadPart read the body from
// ctx.req (new S3Object(..., ctx.req, ctx.headers) and store.putPart(..., ctx.req)), DeleteObjects and
// CompleteMultipartUpload read ctx.req with req.on('data'). The middleware below is put first in
// s3rver's Koa middleware (server.middleware.unshift, composed when the server starts listening),
// reads and verifies the body itself, then replaces ctx.req with a stream of the verified, decoded
// bytes (a spool file for uploads, a buffer otherwise) and rewrites the request headers s3rver and
// Koa read (ctx.headers is the original request's header object): content-length becomes the decoded
// length, aws-chunked is dropped from content-encoding (s3rver keeps content-encoding as object
// metadata), transfer-encoding and x-amz-decoded-content-length go. Two more hooks: AbortMultipartUpload,
// which s3rver lacks (405), is answered here from s3rver's store layout; and store.deleteObject is
// wrapped so DeleteObjects no longer races itself (see below).
//
// Not modelled: per-identity permissions (SeaweedFS gives the reader no write; here every identity can
// do everything), versioning, retention itself (objects can be deleted and overwritten; no
// ?object-lock, ?retention, ?legal-hold), multipart ETags of the form md5-N and minimum part sizes,
// returning stored checksums on GetObject (x-amz-checksum-mode), ListMultipartUploads, ListParts and
// UploadPartCopy (s3rver answers 501/405), SSE, bucket policies, virtual-host addressing.
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const os = require("os");
const path = require("path");
const { once } = require("events");
const { Readable, finished } = require("stream");
const S3rver = require("s3rver");
const { DUMMY_ACCOUNT } = require("s3rver/lib/models/account");
const { ALGORITHMS, NOT_IMPLEMENTED, NOT_VALUES, decodeDigest } = require("./checksums");
const { createAwsChunkedDecoder } = require("./aws-chunked");

const env = process.env;
const PORT = Number(env.S3_PORT || 8333);
const ADDRESS = env.S3_ADDRESS || "0.0.0.0";
const DIRECTORY = env.S3_DIRECTORY || "/data";
const CERT_FILE = env.S3_CERT_FILE || "/etc/pgharbor/tls/s3.crt";
const KEY_FILE = env.S3_KEY_FILE || "/etc/pgharbor/tls/s3.key";
const BUCKET = env.S3_BUCKET;
const OBJECT_LOCK = env.S3_OBJECT_LOCK === "1";
const LOG_ACCEPTED = env.S3_LOG_ACCEPTED === "1";
const SPOOL_DIR = env.S3_SPOOL_DIR || os.tmpdir();
const MAX_BUFFERED_BODY = 16 * 1024 * 1024;
const HEALTHCHECK_AGENT = "pgharbor-s3-standin-healthcheck";
const OBJECT_LOCK_MESSAGE = "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters";

const fail = (message) => {
  process.stderr.write(`s3 stand-in: ${message}\n`);
  process.exit(1);
};
if (!BUCKET) fail("S3_BUCKET is not set");

// The identities: S3_<WHO>_ACCESS_KEY with S3_<WHO>_SECRET_KEY. s3rver's built-in S3RVER key goes.
DUMMY_ACCOUNT.revokeAccessKey("S3RVER");
const secrets = new Map();
for (const name of Object.keys(env)) {
  const m = /^S3_([A-Z0-9]+)_ACCESS_KEY$/.exec(name);
  if (!m) continue;
  const secret = env[`S3_${m[1]}_SECRET_KEY`];
  if (!env[name] || !secret) fail(`${name} needs a non-empty S3_${m[1]}_SECRET_KEY`);
  DUMMY_ACCOUNT.createKeyPair(env[name], secret);
  secrets.set(env[name], secret);
}
if (secrets.size === 0) fail("no identity: set S3_<WHO>_ACCESS_KEY and S3_<WHO>_SECRET_KEY");

/** A refusal: the S3 error answered, and the reason logged. */
class Refusal extends Error {
  constructor(status, code, message, reason) {
    super(message);
    this.status = status;
    this.code = code;
    this.reason = reason;
  }
}
const invalidRequest = (message, reason) => new Refusal(400, "InvalidRequest", message, reason);

const xmlEscape = (s) => String(s).replace(/[<>&'"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&apos;", '"': "&quot;" })[c]);

/** The path and the names (not the values) of the query parameters: nothing secret. */
const where = (ctx) => `${ctx.path}${ctx.querystring ? `?${Object.keys(ctx.query).sort().join("&")}` : ""}`;

/** 404s are answers, not refusals (pgBackRest and the ops tool look objects up that way): not logged. */
function logRefusal(ctx, status, code, reason) {
  if (status === 404) return;
  // ctx.socket: the connection's (ctx.req may be the substituted body by now).
  const fromHealthcheck = ctx.get("user-agent") === HEALTHCHECK_AGENT && /^(::ffff:)?127\.0\.0\.1$|^::1$/.test(ctx.socket.remoteAddress || "");
  if (!fromHealthcheck) process.stderr.write(`s3 refused ${ctx.method} ${where(ctx)}: ${status} ${code} (${reason})\n`);
}

const rfc3986 = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const hmac = (key, text) => crypto.createHmac("sha256", key).update(text).digest();

/** AWS Signature Version 4, header form, recomputed from the request as received. */
function checkSignature(req) {
  const auth = req.headers.authorization;
  const m = /^AWS4-HMAC-SHA256 Credential=([^/,]+)\/(\d{8})\/([^/,]+)\/s3\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(auth.trim());
  if (!m) throw new Refusal(400, "AuthorizationHeaderMalformed", "The authorization header is malformed.", "malformed Authorization header");
  const [, key, date, region, signedHeaders, signature] = m;
  const secret = secrets.get(key);
  if (secret === undefined) {
    throw new Refusal(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.", "unknown access key");
  }
  const amzDate = String(req.headers["x-amz-date"] || "");
  if (!amzDate.startsWith(date)) throw new Refusal(403, "SignatureDoesNotMatch", "The credential scope date does not match x-amz-date.", "credential scope date is not the x-amz-date's");
  const names = signedHeaders.split(";");
  if (!names.includes("host")) throw new Refusal(403, "SignatureDoesNotMatch", "The host header must be signed.", "host header not signed");
  const [rawPath, query = ""] = req.url.split("?");
  // The query as S3 canonicalizes it: each name and value decoded ('+' read as a space), then
  // percent-encoded per RFC 3986, sorted by name then value.
  const recode = (x) => rfc3986(decodeURIComponent(x.replace(/\+/g, " ")));
  let params;
  try {
    params = query
      ? query.split("&").map((p) => {
          const eq = p.indexOf("=");
          return eq === -1 ? [recode(p), ""] : [recode(p.slice(0, eq)), recode(p.slice(eq + 1))];
        })
      : [];
  } catch {
    throw new Refusal(400, "InvalidURI", "Couldn't parse the specified URI.", "query string is not valid percent-encoding");
  }
  params.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  const canonical = [
    req.method,
    rawPath,
    params.map(([k, v]) => `${k}=${v}`).join("&"),
    names.map((h) => `${h}:${String(req.headers[h] ?? "").trim().replace(/ +/g, " ")}\n`).join(""),
    signedHeaders,
    req.headers["x-amz-content-sha256"],
  ].join("\n");
  const toSign = ["AWS4-HMAC-SHA256", amzDate, `${date}/${region}/s3/aws4_request`, crypto.createHash("sha256").update(canonical).digest("hex")].join("\n");
  let k = hmac(`AWS4${secret}`, date);
  for (const part of [region, "s3", "aws4_request"]) k = hmac(k, part);
  const expected = hmac(k, toSign);
  if (!crypto.timingSafeEqual(expected, Buffer.from(signature, "hex"))) {
    throw new Refusal(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.", "signature does not match");
  }
}

function authenticate(ctx) {
  const req = ctx.req;
  const q = ctx.query;
  if (!req.headers.authorization) {
    if ("X-Amz-Algorithm" in q || "X-Amz-Signature" in q || "Signature" in q || "AWSAccessKeyId" in q) {
      throw new Refusal(501, "NotImplemented", "Query-string (presigned) authentication is not implemented by the S3 stand-in.", "presigned request");
    }
    throw new Refusal(403, "AccessDenied", "Access Denied", "no Authorization header: anonymous requests are refused");
  }
  if (!/^AWS4-HMAC-SHA256 /.test(req.headers.authorization)) {
    throw invalidRequest("The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.", "not a SigV4 Authorization header");
  }
  if (!req.headers["x-amz-content-sha256"]) {
    throw invalidRequest("Missing required header for this request: x-amz-content-sha256", "no x-amz-content-sha256");
  }
  checkSignature(req);
}

/** The operations the stand-in treats itself ("other" for the rest), from the path-style request. */
function operation(ctx) {
  const [, bucket = "", ...rest] = ctx.path.split("/");
  const key = rest.join("/");
  // x-id=<Operation> is what some SDKs (JS v3, Rust) add to the query; S3 and s3rver ignore it.
  const q = Object.keys(ctx.query).filter((name) => name !== "x-id");
  if (ctx.method === "PUT" && bucket && key && !ctx.get("x-amz-copy-source")) {
    if (q.length === 0) return "PutObject";
    if (q.includes("uploadId") && q.includes("partNumber") && q.length === 2) return "UploadPart";
  }
  if (ctx.method === "POST" && bucket && !key && q.includes("delete")) return "DeleteObjects";
  if (ctx.method === "DELETE" && bucket && key && q.length === 1 && q[0] === "uploadId") return "AbortMultipartUpload";
  return "other";
}

/** What the request says about its body: payload hash, Content-MD5, one checksum, aws-chunked. */
function declarations(ctx, op) {
  const h = ctx.req.headers;
  const sha = String(h["x-amz-content-sha256"]);
  const upload = op === "PutObject" || op === "UploadPart";
  let streaming = false;
  if (sha.startsWith("STREAMING-")) {
    if (sha !== "STREAMING-UNSIGNED-PAYLOAD-TRAILER") {
      throw new Refusal(501, "NotImplemented", `${sha} (signed aws-chunked uploads) is not implemented by the S3 stand-in; send UNSIGNED-PAYLOAD, the payload's SHA-256 or STREAMING-UNSIGNED-PAYLOAD-TRAILER.`, `signed streaming upload ${sha}`);
    }
    if (!upload) throw invalidRequest("aws-chunked bodies are only accepted for PutObject and UploadPart.", "aws-chunked body on another operation");
    streaming = true;
  } else if (sha !== "UNSIGNED-PAYLOAD" && !/^[0-9a-f]{64}$/.test(sha)) {
    throw new Refusal(400, "InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, or a valid sha256 value.", "bad x-amz-content-sha256");
  }
  const encodings = String(h["content-encoding"] || "").split(",").map((e) => e.trim()).filter(Boolean);
  if (encodings.includes("aws-chunked") !== streaming) {
    throw invalidRequest("Content-Encoding aws-chunked goes with x-amz-content-sha256 STREAMING-UNSIGNED-PAYLOAD-TRAILER, and only with it.", "aws-chunked encoding and payload mode disagree");
  }
  let decodedLength;
  if (streaming) {
    if (!/^\d+$/.test(String(h["x-amz-decoded-content-length"] ?? ""))) {
      throw new Refusal(411, "MissingContentLength", "You must provide the Content-Length HTTP header (x-amz-decoded-content-length for aws-chunked bodies).", "aws-chunked without x-amz-decoded-content-length");
    }
    decodedLength = Number(h["x-amz-decoded-content-length"]);
  }

  let md5;
  if (h["content-md5"] !== undefined) {
    md5 = decodeDigest(h["content-md5"], 16);
    if (!md5) throw new Refusal(400, "InvalidDigest", "The Content-MD5 you specified was invalid.", "malformed Content-MD5");
  }

  const checksums = [];
  const known = (alg, header) => {
    if (NOT_IMPLEMENTED.has(alg)) throw new Refusal(501, "NotImplemented", `${header} is not implemented by the S3 stand-in (it verifies crc32, crc32c, sha1 and sha256).`, `unsupported checksum ${header}`);
    if (!ALGORITHMS[alg]) throw invalidRequest(`Value for ${header} header is invalid.`, `unknown checksum ${header}`);
  };
  for (const name of Object.keys(h)) {
    const m = /^x-amz-checksum-([a-z0-9]+)$/.exec(name);
    if (!m || NOT_VALUES.has(m[1])) continue;
    known(m[1], name);
    const expected = decodeDigest(h[name], ALGORITHMS[m[1]].size);
    if (!expected) throw invalidRequest(`Value for ${name} header is invalid.`, `malformed ${name}`);
    checksums.push({ alg: m[1], header: name, expected });
  }
  if (h["x-amz-trailer"] !== undefined) {
    if (!streaming) throw invalidRequest("x-amz-trailer is only accepted with an aws-chunked body.", "x-amz-trailer without aws-chunked");
    for (const name of String(h["x-amz-trailer"]).split(",").map((t) => t.trim().toLowerCase()).filter(Boolean)) {
      const m = /^x-amz-checksum-([a-z0-9]+)$/.exec(name);
      if (!m) throw invalidRequest(`The trailer ${name} is not supported.`, `trailer ${name}`);
      known(m[1], name);
      checksums.push({ alg: m[1], header: name, trailer: true });
    }
  }
  if (checksums.length > 1) {
    throw invalidRequest("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.", "more than one checksum");
  }
  const checksum = checksums[0];
  const sdkAlgorithm = h["x-amz-sdk-checksum-algorithm"];
  if (sdkAlgorithm !== undefined) {
    if (!checksum) {
      throw invalidRequest("x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or x-amz-trailer headers were found.", "x-amz-sdk-checksum-algorithm without a checksum");
    }
    if (String(sdkAlgorithm).toLowerCase() !== checksum.alg) {
      throw invalidRequest("Value for x-amz-sdk-checksum-algorithm header is invalid.", "x-amz-sdk-checksum-algorithm is not the checksum sent");
    }
  }

  if (OBJECT_LOCK && upload && !md5 && !checksum) {
    throw invalidRequest(OBJECT_LOCK_MESSAGE, "Object Lock bucket: upload without Content-MD5 or x-amz-checksum-*");
  }
  if (op === "DeleteObjects" && !md5 && !checksum) {
    throw invalidRequest("Missing required header for this request: Content-MD5", "DeleteObjects without Content-MD5 or x-amz-checksum-*");
  }
  return { sha: /^[0-9a-f]{64}$/.test(sha) ? sha : undefined, md5, checksum, streaming, decodedLength, encodings };
}

/**
 * Reads the whole body, decoding aws-chunked, into a spool file (uploads) or a buffer (anything
 * else), hashing it as it goes. A problem met on the way (bad framing, too big) is raised only once
 * the client has sent everything, so that it reads the answer instead of a reset connection.
 * Resolves { size, sha, md5, checksum, trailers, buffer? }.
 */
function readBody(ctx, decl, op, spool) {
  return new Promise((resolve, reject) => {
    const req = ctx.req;
    const sha = decl.sha ? crypto.createHash("sha256") : undefined;
    const md5 = decl.md5 ? crypto.createHash("md5") : undefined;
    const checksum = decl.checksum ? ALGORITHMS[decl.checksum.alg].create() : undefined;
    const out = op === "PutObject" || op === "UploadPart" ? fs.createWriteStream(spool, { flags: "wx", mode: 0o600 }) : undefined;
    const decoder = decl.streaming ? createAwsChunkedDecoder() : undefined;
    const parts = [];
    let size = 0;
    let waiting = false;
    let problem;
    if (out) out.on("error", (e) => (problem = problem || e));
    const take = (piece) => {
      size += piece.length;
      if (sha) sha.update(piece);
      if (md5) md5.update(piece);
      if (checksum) checksum.update(piece);
      if (out) {
        if (!out.write(piece) && !waiting) {
          waiting = true;
          req.pause();
          out.once("drain", () => {
            waiting = false;
            req.resume();
          });
        }
      } else if (size > MAX_BUFFERED_BODY) {
        throw new Refusal(400, "MaxMessageLengthExceeded", "Your request was too big.", "body over 16 MiB on a request that is not an upload");
      } else {
        parts.push(piece);
      }
    };
    req.on("data", (chunk) => {
      if (problem) return;
      try {
        if (decoder) decoder.push(chunk, take);
        else take(chunk);
      } catch (e) {
        problem = e;
      }
    });
    finished(req, (err) => {
      const done = out ? new Promise((ok) => out.end(ok)).then(() => (out.closed ? undefined : once(out, "close"))) : Promise.resolve();
      done.then(() => {
        if (err) return reject(err);
        if (problem) return reject(problem);
        let trailers = new Map();
        try {
          if (decoder) trailers = decoder.end().trailers;
        } catch (e) {
          return reject(e);
        }
        resolve({ size, sha: sha?.digest("hex"), md5: md5?.digest(), checksum: checksum?.digest(), trailers, buffer: out ? undefined : Buffer.concat(parts) });
      }, reject);
    });
  });
}

function verify(decl, body) {
  if (decl.streaming && body.size !== decl.decodedLength) {
    throw new Refusal(400, "IncompleteBody", "You did not provide the number of bytes specified by the x-amz-decoded-content-length HTTP header.", `decoded ${body.size} bytes, x-amz-decoded-content-length ${decl.decodedLength}`);
  }
  if (decl.sha && decl.sha !== body.sha) {
    throw new Refusal(400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.", "x-amz-content-sha256 does not match the body");
  }
  if (decl.md5 && !decl.md5.equals(body.md5)) {
    throw new Refusal(400, "BadDigest", "The Content-MD5 you specified did not match what we received.", "Content-MD5 does not match the body");
  }
  const c = decl.checksum;
  if (!c) return undefined;
  let expected = c.expected;
  if (c.trailer) {
    const value = body.trailers.get(c.header);
    if (value === undefined) {
      throw new Refusal(400, "MalformedTrailerError", "The request contained trailing data that was not well-formed or did not conform to our published schema.", `trailer ${c.header} missing`);
    }
    expected = decodeDigest(value, ALGORITHMS[c.alg].size);
    if (!expected) throw invalidRequest(`Value for ${c.header} trailing header is invalid.`, `malformed trailer ${c.header}`);
  }
  if (!expected.equals(body.checksum)) {
    throw new Refusal(400, "BadDigest", `The ${ALGORITHMS[c.alg].name} you specified did not match the calculated checksum.`, `${c.header} does not match the body`);
  }
  return [c.header, expected.toString("base64")];
}

/**
 * AbortMultipartUpload, which s3rver 3.7 does not implement (405): removes the upload's parts from
 * s3rver's store (<bucket>/<"" ._S3rver_uploads>/<upload id>/, holding the key and the parts).
 */
async function abortMultipartUpload(ctx) {
  const uploadId = String(ctx.query.uploadId);
  let bucket;
  let objectKey;
  try {
    [bucket, objectKey] = /^\/([^/]+)\/(.+)$/.exec(ctx.path).slice(1).map((p) => p.split("/").map(decodeURIComponent).join("/"));
  } catch {
    bucket = undefined;
  }
  const dir = bucket && path.join(ctx.store.getResourcePath(bucket, undefined, "uploads"), uploadId);
  let key;
  if (dir && /^[0-9a-f]{1,64}$/.test(uploadId)) key = await fs.promises.readFile(path.join(dir, "key"), "utf8").catch(() => undefined);
  if (key === undefined || key !== objectKey) {
    throw new Refusal(404, "NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.", "no such upload");
  }
  await fs.promises.rm(dir, { recursive: true, force: true });
  ctx.status = 204;
}

/** Hands s3rver the verified bytes: ctx.req becomes their stream, the headers say what they are. */
function substituteBody(ctx, decl, body, spool) {
  const h = ctx.req.headers;
  const stream = body.buffer ? Readable.from(body.buffer.length ? [body.buffer] : [], { objectMode: false }) : fs.createReadStream(spool);
  stream.headers = h;
  h["content-length"] = String(body.size);
  delete h["transfer-encoding"];
  if (decl.streaming) {
    const rest = decl.encodings.filter((e) => e !== "aws-chunked");
    if (rest.length) h["content-encoding"] = rest.join(",");
    else delete h["content-encoding"];
    delete h["x-amz-decoded-content-length"];
  }
  ctx.req = stream;
  return stream;
}

async function standin(ctx, next) {
  let spool;
  let echo;
  let substituted;
  try {
    try {
      authenticate(ctx);
      const op = operation(ctx);
      const decl = declarations(ctx, op);
      if (op === "PutObject" || op === "UploadPart") spool = path.join(SPOOL_DIR, `s3-standin-${crypto.randomBytes(12).toString("hex")}`);
      const body = await readBody(ctx, decl, op, spool);
      echo = verify(decl, body);
      if (LOG_ACCEPTED) {
        const c = decl.checksum;
        const checks = [decl.md5 && "content-md5", decl.sha && "x-amz-content-sha256", decl.streaming && "aws-chunked", c && `${c.header}${c.trailer ? " trailer" : ""}`].filter(Boolean);
        process.stdout.write(`s3 accepted ${ctx.method} ${where(ctx)}: ${op}${checks.length ? ` verified ${checks.join(", ")}` : ""}\n`);
      }
      if (ctx.method === "PUT" || ctx.method === "POST") substituted = substituteBody(ctx, decl, body, spool);
      if (op === "AbortMultipartUpload") return await abortMultipartUpload(ctx);
    } catch (err) {
      if (!(err instanceof Refusal) && !(err && err.code && err.status)) throw err;
      ctx.req.resume();
      logRefusal(ctx, err.status, err.code, err.reason || err.message);
      ctx.status = err.status;
      ctx.type = "application/xml";
      ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${xmlEscape(err.code)}</Code><Message>${xmlEscape(err.message)}</Message></Error>`;
      return;
    }
    try {
      await next();
    } catch (err) {
      const status = err.status || 500;
      if (status >= 400) logRefusal(ctx, status, err.code || "InternalError", err.message);
      throw err;
    }
    if (echo && ctx.status < 300) ctx.set(echo[0], echo[1]);
  } finally {
    // s3rver has read the body by now, or never will (e.g. NoSuchBucket): the spool file's fd closes.
    if (substituted) substituted.destroy();
    if (spool) fs.rm(spool, { force: true }, () => undefined);
  }
}

let key;
let cert;
try {
  key = fs.readFileSync(KEY_FILE);
  cert = fs.readFileSync(CERT_FILE);
} catch (e) {
  fail(`cannot read the TLS certificate/key (${CERT_FILE}, ${KEY_FILE}): ${e.message}`);
}
fs.mkdirSync(SPOOL_DIR, { recursive: true });

const server = new S3rver({
  address: ADDRESS,
  port: PORT,
  directory: DIRECTORY,
  key,
  cert,
  configureBuckets: [{ name: BUCKET }],
  vhostBuckets: false,
  silent: env.S3_VERBOSE !== "1",
});
// Before s3rver's own middleware (Koa composes the array when the server starts listening).
server.middleware.unshift(standin);

// s3rver's FilesystemStore.deleteObject removes the object's files, then the directories its key
// left empty (readdirSync + rmdir). DeleteObjects runs those for all its keys at once
// (Promise.all), so two keys under one prefix race to remove the same directory and one gets ENOENT:
// a 500 for the whole batch (pgBackRest's repo-rm/expire meet it). Deletes run one at a time here, and
// a directory that went (ENOENT) or filled again (ENOTEMPTY, a concurrent upload) is left as it is:
// S3 has no directories, and an empty one lists as nothing.
const deleteObject = server.store.deleteObject.bind(server.store);
let deletes = Promise.resolve();
server.store.deleteObject = (bucket, objectKey) => {
  const run = deletes.then(() =>
    deleteObject(bucket, objectKey).catch((e) => {
      if (e.code !== "ENOENT" && e.code !== "ENOTEMPTY") throw e;
    }),
  );
  deletes = run.catch(() => undefined);
  return run;
};

let stopping = false;
function stop(signal) {
  if (stopping) return;
  stopping = true;
  process.stdout.write(`s3 stand-in stopping (${signal})\n`);
  setTimeout(() => process.exit(0), 10000).unref();
  if (!server.httpServer) process.exit(0);
  server.httpServer.close(() => process.exit(0));
  server.httpServer.closeIdleConnections();
}
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));

server.run().then(
  () => {
    server.httpServer.keepAliveTimeout = 20000;
    process.stdout.write(
      `s3 stand-in ready on https://${ADDRESS}:${PORT}, bucket ${BUCKET}, ${secrets.size} identities, object lock ${OBJECT_LOCK ? "on" : "off"}, node ${process.version}\n`,
    );
  },
  (e) => fail(`start failed: ${e.stack}`),
);
