/**
 * The Docker engine side of the runtime applier: finding the engine, registering suites that need
 * it, the base image (debootstrap, under a cross-process lock), build contexts as the provider
 * sends them (.dockerignore semantics of moby/patternmatcher), and demultiplexing of log/exec
 * streams.
 */
import { spawn, spawnSync } from "child_process";
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, utimesSync, writeFileSync, existsSync } from "fs";
import { tmpdir } from "os";
import { posix, join } from "path";
import { randomBytes } from "crypto";
import { createGzip } from "zlib";
import { Readable } from "stream";
import * as tarStream from "tar-stream";
import * as Dockerode from "dockerode";

// ---------------------------------------------------------------------------------------------
// The engine

/** The engine's socket: DOCKER_HOST when it is a unix:// address, else the default socket. */
export function engineSocket(host: string | undefined = process.env.DOCKER_HOST): string {
  if (host && host.startsWith("unix://")) return host.slice("unix://".length);
  return "/var/run/docker.sock";
}

/** Why the engine cannot be used (undefined when `GET /_ping` answers OK). Synchronous: suites are registered synchronously. */
export function engineProblem(socket = engineSocket()): string | undefined {
  if (process.env.DOCKER_HOST && !process.env.DOCKER_HOST.startsWith("unix://")) {
    return `DOCKER_HOST=${process.env.DOCKER_HOST} is not a unix socket; the applier talks to a local engine`;
  }
  if (!existsSync(socket)) return `no Docker engine socket at ${socket}`;
  const script = `require("http").get({ socketPath: ${JSON.stringify(socket)}, path: "/_ping", timeout: 4000 }, (r) => process.exit(r.statusCode === 200 ? 0 : 2)).on("error", (e) => { console.error(e.message); process.exit(3); })`;
  const r = spawnSync(process.execPath, ["-e", script], { timeout: 6000, encoding: "utf8" });
  if (r.status === 0) return undefined;
  return `the Docker engine at ${socket} does not answer /_ping (${(r.stderr || "").trim() || `exit ${r.status ?? r.signal}`})`;
}

/**
 * Registers a jest suite that needs a Docker engine. Without one: one loud skip line and
 * describe.skip; under CI=true a failing test instead, so CI can never pass by skipping.
 */
export function describeEngine(name: string, body: () => void): void {
  const problem = engineProblem();
  if (!problem) {
    describe(name, body);
    return;
  }
  const line = `ENGINE SUITE "${name}" SKIPPED: ${problem}. Start one: dockerd >/tmp/dockerd.log 2>&1 & (Debian package docker.io)`;
  if (process.env.CI === "true") {
    describe(name, () =>
      test("a Docker engine is reachable (CI=true)", () => {
        throw new Error(line);
      }),
    );
    return;
  }
  console.warn(`\n${"!".repeat(100)}\n${line}\n${"!".repeat(100)}\n`);
  describe.skip(name, () => test("skipped", () => undefined));
}

// ---------------------------------------------------------------------------------------------
// A cross-process lock: an atomic mkdir, with a heartbeat and stale-lock breaking

