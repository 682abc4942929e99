/**
 * Where Terraform keeps an environment's state. The state holds every secret pgharbor generates
 * (passwords, the cipher passphrase, IAM keys, TLS keys) in clear: it must be encrypted with a key
 * of its own and must never share a bucket with the WAL archive, whose principals, lifecycle and
 * force_destroy were designed for backups, not for state.
 */
import { Rule } from "../constructs/errors";
import { AWS_REGION } from "../constructs/s3-wal-archive-bucket";
import { acknowledge } from "../constructs/validation/acknowledgements";
import { bucketNameProblem } from "../constructs/wal-archive";
import { EnvironmentConfig } from "./schema";

const KMS_KEY_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key\/[0-9a-f-]{36}|alias\/[A-Za-z0-9/_-]+)$/;

/** The archive bucket of an environment, when it is a real (AWS) bucket. */
export const archiveBucket = (env: EnvironmentConfig) => (env.archive?.kind === "aws-s3" ? env.archive.bucketName : undefined);

/** Rules for one environment's state backend (field names relative to `state`). */
export function stateRules(env: EnvironmentConfig): Rule[] {
  const s = env.state;
  if (s?.kind !== "s3") return [];
  const nameProblem = bucketNameProblem(s.bucket);
  const acks = acknowledge(s.acknowledgeRisk, s.kmsKeyId === undefined ? ["kmsKeyId"] : []);
  return [
    { when: nameProblem !== undefined, field: "bucket", value: s.bucket, problem: `is not a valid S3 bucket name: it ${nameProblem}`, fix: 'name the state bucket, e.g. "acme-tfstate"' },
    { when: !s.key || s.key.startsWith("/") || /[\s\u0000-\u001f]/.test(s.key) || s.key.length > 1024, field: "key", value: s.key, problem: "is not an S3 object key for the state (non-empty, no leading slash, no whitespace)", fix: `use e.g. "${env.name}/terraform.tfstate"` },
    { when: !AWS_REGION.test(s.region), field: "region", value: s.region, problem: "is not an AWS region name", fix: 'use a region such as "eu-west-1"' },
    {
      when: s.kmsKeyId === undefined && !acks.acknowledged.has("kmsKeyId"),
      field: "kmsKeyId",
      value: undefined,
      problem: "is unset: the state, which holds every password, key and the backup cipher passphrase in clear, would be encrypted only with the bucket's default key, readable by anyone who may read the bucket",
      fix: 'give the ARN of a KMS key only the deployers may use, e.g. "arn:aws:kms:eu-west-1:111122223333:alias/acme-tfstate", or acknowledge it with acknowledgeRisk: { kmsKeyId: "<why, in a sentence>" }',
    },
    { when: s.kmsKeyId !== undefined && !KMS_KEY_ARN.test(s.kmsKeyId), field: "kmsKeyId", value: s.kmsKeyId, problem: "is not a KMS key or alias ARN", fix: 'use "arn:aws:kms:<region>:<account>:key/<id>" or "…:alias/<name>"' },
    {
      when: s.bucket === archiveBucket(env),
      field: "bucket",
      value: s.bucket,
      problem: "is the WAL archive's bucket: the archive's principals, lifecycle and destroy settings would reach the state, which holds every secret of the environment",
      fix: "keep Terraform state in a bucket of its own",
    },
    ...acks.rules,
  ];
}

/** Rules across environments: no two share a state object, and no state sits in any archive bucket. */
export function crossEnvironmentStateRules(envs: readonly EnvironmentConfig[]): Array<Rule & { env: string }> {
  const out: Array<Rule & { env: string }> = [];
  envs.forEach((e, i) => {
    if (e.state?.kind === "s3") {
      const s = e.state;
      const twin = envs.slice(0, i).find((o) => o.state?.kind === "s3" && o.state.bucket === s.bucket && o.state.key === s.key);
      out.push({ env: e.name, when: twin !== undefined, field: "state.key", value: s.key, problem: `is ${twin?.name}'s state too (same bucket and key): one apply would overwrite the other environment's state`, fix: `give each environment its own key, e.g. "${e.name}/terraform.tfstate"` });
      const archiveOf = envs.find((o) => o !== e && archiveBucket(o) === s.bucket);
      out.push({ env: e.name, when: archiveOf !== undefined, field: "state.bucket", value: s.bucket, problem: `is environment ${archiveOf?.name}'s WAL archive bucket: its principals, lifecycle and destroy settings would reach this state, which holds every secret`, fix: "keep Terraform state in a bucket of its own" });
    }
    const archive = archiveBucket(e);
    const sharer = envs.slice(0, i).find((o) => archive !== undefined && archiveBucket(o) === archive);
    out.push({ env: e.name, when: sharer !== undefined, field: "archive.bucketName", value: archive, problem: `is ${sharer?.name}'s archive bucket too: both stacks would create (and destroy) the same bucket`, fix: "give each environment its own archive bucket" });
  });
  return out;
}
