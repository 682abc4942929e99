/**
 * What the runtime suites share: synthesise an environment the way `cdktf synth` does, apply it to the
 * Docker engine with the applier (the dev S3 server replaced by the stand-in, the one substitution),
 * and the clients the scenarios use: psql in the containers, the bucket as the stand-in stores it,
 * the operations CLI through its production executor (`docker exec`), and application clients on the
 * host through the published PgBouncer port.
 */
import { createHash } from "crypto";
import { execFileSync } from "child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { Client } from "pg";
import { buildApp } from "../../stacks/app";
import { EnvironmentConfig } from "../../stacks/environments";
import { DockerExecutor, main as cliMain } from "../../cli/main";
import { CONTAINER_PATHS as P, STANZA } from "../../postgres-config/paths";
import { Deployment, StandIn } from "./applier";
import { ensureBaseImage } from "./engine";

const STANDIN_DIR = join(__dirname, "s3-standin");
const NODE_MODULES = join(__dirname, "..", "..", "node_modules");

/** The Docker daemon the suites apply to: the local engine (the stack's dockerHost for dev). */
export const ENGINE_HOST = "unix:///var/run/docker.sock";

function standinTag(): string {
  const h = createHash("sha256");
  for (const f of readdirSync(STANDIN_DIR).sort()) h.update(f).update(readFileSync(join(STANDIN_DIR, f)));
  return `pgharbor-test/s3-standin:${h.digest("hex").slice(0, 16)}`;
}

/**
 * The dev S3 server (pgharbor's image on top of SeaweedFS, pulled from Docker Hub on a deploy host)
 * cannot be built here: no registry. The stand-in runs in its place: same container name, network
 * alias, environment (the three identities, the bucket), uploaded certificate and key, data volume and
 * restart policy; s3rver with pgharbor's checks (SigV4 signatures, Content-MD5 and x-amz-checksum-*,
 * and, like a bucket with S3 Object Lock, no upload without one of them).
 */
export const S3_STANDIN: StandIn = {
  reason: "SeaweedFS cannot be pulled here (no container registry): an s3rver-based server that verifies SigV4, checksums and Object Lock's checksum rule runs under the S3 container's name",
  matches: (image) => image.name.startsWith("pgharbor/seaweedfs:"),
  image: { tag: standinTag(), context: STANDIN_DIR },
  container: () => ({
    entrypoint: ["node", "/standin/app/server.js"],
    command: [],
    healthcheck: { test: ["CMD", "node", "/standin/app/healthcheck.js"], interval: "5s", timeout: "4s", retries: 6, startPeriod: "10s" },
    extraBinds: [`${STANDIN_DIR}:/standin/app:ro`, `${NODE_MODULES}:/standin/node_modules:ro`],
    extraEnv: ["S3_OBJECT_LOCK=1", "S3_DIRECTORY=/data"],
  }),
};

export interface RuntimeStack {
  env: EnvironmentConfig;
  d: Deployment;
  /** pgharbor-<env>-<role> */
  name(role: string): string;
  outdir: string;
}

/** Synthesises `env` into a fresh cdktf.out (assets included) and applies its stack to the engine. */
export async function deployStack(env: EnvironmentConfig, log: (line: string) => void = () => undefined): Promise<RuntimeStack> {
  // The images build FROM debian:trixie-slim: debootstrapped here when it is missing (no registry).
  await ensureBaseImage();
  const outdir = mkdtempSync(join(tmpdir(), "pgharbor-rt-out-"));
  const app = buildApp({ outdir, environments: [env] });
  app.synth();
  const stackDir = join(outdir, "stacks", env.name);
  await removeLeftovers(stackDir);
  const d = await Deployment.apply({ stackDir, standIns: [S3_STANDIN], log });
  return { env, d, outdir, name: (role) => `pgharbor-${env.name}-${role}` };
}

/**
 * `cdktf deploy` of a changed environment over a running one: synthesised again, then what changed
 * applied (Deployment.update: containers only). Returns the containers replaced, created, deleted.
 */
