import { Construct } from "constructs";
import { ITerraformDependable } from "cdktf";
import { ContainerUpload } from "@cdktf/provider-docker/lib/container";
import { AwsProvider } from "@cdktf/provider-aws/lib/provider";
import { S3Bucket } from "@cdktf/provider-aws/lib/s3-bucket";
import { S3BucketVersioningA } from "@cdktf/provider-aws/lib/s3-bucket-versioning";
import { S3BucketServerSideEncryptionConfigurationA } from "@cdktf/provider-aws/lib/s3-bucket-server-side-encryption-configuration";
import { S3BucketPublicAccessBlock } from "@cdktf/provider-aws/lib/s3-bucket-public-access-block";
import { S3BucketOwnershipControls } from "@cdktf/provider-aws/lib/s3-bucket-ownership-controls";
import { S3BucketPolicy } from "@cdktf/provider-aws/lib/s3-bucket-policy";
import { S3BucketLifecycleConfiguration } from "@cdktf/provider-aws/lib/s3-bucket-lifecycle-configuration";
import { S3BucketObjectLockConfigurationA } from "@cdktf/provider-aws/lib/s3-bucket-object-lock-configuration";
import { KmsKey } from "@cdktf/provider-aws/lib/kms-key";
import { KmsAlias } from "@cdktf/provider-aws/lib/kms-alias";
import { IamUser } from "@cdktf/provider-aws/lib/iam-user";
import { IamUserPolicy } from "@cdktf/provider-aws/lib/iam-user-policy";
import { IamAccessKey } from "@cdktf/provider-aws/lib/iam-access-key";
import { DataAwsIamPolicyDocument } from "@cdktf/provider-aws/lib/data-aws-iam-policy-document";
import { Password } from "@cdktf/provider-random/lib/password";
import { PGBACKREST_SECRET_ENV, RepoSettings } from "../postgres-config/pgbackrest-conf";
import { check, isInt } from "./errors";
import { ArchiveAccess, EXPIRER_ENV, IWalArchive, bucketNameProblem, repoPath } from "./wal-archive";
import { generatedSecret } from "./secrets";

export interface S3WalArchiveBucketProps {
  readonly environment: string;
  /** The AWS provider (region) the bucket lives in. */
  readonly provider: AwsProvider;
  /** Globally unique bucket name. */
  readonly bucketName: string;
  readonly region: string;
  /**
   * Days a deleted or overwritten object stays recoverable as a noncurrent version after pgBackRest's
   * expire removes it. pgBackRest owns expiry of current objects; S3 lifecycle never deletes them.
   * @default 30
   */
  readonly noncurrentVersionRetentionDays?: number;
  /**
   * Refuse `terraform destroy` of the bucket, key and cipher passphrase, and never empty the bucket.
   * @default false
   */
  readonly protect?: boolean;
  /**
   * S3 Object Lock default retention for new objects (WORM). Its days must not exceed the backup
   * retention (checked by the stack), or expired backups would stay undeletable.
   * @default - no Object Lock
   */
  readonly objectLock?: { readonly mode: "GOVERNANCE" | "COMPLIANCE"; readonly days: number };
}

export const AWS_REGION = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$/;

/**
 * WAL archive on AWS S3: versioned, SSE-KMS with its own key (rotation on), all four public-access
 * blocks, bucket-owner-enforced ownership, a bucket policy refusing non-TLS requests, lifecycle that
 * aborts stale multipart uploads and expires noncurrent versions, and an IAM user for the database and
 * backup containers limited to this bucket and key.
 */
export class S3WalArchiveBucket extends Construct implements IWalArchive {
  public readonly kind = "aws-s3" as const;
  public readonly bucket: S3Bucket;
  public readonly key: KmsKey;
  public readonly cipherPass: Password;
  public readonly keys: Record<"write" | "read" | "expire", IamAccessKey>;
  public readonly dependables: ITerraformDependable[];
  private readonly props: S3WalArchiveBucketProps;

