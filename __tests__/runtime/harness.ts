/**
 * Runtime harness: runs the synthesised dev stack natively.
 *
 * It takes each docker_container of the synthesised JSON (uploads, env, entrypoint, command, volumes),
 * resolves the Terraform references it meets to test values, and does for each container what Docker
 * would: a filesystem (container paths mapped into a temporary root, volumes shared between the
 * containers that mount them), a network identity (its own loopback address; container names resolve
 * to it) and a process started as the image's user. The programs are the real ones: PostgreSQL,
 * pgBackRest, PgBouncer, the rendered scripts, and s3rver over HTTPS standing in for the S3 server.
 *
 * What it changes in the files, and why: absolute container paths (mount namespace), container
 * names (Docker DNS) and PostgreSQL/PgBouncer's wildcard listen address (network namespace: here the
 * containers share the loopback interface, so each listens on its own address). Nothing else.
 */
import { ChildProcess, execFileSync, spawn, spawnSync } from "child_process";
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { dirname, join } from "path";
import { randomBytes } from "crypto";
import { EnvironmentConfig } from "../../stacks/environments";
import { ExecOptions, Executor } from "../../cli/operations";
import { CONTAINER_PATHS } from "../../postgres-config/paths";
import { unliteral } from "../../constructs/terraform-text";
import { synthEnv, Json } from "../helpers";

export interface Tools {
  pgBin?: string;
  major?: number;
  missing: string[];
}

/** The PATH the harness gives every container process (after the PostgreSQL and stand-in bin dirs). */
const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Finds PostgreSQL (newest major installed), PgBouncer, pgBackRest, openssl, dash, the exporters, Python and age. */
export function findTools(): Tools {
  const missing: string[] = [];
  let pgBin: string | undefined;
  let major: number | undefined;
  const base = "/usr/lib/postgresql";
  if (existsSync(base)) {
    const majors = readdirSync(base)
      .map(Number)
      .filter((m) => m >= 15 && existsSync(join(base, String(m), "bin", "postgres")))
      .sort((a, b) => b - a);
    if (majors.length) {
      major = majors[0];
      pgBin = join(base, String(major), "bin");
    }
  }
  if (!pgBin) missing.push("postgresql-15 (or newer)");
  for (const [bin, pkg] of [
    ["pgbouncer", "pgbouncer"],
    ["pgbackrest", "pgbackrest"],
    ["openssl", "openssl"],
    ["dash", "dash"],
    ["prometheus-postgres-exporter", "prometheus-postgres-exporter"],
    ["python3", "python3"],
    ["age", "age"],
  ]) {
    if (spawnSync("sh", ["-c", `command -v ${bin}`], { env: { PATH: SYSTEM_PATH } }).status !== 0) missing.push(pkg);
  }
  // The containers' PATH, not the test runner's (which may lead to another Python, e.g. pyenv's).
  if (spawnSync("python3", ["-c", "import psycopg2"], { env: { PATH: SYSTEM_PATH } }).status !== 0) missing.push("python3-psycopg2");
  return { pgBin, major, missing };
}

/**
 * Registers runtime suites: when a tool is missing they are skipped with one loud line, except under
 * CI=true where a missing tool fails the run.
 */
export function describeRuntime(name: string, body: (tools: Required<Omit<Tools, "missing">>) => void): void {
  const tools = findTools();
  if (tools.missing.length) {
    const line = `RUNTIME SUITE "${name}" SKIPPED: missing ${tools.missing.join(", ")}. Install them: apt-get install ${tools.missing.join(" ")}`;
    if (process.env.CI === "true") {
      describe(name, () => test("runtime tools are installed (CI=true)", () => {
        throw new Error(line);
      }));
    } else {
      console.warn(`\n${"!".repeat(100)}\n${line}\n${"!".repeat(100)}\n`);
      describe.skip(name, () => test("skipped", () => undefined));
    }
    return;
  }
  describe(name, () => body({ pgBin: tools.pgBin!, major: tools.major! }));
}

