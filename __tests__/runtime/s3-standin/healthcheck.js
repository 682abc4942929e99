// Healthcheck of the S3 stand-in container (`node /standin/app/healthcheck.js`): exits 0 when a TLS
// connection to 127.0.0.1:$S3_PORT succeeds and an unauthenticated GET / gets an HTTP answer (any
// status: the stand-in answers 403 AccessDenied, and does not log it for this user agent), 1 otherwise,
// within 3 seconds. The certificate is not verified: it is issued for the container's name and the
// CA is not in the container; this checks that the server is up, not whom to trust.
"use strict";
const https = require("https");

const port = Number(process.env.S3_PORT || 8333);
const unhealthy = (why) => {
  process.stderr.write(`s3 stand-in unhealthy: ${why}\n`);
  process.exit(1);
};
setTimeout(() => unhealthy(`no HTTP answer from https://127.0.0.1:${port}/ within 3 s`), 3000).unref();

const req = https.request(
  { host: "127.0.0.1", port, path: "/", method: "GET", rejectUnauthorized: false, agent: false, headers: { "user-agent": "pgharbor-s3-standin-healthcheck" } },
  (res) => {
    res.resume();
    process.stdout.write(`s3 stand-in healthy: HTTP ${res.statusCode}\n`);
    process.exit(0);
  },
);
req.on("error", (e) => unhealthy(e.message));
req.end();
