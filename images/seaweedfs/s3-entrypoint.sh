#!/bin/sh
# Starts SeaweedFS's S3 gateway over HTTPS with three identities from the environment and makes sure
# the bucket exists. SeaweedFS's "Write" action includes deletes: the writer/expirer split is
# enforced on AWS by IAM; here the reader at least cannot write.
# Environment: S3_{WRITER,READER,EXPIRER}_{ACCESS,SECRET}_KEY, S3_BUCKET, S3_PORT (default 8333).
set -eu
: "${S3_WRITER_ACCESS_KEY:?}" "${S3_WRITER_SECRET_KEY:?}" "${S3_READER_ACCESS_KEY:?}" "${S3_READER_SECRET_KEY:?}"
: "${S3_EXPIRER_ACCESS_KEY:?}" "${S3_EXPIRER_SECRET_KEY:?}" "${S3_BUCKET:?}" "${S3_PORT:=8333}"
CONFIG=/run/pgharbor-s3.json
CERT=/etc/pgharbor/tls/s3.crt
KEY=/etc/pgharbor/tls/s3.key
umask 077
cat > "$CONFIG" <<JSON
{"identities":[
 {"name":"writer","credentials":[{"accessKey":"$S3_WRITER_ACCESS_KEY","secretKey":"$S3_WRITER_SECRET_KEY"}],"actions":["Read:$S3_BUCKET","List:$S3_BUCKET","Write:$S3_BUCKET"]},
 {"name":"reader","credentials":[{"accessKey":"$S3_READER_ACCESS_KEY","secretKey":"$S3_READER_SECRET_KEY"}],"actions":["Read:$S3_BUCKET","List:$S3_BUCKET"]},
 {"name":"expirer","credentials":[{"accessKey":"$S3_EXPIRER_ACCESS_KEY","secretKey":"$S3_EXPIRER_SECRET_KEY"}],"actions":["Read:$S3_BUCKET","List:$S3_BUCKET","Write:$S3_BUCKET"]}
]}
JSON
weed server -dir=/data -ip.bind=0.0.0.0 -volume.max=0 -s3 -s3.port="$S3_PORT" \
  -s3.config="$CONFIG" -s3.cert.file="$CERT" -s3.key.file="$KEY" &
pid=$!
trap 'kill -TERM "$pid"; wait "$pid"' TERM INT
i=0
until echo "s3.bucket.list" | weed shell >/dev/null 2>&1; do
  i=$((i + 1)); [ "$i" -lt 60 ] || { echo "SeaweedFS did not come up" >&2; exit 1; }
  sleep 1
done
echo "s3.bucket.list" | weed shell 2>/dev/null | grep -qw "$S3_BUCKET" || echo "s3.bucket.create -name $S3_BUCKET" | weed shell
wait "$pid"