export interface LockOptions {
  /** A lock whose heartbeat is older than this (or whose owner process is gone) is broken. */
  staleMs?: number;
  pollMs?: number;
  /** Give up waiting after this long. */
  timeoutMs?: number;
  log?: (line: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function ownerAlive(lockDir: string): boolean {
  try {
    const pid = Number(readFileSync(join(lockDir, "owner"), "utf8").split(" ")[0]);
    if (!Number.isInteger(pid) || pid <= 0) return true; // not written yet: trust the heartbeat
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/**
 * Runs `fn` holding the lock `lockDir` (mkdir is atomic across processes). The holder touches the
 * directory every staleMs/4; a waiter breaks a lock whose heartbeat is older than staleMs or whose
 * owner pid is dead, by renaming it away first (so only one waiter breaks it).
 */
export async function withDirLock<T>(lockDir: string, o: LockOptions, fn: () => Promise<T>): Promise<T> {
  const staleMs = o.staleMs ?? 60_000;
  const pollMs = o.pollMs ?? 250;
  const deadline = Date.now() + (o.timeoutMs ?? 30 * 60_000);
  for (;;) {
    try {
      mkdirSync(lockDir);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    let age = 0;
    try {
      age = Date.now() - statSync(lockDir).mtimeMs;
    } catch {
      continue; // released meanwhile
    }
    if (age > staleMs || !ownerAlive(lockDir)) {
      const aside = `${lockDir}.stale-${randomBytes(4).toString("hex")}`;
      try {
        renameSync(lockDir, aside);
        rmSync(aside, { recursive: true, force: true });
        o.log?.(`lock ${lockDir}: broke a stale lock (heartbeat ${Math.round(age / 1000)}s old)`);
      } catch {
        // another waiter broke it first
      }
      continue;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for the lock ${lockDir}`);
    await sleep(pollMs);
  }
  writeFileSync(join(lockDir, "owner"), `${process.pid} ${new Date().toISOString()}\n`);
  const beat = setInterval(() => {
    const now = new Date();
    try {
      utimesSync(lockDir, now, now);
    } catch {
      // broken by someone who judged it stale: nothing to do but finish
    }
  }, Math.max(50, Math.floor(staleMs / 4)));
  try {
    return await fn();
  } finally {
    clearInterval(beat);
    rmSync(lockDir, { recursive: true, force: true });
  }
}

export interface EnsureImageDeps extends LockOptions {
  exists: () => Promise<boolean>;
  build: () => Promise<void>;
  lockDir: string;
}

/** Builds an image once across processes: checks, takes the lock, checks again, builds. */
export async function ensureImageWith(d: EnsureImageDeps): Promise<"present" | "built"> {
  if (await d.exists()) return "present";
  return withDirLock(d.lockDir, d, async () => {
    if (await d.exists()) return "present"; // another process built it while we waited
    await d.build();
    if (!(await d.exists())) throw new Error("the image build finished but the image is not there");
    return "built";
  });
}

const lastLines = (text: string, n = 50) => text.split("\n").filter((l) => l.trim()).slice(-n).join("\n");

/**
 * Makes sure `tag` (default debian:trixie-slim) exists. It cannot be pulled here (no registry), so
 * when missing it is made with `debootstrap --variant=minbase <suite> <dir> <mirror>` and imported as
 * `tar -C dir -c . | docker import - <tag>` (through the engine API). The suite is taken from the tag
 * (`trixie-slim` → trixie) unless given. Needs root and the debootstrap package.
 */
export async function ensureBaseImage(
  tag = "debian:trixie-slim",
  o: { suite?: string; mirror?: string; docker?: Dockerode; log?: (line: string) => void } = {},
): Promise<"present" | "built"> {
  const docker = o.docker ?? new Dockerode({ socketPath: engineSocket() });
  const exists = async () => {
    try {
      await docker.getImage(tag).inspect();
      return true;
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return false;
      throw e;
    }
  };
  const suite = o.suite ?? (tag.split(":")[1] ?? "").split("-")[0];
  if (!suite) throw new Error(`cannot tell the Debian suite from the tag ${tag}: pass { suite }`);
  const mirror = o.mirror ?? "http://deb.debian.org/debian";
  return ensureImageWith({
    lockDir: join(tmpdir(), `pgharbor-base-image-${tag.replace(/[^A-Za-z0-9_.-]/g, "_")}.lock`),
    staleMs: 120_000,
    log: o.log,
    exists,
    build: async () => {
      // A registry, where one is reachable, is the first choice: the official image.
      try {
        const pulled = await followProgress(docker, await docker.pull(tag));
        if (!pulled.error && (await exists())) {
          o.log?.(`ensureBaseImage: pulled ${tag}`);
          return;
        }
      } catch (e) {
        o.log?.(`ensureBaseImage: ${tag} cannot be pulled (${(e as Error).message.split("\n")[0]}); building it with debootstrap`);
      }
      if (process.getuid?.() !== 0) throw new Error(`ensureBaseImage(${tag}): debootstrap needs root; run the tests as root or build the image by hand`);
      if (spawnSync("sh", ["-c", "command -v debootstrap"]).status !== 0) {
        throw new Error(`ensureBaseImage(${tag}): the image is missing and cannot be pulled here; building it needs the Debian package "debootstrap" (apt-get install debootstrap)`);
      }
      const dir = mkdtempSync(join(tmpdir(), "pgharbor-debootstrap-"));
      try {
        o.log?.(`ensureBaseImage: debootstrap --variant=minbase ${suite} ${dir} ${mirror}`);
        const r = spawnSync("debootstrap", ["--variant=minbase", suite, dir, mirror], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
        if (r.status !== 0) throw new Error(`debootstrap ${suite} failed (exit ${r.status ?? r.signal}):\n${lastLines(`${r.stdout}\n${r.stderr}`)}`);
        const [repo, version] = splitTag(tag);
        const tar = spawn("tar", ["-C", dir, "-c", "."], { stdio: ["ignore", "pipe", "pipe"] });
        let tarErr = "";
        tar.stderr.on("data", (b) => (tarErr += b));
        const stream = await docker.importImage(tar.stdout as unknown as NodeJS.ReadableStream, { repo, tag: version });
        const out = await followProgress(docker, stream);
        const code: number = await new Promise((res) => (tar.exitCode !== null ? res(tar.exitCode) : tar.on("close", (c) => res(c ?? 1))));
        if (code !== 0) throw new Error(`tar -C ${dir} -c . failed: ${tarErr}`);
        if (out.error) throw new Error(`docker import ${tag} failed: ${out.error}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  });
}

export function splitTag(name: string): [string, string] {
  const slash = name.lastIndexOf("/");
  const colon = name.lastIndexOf(":");
  return colon > slash ? [name.slice(0, colon), name.slice(colon + 1)] : [name, "latest"];
}

// ---------------------------------------------------------------------------------------------
// Progress streams (build, import)

export interface Progress {
  lines: string[];
  error?: string;
  /** The image ID a BuildKit build reports (moby.image.id), or a classic build's "Successfully built". */
  imageId?: string;
}

type ProgressEvent = { id?: string; stream?: string; status?: string; error?: string; errorDetail?: { message?: string }; aux?: unknown };
/** Protocol-buffer fields of one message: field number → raw values (varints as numbers, length-delimited as bytes). */
function protoFields(buf: Buffer): Map<number, Array<number | Buffer>> {
  const fields = new Map<number, Array<number | Buffer>>();
  let i = 0;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (;;) {
      const b = buf[i++];
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
  };
  while (i < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    let value: number | Buffer;
    if (wire === 0) value = varint();
    else if (wire === 2) {
      const len = varint();
      value = buf.subarray(i, i + len);
      i += len;
    } else if (wire === 1) {
      value = buf.subarray(i, i + 8);
      i += 8;
    } else if (wire === 5) {
      value = buf.subarray(i, i + 4);
      i += 4;
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
    if (!fields.has(field)) fields.set(field, []);
    fields.get(field)!.push(value);
  }
  return fields;
}

/**
 * BuildKit's progress (moby.buildkit.v1.StatusResponse, base64 in the aux of "moby.buildkit.trace"):
 * vertexes (3 name, 4 cached, 5 started, 6 completed, 7 error), logs (4 msg), warnings (3 short).
 */
export function decodeBuildkitStatus(base64: string): { vertexes: Array<{ name: string; cached: boolean; started: boolean; completed: boolean; error: string }>; logs: string[]; warnings: string[] } {
  const top = protoFields(Buffer.from(base64, "base64"));
  const str = (f: Map<number, Array<number | Buffer>>, n: number) => ((f.get(n)?.[0] as Buffer | undefined) ?? Buffer.alloc(0)).toString();
  const vertexes = (top.get(1) ?? []).map((b) => {
    const f = protoFields(b as Buffer);
    return { name: str(f, 3), cached: f.get(4)?.[0] === 1, started: f.has(5), completed: f.has(6), error: str(f, 7) };
  });
  const logs = (top.get(3) ?? []).map((b) => str(protoFields(b as Buffer), 4));
  const warnings = (top.get(4) ?? []).map((b) => str(protoFields(b as Buffer), 3));
  return { vertexes, logs, warnings };
}

/**
 * Reads a JSON-message stream (build, pull, import) to its end: classic messages (stream/status/error)
 * and BuildKit's trace messages (moby.buildkit.trace: steps, their output, errors; moby.image.id).
 */
export function followProgress(docker: Dockerode, stream: NodeJS.ReadableStream): Promise<Progress> {
  const out: Progress = { lines: [] };
  const fail = (message: string) => {
    out.error ??= message;
    out.lines.push(`ERROR: ${message}`);
  };
  return new Promise((resolve) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null) => {
        if (err) fail(err.message);
        resolve(out);
      },
      (e: ProgressEvent) => {
        if (e.id === "moby.buildkit.trace" && typeof e.aux === "string") {
          const st = decodeBuildkitStatus(e.aux);
          for (const v of st.vertexes) {
            if (v.error) fail(v.error);
            else if (v.name && v.started && !v.completed) out.lines.push(`#${v.name}`);
            else if (v.name && v.completed && v.cached) out.lines.push(`#${v.name}: CACHED`);
          }
          for (const l of st.logs) for (const line of l.split("\n")) if (line.trim()) out.lines.push(line);
          for (const w of st.warnings) out.lines.push(`WARNING: ${w}`);
          return;
        }
        if (e.id === "moby.image.id" && e.aux && typeof e.aux === "object") {
          out.imageId = (e.aux as { ID?: string }).ID;
          return;
        }
        if (e.stream) {
          for (const l of e.stream.split("\n")) if (l.trim()) out.lines.push(l);
          const built = /Successfully built ([0-9a-f]+)/.exec(e.stream);
          if (built) out.imageId = built[1];
        }
        if (e.status) out.lines.push(e.status);
        if (e.error || e.errorDetail) fail(e.errorDetail?.message ?? e.error ?? "error");
      },
    );
  });
}

// ---------------------------------------------------------------------------------------------
// Multiplexed streams (logs, exec without a TTY)

/** Splits Docker's multiplexed stream format (8-byte headers: stream type, 0,0,0, big-endian length). */
export function demux(buf: Buffer): { stdout: string; stderr: string; combined: string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const all: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const type = buf[i];
    const len = buf.readUInt32BE(i + 4);
    const chunk = buf.subarray(i + 8, i + 8 + len);
    if (type === 2) err.push(chunk);
    else out.push(chunk);
    all.push(chunk);
    i += 8 + len;
  }
  return { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), combined: Buffer.concat(all).toString() };
}

// ---------------------------------------------------------------------------------------------
// Build contexts: moby/patternmatcher and go-archive's TarWithOptions, as the provider uses them

/** Go's filepath.Clean for slash paths. */
export function cleanPath(p: string): string {
  if (p === "") return ".";
  const abs = p.startsWith("/");
  const out: string[] = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length && out[out.length - 1] !== "..") out.pop();
      else if (!abs) out.push("..");
    } else out.push(part);
  }
  const s = out.join("/");
  return abs ? `/${s}` : s || ".";
}