interface Upload {
  path: string;
  content: string;
  executable: boolean;
}

interface Mount {
  volume: string;
  containerPath: string;
  readOnly: boolean;
}

export interface ContainerSpec {
  name: string;
  ip: string;
  env: Record<string, string>;
  uploads: Upload[];
  entrypoint: string[];
  command: string[];
  mounts: Mount[];
  /** Terraform type of the image: the pgharbor images, or a pulled one (the S3 server). */
  image: string;
}

/** Directories the pgharbor images (and the official image) create, owned by postgres. */
const IMAGE_DIRS = [
  CONTAINER_PATHS.pgbackrestSpool,
  CONTAINER_PATHS.pgbackrestLock,
  "/var/log/pgbackrest",
  "/var/lib/pgharbor",
  CONTAINER_PATHS.statusDir,
  CONTAINER_PATHS.restoreScratchDir,
  "/etc/pgbackrest",
  CONTAINER_PATHS.scriptsDir,
  CONTAINER_PATHS.socketDir,
  CONTAINER_PATHS.pgbouncerRunDir,
  CONTAINER_PATHS.secretsDir,
];

/** Container path prefixes the harness maps into the temporary root. */
const PATH_PREFIXES = [
  CONTAINER_PATHS.dataDir,
  CONTAINER_PATHS.socketDir,
  "/etc/postgresql",
  "/etc/pgbackrest",
  "/etc/pgharbor",
  "/etc/pgbouncer",
  "/etc/cron.d",
  CONTAINER_PATHS.scriptsDir,
  CONTAINER_PATHS.secretsDir,
  CONTAINER_PATHS.pgbouncerRunDir,
  CONTAINER_PATHS.pgbackrestSpool,
  CONTAINER_PATHS.pgbackrestLock,
  "/var/lib/pgharbor",
  "/var/log/pgbackrest",
].sort((a, b) => b.length - a.length);

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function postgresIds(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
  const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
  return { uid, gid };
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Stand-in for the official image's docker-entrypoint.sh: initdb on an empty PGDATA, then exec. */
const DOCKER_ENTRYPOINT = `#!/bin/sh
set -eu
if [ "\${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s\\n' "$POSTGRES_PASSWORD" > "$pwfile"
  # shellcheck disable=SC2086
  initdb --username=postgres --pwfile="$pwfile" $POSTGRES_INITDB_ARGS -D "$PGDATA" >/dev/null
  rm -f "$pwfile"
fi
exec "$@"
`;

export class Harness {
  public readonly root: string;
  public readonly json: Json;
  public readonly specs = new Map<string, ContainerSpec>();
  private readonly secrets = new Map<string, string>();
  private readonly procs = new Map<string, ChildProcess>();
  private readonly ids = postgresIds();
  private readonly ipOf = new Map<string, string>();
  private s3?: ChildProcess;
  private readonly laidOut = new Set<string>();
  private readonly side: ChildProcess[] = [];

  constructor(
    public readonly env: EnvironmentConfig,
    public readonly tools: { pgBin: string; major: number },
  ) {
    this.root = mkdtempSync(join(tmpdir(), "pgharbor-rt-"));
    // Whatever happens to the test run (a timeout, a crash), no server outlives it.
    const root = this.root;
    process.once("exit", () => spawnSync("pkill", ["-KILL", "-f", root]));
    chmodSync(this.root, 0o755);
    if (this.ids) chownSync(this.root, this.ids.uid, this.ids.gid);
    for (const d of ["bin", "logs", "volumes", "containers", "s3"]) this.mkdir(join(this.root, d));
    writeFileSync(join(this.root, "bin", "docker-entrypoint.sh"), DOCKER_ENTRYPOINT, { mode: 0o755 });
    // cron needs root and a real crontab directory; the harness runs the crontab's jobs itself.
    writeFileSync(join(this.root, "bin", "cron"), "#!/bin/sh\necho \"cron stand-in: the runtime harness runs the jobs\"\nexec sleep infinity\n", { mode: 0o755 });
    this.json = synthEnv(env);
    const containers = Object.values(this.json.resource!.docker_container) as Array<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
    containers.forEach((c, i) => this.ipOf.set(c.name, `127.77.${(process.pid % 200) + 1}.${i + 10}`));
    for (const c of containers) this.specs.set(c.name, this.spec(c));
  }

  /** A container of the stack by its role suffix ("primary", "replica-1", "pgbouncer", "backup", "s3"). */
  public name(role: string): string {
    return `pgharbor-${this.env.name}-${role}`;
  }

  public ip(role: string): string {
    return this.ipOf.get(this.name(role))!;
  }

  public spec(c: Record<string, any>): ContainerSpec { // eslint-disable-line @typescript-eslint/no-explicit-any
    const env: Record<string, string> = {};
    for (const e of (c.env as string[]) ?? []) {
      const i = e.indexOf("=");
      env[e.slice(0, i)] = this.resolve(e.slice(i + 1));
    }
    return {
      name: c.name,
      ip: this.ipOf.get(c.name)!,
      env,
      uploads: ((c.upload as Array<{ file: string; content: string; executable?: boolean }>) ?? []).map((u) => ({ path: u.file, content: this.resolve(u.content), executable: !!u.executable })),
      entrypoint: (c.entrypoint as string[]) ?? [],
      command: (c.command as string[]) ?? [],
      mounts: ((c.volumes as Array<{ volume_name: string; container_path: string; read_only?: boolean }>) ?? []).map((v) => ({ volume: this.resolve(v.volume_name), containerPath: v.container_path, readOnly: !!v.read_only })),
      image: String(c.image),
    };
  }

  /** Resolves Terraform references to test values; unknown references fail loudly. */
  public resolve(value: string): string {
    const out = value.replace(/(?<!\$)\$\{([a-z_]+)\.([A-Za-z0-9_-]+)\.([a-z_]+)\}/g, (ref, type: string, name: string, attr: string) => {
      const key = `${type}.${name}.${attr}`;
      if (type === "random_password" && attr === "result") {
        if (!this.secrets.has(key)) this.secrets.set(key, randomBytes(24).toString("base64").replace(/[^A-Za-z0-9]/g, "").slice(0, 24) + "Aa1");
        return this.secrets.get(key)!;
      }
      if (type === "tls_self_signed_cert" && attr === "cert_pem") return this.ca();
      if (type === "tls_locally_signed_cert" && attr === "cert_pem") return this.certificate(name);
      if (type === "tls_private_key" && attr === "private_key_pem") return this.privateKey(name);
      if (type === "docker_volume" && attr === "name") return String(this.json.resource!.docker_volume[name].name);
      if (type === "docker_container" && attr === "name") return String(this.json.resource!.docker_container[name].name);
      throw new Error(`runtime harness: no test value for Terraform reference ${ref}`);
    });
    return unliteral(out);
  }

  private readonly pems = new Map<string, string>();
  private tlsDir(): string {
    const d = join(this.root, "tls");
    if (!existsSync(d)) mkdirSync(d);
    return d;
  }
  private openssl(args: string[]): void {
    execFileSync("openssl", args, { cwd: this.tlsDir(), stdio: "pipe" });
  }

  /** The test CA standing in for every tls_self_signed_cert of the stack. */
  private ca(): string {
    if (!this.pems.has("ca")) {
      this.openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=pgharbor test CA"]);
      this.pems.set("ca", readFileSync(join(this.tlsDir(), "ca.crt"), "utf8"));
    }
    return this.pems.get("ca")!;
  }

  /** A test key standing in for tls_private_key.<name>. */
  private privateKey(name: string): string {
    const k = `key:${name}`;
    if (!this.pems.has(k)) {
      this.openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", `${name}.key`]);
      this.pems.set(k, readFileSync(join(this.tlsDir(), `${name}.key`), "utf8"));
    }
    return this.pems.get(k)!;
  }

  /**
   * A certificate standing in for tls_locally_signed_cert.<name>: its CSR's key and names, signed by
   * the test CA, plus the loopback address of every container it names (the harness's Docker DNS).
   */
  private certificate(name: string): string {
    const k = `cert:${name}`;
    if (this.pems.has(k)) return this.pems.get(k)!;
    const res = this.json.resource!;
    const csrName = /tls_cert_request\.([^.]+)\./.exec(String(res.tls_locally_signed_cert[name].cert_request_pem))![1];
    const csr = res.tls_cert_request[csrName] as { private_key_pem: string; dns_names?: string[]; ip_addresses?: string[] };
    const keyName = /tls_private_key\.([^.]+)\./.exec(csr.private_key_pem)![1];
    this.ca();
    writeFileSync(join(this.tlsDir(), `${keyName}.key`), this.privateKey(keyName));
    const dns = csr.dns_names ?? [];
    const ips = [...(csr.ip_addresses ?? []), ...dns.filter((d) => this.ipOf.has(d)).map((d) => this.ipOf.get(d)!)];
    // The address also as a DNS name: pgBackRest 2.45 matches the host only against DNS names, and
    // here the container's name was rewritten to its address (in Docker the name itself matches).
    const sans = [...dns.map((d) => `DNS:${d}`), ...ips.map((i) => `IP:${i}`), ...ips.map((i) => `DNS:${i}`)];
    writeFileSync(join(this.tlsDir(), `${name}.cnf`), `subjectAltName=${sans.join(",")}\nextendedKeyUsage=serverAuth\n`);
    this.openssl(["req", "-new", "-key", `${keyName}.key`, "-out", `${name}.csr`, "-subj", `/CN=${dns[0] ?? name}`]);
    this.openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${name}.crt`, "-days", "2", "-extfile", `${name}.cnf`]);
    this.pems.set(k, readFileSync(join(this.tlsDir(), `${name}.crt`), "utf8"));
    return this.pems.get(k)!;
  }

  /** Creates `p` (and missing parents, 0755) owned by the postgres user, `p` itself with `mode`. */
  private mkdir(p: string, mode = 0o755): void {
    const parent = dirname(p);
    if (!existsSync(parent)) this.mkdir(parent, 0o755);
    if (!existsSync(p)) mkdirSync(p);
    chmodSync(p, mode);
    if (this.ids) chownSync(p, this.ids.uid, this.ids.gid);
  }

  /** Where `containerPath` of container `name` lives on this machine (volume-aware). */
  public hostPath(name: string, containerPath: string): string {
    const spec = this.specs.get(name)!;
    const m = spec.mounts.filter((x) => containerPath === x.containerPath || containerPath.startsWith(`${x.containerPath}/`)).sort((a, b) => b.containerPath.length - a.containerPath.length)[0];
    if (m) return join(this.root, "volumes", m.volume) + containerPath.slice(m.containerPath.length);
    return join(this.root, "containers", name) + containerPath;
  }

  /** What Docker's namespaces give a container, applied to a text it receives. */
  public rewrite(name: string, text: string, file?: string): string {
    // Names first: the host paths written next contain container names themselves.
    const names = [...this.ipOf.keys()].sort((a, b) => b.length - a.length);
    let out = text.replace(new RegExp(`(?<![\\w-])(${names.map(escapeRe).join("|")})(?![\\w-])`, "g"), (n) => this.ipOf.get(n)!);
    // The whole path, not just its prefix: a volume may be mounted below a prefix (the scratch volume).
    const re = new RegExp(`(${PATH_PREFIXES.map(escapeRe).join("|")})(?=[/'"\\s:;,)=]|$)[^\\s'"\`:;,)=$*]*`, "gm");
    out = out.replace(re, (p) => this.hostPath(name, p));
    const ip = this.ipOf.get(name)!;
    // Listening on every interface: here the containers share one, so each takes its own address.
    out = out.replace(/^--web\.listen-address=:(\d+)$/, `--web.listen-address=${ip}:$1`);
    if (out === "0.0.0.0") out = ip;
    if (file?.endsWith("postgresql.conf")) out = out.replace(/^listen_addresses = '\*'$/m, `listen_addresses = '${ip}'`);
    if (file?.endsWith("pgbouncer.ini")) out = out.replace(/^listen_addr = 0\.0\.0\.0$/m, `listen_addr = ${ip}`);
    return out;
  }

  /** Lays out a container's filesystem: image directories, volumes, uploaded files. */
  public materialize(name: string): void {
    this.laidOut.add(name);
    const spec = this.specs.get(name)!;
    for (const m of spec.mounts) {
      const dir = join(this.root, "volumes", m.volume);
      if (!existsSync(dir)) this.mkdir(dir, m.containerPath === CONTAINER_PATHS.dataDir ? 0o700 : 0o775);
    }
    this.mkdir(join(this.root, "containers", name, "home"), 0o700);
    for (const d of IMAGE_DIRS) {
      const p = this.hostPath(name, d);
      if (!existsSync(p)) this.mkdir(p, d === CONTAINER_PATHS.secretsDir || d === CONTAINER_PATHS.pgbouncerRunDir ? 0o700 : 0o755);
    }
    for (const u of spec.uploads) {
      const p = this.hostPath(name, u.path);
      this.mkdir(dirname(p));
      writeFileSync(p, this.rewrite(name, u.content, u.path), { mode: u.executable ? 0o755 : 0o644 });
      chmodSync(p, u.executable ? 0o755 : 0o644);
      if (this.ids) chownSync(p, this.ids.uid, this.ids.gid);
    }
  }

  /** The container's environment as its processes see it. */
  public environment(name: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    const spec = this.specs.get(name)!;
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(spec.env)) env[k] = this.rewrite(name, v);
    return {
      ...env,
      PATH: `${join(this.root, "bin")}:${this.tools.pgBin}:${SYSTEM_PATH}`,
      HOME: join(this.root, "containers", name, "home"),
      LANG: "C.UTF-8",
      TZ: "UTC",
      ...extra,
    };
  }

  private logFile(name: string): string {
    return join(this.root, "logs", `${name}.log`);
  }

  public log(role: string): string {
    const f = this.logFile(this.name(role));
    return existsSync(f) ? readFileSync(f, "utf8") : "";
  }

  /** Starts a container's main process (entrypoint + command), as the image's user. */
  public start(role: string, argv?: string[]): ChildProcess {
    const name = this.name(role);
    const prev = this.procs.get(name);
    if (prev && prev.exitCode === null && prev.signalCode === null) throw new Error(`${name} already runs`);
    this.materialize(name);
    const spec = this.specs.get(name)!;
    const args = (argv ?? [...spec.entrypoint, ...spec.command]).map((a) => this.rewrite(name, a));
    const fd = openSync(this.logFile(name), "a");
    const child = spawn(args[0], args.slice(1), {
      env: this.environment(name),
      cwd: join(this.root, "containers", name, "home"),
      detached: true,
      stdio: ["ignore", fd, fd],
      uid: this.ids?.uid,
      gid: this.ids?.gid,
    });
    closeSync(fd);
    this.procs.set(name, child);
    return child;
  }

  /** The text a container receives at `path` (references resolved, before the harness's rewrite). */
  public uploaded(role: string, path: string): string {
    const u = this.specs.get(this.name(role))!.uploads.find((x) => x.path === path);
    if (!u) throw new Error(`${role} has no upload at ${path}`);
    return u.content;
  }

  /** Starts a side process (pgbench, a restored copy) in a container's context; stdout/stderr piped. */
  public spawnIn(role: string, argv: string[]): ChildProcess {
    const name = this.name(role);
    const args = argv.map((a) => this.rewrite(name, a));
    const child = spawn(args[0], args.slice(1), {
      env: this.environment(name),
      cwd: join(this.root, "containers", name, "home"),
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      uid: this.ids?.uid,
      gid: this.ids?.gid,
    });
    this.side.push(child);
    return child;
  }

  /** Runs a command inside a container's context to completion. */
  public exec(role: string, argv: string[], opts: { env?: Record<string, string>; timeoutMs?: number; input?: string } = {}): ExecResult {
    const name = this.name(role);
    if (!this.laidOut.has(name)) this.materialize(name);
    const args = argv.map((a) => this.rewrite(name, a));
    const r = spawnSync(args[0], args.slice(1), {
      env: this.environment(name, opts.env),
      cwd: join(this.root, "containers", name, "home"),
      uid: this.ids?.uid,
      gid: this.ids?.gid,
      encoding: "utf8",
      timeout: opts.timeoutMs ?? 120_000,
      input: opts.input,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: (r.stderr ?? "") + (r.error ? String(r.error) : "") };
  }

  /** exec that throws with the output when the command fails. */
  public run(role: string, argv: string[], opts: { env?: Record<string, string>; timeoutMs?: number; input?: string } = {}): string {
    const r = this.exec(role, argv, opts);
    if (r.code !== 0) throw new Error(`${argv.join(" ")} in ${role} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }

  /** psql as the superuser over the container's socket (peer authentication). */
  public sql(role: string, query: string, db = "postgres"): string {
    return this.run(role, ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", CONTAINER_PATHS.socketDir, "-U", "postgres", "-d", db, "-c", query]).trim();
  }

  /** The test value behind a random_password resource whose Terraform name starts with `prefix`. */
  public secret(prefix: string): string {
    const key = [...this.secrets.keys()].find((k) => k.startsWith(`random_password.${prefix}`));
    if (!key) throw new Error(`no secret ${prefix}`);
    return this.secrets.get(key)!;
  }

  public async waitFor(what: string, check: () => boolean, timeoutMs = 60_000, everyMs = 250, rethrow = false): Promise<number> {
    const start = Date.now();
    for (;;) {
      let ok = false;
      try {
        ok = check();
      } catch (e) {
        if (rethrow) throw e;
        ok = false;
      }
      if (ok) return Date.now() - start;
      if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }

  public async waitReady(role: string, timeoutMs = 90_000): Promise<number> {
    return this.waitFor(
      `${role} to accept connections`,
      () => {
        if (!this.running(role)) throw new Error(`${role} exited (${this.procs.get(this.name(role))?.exitCode}); its log:\n${this.log(role).slice(-3000)}`);
        return this.exec(role, ["pg_isready", "-q", "-h", CONTAINER_PATHS.socketDir, "-p", "5432"]).code === 0;
      },
      timeoutMs,
      250,
      true,
    );
  }

  /** Stops a container like `docker stop` with the image's stop signal (SIGINT: fast shutdown). */
  public async stop(role: string, signal: NodeJS.Signals = "SIGINT", timeoutMs = 60_000): Promise<void> {
    const name = this.name(role);
    const p = this.procs.get(name);
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const done = new Promise<void>((r) => p.once("exit", () => r()));
    try {
      process.kill(-p.pid!, signal);
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-p.pid!, "SIGKILL");
      } catch {
        /* gone */
      }
    }, timeoutMs);
    await done;
    clearTimeout(timer);
  }

  public running(role: string): boolean {
    const p = this.procs.get(this.name(role));
    return !!p && p.exitCode === null && p.signalCode === null;
  }

  /** GETs an exporter's /metrics (`role`'s address). */
  public async metrics(role: string, port: number): Promise<string> {
    const res = await fetch(`http://${this.ip(role)}:${port}/metrics`);
    if (!res.ok) throw new Error(`${role}:${port}/metrics answered ${res.status}`);
    return res.text();
  }

  /** The S3 stand-in and the primary, up and accepting connections: where every runtime suite begins. */
  public async startArchiveAndPrimary(): Promise<void> {
    await this.startS3();
    this.start("primary");
    await this.waitReady("primary");
  }

  /** Starts the S3 stand-in with the S3 container's own env and certificate files. */
  public async startS3(): Promise<void> {
    const name = this.name("s3");
    this.materialize(name);
    const spec = this.specs.get(name)!;
    const dir = join(this.root, "s3", "data");
    this.mkdir(dir);
    const fd = openSync(this.logFile(name), "a");
    this.s3 = spawn(process.execPath, [join(__dirname, "s3-server.js")], {
      env: {
        ...spec.env,
        PATH: process.env.PATH,
        NODE_PATH: join(__dirname, "..", "..", "node_modules"),
        S3_ADDRESS: spec.ip,
        S3_DIRECTORY: dir,
        S3_KEY_FILE: this.hostPath(name, "/etc/pgharbor/tls/s3.key"),
        S3_CERT_FILE: this.hostPath(name, "/etc/pgharbor/tls/s3.crt"),
      },
      cwd: join(__dirname, "..", ".."),
      detached: true,
      stdio: ["ignore", fd, fd],
    });
    closeSync(fd);
    await this.waitFor("the S3 server", () => this.log("s3").includes(`s3 ready on ${spec.ip}`), 20_000, 100);
  }

  public async stopS3(): Promise<void> {
    const p = this.s3;
    if (!p || p.exitCode !== null) return;
    const done = new Promise<void>((r) => p.once("exit", () => r()));
    process.kill(-p.pid!, "SIGKILL");
    await done;
    this.log("s3");
  }

  /** Everything stored in the bucket, as files of the S3 stand-in (object data included). */
  public bucketDir(): string {
    return join(this.root, "s3", "data", String(this.specs.get(this.name("s3"))!.env.S3_BUCKET));
  }

  public bucketKeys(prefix = ""): string[] {
    const dir = this.bucketDir();
    if (!existsSync(dir)) return [];
    const out: string[] = [];
    const walk = (d: string, rel: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const r = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) walk(join(d, e.name), r);
        else if (e.name.endsWith("._S3rver_object")) out.push(r.replace(/\._S3rver_object$/, ""));
      }
    };
    walk(dir, "");
    return out.filter((k) => k.startsWith(prefix)).sort();
  }

  /** Stops everything and removes the temporary root (kept with PGHARBOR_KEEP=1 for debugging). */
  public async teardown(): Promise<void> {
    for (const [name, p] of this.procs) {
      if (p.exitCode === null && p.signalCode === null) {
        await this.stop(name.replace(`pgharbor-${this.env.name}-`, ""), "SIGINT", 20_000).catch(() => undefined);
      }
    }
    await this.stopS3().catch(() => undefined);
    for (const p of this.side) if (p.exitCode === null) try { process.kill(-p.pid!, "SIGKILL"); } catch { /* gone */ }
    // Stray processes (e.g. pgBackRest's async archiver) still holding the root.
    spawnSync("pkill", ["-KILL", "-f", this.root]);
    if (process.env.PGHARBOR_KEEP !== "1") rmSync(this.root, { recursive: true, force: true });
  }
}

/** Writes a new age identity to dir/name (age-keygen) and returns its public key (the recipient). */
export function ageIdentity(dir: string, name: string): string {
  execFileSync("age-keygen", ["-o", join(dir, name)], { stdio: "ignore" });
  return /public key: (age1\w+)/.exec(readFileSync(join(dir, name), "utf8"))![1];
}

/** The operations CLI's Executor on the harness: the same code path as `docker exec` on a host. */
export function harnessExecutor(h: Harness): Executor {
  return {
    exec: async (role, argv, o?: ExecOptions) => {
      const r = h.exec(role, argv, { timeoutMs: o?.timeoutMs, input: o?.input });
      for (const line of r.stderr.split("\n").filter(Boolean)) o?.onStderr?.(line);
      return r;
    },
  };
}
