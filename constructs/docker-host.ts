import { AssetType, TerraformAsset } from "cdktf";
import { Construct } from "constructs";
import { DockerProvider } from "@cdktf/provider-docker/lib/provider";
import { Network } from "@cdktf/provider-docker/lib/network";
import { Image } from "@cdktf/provider-docker/lib/image";
import { Container } from "@cdktf/provider-docker/lib/container";
import { contextHash, imageContextDir, ImageName } from "./image-context";
import { check, Rule } from "./errors";
import { dockerHostProblem, isDnsName, isIpAddress, isLoopback, isWildcard, tcpAddressProblem } from "./validation/addresses";
import { acknowledge, RiskAcknowledgements } from "./validation/acknowledgements";

export interface DockerHostProps {
  /** Environment name, used in resource names. */
  readonly environment: string;
  /**
   * Docker daemon address: `unix:///var/run/docker.sock` or `ssh://user@host[:port]`. A plain
   * `tcp://host:port` daemon (no TLS, no authentication: root for whoever reaches the port) is refused
   * unless `acknowledgeRisk: { dockerHost: "<why>" }` says why it is acceptable.
   * @default "unix:///var/run/docker.sock"
   */
  readonly dockerHost?: string;
  /**
   * Address other hosts of this environment reach this host at (its private IP or DNS name). It goes
   * into the certificates of the servers on this host, so clients verify it (`verify-full`).
   * Required only when a container on another host must reach one on this host.
   * @default - none: cross-host consumers are refused at synth
   */
  readonly privateAddress?: string;
  /**
   * IP address of this host that published ports bind to (Docker binds to an IP, never a name).
   * @default - privateAddress when it is an IP address; required when it is a DNS name and a port is published
   */
  readonly bindAddress?: string;
  /**
   * Risky settings accepted on purpose, with a written reason: `{ dockerHost: "<why>" }` for a plain `tcp://` daemon.
   * @default - none
   */
  readonly acknowledgeRisk?: RiskAcknowledgements;
}

/** A published port: address, port and protocol on one host. */
interface PortClaim {
  ip: string;
  port: number;
  protocol: "tcp" | "udp";
  by: string;
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
  /** The IP published ports bind to on this host. */
  public readonly bindAddress?: string;
  public readonly environment: string;
  private readonly claims: PortClaim[] = [];
  private readonly images = new Map<string, Image>();
  private readonly imageTags = new Map<string, string>();