/** ignorefile.ReadAll (moby/patternmatcher): the patterns of a .dockerignore. */
export function readDockerignore(text: string): string[] {
  const out: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    let line = i === 0 ? raw.replace(/^\uFEFF/, "") : raw;
    if (line.startsWith("#")) return;
    line = line.trim();
    if (!line) return;
    const invert = line[0] === "!";
    if (invert) line = line.slice(1).trim();
    if (line.length > 0) {
      line = cleanPath(line);
      if (line.length > 1 && line[0] === "/") line = line.slice(1);
    }
    out.push(invert ? `!${line}` : line);
  });
  return out;
}

interface Pattern {
  text: string;
  exclusion: boolean;
  re: RegExp;
}

/** moby/patternmatcher's PatternMatcher: last matching pattern wins, `!` re-includes, a match on a parent dir counts. */
export class PatternMatcher {
  readonly patterns: Pattern[] = [];
  constructor(patterns: string[]) {
    for (let p of patterns) {
      p = p.trim();
      if (!p) continue;
      p = cleanPath(p);
      let exclusion = false;
      if (p[0] === "!") {
        if (p.length === 1) throw new Error('illegal exclusion pattern: "!"');
        exclusion = true;
        p = p.slice(1);
      }
      this.patterns.push({ text: p, exclusion, re: PatternMatcher.compile(p) });
    }
  }

