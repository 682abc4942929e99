import { Construct } from "constructs";
import { ITerraformDependable } from "cdktf";
import { Container, ContainerUpload } from "@cdktf/provider-docker/lib/container";
import { Volume } from "@cdktf/provider-docker/lib/volume";
import { Password } from "@cdktf/provider-random/lib/password";
import { CONTAINER_PATHS } from "../postgres-config/paths";
import { PGBACKREST_SECRET_ENV, RepoSettings } from "../postgres-config/pgbackrest-conf";
import { SEAWEEDFS_PATHS } from "../postgres-config/seaweedfs";
import { DockerHost } from "./docker-host";
import { check } from "./errors";
import { ArchiveAccess, EXPIRER_ENV, IWalArchive, bucketNameProblem, repoPath } from "./wal-archive";
import { CertificateAuthority } from "./certificate-authority";
import { generatedSecret } from "./secrets";
import { subjectAltNames } from "./validation/addresses";

export interface LocalS3ServerProps {
  readonly environment: string;
  readonly host: DockerHost;
  /**
   * CA that signs the server's certificate; clients verify with it.
   * @default - a new CA for this server
   */
  readonly ca?: CertificateAuthority;
  /** @default "pgharbor-<environment>-wal" */
  readonly bucketName?: string;
  /**
   * SeaweedFS image, pinned: the base of the image pgharbor builds (images/seaweedfs adds its start script).
   * @default "chrislusf/seaweedfs:3.80"
   */
  readonly image?: string;
  /**
   * Memory limit of the server container.
   * @default 512
   */
  readonly memoryMiB?: number;
  /**
   * Refuse `terraform destroy` of the server's data volume (the archive) and the cipher passphrase.
   * @default false
   */
  readonly protect?: boolean;
}

/** A pinned image reference: a tag other than latest, or a digest. */
export function imageProblem(image: string): string | undefined {
  if (!/^[a-z0-9]+([._\/:-][a-z0-9]+)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$/.test(image)) return "is not an image reference";
  const tag = /:([A-Za-z0-9_][A-Za-z0-9_.-]*)$/.exec(image.replace(/@sha256:[0-9a-f]{64}$/, ""))?.[1];
  if (!/@sha256:/.test(image) && (tag === undefined || tag === "latest")) return "is not pinned: without a fixed tag or digest every pull may bring another version";
  return undefined;
}

export const SEAWEEDFS_DEFAULT_IMAGE = "chrislusf/seaweedfs:3.80";
const S3_PORT = 8333;

/**
 * A local S3-compatible server for dev: SeaweedFS (Apache-2.0, actively maintained, one binary
 * serving S3 with SigV4, path-style addressing, TLS and static credentials). It serves HTTPS with a
 * certificate from the environment's CA, and pgBackRest verifies it with that CA. Three identities:
 * writer (put/get/list), reader (get/list) and expirer (may delete).
 */
export class LocalS3Server extends Construct implements IWalArchive {
  public readonly kind = "local-s3" as const;
  public readonly container: Container;
  public readonly cipherPass: Password;
  public readonly caCertPem: string;
  public readonly dependables: ITerraformDependable[];
  private readonly credentials: Record<"write" | "read" | "expire", [Password, Password]>;
  private readonly bucketName: string;
  private readonly host: DockerHost;
  private readonly environment: string;
  private readonly containerName: string;