  constructor(scope: Construct, id: string, props: DockerHostProps) {
    super(scope, id);
    const dockerHost = props.dockerHost ?? "unix:///var/run/docker.sock";
    const daemon = typeof dockerHost === "string" ? dockerHostProblem(dockerHost) : { problem: "is not a string", fix: 'use "unix:///var/run/docker.sock" or "ssh://user@host"' };
    const acks = acknowledge(props.acknowledgeRisk, daemon?.plainTcp ? ["dockerHost"] : []);
    const tcpProblem = daemon?.plainTcp && acks.acknowledged.has("dockerHost") ? tcpAddressProblem(dockerHost) : undefined;
    const rules: Rule[] = [
      {
        when: daemon !== undefined && !(daemon.plainTcp && acks.acknowledged.has("dockerHost")),
        field: "dockerHost",
        value: dockerHost,
        problem: daemon?.problem ?? "",
        fix: daemon?.fix ?? "",
      },
      { when: tcpProblem !== undefined, field: "dockerHost", value: dockerHost, problem: tcpProblem ?? "", fix: "write it as tcp://host:port" },
      ...acks.rules,
      {
        when: props.privateAddress !== undefined && !isIpAddress(props.privateAddress) && !isDnsName(props.privateAddress),
        field: "privateAddress",
        value: props.privateAddress,
        problem: /^[\d.]+$/.test(String(props.privateAddress)) ? "is not a valid IP address" : "is not an IP address or DNS name",
        fix: "give the address the other hosts reach this one at, e.g. 10.0.1.12 or db-1.internal",
      },
      {
        when: props.privateAddress !== undefined && isIpAddress(props.privateAddress) && (isWildcard(props.privateAddress) || isLoopback(props.privateAddress)),
        field: "privateAddress",
        value: props.privateAddress,
        problem: "is a wildcard or loopback address, which other hosts cannot reach",
        fix: "give the address the other hosts reach this one at, e.g. 10.0.1.12",
      },
      {
        when: props.bindAddress !== undefined && (!isIpAddress(props.bindAddress) || isWildcard(props.bindAddress)),
        field: "bindAddress",
        value: props.bindAddress,
        problem: isIpAddress(props.bindAddress) ? "is a wildcard: published ports would listen on every interface, public ones included (and Docker's rules bypass the host firewall)" : "is not an IP address (Docker binds published ports to an IP)",
        fix: "give this host's private IP address",
      },
    ];
    check(`${props.environment}/hosts.${id}`, rules);
    this.name = id;
    this.environment = props.environment;
    this.privateAddress = props.privateAddress;
    this.bindAddress = props.bindAddress ?? (isIpAddress(props.privateAddress) ? props.privateAddress : undefined);
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

  /**
   * pgharbor's backup image (images/backup): the server image of `major` plus the backup container's
   * tools. Its own image, so a change to the backup tooling replaces the backup container only.
   */
  public backupImage(major: number): Image {
    const server = this.postgresImage(major);
    // The build argument references the server image: Terraform builds that one first. The tag hashes
    // the server image's own (content-addressed) tag.
    return this.image(`BackupImage${major}`, "backup", String(major), { BASE_IMAGE: server.name }, { BASE_IMAGE: this.imageTags.get(`PostgresImage${major}`)! });
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
  private image(id: string, name: ImageName, tagPrefix: string, buildArgs: Record<string, string> = {}, hashArgs: Record<string, string> = buildArgs): Image {
    const existing = this.images.get(id);
    if (existing) return existing;
    const dir = imageContextDir(name);
    const hash = contextHash(dir, hashArgs);
    const scope = new Construct(this, id);
    // The asset's folder in cdktf.out is named by the same content address: `build.context` is
    // ForceNew, so a folder name that moved with unrelated files would rebuild the image and replace
    // every container running it.
    const context = new TerraformAsset(scope, "context", { path: dir, type: AssetType.DIRECTORY, assetHash: hash });
    const tag = `pgharbor/${name}:${tagPrefix}-${hash}`;
    this.imageTags.set(id, tag);
    const image = new Image(scope, "image", {
      provider: this.provider,
      name: tag,
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
   * through this host's private address, publishing the port on its bind address the first time it
   * is needed. `owner` names the published container in a collision message.
   */
  public reach(from: DockerHost, container: Container, containerName: string, publishPort: number, internalPort: number, what: string, owner = containerName): { host: string; port: number } {
    const ep = this.endpointFrom(from, containerName, publishPort, internalPort, what);
    if (from !== this && !this.published.has(container)) {
      if (!this.bindAddress) {
        check(`${this.environment}/hosts.${this.name}`, [
          {
            when: true,
            field: "bindAddress",
            value: undefined,
            problem: `${what} on host "${from.name}" needs ${owner} published here, and privateAddress "${this.privateAddress}" is a DNS name: Docker publishes ports on an IP address`,
            fix: `set hosts.${this.name}.bindAddress to this host's private IP (the address ${this.privateAddress} resolves to)`,
          },
        ]);
      }
      this.claimPort({ ip: this.bindAddress!, port: publishPort, protocol: "tcp", by: owner }, `give ${owner} another published port, or run it on a host of its own (replicaHosts)`);
      this.published.add(container);
      container.addOverride("ports", [{ internal: internalPort, external: publishPort, ip: this.bindAddress, protocol: "tcp" }]);
    }
    return ep;
  }

  /**
   * Records a port published on this host; refuses one that another container already publishes on
   * the same address (or on every address), which would fail half-way through an apply.
   */
  public claimPort(claim: PortClaim, fix: string): void {
    const overlaps = (a: string, b: string) => a === b || isWildcard(a) || isWildcard(b);
    const taken = this.claims.find((c) => c.port === claim.port && c.protocol === claim.protocol && overlaps(c.ip, claim.ip));
    check(`${this.environment}/hosts.${this.name}`, [
      {
        when: taken !== undefined,
        field: "ports",
        value: `${claim.ip}:${claim.port}/${claim.protocol}`,
        problem: `${claim.by} would publish it, but ${taken?.by} already publishes ${taken?.ip}:${taken?.port} on this host`,
        fix,
      },
    ]);
    this.claims.push(claim);
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
