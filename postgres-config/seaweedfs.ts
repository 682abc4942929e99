/** The dev S3 server's start script (SeaweedFS): credentials and bucket from the environment, HTTPS only. */
export const SEAWEEDFS_PATHS = {
  entrypoint: "/etc/pgharbor/s3-entrypoint.sh",
  certFile: "/etc/pgharbor/tls/s3.crt",
  keyFile: "/etc/pgharbor/tls/s3.key",
  dataDir: "/data",
  configFile: "/run/pgharbor-s3.json",
} as const;

export function renderSeaweedfsEntrypoint(): string {
  const P = SEAWEEDFS_PATHS;
  return `#!/bin/sh
# Rendered by pgharbor. Starts SeaweedFS with three identities (from the environment) and makes sure the bucket exists.
# SeaweedFS's "Write" action includes deletes: the writer/expirer split is enforced on AWS by IAM;
# here the reader at least cannot write.
set -eu
: "\${S3_WRITER_ACCESS_KEY:?}" "\${S3_WRITER_SECRET_KEY:?}" "\${S3_READER_ACCESS_KEY:?}" "\${S3_READER_SECRET_KEY:?}"
: "\${S3_EXPIRER_ACCESS_KEY:?}" "\${S3_EXPIRER_SECRET_KEY:?}" "\${S3_BUCKET:?}" "\${S3_PORT:=8333}"
umask 077
cat > ${P.configFile} <<JSON
{"identities":[
 {"name":"writer","credentials":[{"accessKey":"$S3_WRITER_ACCESS_KEY","secretKey":"$S3_WRITER_SECRET_KEY"}],"actions":["Read:$S3_BUCKET","List:$S3_BUCKET","Write:$S3_BUCKET"]},
 {"name":"reader","credentials":[{"accessKey":"$S3_READER_ACCESS_KEY","secretKey":"$S3_READER_SECRET_KEY"}],"actions":["Read:$S3_BUCKET","List:$S3_BUCKET"]},
 {"name":"expirer","credentials":[{"accessKey":"$S3_EXPIRER_ACCESS_KEY","secretKey":"$S3_EXPIRER_SECRET_KEY"}],"actions":["Read:$S3_BUCKET","List:$S3_BUCKET","Write:$S3_BUCKET"]}
]}
JSON
weed server -dir=${P.dataDir} -ip.bind=0.0.0.0 -volume.max=0 -s3 -s3.port="$S3_PORT" \\
  -s3.config=${P.configFile} -s3.cert.file=${P.certFile} -s3.key.file=${P.keyFile} &
pid=$!
trap 'kill -TERM "$pid"; wait "$pid"' TERM INT
i=0
until echo "s3.bucket.list" | weed shell >/dev/null 2>&1; do
  i=$((i + 1)); [ "$i" -lt 60 ] || { echo "SeaweedFS did not come up" >&2; exit 1; }
  sleep 1
done
echo "s3.bucket.list" | weed shell 2>/dev/null | grep -qw "$S3_BUCKET" || echo "s3.bucket.create -name $S3_BUCKET" | weed shell
wait "$pid"
`;
}
