/**
 * The runtime applier against the real engine, on a small fixture stack synthesised with real cdktf
 * constructs (App with an outdir + app.synth(), so the build context is copied into assets/ as
 * `cdktf synth` does): a network, a volume, an image built from a context (FROM debian:trixie-slim),
 * a pulled image replaced by a stand-in, a random password, a CA with a locally signed server
 * certificate, and two containers — a TCP server with uploads, env, a volume, an alias, a published
 * port and a healthcheck, and a client that reaches it by its alias.
 */
import { createHash, X509Certificate } from "crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "fs";
import { createServer, connect } from "net";
import { tmpdir } from "os";
import { join } from "path";
import { App, AssetType, TerraformAsset, TerraformOutput, TerraformStack } from "cdktf";
import { DockerProvider } from "@cdktf/provider-docker/lib/provider";
import { Network } from "@cdktf/provider-docker/lib/network";
import { Volume } from "@cdktf/provider-docker/lib/volume";
import { Image } from "@cdktf/provider-docker/lib/image";
import { Container } from "@cdktf/provider-docker/lib/container";
import { RandomProvider } from "@cdktf/provider-random/lib/provider";
import { Password } from "@cdktf/provider-random/lib/password";
import { TlsProvider } from "@cdktf/provider-tls/lib/provider";
import { PrivateKey } from "@cdktf/provider-tls/lib/private-key";
import { SelfSignedCert } from "@cdktf/provider-tls/lib/self-signed-cert";
import { CertRequest } from "@cdktf/provider-tls/lib/cert-request";
import { LocallySignedCert } from "@cdktf/provider-tls/lib/locally-signed-cert";
import { literal } from "../../constructs/terraform-text";
import { Deployment, StandIn } from "./applier";
import { describeEngine, ensureBaseImage } from "./engine";

jest.setTimeout(180_000);

const SERVE = `#!/usr/bin/perl
# The fixture's TCP server: one line in, one line out.
use strict; use warnings; use IO::Socket::INET;
$| = 1;
my $port = $ENV{PORT} || 8080;
my $srv = IO::Socket::INET->new(LocalAddr => "0.0.0.0", LocalPort => $port, Listen => 16, ReuseAddr => 1) or die "listen: $!";
print "listening on $port\\n";
$SIG{TERM} = sub { print "stopping\\n"; exit 0 };
while (my $c = $srv->accept) { my $l = <$c>; $l = "" unless defined $l; chomp $l; print $c "pong $l from $ENV{HOSTNAME}\\n"; close $c; }
`;

/** One line to host:port and the answer (perl, in a container). */
const perlAsk = (hostPort: string, line: string) => ["perl", "-MIO::Socket::INET", "-e", `my $s = IO::Socket::INET->new(PeerAddr => q(${hostPort}), Timeout => 5) or die "connect: $!"; print $s "${line}\\n"; print scalar <$s>;`];

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
    srv.on("error", rej);
  });
}

function askFromHost(port: number, line: string): Promise<string> {
  return new Promise((res, rej) => {
    const s = connect(port, "127.0.0.1", () => s.write(`${line}\n`));
    let data = "";
    s.on("data", (b) => (data += b));
    s.on("end", () => res(data));
    s.on("error", rej);
    s.setTimeout(5000, () => rej(new Error("timeout")));
  });
}

interface Fixture {
  stackDir: string;
  names: { network: string; volume: string; server: string; client: string; image: string };
  port: number;
}

