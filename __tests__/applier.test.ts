/**
 * The runtime applier's pure parts (no Docker engine needed): Terraform template evaluation, the
 * provider's attribute mappings, refusals, ordering, build contexts and the base-image lock.
 */
import { X509Certificate } from "crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import * as tarStream from "tar-stream";
import { evaluateTemplate, referencesIn, templateReferences } from "./runtime/tf-template";
import {
  applyOrder,
  checkModelled,
  containerCreateOptions,
  Deployment,
  imageBuildQuery,
  parseGoDuration,
  prepareBuildContext,
  toContainerSpec,
  uploadContent,
  uploadMode,
  uploadTar,
  withEnv,
} from "./runtime/applier";
import { ensureImageWith, PatternMatcher, readDockerignore, withDirLock, decodeBuildkitStatus, demux, engineProblem, engineSocket } from "./runtime/engine";
import { certRequestPem, locallySignedCertPem, privateKeyPem, randomPassword, selfSignedCertPem } from "./runtime/test-pki";

const values: Record<string, string> = {
  "random_password.pw.result": "s3cr3t",
  "docker_volume.data.name": "pgh-data",
  "tls_self_signed_cert.ca.cert_pem": "-----BEGIN CERTIFICATE-----\n",
};
const resolve = (r: string) => {
  if (!(r in values)) throw new Error(`unknown reference ${r}`);
  return values[r];
};

describe("Terraform template evaluation", () => {
  test("${ref} interpolates, $${ is a literal ${, %%{ a literal %{, lone $ and % stay", () => {
    expect(evaluateTemplate("a=${random_password.pw.result};b=${ docker_volume.data.name }", resolve)).toBe("a=s3cr3t;b=pgh-data");
    expect(evaluateTemplate("echo $${HOME} %%{x} $HOME 100% $$ %", resolve)).toBe("echo ${HOME} %{x} $HOME 100% $$ %");
    expect(evaluateTemplate("", resolve)).toBe("");
  });

  test("an unknown reference throws, naming it", () => {
    expect(() => evaluateTemplate("x ${aws_iam_access_key.k.secret}", resolve)).toThrow("unknown reference aws_iam_access_key.k.secret");
  });

  test("a %{ directive throws, and so does an expression that is not a plain reference", () => {
    expect(() => evaluateTemplate("%{ if true }yes%{ endif }", resolve)).toThrow(/template directive %\{ if true \} is not supported/);
    expect(() => evaluateTemplate('${upper("x")}', resolve)).toThrow(/cannot evaluate the expression \$\{upper\("x"\)\}/);
    expect(() => evaluateTemplate("${~ random_password.pw.result ~}", resolve)).toThrow(/cannot evaluate/);
    expect(() => evaluateTemplate("${random_password.pw.result", resolve)).toThrow(/unterminated interpolation/);
  });

  test("one pass: a resolved value is never scanned again (its $${ and ${ stay as they are)", () => {
    const tricky = (r: string) => (r === "random_password.pw.result" ? "p$${x}q${docker_volume.data.name}%%{" : resolve(r));
    expect(evaluateTemplate("[${random_password.pw.result}] $${random_password.pw.result}", tricky)).toBe("[p$${x}q${docker_volume.data.name}%%{] ${random_password.pw.result}");
  });

  test("references are collected from every string, cdktf's // metadata skipped", () => {
    expect(templateReferences("${a.b.c} $${d.e.f} ${g.h.i}")).toEqual(["a.b.c", "g.h.i"]);
    expect(referencesIn({ "//": { metadata: "${x.y.z}" }, env: ["A=${random_password.pw.result}"], n: 1, nested: { v: "${docker_volume.data.name}" } })).toEqual(["random_password.pw.result", "docker_volume.data.name"]);
  });
});