  constructor(scope: Construct, id: string, props: S3WalArchiveBucketProps) {
    super(scope, id);
    const retention = props.noncurrentVersionRetentionDays ?? 30;
    const nameProblem = bucketNameProblem(props.bucketName);
    check(`${props.environment}/archive`, [
      { when: nameProblem !== undefined, field: "bucketName", value: props.bucketName, problem: `is not a valid S3 bucket name: it ${nameProblem}`, fix: 'choose a name like "acme-pgharbor-prod-wal"' },
      { when: !AWS_REGION.test(props.region), field: "region", value: props.region, problem: "is not an AWS region name", fix: 'use a region such as "eu-west-1"' },
      { when: !isInt(retention) || retention < 1, field: "noncurrentVersionRetentionDays", value: retention, problem: "must be a whole number of days ≥ 1", fix: "keep deleted objects recoverable for at least a day, e.g. 30" },
      { when: props.objectLock !== undefined && !["GOVERNANCE", "COMPLIANCE"].includes(props.objectLock.mode), field: "objectLock.mode", value: props.objectLock?.mode, problem: 'must be "GOVERNANCE" or "COMPLIANCE"', fix: 'use "GOVERNANCE" (admins may lift it) or "COMPLIANCE" (nobody may)' },
      { when: props.objectLock !== undefined && (!isInt(props.objectLock.days) || props.objectLock.days < 1), field: "objectLock.days", value: props.objectLock?.days, problem: "must be a whole number of days ≥ 1", fix: "use a number of days no longer than the backup retention" },
    ]);
    this.props = props;
    const protect = props.protect ?? false;
    const lifecycle = protect ? { preventDestroy: true } : undefined;
    const provider = props.provider;

    this.key = new KmsKey(this, "key", {
      provider,
      description: `pgharbor ${props.environment} WAL archive`,
      enableKeyRotation: true,
      deletionWindowInDays: 30,
      lifecycle,
    });
    new KmsAlias(this, "alias", { provider, name: `alias/pgharbor-${props.environment}-wal`, targetKeyId: this.key.keyId });

    this.bucket = new S3Bucket(this, "bucket", { provider, bucket: props.bucketName, forceDestroy: !protect, lifecycle, objectLockEnabled: props.objectLock ? true : undefined });
    const bucket = this.bucket.id;
    if (props.objectLock) {
      new S3BucketObjectLockConfigurationA(this, "object-lock", {
        provider,
        bucket,
        rule: { defaultRetention: { mode: props.objectLock.mode, days: props.objectLock.days } },
      });
    }
    new S3BucketOwnershipControls(this, "ownership", { provider, bucket, rule: { objectOwnership: "BucketOwnerEnforced" } });
    const pab = new S3BucketPublicAccessBlock(this, "public-access", {
      provider,
      bucket,
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    });
    const versioning = new S3BucketVersioningA(this, "versioning", { provider, bucket, versioningConfiguration: { status: "Enabled" } });
    new S3BucketServerSideEncryptionConfigurationA(this, "encryption", {
      provider,
      bucket,
      rule: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: this.key.arn }, bucketKeyEnabled: true }],
    });
    new S3BucketLifecycleConfiguration(this, "lifecycle", {
      provider,
      bucket,
      dependsOn: [versioning],
      rule: [
        { id: "abort-incomplete-multipart", status: "Enabled", filter: [{ prefix: "" }], abortIncompleteMultipartUpload: [{ daysAfterInitiation: 7 }] },
        { id: "expire-noncurrent-versions", status: "Enabled", filter: [{ prefix: "" }], noncurrentVersionExpiration: [{ noncurrentDays: retention }] },
      ],
    });
    const tlsOnly = new DataAwsIamPolicyDocument(this, "tls-only", {
      provider,
      statement: [
        {
          sid: "DenyInsecureTransport",
          effect: "Deny",
          principals: [{ type: "*", identifiers: ["*"] }],
          actions: ["s3:*"],
          resources: [this.bucket.arn, `${this.bucket.arn}/*`],
          condition: [{ test: "Bool", variable: "aws:SecureTransport", values: ["false"] }],
        },
        {
          sid: "DenyUnencryptedPuts",
          effect: "Deny",
          principals: [{ type: "*", identifiers: ["*"] }],
          actions: ["s3:PutObject"],
          resources: [`${this.bucket.arn}/*`],
          condition: [{ test: "StringNotEquals", variable: "s3:x-amz-server-side-encryption", values: ["aws:kms"] }],
        },
        {
          sid: "DenyWrongKmsKey",
          effect: "Deny",
          principals: [{ type: "*", identifiers: ["*"] }],
          actions: ["s3:PutObject"],
          resources: [`${this.bucket.arn}/*`],
          condition: [{ test: "StringNotEquals", variable: "s3:x-amz-server-side-encryption-aws-kms-key-id", values: [this.key.arn] }],
        },
      ],
    });
    new S3BucketPolicy(this, "policy", { provider, bucket, policy: tlsOnly.json, dependsOn: [pab] });

    const prefix = repoPath(props.environment);
    const principal = (id: string, actions: string[]) => {
      const user = new IamUser(this, id, { provider, name: `pgharbor-${props.environment}-${id}`, path: "/pgharbor/" });
      const doc = new DataAwsIamPolicyDocument(this, `${id}-access`, {
        provider,
        statement: [
          { sid: "ListRepository", effect: "Allow", actions: ["s3:ListBucket"], resources: [this.bucket.arn], condition: [{ test: "StringLike", variable: "s3:prefix", values: [`${prefix.slice(1)}/*`, prefix.slice(1)] }] },
          { sid: "Objects", effect: "Allow", actions, resources: [`${this.bucket.arn}${prefix}/*`] },
          { sid: "UseArchiveKey", effect: "Allow", actions: ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"], resources: [this.key.arn] },
        ],
      });
      new IamUserPolicy(this, `${id}-policy`, { provider, user: user.name, policy: doc.json });
      return new IamAccessKey(this, `${id}-key`, { provider, user: user.name });
    };
    // Three principals: writing never deletes, expiry alone deletes, reading only reads.
    this.keys = {
      // AbortMultipartUpload: a failed logical-dump upload cleans up its parts; it cannot delete objects.
      write: principal("archiver", ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"]),
      read: principal("reader", ["s3:GetObject"]),
      expire: principal("expirer", ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]),
    };
    this.cipherPass = generatedSecret(this, "cipher-pass", 64, protect);
    this.dependables = [this.bucket, versioning, pab];
  }

  public repoFor(): RepoSettings {
    return {
      bucket: this.props.bucketName,
      endpoint: `s3.${this.props.region}.amazonaws.com`,
      port: 443,
      region: this.props.region,
      uriStyle: "host",
      path: repoPath(this.props.environment),
      verifyTls: true,
      kmsKeyId: this.key.arn,
    };
  }

  public containerEnv(access: ArchiveAccess): string[] {
    return [
      `${PGBACKREST_SECRET_ENV.cipherPass}=${this.cipherPass.result}`,
      `${PGBACKREST_SECRET_ENV.s3Key}=${this.keys[access].id}`,
      `${PGBACKREST_SECRET_ENV.s3KeySecret}=${this.keys[access].secret}`,
    ];
  }

  public expirerEnv(): string[] {
    return [`${EXPIRER_ENV.key}=${this.keys.expire.id}`, `${EXPIRER_ENV.secret}=${this.keys.expire.secret}`];
  }

  public containerUploads(): ContainerUpload[] {
    return [];
  }
}
