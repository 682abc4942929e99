import { containers, dev, file, synthEnv } from "./helpers";

describe("LocalS3Server", () => {
  const json = synthEnv(dev);
  const s3 = containers(json)["pgharbor-dev-s3"];

  test("SeaweedFS, pinned, not MinIO: pgharbor's image on top of it, its start script a real file", () => {
    const img = Object.values(json.resource!.docker_image).find((i) => String(i.name).startsWith("pgharbor/seaweedfs:"))!;
    expect((img.build as { build_args?: Record<string, string> }).build_args).toEqual({ SEAWEEDFS_IMAGE: "chrislusf/seaweedfs:3.80" });
    expect(s3.entrypoint).toBeUndefined();
    expect(s3.upload!.map((u) => u.file).sort()).toEqual(["/etc/pgharbor/tls/s3.crt", "/etc/pgharbor/tls/s3.key"]);
    expect(JSON.stringify(json)).not.toMatch(/minio/i);
  });
  test("HTTPS with a certificate from the private CA; credentials from references", () => {
    expect(s3.upload!.find((u) => u.file === "/etc/pgharbor/tls/s3.crt")!.content).toMatch(/^\$\{tls_locally_signed_cert\..*\.cert_pem\}$/);
    expect(s3.upload!.find((u) => u.file === "/etc/pgharbor/tls/s3.key")!.content).toMatch(/^\$\{tls_private_key\..*\.private_key_pem\}$/);
    for (const who of ["WRITER", "READER", "EXPIRER"]) {
      expect(s3.env).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`^S3_${who}_ACCESS_KEY=\\$\\{random_password\\.`)), expect.stringMatching(new RegExp(`^S3_${who}_SECRET_KEY=\\$\\{random_password\\.`))]));
    }
    expect(s3.env).toContain("S3_BUCKET=pgharbor-dev-wal");
    const csr = Object.values(json.resource!.tls_cert_request).map((c) => c.dns_names);
    expect(csr).toContainEqual(["pgharbor-dev-s3", "localhost"]);
  });
  test("pgBackRest verifies the server with the CA, path-style", () => {
    const conf = file(containers(json)["pgharbor-dev-primary"], "/etc/pgbackrest/pgbackrest.conf");
    expect(conf).toMatch(/^repo1-s3-endpoint=pgharbor-dev-s3$/m);
    expect(conf).toMatch(/^repo1-storage-port=8333$/m);
    expect(conf).toMatch(/^repo1-s3-uri-style=path$/m);
    expect(conf).toMatch(/^repo1-storage-verify-tls=y$/m);
    expect(conf).toMatch(/^repo1-storage-ca-file=\/etc\/pgharbor\/tls\/s3-ca.crt$/m);
    expect(containers(json)["pgharbor-dev-primary"].upload!.find((u) => u.file === "/etc/pgharbor/tls/s3-ca.crt")!.content).toMatch(/^\$\{tls_self_signed_cert\.ca_cert_[0-9A-F]+\.cert_pem\}$/);
  });
  test("writers, readers and the expire job get their own identity", () => {
    const c = containers(json);
    const key = (name: string, v = "PGBACKREST_REPO1_S3_KEY") => c[name].env!.find((e) => e.startsWith(`${v}=`));
    expect(key("pgharbor-dev-primary")).toMatch(/archive_access-key_/);
    expect(key("pgharbor-dev-replica-1")).toMatch(/archive_reader-access-key_/);
    expect(key("pgharbor-dev-backup")).toMatch(/archive_access-key_/);
    expect(key("pgharbor-dev-backup", "PGHARBOR_EXPIRER_S3_KEY")).toMatch(/archive_expirer-access-key_/);
    expect(key("pgharbor-dev-primary", "PGHARBOR_EXPIRER_S3_KEY")).toBeUndefined();
  });
  test("not published on the host", () => {
    expect(s3.ports).toBeUndefined();
  });
});
