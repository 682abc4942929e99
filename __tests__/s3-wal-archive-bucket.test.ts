import { containers, file, prod, staging, synthEnv } from "./helpers";

describe("S3WalArchiveBucket", () => {
  const json = synthEnv(prod);
  const r = json.resource!;
  const one = (type: string) => {
    const all = Object.values(r[type] ?? {});
    expect(all).toHaveLength(1);
    return all[0] as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  };

  test("bucket protected in prod, never force-emptied", () => {
    const b = one("aws_s3_bucket");
    expect(b.bucket).toBe("example-pgharbor-prod-wal");
    expect(b.force_destroy).toBe(false);
    expect(b.lifecycle).toEqual({ prevent_destroy: true });
  });
  test("SSE-KMS with its own rotating key", () => {
    expect(one("aws_kms_key").enable_key_rotation).toBe(true);
    const sse = one("aws_s3_bucket_server_side_encryption_configuration");
    expect(sse.rule[0].apply_server_side_encryption_by_default).toEqual({ sse_algorithm: "aws:kms", kms_master_key_id: expect.stringMatching(/aws_kms_key\..*\.arn/) });
  });
  test("versioning, all four public access blocks, owner-enforced", () => {
    expect(one("aws_s3_bucket_versioning").versioning_configuration).toEqual({ status: "Enabled" });
    expect(one("aws_s3_bucket_public_access_block")).toEqual(expect.objectContaining({ block_public_acls: true, block_public_policy: true, ignore_public_acls: true, restrict_public_buckets: true }));
    expect(one("aws_s3_bucket_ownership_controls").rule).toEqual({ object_ownership: "BucketOwnerEnforced" });
  });
  test("TLS-only bucket policy", () => {
    const doc = Object.values(json.data!.aws_iam_policy_document).find((d) => (d.statement as Array<{ sid: string }>)[0].sid === "DenyInsecureTransport")!;
    expect((doc.statement as unknown[])[0]).toEqual(expect.objectContaining({ effect: "Deny", condition: [{ test: "Bool", variable: "aws:SecureTransport", values: ["false"] }] }));
    expect(one("aws_s3_bucket_policy").policy).toMatch(/data\.aws_iam_policy_document\..*\.json/);
  });
  test("lifecycle: abort multipart uploads, expire noncurrent versions after the configured days, never current objects", () => {
    const l = one("aws_s3_bucket_lifecycle_configuration");
    expect(l.rule).toEqual([
      expect.objectContaining({ abort_incomplete_multipart_upload: [{ days_after_initiation: 7 }] }),
      expect.objectContaining({ noncurrent_version_expiration: [{ noncurrent_days: 60 }] }),
    ]);
    expect(JSON.stringify(l.rule)).not.toMatch(/"expiration"/);
  });
  test("IAM user limited to this bucket's prefix and key", () => {
    const doc = Object.values(json.data!.aws_iam_policy_document).find((d) => (d.statement as Array<{ sid: string }>)[0].sid === "ListRepository")!;
    const st = doc.statement as Array<{ actions: string[]; resources: string[] }>;
    expect(st.flatMap((s) => s.actions)).not.toContain("s3:*");
    expect(st[1].resources).toEqual([expect.stringMatching(/^\$\{aws_s3_bucket\..*\.arn\}\/pgharbor\/prod\/\*$/)]);
    expect(st[2].resources).toEqual([expect.stringMatching(/^\$\{aws_kms_key\..*\.arn\}$/)]);
  });
  test("pgBackRest reaches it over verified TLS with SSE-KMS and the IAM key from references", () => {
    const c = containers(json)["pgharbor-prod-primary"];
    const conf = file(c, "/etc/pgbackrest/pgbackrest.conf");
    expect(conf).toMatch(/^repo1-s3-endpoint=s3.eu-west-1.amazonaws.com$/m);
    expect(conf).toMatch(/^repo1-s3-uri-style=host$/m);
    expect(conf).toMatch(/^repo1-storage-verify-tls=y$/m);
    expect(conf).toMatch(/^repo1-s3-kms-key-id=\$\{aws_kms_key\..*\.arn\}$/m);
    expect(c.env).toEqual(expect.arrayContaining([expect.stringMatching(/^PGBACKREST_REPO1_S3_KEY=\$\{aws_iam_access_key\..*\.id\}$/), expect.stringMatching(/^PGBACKREST_REPO1_S3_KEY_SECRET=\$\{aws_iam_access_key\..*\.secret\}$/)]));
  });
  test("three principals: archiver writes, reader reads, only the expirer deletes", () => {
    const users = Object.values(r.aws_iam_user).map((u) => u.name).sort();
    expect(users).toEqual(["pgharbor-prod-archiver", "pgharbor-prod-expirer", "pgharbor-prod-reader"]);
    const actionsOf = (id: string) => {
      const doc = Object.entries(json.data!.aws_iam_policy_document).find(([k]) => k.startsWith(`archive_${id}-access_`))![1];
      return (doc.statement as Array<{ sid: string; actions: string[] }>).find((st) => st.sid === "Objects")!.actions;
    };
    expect(actionsOf("archiver")).toEqual(["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"]);
    expect(actionsOf("reader")).toEqual(["s3:GetObject"]);
    expect(actionsOf("expirer")).toEqual(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]);
  });
  test("bucket policy refuses unencrypted and wrong-key uploads", () => {
    const doc = Object.values(json.data!.aws_iam_policy_document).find((d) => (d.statement as Array<{ sid: string }>)[0].sid === "DenyInsecureTransport")!;
    const st = doc.statement as Array<{ sid: string; condition: Array<{ variable: string; values: string[] }> }>;
    expect(st.find((x) => x.sid === "DenyUnencryptedPuts")!.condition).toEqual([expect.objectContaining({ test: "StringNotEquals", variable: "s3:x-amz-server-side-encryption", values: ["aws:kms"] })]);
    expect(st.find((x) => x.sid === "DenyWrongKmsKey")!.condition).toEqual([expect.objectContaining({ variable: "s3:x-amz-server-side-encryption-aws-kms-key-id", values: [expect.stringMatching(/aws_kms_key\..*\.arn/)] })]);
  });
  test("optional Object Lock (prod: governance, 14 days)", () => {
    expect(one("aws_s3_bucket").object_lock_enabled).toBe(true);
    expect(one("aws_s3_bucket_object_lock_configuration").rule).toEqual({ default_retention: { mode: "GOVERNANCE", days: 14 } });
    expect(synthEnv(staging).resource!.aws_s3_bucket_object_lock_configuration).toBeUndefined();
  });
  test("containers get the principal they need", () => {
    const c = containers(json);
    const key = (n: string, v = "PGBACKREST_REPO1_S3_KEY") => c[n].env!.find((e) => e.startsWith(`${v}=`));
    expect(key("pgharbor-prod-primary")).toMatch(/aws_iam_access_key\.archive_archiver-key_/);
    expect(key("pgharbor-prod-replica-1")).toMatch(/aws_iam_access_key\.archive_reader-key_/);
    expect(key("pgharbor-prod-backup")).toMatch(/aws_iam_access_key\.archive_archiver-key_/);
    expect(key("pgharbor-prod-backup", "PGHARBOR_EXPIRER_S3_KEY")).toMatch(/aws_iam_access_key\.archive_expirer-key_/);
    expect(file(c["pgharbor-prod-backup"], "/etc/pgbackrest/pgbackrest.conf")).toMatch(/^expire-auto=n$/m);
  });
  test("cipher passphrase protected from destroy in prod, not in staging", () => {
    const pw = (j: typeof json) => Object.entries(j.resource!.random_password).find(([k]) => k.startsWith("archive_cipher-pass"))![1];
    expect(pw(json).lifecycle).toEqual({ prevent_destroy: true });
    expect(pw(synthEnv(staging)).lifecycle).toBeUndefined();
  });
});
