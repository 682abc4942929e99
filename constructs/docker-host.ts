import { AssetType, TerraformAsset } from "cdktf";
import { Construct } from "constructs";
import { DockerProvider } from "@cdktf/provider-docker/lib/provider";
import { Network } from "@cdktf/provider-docker/lib/network";
import { Image } from "@cdktf/provider-docker/lib/image";
import { Container } from "@cdktf/provider-docker/lib/container";
import { contextHash, imageContextDir, ImageName } from "./image-context";
import { check } from "./errors";

export interface DockerHostProps {
  /** Environment name, used in resource names. */
  readonly environment: string;
  /**
   * Docker daemon address: `unix:///var/run/docker.sock` or `ssh://user@host[:port]`.
   * @default "unix:///var/run/docker.sock"
   */
  readonly dockerHost?: string;
  /**
   * Address other hosts of this environment reach this host at (its private IP or DNS name).
   * Required only when a container on another host must reach one on this host.
   * @default - none: cross-host consumers are refused at synth
   */
  readonly privateAddress?: string;
}

/**
 * One Docker daemon of an environment: its provider (aliased by host name), the environment's private
 * network on it, and the images built on it. Containers on the same host reach each other by name on
 * that network; containers on other hosts through `privateAddress` and a published port.
 */
export class DockerHost extends Construct {
  public readonly name: string;
  public readonly provider: DockerProvider;
  public readonly network: Network;
  public readonly privateAddress?: string;
  public readonly environment: string;
  private readonly images = new Map<string, Image>();

  constructor(scope: Construct, id: string, props: DockerHostProps) {
    super(scope, id);
    const dockerHost = props.dockerHost ?? "unix:///var/run/docker.sock";
    check(`${props.environment}/hosts.${id}`, [
      {
        when: !/^(unix:\/\/\/.+|ssh:\/\/[^\s/]+|tcp:\/\/[^\s/]+)$/.test(dockerHost),
        field: "dockerHost",
        value: dockerHost,
        problem: "is not a Docker daemon address",
        fix: 'use "unix:///var/run/docker.sock" for the local daemon or "ssh://user@host" for a remote one',
      },
      {
        when: props.privateAddress !== undefined && !/^[A-Za-z0-9.-]+$/.test(props.privateAddress),
        field: "privateAddress",
        value: props.privateAddress,
        problem: "is not an IP address or DNS name",
        fix: "give the address the other hosts reach this one at, e.g. 10.0.1.12",
      },
    ]);
    this.name = id;
    this.environment = props.environment;
    this.privateAddress = props.privateAddress;
    this.provider = new DockerProvider(this, "provider", { alias: id, host: dockerHost });
    this.network = new Network(this, "network", {
      provider: this.provider,
      name: `pgharbor-${props.environment}`,
      driver: "bridge",
      attachable: false,
    });
  }

  /** pgharbor's PostgreSQL image (images/postgres) for `major`: primary, replicas, backup container. */
  public postgresImage(major: number): Image {
    return this.image(`PostgresImage${major}`, "postgres", String(major), { PG_MAJOR: String(major) });
  }

  /** pgharbor's PgBouncer image (images/pgbouncer). */
  public pgbouncerImage(): Image {
    return this.image("PgbouncerImage", "pgbouncer", "trixie");
  }

  /** pgharbor's monitoring image (images/monitoring): exporters, Prometheus, the RPO probe. */
  public monitoringImage(): Image {
    return this.image("MonitoringImage", "monitoring", "trixie");
  }

  /** The dev S3 server (images/seaweedfs): `base` (a SeaweedFS image) plus pgharbor's start script. */
  public seaweedfsImage(base: string): Image {
    return this.image("SeaweedfsImage", "seaweedfs", "dev", { SEAWEEDFS_IMAGE: base });
  }

  /**
   * An image built on this host from its folder under images/, copied into the stack as an asset.
   * The tag is content-addressed (programs, Dockerfile, build arguments), so a program change builds a
   * new image and replaces the containers running it; an unchanged one is never rebuilt.
   */
  private image(id: string, name: ImageName, tagPrefix: string, buildArgs: Record<string, string> = {}): Image {
    const existing = this.images.get(id);
    if (existing) return existing;
    const dir = imageContextDir(name);
    const hash = contextHash(dir, buildArgs);
    const scope = new Construct(this, id);
    const context = new TerraformAsset(scope, "context", { path: dir, type: AssetType.DIRECTORY });
    const image = new Image(scope, "image", {
      provider: this.provider,
      name: `pgharbor/${name}:${tagPrefix}-${hash}`,
      keepLocally: true,
      triggers: { context_sha256: hash },
      // The docker provider reads `dockerfile` relative to Terraform's working directory, not the context.
      buildAttribute: { context: context.path, dockerfile: `${context.path}/Dockerfile`, buildArgs: Object.keys(buildArgs).length ? buildArgs : undefined },
    });
    this.images.set(id, image);
    return image;
  }

  private readonly published = new WeakSet<Container>();

  /**
   * How a container on `from` reaches `container` (on this host): by name on the same host; otherwise
   * through this host's private address, publishing the port there the first time it is needed.
   */
  public reach(from: DockerHost, container: Container, containerName: string, publishPort: number, internalPort: number, what: string): { host: string; port: number } {
    const ep = this.endpointFrom(from, containerName, publishPort, internalPort, what);
    if (from !== this && !this.published.has(container)) {
      this.published.add(container);
      container.addOverride("ports", [{ internal: internalPort, external: publishPort, ip: this.privateAddress, protocol: "tcp" }]);
    }
    return ep;
  }

  /** How a container on `from` reaches port `port` of container `containerName` on this host. */
  public endpointFrom(from: DockerHost, containerName: string, publishedPort: number, internalPort: number, what: string): { host: string; port: number } {
    if (from === this) return { host: containerName, port: internalPort };
    if (!this.privateAddress) {
      check(`${this.environment}/hosts.${this.name}`, [
        {
          when: true,
          field: "privateAddress",
          value: undefined,
          problem: `${what} on host "${from.name}" must reach ${containerName} on host "${this.name}", which has no private address`,
          fix: `set hosts.${this.name}.privateAddress to the address host "${from.name}" reaches it at`,
        },
      ]);
    }
    return { host: this.privateAddress!, port: publishedPort };
  }
}
