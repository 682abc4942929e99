import { containers, dev, file, synthEnv } from "./helpers";

describe("LocalS3Server", () => {
  const json = synthEnv(dev);
  const s3 = containers(json)["pgharbor-dev-s3"];

  test("SeaweedFS, pinned, not MinIO", () => {
    const img = Object.values(json.resource!.docker_image).map((i) => i.name);
    expect(img).toContain("chrislusf/seaweedfs:3.80");
    expect(JSON.stringify(json)).not.toMatch(/minio/i);
  });
  test("HTTPS with a certificate from the private CA; credentials from references", () => {
    expect(s3.upload!.find((u) => u.file === "/etc/pgharbor/tls/s3.crt")!.content).toMatch(/^\$\{tls_locally_signed_cert\..*\.cert_pem\}$/);
    expect(s3.upload!.find((u) => u.file === "/etc/pgharbor/tls/s3.key")!.content).toMatch(/^\$\{tls_private_key\..*\.private_key_pem\}$/);
    expect(s3.env).toEqual(expect.arrayContaining([expect.stringMatching(/^S3_ACCESS_KEY=\$\{random_password\./), expect.stringMatching(/^S3_SECRET_KEY=\$\{random_password\./), "S3_BUCKET=pgharbor-dev-wal"]));
    const cert = Object.values(json.resource!.tls_cert_request)[0];
    expect(cert.dns_names).toEqual(["pgharbor-dev-s3", "localhost"]);
  });
  test("pgBackRest verifies the server with the CA, path-style", () => {
    const conf = file(containers(json)["pgharbor-dev-primary"], "/etc/pgbackrest/pgbackrest.conf");
    expect(conf).toMatch(/^repo1-s3-endpoint=pgharbor-dev-s3$/m);
    expect(conf).toMatch(/^repo1-storage-port=8333$/m);
    expect(conf).toMatch(/^repo1-s3-uri-style=path$/m);
    expect(conf).toMatch(/^repo1-storage-verify-tls=y$/m);
    expect(conf).toMatch(/^repo1-storage-ca-file=\/etc\/pgharbor\/tls\/s3-ca.crt$/m);
    expect(containers(json)["pgharbor-dev-primary"].upload!.find((u) => u.file === "/etc/pgharbor/tls/s3-ca.crt")!.content).toMatch(/^\$\{tls_self_signed_cert\..*\.cert_pem\}$/);
  });
  test("not published on the host", () => {
    expect(s3.ports).toBeUndefined();
  });
});