describe("uploads (resourceDockerContainerCreate)", () => {
  test("mode: permissions (octal) | 0744 if executable | 0644", () => {
    expect(uploadMode({})).toBe(0o644);
    expect(uploadMode({ executable: true })).toBe(0o744);
    expect(uploadMode({ permissions: "0600" })).toBe(0o600);
    expect(uploadMode({ permissions: "0640", executable: true })).toBe(0o640);
    expect(() => uploadMode({ permissions: "600" })).toThrow(/\^0\[0-7\]\{3\}\$/);
  });

  test("content: exactly one of content, content_base64, source (relative to Terraform's working directory)", () => {
    const dir = mkdtempSync(join(tmpdir(), "applier-upload-"));
    try {
      writeFileSync(join(dir, "f.txt"), "from a file");
      expect(uploadContent({ file: "/x", content: "é" }, dir)).toEqual(Buffer.from("é"));
      expect(uploadContent({ file: "/x", contentBase64: Buffer.from("bin\0ary").toString("base64") }, dir).toString()).toBe("bin\0ary");
      expect(uploadContent({ file: "/x", source: "f.txt" }, dir).toString()).toBe("from a file");
      expect(() => uploadContent({ file: "/x" }, dir)).toThrow(/one of 'content', 'content_base64', or 'source' must be set/);
      expect(() => uploadContent({ file: "/x", content: "a", source: "f.txt" }, dir)).toThrow(/only one of/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("tar: one entry, the absolute path, the mode, owner 0:0", async () => {
    const tar = await uploadTar("/usr/local/bin/run.sh", Buffer.from("#!/bin/sh\n"), 0o744);
    const entries: Array<{ name: string; mode?: number; uid?: number; gid?: number; type?: string | null; body: string }> = [];
    await new Promise<void>((res, rej) => {
      const ex = tarStream.extract();
      ex.on("entry", (h, stream, next) => {
        let body = "";
        stream.on("data", (b: unknown) => (body += String(b)));
        stream.on("end", () => {
          entries.push({ name: h.name, mode: h.mode, uid: h.uid, gid: h.gid, type: h.type, body });
          next();
        });
      });
      ex.on("finish", res);
      ex.on("error", rej);
      ex.end(tar);
    });
    expect(entries).toEqual([{ name: "/usr/local/bin/run.sh", mode: 0o744, uid: 0, gid: 0, type: "file", body: "#!/bin/sh\n" }]);
  });
});

/** A docker_container as cdktf synthesises it (pgharbor-like), references already resolved. */
const containerBody = () => ({
  "//": { metadata: { path: "x" } },
  provider: "docker.local",
  depends_on: ["docker_container.archive"],
  name: "pgharbor-dev-primary",
  image: "sha256:abc",
  hostname: "pgharbor-dev-primary",
  entrypoint: ["/entry.sh"],
  command: ["postgres", "-c", "config_file=/etc/postgresql/postgresql.conf"],
  env: ["A=1", "B=2", "A=1"],
  volumes: [
    { volume_name: "pgharbor-dev-primary-data", container_path: "/var/lib/postgresql/data" },
    { volume_name: "pgharbor-dev-socket", container_path: "/var/run/postgresql", read_only: true },
    { container_path: "/scratch" },
  ],
  networks_advanced: [{ name: "pgharbor-dev", aliases: ["pgharbor-dev-primary"] }],
  ports: [
    { internal: 5432, external: 15432, ip: "127.0.0.1", protocol: "tcp" },
    { internal: 9187 },
  ],
  healthcheck: { test: ["CMD", "pg_isready"], interval: "10s", timeout: "5s", start_period: "5m", retries: 6 },
  restart: "unless-stopped",
  memory: 512,
  memory_swap: -1,
  shm_size: 128,
  cpu_period: 100000,
  cpu_quota: 150000,
  cpu_shares: 512,
  stop_signal: "SIGINT",
  stop_timeout: 120,
  destroy_grace_seconds: 120,
  log_driver: "json-file",
  log_opts: { "max-size": "50m", "max-file": "5" },
  labels: [{ label: "pgharbor.role", value: "primary" }],
  tmpfs: { "/run/lock": "size=1m" },
});

describe("container resource → ContainerCreate options (resourceDockerContainerCreate)", () => {
  test("the spec: Terraform names camel-cased, lists present, types converted", () => {
    const spec = toContainerSpec("docker_container.primary", { ...containerBody(), memory: "512", must_run: "false" });
    expect(spec.memory).toBe(512);
    expect(spec.mustRun).toBe(false);
    expect(spec.volumes[0]).toEqual({ volumeName: "pgharbor-dev-primary-data", containerPath: "/var/lib/postgresql/data" });
    expect(spec.networksAdvanced).toEqual([{ name: "pgharbor-dev", aliases: ["pgharbor-dev-primary"] }]);
    expect(spec.healthcheck).toEqual({ test: ["CMD", "pg_isready"], interval: "10s", timeout: "5s", startPeriod: "5m", retries: 6 });
    expect(spec.upload).toEqual([]);
    expect(withEnv(spec, { B: "rotated", C: "3" }).env).toEqual(["A=1", "B=rotated", "A=1", "C=3"]);
  });

  test("Binds, ports, healthcheck in ns, memory in bytes, CPU, restart, stop, logs, labels, tmpfs", () => {
    const o = containerCreateOptions(toContainerSpec("docker_container.primary", containerBody()));
    expect(o).toMatchObject({
      name: "pgharbor-dev-primary",
      Image: "sha256:abc",
      Hostname: "pgharbor-dev-primary",
      Entrypoint: ["/entry.sh"],
      Cmd: ["postgres", "-c", "config_file=/etc/postgresql/postgresql.conf"],
      Env: ["A=1", "B=2"],
      StopSignal: "SIGINT",
      StopTimeout: 120,
      ExposedPorts: { "5432/tcp": {}, "9187/tcp": {} },
      Volumes: { "/var/lib/postgresql/data": {}, "/var/run/postgresql": {}, "/scratch": {} },
      Labels: { "pgharbor.role": "primary" },
      Healthcheck: { Test: ["CMD", "pg_isready"], Interval: 10e9, Timeout: 5e9, StartPeriod: 300e9, Retries: 6 },
      NetworkingConfig: {},
    });
    expect(o.HostConfig).toEqual({
      Privileged: false,
      PublishAllPorts: false,
      RestartPolicy: { Name: "unless-stopped", MaximumRetryCount: 0 },
      Mounts: [],
      AutoRemove: false,
      ReadonlyRootfs: false,
      LogConfig: { Type: "json-file", Config: { "max-size": "50m", "max-file": "5" } },
      NetworkMode: "bridge",
      Init: false,
      Tmpfs: { "/run/lock": "size=1m" },
      PortBindings: { "5432/tcp": [{ HostIp: "127.0.0.1", HostPort: "15432" }], "9187/tcp": [{ HostIp: "0.0.0.0", HostPort: "0" }] },
      Binds: ["pgharbor-dev-primary-data:/var/lib/postgresql/data:rw", "pgharbor-dev-socket:/var/run/postgresql:ro"],
      Memory: 512 * 1024 * 1024,
      MemorySwap: -1,
      ShmSize: 128 * 1024 * 1024,
      CpuPeriod: 100000,
      CpuQuota: 150000,
      CpuShares: 512,
    });
  });

  test("zero values count as unset (d.GetOk); restart defaults to no; an empty command value is refused", () => {
    const o = containerCreateOptions(toContainerSpec("docker_container.x", { name: "x", image: "i", memory: 0, cpu_quota: 0, command: [], init: true }));
    expect(o.Cmd).toBeUndefined();
    expect(o.HostConfig!.Memory).toBeUndefined();
    expect(o.HostConfig!.CpuQuota).toBeUndefined();
    expect(o.HostConfig!.RestartPolicy).toEqual({ Name: "no", MaximumRetryCount: 0 });
    expect(o.HostConfig!.Init).toBe(true);
    expect(o.Healthcheck).toBeUndefined();
    expect(() => containerCreateOptions(toContainerSpec("docker_container.x", { name: "x", image: "i", command: ["a", ""] }))).toThrow("values for command may not be empty");
    expect(() => containerCreateOptions(toContainerSpec("docker_container.x", { name: "x", image: "i", restart: "sometimes" }))).toThrow(/restart must be one of/);
  });

  test("Go durations as time.ParseDuration reads them", () => {
    expect(parseGoDuration("10s")).toBe(10e9);
    expect(parseGoDuration("5m")).toBe(300e9);
    expect(parseGoDuration("1h30m")).toBe(5400e9);
    expect(parseGoDuration("1.5s")).toBe(1.5e9);
    expect(parseGoDuration("300ms")).toBe(300e6);
    expect(parseGoDuration("0")).toBe(0);
    expect(parseGoDuration("0s")).toBe(0);
    expect(() => parseGoDuration("10")).toThrow(/invalid duration/);
    expect(() => parseGoDuration("")).toThrow(/invalid duration/);
    expect(() => parseGoDuration("1d")).toThrow(/invalid duration/);
  });
});

describe("what the applier refuses", () => {
  test("cpus: the provider panics on it (issue #759)", () => {
    expect(() => checkModelled("docker_container.primary", { name: "p", image: "i", cpus: "1" })).toThrow(/cpus = "1": the kreuzwerker\/docker provider 3\.6\.2 panics on it.*float32.*#759/);
  });

  test("any attribute it does not model, at the top or in a block, and unknown resource types", () => {
    expect(() => checkModelled("docker_container.x", { name: "x", image: "i", privileged: true })).toThrow("applier does not model privileged of docker_container.x");
    expect(() => checkModelled("docker_container.x", { name: "x", image: "i", volumes: [{ from_container: "y" }] })).toThrow("applier does not model volumes.from_container of docker_container.x");
    expect(() => checkModelled("docker_container.x", { name: "x", image: "i", lifecycle: { create_before_destroy: true } })).toThrow("applier does not model lifecycle.create_before_destroy of docker_container.x");
    expect(() => checkModelled("docker_image.x", { name: "x", build: { context: ".", builder: "b" } })).toThrow("applier does not model build.builder of docker_image.x");
    expect(() => checkModelled("docker_volume.x", { name: "x", driver_opts: {} })).toThrow("applier does not model driver_opts of docker_volume.x");
    expect(() => checkModelled("docker_service.x", { name: "x" })).toThrow("applier does not model resource type docker_service");
    expect(() => checkModelled("docker_container.ok", containerBody())).not.toThrow();
    expect(() => randomPassword("random_password.x", { length: 8, bogus: 1 })).toThrow("applier does not model bogus of random_password.x");
  });

  test("references it cannot resolve: unknown attributes, AWS resources, data sources, undeclared resources", () => {
    const stack = (env: string[]) => ({ resource: { docker_container: { c: { name: "c", image: "i", env } }, aws_iam_access_key: { k: { user: "u" } }, docker_image: { i: { name: "i" } } } });
    expect(() => applyOrder(stack(["X=${docker_image.i.repo_digest}"]))).toThrow("applier cannot resolve the reference ${docker_image.i.repo_digest} (in docker_container.c)");
    expect(() => applyOrder(stack(["X=${aws_iam_access_key.k.secret}"]))).toThrow(/references aws_iam_access_key\.k\.secret: the applier skips AWS resources/);
    expect(() => applyOrder(stack(["X=${data.aws_region.r.name}"]))).toThrow(/does not model data sources/);
    expect(() => applyOrder(stack(["X=${random_password.nope.result}"]))).toThrow("docker_container.c references random_password.nope.result, but random_password.nope is not declared");
  });

  test("Deployment.apply refuses a stack before touching the engine", async () => {
    const dir = mkdtempSync(join(tmpdir(), "applier-refuse-"));
    try {
      writeFileSync(join(dir, "cdk.tf.json"), JSON.stringify({ provider: { docker: [{ alias: "local", host: "unix:///nonexistent.sock" }] }, resource: { docker_container: { p: { name: "p", image: "i", cpus: "1", provider: "docker.local" } } } }));
      await expect(Deployment.apply({ stackDir: dir })).rejects.toThrow(/panics on it/);
      writeFileSync(join(dir, "cdk.tf.json"), JSON.stringify({ provider: { docker: [{ host: "ssh://me@db-1" }] }, resource: {} }));
      await expect(Deployment.apply({ stackDir: dir })).rejects.toThrow(/has host ssh:\/\/me@db-1: the applier applies to local engines/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("ordering (Terraform's graph)", () => {
  const stack = () => ({
    resource: {
      docker_container: {
        client: { name: "client", image: "${docker_image.img.image_id}", depends_on: ["docker_container.server"] },
        server: { name: "server", image: "${docker_image.img.image_id}", env: ["P=${random_password.pw.result}"], volumes: [{ volume_name: "${docker_volume.data.name}", container_path: "/d" }], networks_advanced: [{ name: "${docker_network.net.name}" }] },
      },
      docker_image: { img: { name: "img:1" } },
      docker_volume: { data: { name: "data" } },
      docker_network: { net: { name: "net" } },
      random_password: { pw: { length: 8 } },
      aws_s3_bucket: { b: { bucket: "b" } },
    },
  });

  test("references and depends_on come first; ties in declaration order; AWS skipped", () => {
    expect(applyOrder(stack())).toEqual(["docker_image.img", "docker_volume.data", "docker_network.net", "random_password.pw", "docker_container.server", "docker_container.client"]);
  });

  test("a cycle throws, naming its members", () => {
    const s = stack();
    (s.resource.docker_container.server as Record<string, unknown>).depends_on = ["docker_container.client"];
    expect(() => applyOrder(s)).toThrow("dependency cycle among: docker_container.client, docker_container.server");
  });

  test("depends_on an undeclared resource throws", () => {
    const s = stack();
    s.resource.docker_container.client.depends_on = ["docker_container.nope"];
    expect(() => applyOrder(s)).toThrow("docker_container.client depends_on docker_container.nope, which is not declared");
  });
});

describe("image builds (buildDockerImage, createImageBuildOptions, prepareBuildContext)", () => {
  test("the build query: name then tags, BuildKit from API 1.39, rm by default, networkmode host here", () => {
    expect(imageBuildQuery("pgharbor/postgres:17-abc", { context: "c", tag: ["x:latest"], build_args: { PG_MAJOR: 17 } }, "Dockerfile", "1.41")).toEqual({
      t: ["pgharbor/postgres:17-abc", "x:latest"],
      dockerfile: "Dockerfile",
      networkmode: "host",
      rm: "1",
      version: "2",
      buildargs: { PG_MAJOR: "17" },
    });
    expect(imageBuildQuery("a:1", { context: "c", network_mode: "none", remove: false, no_cache: true }, "D", "1.38")).toMatchObject({ networkmode: "none", rm: "0", nocache: "1", version: "1" });
  });

  test("dockerfile is relative to Terraform's working directory, not the context; .dockerignore honoured; owner 0:0", () => {
    const cwd = mkdtempSync(join(tmpdir(), "applier-ctx-"));
    try {
      const ctx = join(cwd, "assets", "img", "HASH");
      mkdirSync(join(ctx, "sub", "deep"), { recursive: true });
      writeFileSync(join(ctx, "Dockerfile"), "FROM scratch\n");
      writeFileSync(join(ctx, "keep.sh"), "x", { mode: 0o755 });
      writeFileSync(join(ctx, "secret.env"), "x");
      writeFileSync(join(ctx, "sub", "a.log"), "x");
      writeFileSync(join(ctx, "sub", "deep", "b.log"), "x");
      writeFileSync(join(ctx, "sub", "deep", "keep.log"), "x");
      symlinkSync("keep.sh", join(ctx, "link"));
      writeFileSync(join(ctx, ".dockerignore"), "# comment\n*.env\n**/*.log\n!sub/deep/keep.log\n.dockerignore\n");
      // "Dockerfile" alone is looked up in the working directory, as the provider does
      expect(() => prepareBuildContext(cwd, "assets/img/HASH", "Dockerfile")).toThrow(/unable to evaluate symlinks in Dockerfile path.*relative to Terraform's working directory/);
      const { entries, relDockerfile } = prepareBuildContext(cwd, "assets/img/HASH", "assets/img/HASH/Dockerfile");
      expect(relDockerfile).toBe("Dockerfile");
      expect(entries.map((e) => e.name)).toEqual([".dockerignore", "Dockerfile", "keep.sh", "link", "sub/", "sub/deep/", "sub/deep/keep.log"]);
      expect(entries.find((e) => e.name === "keep.sh")!.mode).toBe(0o755);
      expect(entries.find((e) => e.name === "link")).toMatchObject({ type: "symlink", linkname: "keep.sh" });
      // The provider passes build.dockerfile as given to TrimBuildFilesFromExcludes: a .dockerignore
      // pattern "Dockerfile" then still excludes <context>/Dockerfile (the build would fail), as it does there.
      writeFileSync(join(ctx, ".dockerignore"), "Dockerfile\n");
      expect(prepareBuildContext(cwd, "assets/img/HASH", "assets/img/HASH/Dockerfile").entries.map((e) => e.name)).not.toContain("Dockerfile");
      writeFileSync(join(ctx, ".dockerignore"), "# comment\n*.env\n**/*.log\n!sub/deep/keep.log\n.dockerignore\n");
      // a Dockerfile outside the context travels under a random name, listed in .dockerignore
      writeFileSync(join(cwd, "Other.Dockerfile"), "FROM scratch\n");
      const outside = prepareBuildContext(cwd, "assets/img/HASH", "Other.Dockerfile");
      expect(outside.relDockerfile).toMatch(/^\.dockerfile\.[0-9a-f]{20}$/);
      expect(outside.entries.find((e) => e.name === outside.relDockerfile)).toMatchObject({ mode: 0o600 });
      expect(outside.entries.find((e) => e.name === ".dockerignore")!.content!.toString()).toContain(`\n${outside.relDockerfile}\n`);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });

  test("moby/patternmatcher semantics: last match wins, ! re-includes, parents count, ** spans directories", () => {
    const pm = new PatternMatcher(readDockerignore("\uFEFF# c\n /docs/ \n*.md\n!README.md\n**/tmp\nbuild/**\n"));
    expect(pm.matches("docs")).toBe(true);
    expect(pm.matches("docs/a.txt")).toBe(true);
    expect(pm.matches("x.md")).toBe(true);
    expect(pm.matches("README.md")).toBe(false);
    expect(pm.matches("sub/x.md")).toBe(false); // * does not cross /
    expect(pm.matches("a/b/tmp")).toBe(true);
    expect(pm.matches("tmp/file")).toBe(true);
    expect(pm.matches("build/out/x")).toBe(true);
    expect(pm.matches("src/main.ts")).toBe(false);
  });

  test("BuildKit progress (moby.buildkit.v1.StatusResponse) decodes: step names, output, errors", () => {
    // vertex {name: "RUN x", started}, log {msg: "line 1\n"}, vertex {error: "boom"}
    const field = (n: number, payload: Buffer) => Buffer.concat([Buffer.from([(n << 3) | 2, payload.length]), payload]);
    const ts = Buffer.from([0x08, 0x01]);
    const msg = Buffer.concat([field(1, Buffer.concat([field(3, Buffer.from("RUN x")), field(5, ts)])), field(3, field(4, Buffer.from("line 1\n"))), field(1, field(7, Buffer.from("boom")))]);
    expect(decodeBuildkitStatus(msg.toString("base64"))).toEqual({
      vertexes: [
        { name: "RUN x", cached: false, started: true, completed: false, error: "" },
        { name: "", cached: false, started: false, completed: false, error: "boom" },
      ],
      logs: ["line 1\n"],
      warnings: [],
    });
  });

  test("multiplexed streams split into stdout and stderr", () => {
    const frame = (t: number, s: string) => Buffer.concat([Buffer.from([t, 0, 0, 0, 0, 0, 0, Buffer.byteLength(s)]), Buffer.from(s)]);
    expect(demux(Buffer.concat([frame(1, "out1 "), frame(2, "err"), frame(1, "out2")]))).toEqual({ stdout: "out1 out2", stderr: "err", combined: "out1 errout2" });
  });
});

describe("test values (test-pki)", () => {
  test("random_password: length, classes, minimums", () => {
    for (let i = 0; i < 20; i++) {
      const p = randomPassword("random_password.x", { length: 20, special: false, min_lower: 1, min_upper: 1, min_numeric: 1 });
      expect(p).toMatch(/^[A-Za-z0-9]{20}$/);
      expect(p).toMatch(/[a-z]/);
      expect(p).toMatch(/[A-Z]/);
      expect(p).toMatch(/[0-9]/);
    }
    expect(randomPassword("random_password.x", { length: 6, upper: false, lower: false, numeric: false, override_special: "#" })).toBe("######");
    expect(() => randomPassword("random_password.x", { length: 2, min_upper: 2, min_numeric: 1 })).toThrow(/exceed length/);
  });

  test("tls: a CA (is_ca, its key usages) signs a CSR's subject and SANs with the declared usages", () => {
    const caKey = privateKeyPem("tls_private_key.ca", { algorithm: "ECDSA", ecdsa_curve: "P256" });
    expect(caKey).toMatch(/^-----BEGIN EC PRIVATE KEY-----/);
    expect(privateKeyPem("tls_private_key.r", { algorithm: "RSA", rsa_bits: 2048 })).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/);
    const ca = new X509Certificate(selfSignedCertPem("tls_self_signed_cert.ca", { is_ca_certificate: true, subject: [{ common_name: "test CA", organization: "pgharbor/x" }], validity_period_hours: 48, allowed_uses: ["cert_signing", "crl_signing"] }, caKey));
    expect(ca.ca).toBe(true);
    expect(ca.subject).toBe("CN=test CA\nO=pgharbor/x");
    const key = privateKeyPem("tls_private_key.s", { algorithm: "ECDSA", ecdsa_curve: "P256" });
    const csr = certRequestPem("tls_cert_request.s", { subject: [{ common_name: "db" }], dns_names: ["db", "localhost"], ip_addresses: ["127.0.0.1"] }, key);
    const cert = new X509Certificate(locallySignedCertPem("tls_locally_signed_cert.s", { validity_period_hours: 24, allowed_uses: ["digital_signature", "key_encipherment", "server_auth"] }, csr, ca.toString(), caKey));
    expect(cert.checkIssued(ca)).toBe(true);
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.subject).toBe("CN=db");
    expect(cert.subjectAltName).toBe("DNS:db, DNS:localhost, IP Address:127.0.0.1");
    expect(cert.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]);
    expect(cert.ca).toBe(false);
    expect(() => selfSignedCertPem("tls_self_signed_cert.x", { allowed_uses: ["flying"] }, caKey)).toThrow("tls_self_signed_cert.x: unknown allowed_uses value flying");
  });
});

describe("finding the engine (describeEngine)", () => {
  test("the socket comes from a unix:// DOCKER_HOST, else the default; a missing socket is a problem, named", () => {
    expect(engineSocket("unix:///run/user/docker.sock")).toBe("/run/user/docker.sock");
    expect(engineSocket(undefined)).toBe("/var/run/docker.sock");
    expect(engineSocket("tcp://10.0.0.1:2375")).toBe("/var/run/docker.sock");
    expect(engineProblem("/nonexistent/docker.sock")).toBe("no Docker engine socket at /nonexistent/docker.sock");
  });
});

describe("the base image's cross-process lock (ensureImageWith / withDirLock)", () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "applier-lock-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  test("concurrent callers: one builds, the others wait and find the image", async () => {
    let present = false;
    let builds = 0;
    let inside = 0;
    let maxInside = 0;
    const deps = {
      lockDir: join(dir, "lock"),
      pollMs: 10,
      exists: async () => present,
      build: async () => {
        builds++;
        inside++;
        maxInside = Math.max(maxInside, inside);
        await sleep(150);
        present = true;
        inside--;
      },
    };
    const results = await Promise.all([1, 2, 3, 4].map(() => ensureImageWith(deps)));
    expect(builds).toBe(1);
    expect(maxInside).toBe(1);
    expect(results.filter((r) => r === "built")).toHaveLength(1);
    expect(results.filter((r) => r === "present")).toHaveLength(3);
    expect(existsSync(deps.lockDir)).toBe(false);
    expect(await ensureImageWith(deps)).toBe("present");
  });

  test("a stale lock (old heartbeat) is broken; so is one whose owner process is gone", async () => {
    const lockDir = join(dir, "lock");
    mkdirSync(lockDir);
    writeFileSync(join(lockDir, "owner"), `${process.pid} old\n`);
    const old = new Date(Date.now() - 10 * 60_000);
    utimesSync(lockDir, old, old);
    const lines: string[] = [];
    expect(await withDirLock(lockDir, { staleMs: 60_000, pollMs: 10, log: (l) => lines.push(l) }, async () => "ran")).toBe("ran");
    expect(lines.join()).toMatch(/broke a stale lock/);

    mkdirSync(lockDir);
    writeFileSync(join(lockDir, "owner"), "2147483646 gone\n"); // no such process
    expect(await withDirLock(lockDir, { staleMs: 60_000, pollMs: 10 }, async () => "ran again")).toBe("ran again");
  });

  test("a live holder is waited for (and its heartbeat keeps its lock fresh); a failed build releases the lock", async () => {
    const lockDir = join(dir, "lock");
    const order: string[] = [];
    const holder = withDirLock(lockDir, { staleMs: 200, pollMs: 10 }, async () => {
      order.push("holder in");
      await sleep(500); // longer than staleMs: the heartbeat must keep it
      order.push("holder out");
    });
    await sleep(20);
    const waiter = withDirLock(lockDir, { staleMs: 200, pollMs: 10 }, async () => void order.push("waiter in"));
    await Promise.all([holder, waiter]);
    expect(order).toEqual(["holder in", "holder out", "waiter in"]);

    await expect(ensureImageWith({ lockDir, pollMs: 10, exists: async () => false, build: async () => Promise.reject(new Error("debootstrap failed")) })).rejects.toThrow("debootstrap failed");
    expect(existsSync(lockDir)).toBe(false);
    await expect(withDirLock(lockDir, { timeoutMs: 50, pollMs: 10 }, async () => withDirLock(lockDir, { timeoutMs: 50, pollMs: 10 }, async () => 1))).rejects.toThrow(/timed out waiting for the lock/);
  });
});