  get exclusions(): boolean {
    return this.patterns.some((p) => p.exclusion);
  }

  static compile(p: string): RegExp {
    let re = "^";
    for (let i = 0; i < p.length; i++) {
      const ch = p[i];
      if (ch === "*") {
        if (p[i + 1] === "*") {
          i++;
          if (p[i + 1] === "/") i++;
          re += i + 1 >= p.length ? ".*" : "(.*/)?";
        } else re += "[^/]*";
      } else if (ch === "?") re += "[^/]";
      else if (".+()|{}$^".includes(ch)) re += `\\${ch}`;
      else if (ch === "\\") {
        if (i + 1 < p.length) re += `\\${p[++i]}`;
        else re += "\\\\";
      } else re += ch;
    }
    return new RegExp(`${re}$`);
  }

  /** MatchesOrParentMatches. */
  matches(file: string): boolean {
    const parent = posix.dirname(file);
    const parentDirs = parent.split("/");
    let matched = false;
    for (const p of this.patterns) {
      if (p.exclusion !== matched) continue;
      let match = p.re.test(file);
      if (!match && parent !== ".") {
        for (let i = 0; i < parentDirs.length && !match; i++) match = p.re.test(parentDirs.slice(0, i + 1).join("/"));
      }
      if (match) matched = !p.exclusion;
    }
    return matched;
  }
}