  constructor(scope: Construct, id: string, props: LocalS3ServerProps) {
    super(scope, id);
    this.bucketName = props.bucketName ?? `pgharbor-${props.environment}-wal`;
    const problem = bucketNameProblem(this.bucketName);
    const memoryMiB = props.memoryMiB ?? 512;
    const badImage = props.image === undefined ? undefined : imageProblem(props.image);
    check(`${props.environment}/archive`, [
      { when: badImage !== undefined, field: "image", value: props.image, problem: badImage ?? "", fix: `pin a version, e.g. "${SEAWEEDFS_DEFAULT_IMAGE}"` },
      { when: problem !== undefined, field: "bucketName", value: this.bucketName, problem: `is not a valid bucket name: it ${problem}`, fix: 'use lowercase letters, digits and hyphens, e.g. "pgharbor-dev-wal"' },
      { when: !(memoryMiB >= 128), field: "memoryMiB", value: memoryMiB, problem: "is too small for the S3 server", fix: "give it at least 128 MiB" },
    ]);
    this.host = props.host;
    this.environment = props.environment;
    const name = `pgharbor-${props.environment}-s3`;
    this.containerName = name;

    const ca = props.ca ?? new CertificateAuthority(this, "ca", { environment: props.environment });
    const san = subjectAltNames([props.host.privateAddress]);
    const tls = ca.issue("server", [name, "localhost", ...san.dnsNames], san.ipAddresses);
    this.caCertPem = ca.certPem;
    // One identity per kind of access, as on AWS: writers never delete, readers only read.
    this.credentials = {
      write: [generatedSecret(this, "access-key", 20), generatedSecret(this, "secret-key", 40)],
      read: [generatedSecret(this, "reader-access-key", 20), generatedSecret(this, "reader-secret-key", 40)],
      expire: [generatedSecret(this, "expirer-access-key", 20), generatedSecret(this, "expirer-secret-key", 40)],
    };
    this.cipherPass = generatedSecret(this, "cipher-pass", 64, props.protect ?? false);

    const image = props.host.seaweedfsImage(props.image ?? SEAWEEDFS_DEFAULT_IMAGE);
    const data = new Volume(this, "data", { provider: props.host.provider, name: `${name}-data`, lifecycle: props.protect ? { preventDestroy: true } : undefined });
    this.container = new Container(this, "container", {
      provider: props.host.provider,
      name,
      image: image.imageId,
      restart: "unless-stopped",
      stopTimeout: 30,
      destroyGraceSeconds: 30,
      memory: memoryMiB,
      networksAdvanced: [{ name: props.host.network.name, aliases: [name] }],
      volumes: [{ volumeName: data.name, containerPath: SEAWEEDFS_PATHS.dataDir }],
      env: [
        `S3_WRITER_ACCESS_KEY=${this.credentials.write[0].result}`,
        `S3_WRITER_SECRET_KEY=${this.credentials.write[1].result}`,
        `S3_READER_ACCESS_KEY=${this.credentials.read[0].result}`,
        `S3_READER_SECRET_KEY=${this.credentials.read[1].result}`,
        `S3_EXPIRER_ACCESS_KEY=${this.credentials.expire[0].result}`,
        `S3_EXPIRER_SECRET_KEY=${this.credentials.expire[1].result}`,
        `S3_BUCKET=${this.bucketName}`,
        `S3_PORT=${S3_PORT}`,
      ],
      upload: [
        { file: SEAWEEDFS_PATHS.certFile, content: tls.certPem, permissions: "0644" },
        { file: SEAWEEDFS_PATHS.keyFile, content: tls.privateKeyPem, permissions: "0600" },
      ],
      healthcheck: {
        test: ["CMD-SHELL", "echo s3.bucket.list | weed shell 2>/dev/null | grep -qw \"$S3_BUCKET\""],
        interval: "10s",
        timeout: "5s",
        retries: 6,
        startPeriod: "20s",
      },
    });
    this.dependables = [this.container];
  }

  public repoFor(host: DockerHost): RepoSettings {
    // Consumers on another host reach it through this host's private address: published there then.
    const ep = this.host.reach(host, this.container, this.containerName, S3_PORT, S3_PORT, "the WAL archive's client", "the dev S3 server");
    return {
      bucket: this.bucketName,
      endpoint: ep.host,
      port: ep.port,
      region: "us-east-1",
      uriStyle: "path",
      path: repoPath(this.environment),
      verifyTls: true,
      caFile: CONTAINER_PATHS.s3CaFile,
    };
  }

  public containerEnv(access: ArchiveAccess): string[] {
    const [key, secret] = this.credentials[access];
    return [`${PGBACKREST_SECRET_ENV.cipherPass}=${this.cipherPass.result}`, `${PGBACKREST_SECRET_ENV.s3Key}=${key.result}`, `${PGBACKREST_SECRET_ENV.s3KeySecret}=${secret.result}`];
  }

  public expirerEnv(): string[] {
    const [key, secret] = this.credentials.expire;
    return [`${EXPIRER_ENV.key}=${key.result}`, `${EXPIRER_ENV.secret}=${secret.result}`];
  }

  public containerUploads(): ContainerUpload[] {
    return [{ file: CONTAINER_PATHS.s3CaFile, content: this.caCertPem, permissions: "0644" }];
  }
}