function synthFixture(root: string, id: string, port: number): Fixture {
  const context = join(root, "context");
  mkdirSync(context);
  writeFileSync(join(context, "Dockerfile"), "FROM debian:trixie-slim\nCOPY . /opt/fixture/\nRUN install -m 0755 /opt/fixture/serve.pl /usr/local/bin/serve\n");
  writeFileSync(join(context, "serve.pl"), SERVE);
  writeFileSync(join(context, "ignored.txt"), "must not reach the image\n");
  writeFileSync(join(context, ".dockerignore"), "# not sent\nignored.txt\n");
  const hash = createHash("sha256").update(SERVE).update("v1").digest("hex").slice(0, 12);
  const names = { network: `pgh-fx-${id}`, volume: `pgh-fx-${id}-data`, server: `pgh-fx-${id}-server`, client: `pgh-fx-${id}-client`, image: `pgharbor-applier-fixture:${hash}` };

  const app = new App({ outdir: join(root, "cdktf.out"), skipValidation: true });
  const s = new TerraformStack(app, "fixture");
  const docker = new DockerProvider(s, "docker", { alias: "local", host: "unix:///var/run/docker.sock" });
  new RandomProvider(s, "random");
  new TlsProvider(s, "tls");
  const network = new Network(s, "network", { provider: docker, name: names.network, driver: "bridge", attachable: false });
  const volume = new Volume(s, "data", { provider: docker, name: names.volume });
  const asset = new TerraformAsset(s, "context", { path: context, type: AssetType.DIRECTORY });
  const image = new Image(s, "image", { provider: docker, name: names.image, keepLocally: true, triggers: { serve_sha256: hash }, buildAttribute: { context: asset.path, dockerfile: `${asset.path}/Dockerfile` } });
  const tool = new Image(s, "tool", { provider: docker, name: "pgharbor-fixture/unpullable-tool:1", keepLocally: true });
  const password = new Password(s, "fixture-secret", { length: 24, special: false, minLower: 1, minUpper: 1, minNumeric: 1 });
  const caKey = new PrivateKey(s, "ca-key", { algorithm: "ECDSA", ecdsaCurve: "P256" });
  const ca = new SelfSignedCert(s, "ca-cert", { privateKeyPem: caKey.privateKeyPem, isCaCertificate: true, subject: [{ commonName: "pgharbor fixture CA", organization: "pgharbor" }], validityPeriodHours: 48, allowedUses: ["cert_signing", "crl_signing"] });
  const serverKey = new PrivateKey(s, "server-key", { algorithm: "ECDSA", ecdsaCurve: "P256" });
  const csr = new CertRequest(s, "server-csr", { privateKeyPem: serverKey.privateKeyPem, subject: [{ commonName: "fixture-server" }], dnsNames: ["fixture-server", "localhost"], ipAddresses: ["127.0.0.1"] });
  const cert = new LocallySignedCert(s, "server-cert", { certRequestPem: csr.certRequestPem, caCertPem: ca.certPem, caPrivateKeyPem: caKey.privateKeyPem, validityPeriodHours: 48, allowedUses: ["digital_signature", "key_encipherment", "server_auth"] });
  const server = new Container(s, "server", {
    provider: docker,
    name: names.server,
    hostname: "fixture-server",
    image: image.imageId,
    command: ["serve"],
    env: [`FIXTURE_SECRET=${password.result}`, "PORT=8080", `LITERAL=${literal("${HOME} and %{x}")}`],
    upload: [
      { file: "/etc/fixture/config.conf", content: literal("greeting = ${USER} %{not a directive}\n") },
      { file: "/usr/local/bin/hello.sh", content: "#!/bin/sh\necho hello\n", executable: true },
      { file: "/etc/fixture/tls/server.key", content: serverKey.privateKeyPem, permissions: "0600" },
      { file: "/etc/fixture/tls/server.crt", content: cert.certPem },
      { file: "/etc/fixture/tls/ca.crt", content: ca.certPem },
    ],
    volumes: [{ volumeName: volume.name, containerPath: "/data" }],
    networksAdvanced: [{ name: network.name, aliases: ["fixture-server"] }],
    ports: [{ internal: 8080, external: port, ip: "127.0.0.1", protocol: "tcp" }],
    healthcheck: { test: ["CMD", "perl", "-MIO::Socket::INET", "-e", "IO::Socket::INET->new(PeerAddr => q(127.0.0.1:8080)) or exit 1"], interval: "1s", timeout: "3s", startPeriod: "2s", retries: 3 },
    restart: "unless-stopped",
    memory: 64,
    shmSize: 16,
    cpuPeriod: 100000,
    cpuQuota: 50000,
    stopSignal: "SIGTERM",
    destroyGraceSeconds: 5,
    logDriver: "json-file",
    logOpts: { "max-size": "1m" },
  });
  new Container(s, "client", {
    provider: docker,
    name: names.client,
    image: tool.imageId,
    command: ["/declared/by/the/unpullable/image"],
    networksAdvanced: [{ name: network.name, aliases: ["fixture-client"] }],
    init: true,
    restart: "no",
    dependsOn: [server],
  });
  new TerraformOutput(s, "ca_cert_pem", { value: ca.certPem });
  new TerraformOutput(s, "server_url", { value: `tcp://fixture:${password.result}@127.0.0.1:${port}`, sensitive: true });
  app.synth();
  return { stackDir: join(root, "cdktf.out", "stacks", "fixture"), names, port };
}

