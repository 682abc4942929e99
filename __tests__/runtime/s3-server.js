// Stand-in for the dev stack's S3 server container (SeaweedFS there): s3rver over HTTPS with the
// container's own env (S3_<WHO>_ACCESS_KEY/S3_<WHO>_SECRET_KEY, S3_BUCKET, S3_PORT) and certificate
// files; path-style requests. s3rver 3.7 accepts any SigV4 signature from a known access key, so the
// middleware below verifies every header-signed request's signature against the identity's secret
// key (403 SignatureDoesNotMatch otherwise). s3rver does not enforce the per-identity permissions
// SeaweedFS and IAM do.
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const S3rver = require("s3rver");
const { DUMMY_ACCOUNT } = require("s3rver/lib/models/account");

const env = process.env;
const secrets = new Map();
for (const name of Object.keys(env)) {
  const m = /^S3_([A-Z]+)_ACCESS_KEY$/.exec(name);
  if (m) {
    DUMMY_ACCOUNT.createKeyPair(env[name], env[`S3_${m[1]}_SECRET_KEY`]);
    secrets.set(env[name], env[`S3_${m[1]}_SECRET_KEY`]);
  }
}

const rfc3986 = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const hmac = (key, text) => crypto.createHmac("sha256", key).update(text).digest();

/** AWS Signature Version 4 (header form), recomputed from the request as received. */
function sigv4Problem(req) {
  const auth = req.headers.authorization;
  if (!auth || !auth.startsWith("AWS4-HMAC-SHA256 ")) return undefined;
  const m = /Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})/.exec(auth);
  if (!m) return "malformed Authorization header";
  const [, key, date, region, signedHeaders, signature] = m;
  const secret = secrets.get(key);
  if (secret === undefined) return `unknown access key ${key}`;
  const [path, query = ""] = req.url.split("?");
  const params = query ? query.split("&").map((p) => p.split("=").map((x) => rfc3986(decodeURIComponent((x ?? "").replace(/\+/g, " "))))) : [];
  params.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : (a[1] ?? "") < (b[1] ?? "") ? -1 : 1));
  const names = signedHeaders.split(";");
  const canonical = [
    req.method,
    path,
    params.map(([k, v]) => `${k}=${v ?? ""}`).join("&"),
    names.map((h) => `${h}:${String(req.headers[h] ?? "").trim().replace(/ +/g, " ")}\n`).join(""),
    signedHeaders,
    req.headers["x-amz-content-sha256"] ?? "UNSIGNED-PAYLOAD",
  ].join("\n");
  const toSign = ["AWS4-HMAC-SHA256", req.headers["x-amz-date"], `${date}/${region}/s3/aws4_request`, crypto.createHash("sha256").update(canonical).digest("hex")].join("\n");
  let k = hmac(`AWS4${secret}`, date);
  for (const part of [region, "s3", "aws4_request"]) k = hmac(k, part);
  return hmac(k, toSign).toString("hex") === signature ? undefined : "signature does not match";
}
const server = new S3rver({
  address: env.S3_ADDRESS,
  port: Number(env.S3_PORT),
  directory: env.S3_DIRECTORY,
  key: fs.readFileSync(env.S3_KEY_FILE),
  cert: fs.readFileSync(env.S3_CERT_FILE),
  configureBuckets: [{ name: env.S3_BUCKET }],
  vhostBuckets: false,
  silent: true,
});
// Before s3rver's own middleware (Koa composes the array when the server starts listening).
server.middleware.unshift(async (ctx, next) => {
  const problem = sigv4Problem(ctx.req);
  if (problem) {
    process.stderr.write(`s3 refused ${ctx.method} ${ctx.url}: ${problem}\n`);
    ctx.status = 403;
    ctx.type = "application/xml";
    ctx.body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code><Message>${problem}</Message></Error>`;
    return;
  }
  await next();
});
server.run().then(
  () => process.stdout.write(`s3 ready on ${env.S3_ADDRESS}:${env.S3_PORT}\n`),
  (e) => {
    process.stderr.write(`s3 failed: ${e.stack}\n`);
    process.exit(1);
  },
);
const stop = () => server.close().finally(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
