// Stand-in for the dev stack's S3 server container (SeaweedFS there): s3rver over HTTPS with the
// container's own env (S3_<WHO>_ACCESS_KEY/S3_<WHO>_SECRET_KEY, S3_BUCKET, S3_PORT) and certificate
// files. SigV4 signatures are verified against those credentials (s3rver does not enforce the
// per-identity permissions SeaweedFS and IAM do); path-style requests.
"use strict";
const fs = require("fs");
const S3rver = require("s3rver");
const { DUMMY_ACCOUNT } = require("s3rver/lib/models/account");

const env = process.env;
for (const name of Object.keys(env)) {
  const m = /^S3_([A-Z]+)_ACCESS_KEY$/.exec(name);
  if (m) DUMMY_ACCOUNT.createKeyPair(env[name], env[`S3_${m[1]}_SECRET_KEY`]);
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