export async function redeployStack(s: RuntimeStack, env: EnvironmentConfig): Promise<{ replaced: string[]; created: string[]; deleted: string[] }> {
  const outdir = mkdtempSync(join(tmpdir(), "pgharbor-rt-out-"));
  try {
    const app = buildApp({ outdir, environments: [env] });
    app.synth();
    return await s.d.update({ stackDir: join(outdir, "stacks", env.name) });
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** Containers, volumes and the network of an earlier run of the same environment that did not clean up. */
async function removeLeftovers(stackDir: string): Promise<void> {
  const json = JSON.parse(readFileSync(join(stackDir, "cdk.tf.json"), "utf8"));
  const names = (type: string) => Object.values((json.resource?.[type] ?? {}) as Record<string, { name: string }>).map((r) => r.name);
  const quiet = (args: string[]) => {
    try {
      execFileSync("docker", args, { stdio: "ignore" });
    } catch {
      /* not there */
    }
  };
  for (const c of names("docker_container")) quiet(["rm", "-f", "-v", c]);
  for (const v of names("docker_volume")) quiet(["volume", "rm", "-f", v]);
  for (const n of names("docker_network")) quiet(["network", "rm", n]);
}

export async function teardown(s: RuntimeStack | undefined): Promise<void> {
  if (!s) return;
  if (process.env.PGHARBOR_KEEP === "1") {
    console.warn(`PGHARBOR_KEEP=1: the ${s.env.name} stack keeps running; remove it with docker rm -f $(docker ps -aq --filter name=pgharbor-${s.env.name}-)`);
    return;
  }
  await s.d.destroy();
  rmSync(s.outdir, { recursive: true, force: true });
}

/** psql as the postgres superuser over a PostgreSQL container's socket (peer authentication). */
export async function sql(s: RuntimeStack, role: string, query: string, db = "postgres"): Promise<string> {
  const r = await s.d.exec(s.name(role), ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", P.socketDir, "-U", "postgres", "-d", db, "-c", query], { user: "postgres" });
  if (r.code !== 0) throw new Error(`psql on ${role}/${db} failed (${r.code}): ${r.stderr}\n${query}`);
  return r.stdout.trim();
}

/** A command in a container that must succeed; its stdout. */
export async function run(s: RuntimeStack, role: string, argv: string[], o: { user?: string; timeoutMs?: number; input?: string } = {}): Promise<string> {
  const r = await s.d.exec(s.name(role), argv, o);
  if (r.code !== 0) throw new Error(`${argv.join(" ")} in ${role} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Object keys in the bucket, as the stand-in stores them in its data volume. */
export async function bucketKeys(s: RuntimeStack, prefix = ""): Promise<string[]> {
  const bucket = bucketName(s);
  const out = await run(s, "s3", ["find", `/data/${bucket}`, "-type", "f", "-name", "*._S3rver_object"]);
  return out
    .split("\n")
    .filter(Boolean)
    .map((f) => f.slice(`/data/${bucket}/`.length).replace(/\._S3rver_object$/, ""))
    .filter((k) => k.startsWith(prefix))
    .sort();
}

/** The stored bytes of an object (what S3 holds at rest). */
export async function bucketObject(s: RuntimeStack, key: string): Promise<Buffer> {
  return Buffer.from(await run(s, "s3", ["base64", "-w0", `/data/${bucketName(s)}/${key}._S3rver_object`]), "base64");
}

export function bucketName(s: RuntimeStack): string {
  return s.env.archive.kind === "local-s3" ? (s.env.archive.bucketName ?? `pgharbor-${s.env.name}-wal`) : "";
}

/** WAL segment names archived in the bucket (any timeline). */
export async function walSegments(s: RuntimeStack): Promise<string[]> {
  return [...new Set((await bucketKeys(s, `pgharbor/${s.env.name}/archive/${STANZA}/`)).map((k) => /\/([0-9A-F]{24})-[0-9a-f]{40}/.exec(k)?.[1]).filter((x): x is string => !!x))].sort();
}

/** The operations CLI through its production executor: `docker --host <engine> exec` into the environment's containers. */
export function cli(s: RuntimeStack, answer = false) {
  return async (...argv: string[]) => {
    let out = "";
    let err = "";
    const code = await cliMain([...argv, "--env", s.env.name], (env) => new DockerExecutor(env, ENGINE_HOST), (t) => (out += t), (t) => (err += t), async () => answer, [s.env]);
    return { code, out, err };
  };
}

/** DATABASE_URL / DATABASE_READ_URL as an application on the host gets them, verifying the server with the CA output. */
export function verifiedUrl(s: RuntimeStack, output: "DATABASE_URL" | "DATABASE_READ_URL"): string {
  const url = new URL(s.d.output(output));
  const caFile = join(s.outdir, "ca.pem");
  writeFileSync(caFile, s.d.output("ca_cert_pem"));
  url.searchParams.set("sslmode", "verify-full");
  url.searchParams.set("sslrootcert", caFile);
  return url.toString();
}

/** One query as an application would run it, through PgBouncer's published port. */
export async function appQuery(url: string, query: string, params: unknown[] = []): Promise<Array<Record<string, unknown>>> {
  const c = new Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await c.connect();
  try {
    return (await c.query(query, params)).rows;
  } finally {
    await c.end();
  }
}

/**
 * An application writing through DATABASE_URL: one row per commit, each id recorded only once the
 * commit was acknowledged; reconnects after any error (a restarting primary) and keeps going.
 */
export class AckedWriter {
  public readonly acked: number[] = [];
  /** When each acknowledgement arrived (Date.now()), in step with `acked`. */
  public readonly ackTimes: number[] = [];
  public errors = 0;
  /** The first errors (time, message), for the scenario's report: what the application saw. */
  public readonly errorLog: Array<[number, string]> = [];
  private next = 1;
  private stopped = false;
  private done?: Promise<void>;

  /**
   * `patient`: an application that waits for PgBouncer rather than giving up after 3 s: 15 s to
   * connect (a login waits in PgBouncer while no server can be reached), 30 s per statement, and a
   * connection kept after a failed statement as long as PgBouncer keeps it open. What it measures
   * is the database's write gap, not the client's retry rhythm.
   */
  constructor(
    private readonly url: string,
    private readonly table: string,
    private readonly everyMs = 50,
    private readonly o: { patient?: boolean } = {},
  ) {}

  start(): this {
    this.done = this.loop();
    return this;
  }

  private async loop(): Promise<void> {
    let client: Client | undefined;
    let closed = false;
    while (!this.stopped) {
      try {
        if (!client) {
          client = new Client({ connectionString: this.url, connectionTimeoutMillis: this.o.patient ? 15000 : 3000, query_timeout: this.o.patient ? 30000 : 10000 });
          closed = false;
          client.on("error", () => (closed = true));
          client.on("end", () => (closed = true));
          await client.connect();
        }
        const id = this.next++;
        await client.query(`INSERT INTO ${this.table} (id) VALUES ($1)`, [id]);
        this.acked.push(id);
        this.ackTimes.push(Date.now());
      } catch (e) {
        this.errors++;
        if (this.errorLog.length < 40) this.errorLog.push([Date.now(), e instanceof Error ? e.message : String(e)]);
        // A statement that timed out may still be running on the connection: never reuse that one.
        if (!this.o.patient || closed || /timeout/i.test(String(e))) {
          await client?.end().catch(() => undefined);
          client = undefined;
        }
        await new Promise((r) => setTimeout(r, this.o.patient ? 50 : 200));
      }
      await new Promise((r) => setTimeout(r, this.everyMs));
    }
    await client?.end().catch(() => undefined);
  }

  async stop(): Promise<number[]> {
    this.stopped = true;
    await this.done;
    return this.acked;
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it is true; returns the milliseconds it took. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 60_000, everyMs = 500): Promise<number> {
  const start = Date.now();
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return Date.now() - start;
    } catch (e) {
      last = e;
    }
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await sleep(everyMs);
  }
}

/** Writes a new age identity to dir/name (age-keygen) and returns its public key (the recipient). */
export function ageIdentity(dir: string, name: string): string {
  execFileSync("age-keygen", ["-o", join(dir, name)], { stdio: "ignore" });
  return /public key: (age1\w+)/.exec(readFileSync(join(dir, name), "utf8"))![1];
}