function standIn(root: string): StandIn {
  const context = join(root, "standin");
  mkdirSync(context);
  writeFileSync(join(context, "Dockerfile"), "FROM debian:trixie-slim\nLABEL pgharbor.applier-fixture-standin=1\n");
  return {
    reason: "the fixture's tool image cannot be pulled here (no registry)",
    matches: (img) => img.name === "pgharbor-fixture/unpullable-tool:1",
    image: { tag: "pgharbor-applier-standin:1", context },
    container: () => ({ command: ["sleep", "infinity"], extraEnv: ["STANDIN=yes"] }),
  };
}

describeEngine("runtime applier: a fixture stack on the Docker engine", () => {
  let root: string;
  let fx: Fixture;
  let d: Deployment | undefined;
  let tool: StandIn;
  const logLines: string[] = [];
  const timings: Record<string, number> = {};
  const timed = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    try {
      return await fn();
    } finally {
      timings[what] = Date.now() - t0;
    }
  };

  beforeAll(async () => {
    await timed("ensureBaseImage", () => ensureBaseImage());
    root = mkdtempSync(join(tmpdir(), "pgharbor-applier-rt-"));
    fx = synthFixture(root, Math.random().toString(36).slice(2, 8), await freePort());
    const docker = new (await import("dockerode"))({ socketPath: "/var/run/docker.sock" });
    // So that the first apply builds (the tag is kept between runs: keep_locally).
    await docker
      .getImage(fx.names.image)
      .remove({ force: true })
      .catch(() => undefined);
    tool = standIn(root);
    d = await timed("apply", () => Deployment.apply({ stackDir: fx.stackDir, standIns: [tool], log: (l) => logLines.push(l) }));
  });

  afterAll(async () => {
    await d?.destroy().catch(() => undefined);
    if (root) rmSync(root, { recursive: true, force: true });
    console.log(`applier runtime timings (ms): ${JSON.stringify(timings)}`);
  });

  test("synth copied the build context into assets/ (.dockerignore included) and the stack is applied in dependency order", () => {
    const assets = join(fx.stackDir, "assets", "context");
    const [hashDir] = readdirSync(assets);
    expect(readdirSync(join(assets, hashDir)).sort()).toEqual([".dockerignore", "Dockerfile", "ignored.txt", "serve.pl"]);
    const order = d!.order;
    const at = (a: string) => order.indexOf(a);
    expect(at("docker_network.network")).toBeLessThan(at("docker_container.server"));
    expect(at("docker_volume.data")).toBeLessThan(at("docker_container.server"));
    expect(at("docker_image.image")).toBeLessThan(at("docker_container.server"));
    expect(at("random_password.fixture-secret")).toBeLessThan(at("docker_container.server"));
    expect(at("tls_locally_signed_cert.server-cert")).toBeLessThan(at("docker_container.server"));
    expect(at("tls_self_signed_cert.ca-cert")).toBeLessThan(at("tls_locally_signed_cert.server-cert"));
    expect(at("docker_container.server")).toBeLessThan(at("docker_container.client")); // depends_on
    expect(d!.created.filter((a) => a.startsWith("docker_container."))).toEqual(["docker_container.server", "docker_container.client"]);
  });

  test("the image is built from the context (.dockerignore honoured), the unpullable one replaced by its stand-in", async () => {
    expect(d!.imagesBuilt).toContain(fx.names.image);
    expect((await d!.exec(fx.names.server, ["ls", "/opt/fixture"])).stdout.split("\n").filter(Boolean).sort()).toEqual(["Dockerfile", "serve.pl"]);
    const client = await d!.docker.getContainer(fx.names.client).inspect();
    expect(client.Config.Labels["pgharbor.applier-fixture-standin"]).toBe("1");
    expect(client.Config.Cmd).toEqual(["sleep", "infinity"]);
    expect(client.Config.Env).toContain("STANDIN=yes");
    expect(client.HostConfig.Init).toBe(true);
  });

  test("uploads land with the provider's modes, owned by root, content escaped as Terraform does", async () => {
    const stat = async (f: string) => (await d!.exec(fx.names.server, ["stat", "-c", "%a %U:%G", f])).stdout.trim();
    expect(await stat("/etc/fixture/config.conf")).toBe("644 root:root");
    expect(await stat("/usr/local/bin/hello.sh")).toBe("744 root:root");
    expect(await stat("/etc/fixture/tls/server.key")).toBe("600 root:root");
    expect((await d!.exec(fx.names.server, ["cat", "/etc/fixture/config.conf"])).stdout).toBe("greeting = ${USER} %{not a directive}\n");
    expect((await d!.exec(fx.names.server, ["/usr/local/bin/hello.sh"])).stdout).toBe("hello\n");
    expect((await d!.exec(fx.names.server, ["cat", "/etc/fixture/tls/ca.crt"])).stdout).toBe(d!.caCertPem);
  });

  test("env references resolve to the deployment's test values; $${ stays a literal ${", async () => {
    const secret = d!.secret("fixture-secret");
    expect(secret).toMatch(/^[A-Za-z0-9]{24}$/);
    expect(secret).toMatch(/[a-z]/);
    expect(secret).toMatch(/[A-Z]/);
    expect(secret).toMatch(/[0-9]/);
    expect((await d!.exec(fx.names.server, ["printenv", "FIXTURE_SECRET"])).stdout.trim()).toBe(secret);
    expect((await d!.exec(fx.names.server, ["printenv", "LITERAL"])).stdout).toBe("${HOME} and %{x}\n");
    expect(d!.output("server_url")).toBe(`tcp://fixture:${secret}@127.0.0.1:${fx.port}`);
    expect(d!.spec(fx.names.server).env).toContain(`FIXTURE_SECRET=${secret}`);
  });

  test("the container is created as declared (memory, shm, CPU quota, restart, stop signal, logs, healthcheck)", async () => {
    const c = await d!.docker.getContainer(fx.names.server).inspect();
    expect(c.HostConfig.Memory).toBe(64 * 1024 * 1024);
    expect(c.HostConfig.ShmSize).toBe(16 * 1024 * 1024);
    expect([c.HostConfig.CpuPeriod, c.HostConfig.CpuQuota]).toEqual([100000, 50000]);
    expect(c.HostConfig.RestartPolicy).toEqual({ Name: "unless-stopped", MaximumRetryCount: 0 });
    expect(c.HostConfig.LogConfig).toEqual({ Type: "json-file", Config: { "max-size": "1m" } });
    expect(c.HostConfig.Binds).toEqual([`${fx.names.volume}:/data:rw`]);
    expect(c.HostConfig.Init).toBe(false);
    expect((c.Config as { StopSignal?: string }).StopSignal).toBe("SIGTERM");
    expect(c.Config.Healthcheck).toMatchObject({ Interval: 1e9, Timeout: 3e9, StartPeriod: 2e9, Retries: 3 });
    expect(Object.keys(c.NetworkSettings.Networks)).toEqual([fx.names.network]); // the default bridge disconnected
    expect(c.NetworkSettings.Networks[fx.names.network].Aliases).toContain("fixture-server");
  });

  test("the server becomes healthy; the client reaches it by its alias; the published port answers on 127.0.0.1", async () => {
    await d!.waitHealthy([fx.names.server], 30_000);
    expect(await d!.health(fx.names.server)).toBe("healthy");
    expect(await d!.health(fx.names.client)).toBe("none");
    const r = await d!.exec(fx.names.client, perlAsk("fixture-server:8080", "ping"));
    expect(r).toMatchObject({ code: 0, stdout: "pong ping from fixture-server\n" });
    expect(await askFromHost(fx.port, "host")).toBe("pong host from fixture-server\n");
    const piped = await d!.exec(fx.names.server, ["sh", "-c", "cat; echo err >&2; exit 3"], { input: "from stdin" });
    expect(piped).toEqual({ code: 3, stdout: "from stdin", stderr: "err\n" });
    expect(await d!.logs(fx.names.server)).toContain("listening on 8080");
  });

  test("the server certificate is signed by the test CA with the declared SANs and serverAuth", async () => {
    const pem = (await d!.exec(fx.names.server, ["cat", "/etc/fixture/tls/server.crt"])).stdout;
    const cert = new X509Certificate(pem);
    const ca = new X509Certificate(readFileSync(d!.caFile));
    expect(ca.ca).toBe(true);
    expect(ca.subject).toContain("CN=pgharbor fixture CA");
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.subject).toBe("CN=fixture-server");
    expect(cert.subjectAltName).toBe("DNS:fixture-server, DNS:localhost, IP Address:127.0.0.1");
    expect(cert.keyUsage).toContain("1.3.6.1.5.5.7.3.1"); // serverAuth
    expect(cert.ca).toBe(false);
    const key = (await d!.exec(fx.names.server, ["cat", "/etc/fixture/tls/server.key"])).stdout;
    expect(key).toMatch(/^-----BEGIN EC PRIVATE KEY-----/);
    expect(cert.checkPrivateKey(require("crypto").createPrivateKey(key))).toBe(true); // eslint-disable-line @typescript-eslint/no-require-imports
  });

  test("recreate() replaces the container with a new env; the volume's data survives", async () => {
    await d!.exec(fx.names.server, ["sh", "-c", "echo kept > /data/marker"]);
    const before = (await d!.docker.getContainer(fx.names.server).inspect()).Id;
    await timed("recreate", () => d!.recreate(fx.names.server, { env: { FIXTURE_SECRET: "rotated-secret" } }));
    const after = await d!.docker.getContainer(fx.names.server).inspect();
    expect(after.Id).not.toBe(before);
    expect((await d!.exec(fx.names.server, ["printenv", "FIXTURE_SECRET"])).stdout.trim()).toBe("rotated-secret");
    expect((await d!.exec(fx.names.server, ["cat", "/data/marker"])).stdout).toBe("kept\n");
    expect((await d!.exec(fx.names.server, ["stat", "-c", "%a", "/usr/local/bin/hello.sh"])).stdout.trim()).toBe("744");
    await d!.waitHealthy([fx.names.server], 30_000);
  });

  test("destroy removes containers, the volume and the network, keeps the images, and is idempotent; a second apply reuses the image", async () => {
    const docker = d!.docker;
    await timed("destroy", () => d!.destroy());
    await d!.destroy();
    const status = (p: Promise<unknown>) => p.then(() => 200, (e: { statusCode?: number }) => e.statusCode);
    expect(await status(docker.getContainer(fx.names.server).inspect())).toBe(404);
    expect(await status(docker.getContainer(fx.names.client).inspect())).toBe(404);
    expect(await status(docker.getVolume(fx.names.volume).inspect())).toBe(404);
    expect(await status(docker.getNetwork(fx.names.network).inspect())).toBe(404);
    expect(await status(docker.getImage(fx.names.image).inspect())).toBe(200);
    expect(await status(docker.getImage("pgharbor-applier-standin:1").inspect())).toBe(200);

    d = await timed("second apply", () => Deployment.apply({ stackDir: fx.stackDir, standIns: [tool], log: (l) => logLines.push(l) }));
    expect(d.imagesBuilt).toEqual([]);
    expect(d.imagesReused).toEqual(expect.arrayContaining([fx.names.image, "pgharbor-applier-standin:1"]));
    await d.waitHealthy([fx.names.server], 30_000);
    await d.destroy();
  });

  test("a failed apply names the cause (build output's last lines; a container's logs when it exits at once) and destroys what it created", async () => {
    const failRoot = mkdtempSync(join(tmpdir(), "pgharbor-applier-fail-"));
    try {
      const id = Math.random().toString(36).slice(2, 8);
      const badContext = join(failRoot, "bad");
      mkdirSync(badContext);
      writeFileSync(join(badContext, "Dockerfile"), "FROM debian:trixie-slim\nRUN for i in 1 2 3; do echo build-line-$i; done; exit 3\n");
      const app = new App({ outdir: join(failRoot, "out"), skipValidation: true });
      const build = new TerraformStack(app, "build-fails");
      const p1 = new DockerProvider(build, "docker", {});
      const asset = new TerraformAsset(build, "ctx", { path: badContext, type: AssetType.DIRECTORY });
      new Network(build, "net", { provider: p1, name: `pgh-fx-${id}-a` });
      new Image(build, "bad", { provider: p1, name: `pgharbor-applier-fixture-bad:${id}`, keepLocally: true, buildAttribute: { context: asset.path, dockerfile: `${asset.path}/Dockerfile` } });
      const exits = new TerraformStack(app, "exits");
      const p2 = new DockerProvider(exits, "docker", {});
      const net = new Network(exits, "net", { provider: p2, name: `pgh-fx-${id}-b` });
      const vol = new Volume(exits, "vol", { provider: p2, name: `pgh-fx-${id}-b` });
      const base = new Image(exits, "base", { provider: p2, name: "debian:trixie-slim", keepLocally: true });
      new Container(exits, "dies", { provider: p2, name: `pgh-fx-${id}-dies`, image: base.imageId, command: ["sh", "-c", "echo about to fail; exit 7"], volumes: [{ volumeName: vol.name, containerPath: "/v" }], networksAdvanced: [{ name: net.name }] });
      app.synth();
      const docker = d!.docker;
      const status = (p: Promise<unknown>) => p.then(() => 200, (e: { statusCode?: number }) => e.statusCode);

      const buildErr = await Deployment.apply({ stackDir: join(failRoot, "out", "stacks", "build-fails") }).then(() => undefined, (e: Error) => e.message);
      expect(buildErr).toMatch(/Error running legacy build of pgharbor-applier-fixture-bad/);
      expect(buildErr).toMatch(/build-line-1[\s\S]*build-line-3/);
      expect(await status(docker.getNetwork(`pgh-fx-${id}-a`).inspect())).toBe(404);

      const exitErr = await Deployment.apply({ stackDir: join(failRoot, "out", "stacks", "exits") }).then(() => undefined, (e: Error) => e.message);
      expect(exitErr).toMatch(/container exited immediately \(exit code 7\)/);
      expect(exitErr).toContain("about to fail");
      expect(await status(docker.getContainer(`pgh-fx-${id}-dies`).inspect())).toBe(404);
      expect(await status(docker.getVolume(`pgh-fx-${id}-b`).inspect())).toBe(404);
      expect(await status(docker.getNetwork(`pgh-fx-${id}-b`).inspect())).toBe(404);
      expect(await status(docker.getImage("debian:trixie-slim").inspect())).toBe(200); // keep_locally
    } finally {
      rmSync(failRoot, { recursive: true, force: true });
    }
  });
});