/** docker/cli build.TrimBuildFilesFromExcludes: .dockerignore and the Dockerfile are always sent. */
export function trimBuildFilesFromExcludes(excludes: string[], dockerfile: string): string[] {
  const out = [...excludes];
  const pm = () => new PatternMatcher(out);
  if (pm().matches(".dockerignore")) out.push("!.dockerignore");
  if (pm().matches(dockerfile)) out.push(`!${dockerfile}`);
  return out;
}

export interface ContextEntry {
  name: string;
  type: "file" | "directory" | "symlink";
  mode: number;
  mtime: Date;
  content?: Buffer;
  linkname?: string;
}

/**
 * go-archive TarWithOptions(contextDir, {ExcludePatterns, ChownOpts{0,0}}): the entries sent, in
 * walk order (lexical), owner 0:0, modes as on disk; an excluded directory is skipped unless an
 * exclusion pattern (`!dir/x`) reaches into it.
 */
export function contextEntries(dir: string, excludes: string[]): ContextEntry[] {
  const pm = new PatternMatcher(excludes);
  const out: ContextEntry[] = [];
  const walk = (rel: string) => {
    const names = readdirSync(rel ? join(dir, rel) : dir).sort();
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      const st = lstatSync(join(dir, r));
      if (pm.matches(r)) {
        if (!st.isDirectory()) continue;
        if (!pm.exclusions) continue;
        const reaches = pm.patterns.some((p) => p.exclusion && `${p.text}/`.startsWith(`${r}/`));
        if (reaches) walk(r);
        continue;
      }
      const mode = st.mode & 0o7777;
      if (st.isDirectory()) {
        out.push({ name: `${r}/`, type: "directory", mode, mtime: st.mtime });
        walk(r);
      } else if (st.isSymbolicLink()) {
        out.push({ name: r, type: "symlink", mode, mtime: st.mtime, linkname: readlinkSync(join(dir, r)) });
      } else if (st.isFile()) {
        out.push({ name: r, type: "file", mode, mtime: st.mtime, content: readFileSync(join(dir, r)) });
      }
    }
  };
  walk("");
  return out;
}

/** A tar stream of entries (uid/gid 0), gzip-compressed like docker/cli build.Compress. */
export function tarGz(entries: ContextEntry[]): Readable {
  const pack = tarStream.pack();
  for (const e of entries) {
    const header = { name: e.name, mode: e.mode, mtime: e.mtime, uid: 0, gid: 0, type: e.type, linkname: e.linkname };
    if (e.type === "file") pack.entry({ ...header, size: e.content!.length }, e.content!);
    else pack.entry(header);
  }
  pack.finalize();
  return pack.pipe(createGzip());
}

/** For the benchmark scripts: exits 2 with the reason when there is no Docker engine, else makes sure the base image exists. */
export async function engineForBenchmark(): Promise<void> {
  const problem = engineProblem();
  if (problem) {
    console.error(`no Docker engine: ${problem}`);
    process.exit(2);
  }
  await ensureBaseImage();
}
