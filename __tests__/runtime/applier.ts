/**
 * Runtime applier: applies a synthesised cdktf stack's docker_* resources to a real Docker engine,
 * with the kreuzwerker/docker provider's semantics (v3.6.2, the version @cdktf/provider-docker
 * 12.0.3 pins), so the tests prove that what pgharbor declares runs for real.
 *
 * `cdktf deploy` cannot run here (Terraform cannot download providers); this does, through the
 * Docker Engine API (dockerode), what the provider's Create/Delete functions do, attribute by
 * attribute. Each mapping below names the provider function it follows
 * (internal/provider/*.go at tag v3.6.2).
 *
 * What it does NOT model, on purpose (it throws "applier does not model <attr> of <resource>"
 * rather than ignore anything): every attribute outside the list in MODELLED, buildx builds
 * (`builder`), data sources, AWS resources (skipped entirely; a docker_* reference to one throws),
 * `count`/`for_each`, provisioners, `lifecycle.create_before_destroy`, and `cpus` (the provider
 * panics on it, see refuseCpus).
 *
 * Test-environment differences (documented, deliberate):
 *   - builds use networkmode "host" when the stack declares no network mode (the engine's bridge
 *     cannot reach Debian's mirror here);
 *   - an image whose tag already exists is reused instead of rebuilt (cache by tag; pgharbor's tags
 *     carry a hash of their build context);
 *   - images that cannot be pulled here are replaced by StandIns (listed with a reason);
 *   - Terraform's refresh/retry pacing (StateChangeConf delays of seconds) is shortened; the
 *     conditions retried on are the provider's;
 *   - random_password and tls_* values are test values (test-pki.ts), computed like the providers do;
 *   - build contexts carry files, directories and symlinks with their modes (owner 0:0), not hard
 *     links or extended attributes;
 *   - destroy() is test teardown: it does not enforce lifecycle.prevent_destroy.
 */
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { isAbsolute, join, relative, resolve as resolvePath } from "path";
import { randomBytes } from "crypto";
import * as tarStream from "tar-stream";
import * as Dockerode from "dockerode";
import { evaluateDeep, evaluateTemplate, referencedAddress, referencesIn } from "./tf-template";
import * as pki from "./test-pki";
import { NotModelled, block } from "./test-pki";
import { ContextEntry, contextEntries, demux, followProgress, readDockerignore, tarGz, trimBuildFilesFromExcludes, withDirLock } from "./engine";

/** Cross-process locks for image builds, one per tag. */
const IMAGE_LOCKS = join(tmpdir(), "pgharbor-image-locks");

export { NotModelled } from "./test-pki";

// ---------------------------------------------------------------------------------------------
// Types

/**
 * A docker_container as declared, references resolved: Terraform's attribute names camel-cased
 * (working_dir → workingDir, networks_advanced → networksAdvanced, healthcheck.start_period →
 * startPeriod, …), lists present (empty when not declared), scalars undefined when not declared (the
 * provider's defaults are applied by containerCreateOptions).
 */
export interface ContainerSpec {
  name: string;
  image: string;
  hostname?: string;
  entrypoint: string[];
  command: string[];
  env: string[];
  user?: string;
  workingDir?: string;
  volumes: Array<{ volumeName?: string; hostPath?: string; containerPath: string; readOnly?: boolean }>;
  upload: Array<{ file: string; content?: string; contentBase64?: string; source?: string; executable?: boolean; permissions?: string }>;
  networksAdvanced: Array<{ name: string; aliases?: string[]; ipv4Address?: string }>;
  ports: Array<{ internal: number; external?: number; ip?: string; protocol?: string }>;
  healthcheck?: { test: string[]; interval?: string; timeout?: string; startPeriod?: string; startInterval?: string; retries?: number };
  restart?: string;
  maxRetryCount?: number;
  memory?: number;
  memorySwap?: number;
  shmSize?: number;
  cpuPeriod?: number;
  cpuQuota?: number;
  cpuShares?: number;
  cpuSet?: string;
  stopSignal?: string;
  stopTimeout?: number;
  destroyGraceSeconds?: number;
  logDriver?: string;
  logOpts?: Record<string, string>;
  init?: boolean;
  mustRun?: boolean;
  wait?: boolean;
  waitTimeout?: number;
  labels: Array<{ label: string; value: string }>;
  tmpfs?: Record<string, string>;
}

export interface StandIn {
  /** Why this image is replaced (listed in the README): e.g. "SeaweedFS cannot be pulled here". */
  reason: string;
  /** Decides from the docker_image resource (its `name`, and `build` if any) whether this stand-in replaces it. */
  matches(image: { name: string; build?: Record<string, unknown> }): boolean;
  /** The stand-in image: built (cached by tag) from this context with networkmode host; `dockerfile` relative to `context`. */
  image: { tag: string; context: string; dockerfile?: string };
  /** Changes to every container that uses the replaced image. Everything else of the container stays as declared. */
  container: (c: ContainerSpec) => Partial<ContainerSpec> & { extraBinds?: string[]; extraEnv?: string[] };
}

export interface ApplyOptions {
  /** cdktf.out/stacks/<env>: holds cdk.tf.json and assets/ (Terraform's working directory). */
  stackDir: string;
  standIns?: StandIn[];
  log?: (line: string) => void;
}

type Body = Record<string, unknown>;
type Stack = { resource?: Record<string, Record<string, Body>>; provider?: Record<string, Body[]>; output?: Record<string, { value: unknown }>; [k: string]: unknown };

// ---------------------------------------------------------------------------------------------
// What is modelled

const META = ["provider", "depends_on", "lifecycle"];
const LIFECYCLE = ["prevent_destroy", "ignore_changes"];
const LABEL = ["label", "value"];

/** Attributes (and nested blocks' attributes) the applier models, per resource type. */
export const MODELLED: Record<string, { attrs: string[]; blocks: Record<string, string[]> }> = {
  docker_network: {
    attrs: [...META, "name", "driver", "attachable", "internal", "options", "labels", "ipam_config", "ipam_driver"],
    blocks: { labels: LABEL, ipam_config: ["subnet", "ip_range", "gateway", "aux_address"] },
  },
  docker_volume: { attrs: [...META, "name", "driver", "labels"], blocks: { labels: LABEL } },
  docker_image: {
    attrs: [...META, "name", "keep_locally", "triggers", "build"],
    blocks: { build: ["context", "dockerfile", "build_args", "tag", "network_mode", "labels", "target", "no_cache", "remove", "force_remove", "pull_parent", "suppress_output"] },
  },
  docker_container: {
    attrs: [
      ...META, "name", "hostname", "image", "entrypoint", "command", "env", "user", "working_dir", "volumes", "upload", "networks_advanced",
      "ports", "healthcheck", "restart", "max_retry_count", "memory", "memory_swap", "shm_size", "cpu_period", "cpu_quota", "cpu_shares",
      "cpu_set", "stop_signal", "stop_timeout", "destroy_grace_seconds", "log_driver", "log_opts", "init", "must_run", "wait", "wait_timeout",
      "labels", "tmpfs",
    ],
    blocks: {
      volumes: ["volume_name", "host_path", "container_path", "read_only"],
      upload: ["file", "content", "content_base64", "source", "executable", "permissions"],
      networks_advanced: ["name", "aliases", "ipv4_address"],
      ports: ["internal", "external", "ip", "protocol"],
      healthcheck: ["test", "interval", "timeout", "start_period", "start_interval", "retries"],
      labels: LABEL,
    },
  },
};

/** Resources whose values the applier computes (test values); they are not applied to the engine. */
const PURE = ["random_password", "tls_private_key", "tls_self_signed_cert", "tls_cert_request", "tls_locally_signed_cert"];

/** The references the applier resolves, per resource type. */
export const RESOLVABLE: Record<string, string[]> = {
  random_password: ["result"],
  tls_private_key: ["private_key_pem"],
  tls_self_signed_cert: ["cert_pem"],
  tls_cert_request: ["cert_request_pem"],
  tls_locally_signed_cert: ["cert_pem"],
  docker_volume: ["name"],
  docker_network: ["name", "id"],
  docker_image: ["image_id", "name"],
  docker_container: ["name"],
};

/**
 * resourceDockerContainerCreate: `cpus` — the schema declares it a string but the create function reads
 * `v.(float32)`, so the provider panics ("interface conversion: interface {} is string, not float32",
 * kreuzwerker/terraform-provider-docker issue #759, regression in 3.6.x). A stack with it cannot be applied.
 */
export function refuseCpus(address: string, body: Body): void {
  if (body.cpus === undefined) return;
  throw new NotModelled(
    `${address} sets cpus = ${JSON.stringify(body.cpus)}: the kreuzwerker/docker provider 3.6.2 panics on it ` +
      `(resourceDockerContainerCreate reads cpus as float32 while its schema type is string: "interface conversion: interface {} is string, not float32", ` +
      `issue #759), so terraform apply would crash. Declare cpu_period = 100000 and cpu_quota = cpus × 100000 instead.`,
  );
}

/** Throws on anything in a resource the applier does not model ("//" keys are cdktf metadata). */
export function checkModelled(address: string, body: Body): void {
  const type = address.split(".")[0];
  const model = MODELLED[type];
  if (!model) throw new NotModelled(`applier does not model resource type ${type} (${address})`);
  if (type === "docker_container") refuseCpus(address, body);
  for (const [k, v] of Object.entries(body)) {
    if (k.startsWith("//")) continue;
    if (!model.attrs.includes(k)) throw new NotModelled(`applier does not model ${k} of ${address}`);
    if (k === "lifecycle") {
      for (const l of Object.keys(block(v) ?? {})) if (!LIFECYCLE.includes(l)) throw new NotModelled(`applier does not model lifecycle.${l} of ${address}`);
    }
    const nested = model.blocks[k];
    if (nested && v && typeof v === "object") {
      for (const item of Array.isArray(v) ? v : [v]) {
        for (const nk of Object.keys(item as Body)) {
          if (!nk.startsWith("//") && !nested.includes(nk)) throw new NotModelled(`applier does not model ${k}.${nk} of ${address}`);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Ordering

function addresses(json: Stack): string[] {
  const out: string[] = [];
  for (const [type, rs] of Object.entries(json.resource ?? {})) for (const name of Object.keys(rs)) out.push(`${type}.${name}`);
  return out;
}

const isAws = (address: string) => address.startsWith("aws_");
const bodyOf = (json: Stack, address: string): Body | undefined => {
  const [type, name] = address.split(".");
  return json.resource?.[type]?.[name];
};

/**
 * The order Terraform's graph walk allows: every resource after the ones it references (`${type.name.…}`)
 * and the ones in its depends_on; ties in declaration order (Terraform would run them in parallel; the
 * applier runs one at a time). AWS resources are skipped (not applied, not ordered); a docker_*, random
 * or tls resource referencing one, or any undeclared resource, throws. A cycle throws, naming it.
 */
export function applyOrder(json: Stack): string[] {
  const all = addresses(json).filter((a) => !isAws(a));
  for (const a of all) {
    const type = a.split(".")[0];
    if (!MODELLED[type] && !PURE.includes(type)) throw new NotModelled(`applier does not model resource type ${type} (${a})`);
  }
  const index = new Map(all.map((a, i) => [a, i]));
  const deps = new Map<string, Set<string>>();
  for (const a of all) {
    const body = bodyOf(json, a)!;
    const d = new Set<string>();
    for (const ref of referencesIn(body)) {
      const target = referencedAddress(ref);
      if (target.startsWith("data.")) throw new NotModelled(`${a} references ${ref}: the applier does not model data sources`);
      if (isAws(target)) throw new NotModelled(`${a} references ${ref}: the applier skips AWS resources, so it cannot give ${a} that value`);
      if (!index.has(target)) throw new Error(`${a} references ${ref}, but ${target} is not declared`);
      const [type, , ...attr] = ref.split(".");
      if (!RESOLVABLE[type]?.includes(attr.join("."))) throw new NotModelled(`applier cannot resolve the reference \${${ref}} (in ${a})`);
      if (target !== a) d.add(target);
    }
    for (const dep of (body.depends_on as string[] | undefined) ?? []) {
      if (isAws(dep) || dep.startsWith("data.")) continue; // ordering on something the applier skips
      if (!index.has(dep)) throw new Error(`${a} depends_on ${dep}, which is not declared`);
      d.add(dep);
    }
    deps.set(a, d);
  }
  const order: string[] = [];
  const done = new Set<string>();
  while (order.length < all.length) {
    const ready = all.filter((a) => !done.has(a) && [...deps.get(a)!].every((d) => done.has(d)));
    if (!ready.length) {
      const left = all.filter((a) => !done.has(a));
      throw new Error(`dependency cycle among: ${left.join(", ")}`);
    }
    ready.sort((x, y) => index.get(x)! - index.get(y)!);
    order.push(ready[0]);
    done.add(ready[0]);
  }
  return order;
}

// ---------------------------------------------------------------------------------------------
// Pure mappings (unit-tested)

const NS = { ns: 1, us: 1e3, "µs": 1e3, "μs": 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 } as const;

/** Go's time.ParseDuration, in nanoseconds ("10s", "1m30s", "1.5h", "0"). Throws on what Go rejects. */
export function parseGoDuration(text: string): number {
  let s = text;
  let neg = false;
  if (s[0] === "-" || s[0] === "+") {
    neg = s[0] === "-";
    s = s.slice(1);
  }
  if (s === "0") return 0;
  if (s === "") throw new Error(`time: invalid duration ${JSON.stringify(text)}`);
  let total = 0;
  const re = /^(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)/;
  while (s) {
    const m = re.exec(s);
    if (!m || (m[1] === "" && !m[2])) throw new Error(`time: invalid duration ${JSON.stringify(text)}`);
    total += (Number(m[1] || "0") + (m[2] ? Number(`0.${m[2]}`) : 0)) * NS[m[3] as keyof typeof NS];
    s = s.slice(m[0].length);
  }
  return Math.round(neg ? -total : total);
}

/**
 * resourceDockerContainerCreate: upload: tar header mode = `permissions` parsed as octal
 * (strconv.ParseInt(p, 8, 32); the schema requires ^0[0-7]{3}$) | 0744 if `executable` | 0644.
 */
export function uploadMode(u: { permissions?: string; executable?: boolean }): number {
  if (u.permissions) {
    if (!/^0[0-7]{3}$/.test(u.permissions)) throw new Error(`upload permissions ${JSON.stringify(u.permissions)} do not match ^0[0-7]{3}$ (the provider's validation)`);
    return parseInt(u.permissions, 8);
  }
  return u.executable ? 0o744 : 0o644;
}

/**
 * resourceDockerContainerCreate: upload: exactly one of content, content_base64 (decoded), source (a file
 * read relative to Terraform's working directory) must be non-empty.
 */
export function uploadContent(u: { file: string; content?: string; contentBase64?: string; source?: string }, cwd: string): Buffer {
  const set = [u.content, u.contentBase64, u.source].filter((x) => x !== undefined && x !== "").length;
  if (set === 0) throw new Error(`upload ${u.file}: error with upload content: one of 'content', 'content_base64', or 'source' must be set`);
  if (set > 1) throw new Error(`upload ${u.file}: error with upload content: only one of 'content', 'content_base64', or 'source' can be set`);
  if (u.content) return Buffer.from(u.content, "utf8");
  if (u.contentBase64) {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(u.contentBase64) || u.contentBase64.length % 4 !== 0) throw new Error(`upload ${u.file}: content_base64 is not base64 (the provider's validation)`);
    return Buffer.from(u.contentBase64, "base64");
  }
  return readFileSync(isAbsolute(u.source!) ? u.source! : join(cwd, u.source!));
}

/**
 * resourceDockerContainerCreate: upload: one single-entry tar per file (Name = the absolute path, Mode
 * from uploadMode, uid/gid 0 — owner root —, ModTime now), copied to "/" with CopyToContainer
 * (noOverwriteDirNonDir, as CopyToContainerOptions{} sends it).
 */
export async function uploadTar(file: string, content: Buffer, mode: number): Promise<Buffer> {
  const pack = tarStream.pack();
  pack.entry({ name: file, mode, size: content.length, mtime: new Date(), uid: 0, gid: 0, type: "file" }, content);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const nonZero = <T>(v: T | undefined | null): v is T => v !== undefined && v !== null && (v as unknown) !== 0 && (v as unknown) !== "" && (v as unknown) !== false && !(Array.isArray(v) && v.length === 0);

/**
 * resourceDockerContainerCreate: container.Config + HostConfig for ContainerCreate. `d.GetOk` semantics:
 * zero values (0, "", false, empty lists) count as unset.
 */
export function containerCreateOptions(c: ContainerSpec): Dockerode.ContainerCreateOptions {
  // resourceDockerContainerCreate: Config{Image, Hostname, Domainname, Tty, OpenStdin, StopSignal, StopTimeout (if set)}
  const o: Dockerode.ContainerCreateOptions = {
    name: c.name,
    Image: c.image,
    Hostname: c.hostname ?? "",
    Domainname: "",
    Tty: false,
    OpenStdin: false,
  };
  if (nonZero(c.stopSignal)) o.StopSignal = c.stopSignal;
  if (nonZero(c.stopTimeout)) o.StopTimeout = c.stopTimeout;
  // resourceDockerContainerCreate: env is a set (stringSetToStringSlice): duplicates collapse
  if (nonZero(c.env)) o.Env = [...new Set(c.env)];
  // resourceDockerContainerCreate: command → Cmd; "values for command may not be empty"
  if (nonZero(c.command)) {
    if (c.command.some((x) => x === "" || x === null)) throw new Error(`${c.name}: values for command may not be empty`);
    o.Cmd = c.command;
  }
  // resourceDockerContainerCreate: entrypoint → Entrypoint; user → User; working_dir → WorkingDir
  if (nonZero(c.entrypoint)) o.Entrypoint = c.entrypoint;
  if (nonZero(c.user)) o.User = c.user;
  if (nonZero(c.workingDir)) o.WorkingDir = c.workingDir;

  // portSetToDockerPorts: ExposedPorts["internal/protocol"] and PortBindings {HostIp: ip (default
  // "0.0.0.0"), HostPort: external (0 when unset: the SDK gives the zero value; the engine then picks one)}
  const exposed: Record<string, object> = {};
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const p of c.ports) {
    const key = `${p.internal}/${p.protocol ?? "tcp"}`;
    exposed[key] = {};
    (bindings[key] ??= []).push({ HostIp: p.ip ?? "0.0.0.0", HostPort: String(p.external ?? 0) });
  }
  if (Object.keys(exposed).length) o.ExposedPorts = exposed;

  // volumeSetToDockerVolumes: volume_name (or host_path) → Binds "source:container_path:rw|ro" and
  // Volumes[container_path]; only container_path → an anonymous volume (Volumes only)
  const volumes: Record<string, object> = {};
  const binds: string[] = [];
  for (const v of c.volumes) {
    if (!v.containerPath) throw new Error(`${c.name}: Unable to parse volumes: volume entry without container path or source container`);
    const source = v.volumeName || v.hostPath || "";
    volumes[v.containerPath] = {};
    if (source) binds.push(`${source}:${v.containerPath}:${v.readOnly ? "ro" : "rw"}`);
  }
  if (Object.keys(volumes).length) o.Volumes = volumes;

  // labelSetToMap
  if (nonZero(c.labels)) o.Labels = Object.fromEntries(c.labels.map((l) => [l.label, l.value]));

  // resourceDockerContainerCreate: healthcheck: durations by time.ParseDuration (ns), retries as is
  if (c.healthcheck) {
    const h = c.healthcheck;
    const hc: Dockerode.HealthConfig = { Test: h.test };
    const put = (k: "Interval" | "Timeout" | "StartPeriod" | "StartInterval", v: string | undefined) => {
      const ns = parseGoDuration(v ?? "0s");
      if (ns < 0) throw new Error(`${c.name}: healthcheck duration ${v} must be >= 0 (validateDurationGeq0)`);
      if (ns) hc[k] = ns;
    };
    put("Interval", h.interval);
    put("Timeout", h.timeout);
    put("StartPeriod", h.startPeriod);
    put("StartInterval", h.startInterval);
    if (h.retries) hc.Retries = h.retries;
    o.Healthcheck = hc;
  }

  // resourceDockerContainerCreate: HostConfig{Privileged, PublishAllPorts, RestartPolicy{restart (default
  // "no"), max_retry_count}, Runtime, Mounts, AutoRemove, ReadonlyRootfs, LogConfig{Type: log_driver}}
  const restart = c.restart ?? "no";
  if (!/^(no|on-failure|always|unless-stopped)$/.test(restart)) throw new Error(`${c.name}: restart must be one of no, on-failure, always, unless-stopped`);
  const hc: Dockerode.HostConfig = {
    Privileged: false,
    PublishAllPorts: false,
    RestartPolicy: { Name: restart, MaximumRetryCount: c.maxRetryCount ?? 0 },
    Mounts: [],
    AutoRemove: false,
    ReadonlyRootfs: false,
    LogConfig: { Type: c.logDriver ?? "", Config: {} },
    // network_mode (default "bridge") → NetworkMode
    NetworkMode: "bridge",
    // init: d.Get("init").(bool) — false when unset
    Init: c.init ?? false,
  };
  if (c.tmpfs && Object.keys(c.tmpfs).length) hc.Tmpfs = c.tmpfs;
  if (Object.keys(bindings).length) hc.PortBindings = bindings;
  if (binds.length) hc.Binds = binds;
  // memory, shm_size: MB → bytes; memory_swap: MB → bytes when > 0 (-1 = unlimited, as is)
  if (nonZero(c.memory)) hc.Memory = c.memory * 1024 * 1024;
  if (nonZero(c.memorySwap)) hc.MemorySwap = c.memorySwap > 0 ? c.memorySwap * 1024 * 1024 : c.memorySwap;
  if (nonZero(c.shmSize)) hc.ShmSize = c.shmSize * 1024 * 1024;
  // cpu_period / cpu_quota / cpu_shares / cpu_set map directly (cpus is refused: refuseCpus)
  if (nonZero(c.cpuPeriod)) hc.CpuPeriod = c.cpuPeriod;
  if (nonZero(c.cpuQuota)) hc.CpuQuota = c.cpuQuota;
  if (nonZero(c.cpuShares)) hc.CpuShares = c.cpuShares;
  if (nonZero(c.cpuSet)) {
    if (!/^\d+([,-]\d+)*$/.test(c.cpuSet)) throw new Error(`${c.name}: cpu_set ${c.cpuSet} does not match ^\\d+([,-]\\d+)*$`);
    hc.CpusetCpus = c.cpuSet;
  }
  // log_opts → LogConfig.Config
  if (c.logOpts && Object.keys(c.logOpts).length) hc.LogConfig = { Type: c.logDriver ?? "", Config: c.logOpts };
  o.HostConfig = hc;
  // networkingConfig is empty at create: networks_advanced are connected afterwards
  o.NetworkingConfig = {};
  return o;
}

const INTS = ["memory", "memory_swap", "shm_size", "cpu_period", "cpu_quota", "cpu_shares", "stop_timeout", "destroy_grace_seconds", "max_retry_count", "wait_timeout"];
const BOOLS = ["must_run", "wait", "init"];

function toInt(what: string, v: unknown): number {
  const n = typeof v === "number" ? v : Number(v);
  if (v === "" || !Number.isInteger(n)) throw new Error(`${what} must be a whole number, got ${JSON.stringify(v)}`);
  return n;
}
function toBool(what: string, v: unknown): boolean {
  if (typeof v === "boolean") return v;
  if (v === "true" || v === "false") return v === "true";
  throw new Error(`${what} must be a bool, got ${JSON.stringify(v)}`);
}

/** snake_case → camelCase, the one renaming rule between Terraform's attributes and ContainerSpec. */
export const camel = (k: string) => k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

function camelKeys(what: string, o: Body, ints: string[] = [], bools: string[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (k.startsWith("//") || v === undefined || v === null) continue;
    out[camel(k)] = ints.includes(k) ? toInt(`${what}.${k}`, v) : bools.includes(k) ? toBool(`${what}.${k}`, v) : v;
  }
  return out;
}

/** A docker_container body (references already resolved) as a ContainerSpec, with Terraform's type conversions. */
export function toContainerSpec(address: string, b: Body): ContainerSpec {
  const out: Record<string, unknown> = { entrypoint: [], command: [], env: [], volumes: [], upload: [], networksAdvanced: [], ports: [], labels: [] };
  for (const [k, v] of Object.entries(b)) {
    if (META.includes(k) || k.startsWith("//") || v === undefined || v === null) continue;
    const list = (v: unknown) => (Array.isArray(v) ? v : [v]) as Body[];
    if (INTS.includes(k)) out[camel(k)] = toInt(`${address}.${k}`, v);
    else if (BOOLS.includes(k)) out[camel(k)] = toBool(`${address}.${k}`, v);
    else if (k === "healthcheck") {
      const h = block(v);
      if (h) out.healthcheck = camelKeys(`${address}.healthcheck`, h, ["retries"]);
    } else if (k === "ports") out.ports = list(v).map((p) => camelKeys(`${address}.ports`, p, ["internal", "external"]));
    else if (k === "volumes") out.volumes = list(v).map((x) => camelKeys(`${address}.volumes`, x, [], ["read_only"]));
    else if (k === "upload") out.upload = list(v).map((x) => camelKeys(`${address}.upload`, x, [], ["executable"]));
    else if (k === "networks_advanced") out.networksAdvanced = list(v).map((x) => camelKeys(`${address}.networks_advanced`, x));
    else out[camel(k)] = v;
  }
  if (typeof out.name !== "string" || !out.name) throw new Error(`${address} has no name`);
  if (typeof out.image !== "string" || !out.image) throw new Error(`${address} has no image`);
  return out as unknown as ContainerSpec;
}

/** The same container with env entries set (KEY=value replaced in place, or appended). */
export function withEnv(spec: ContainerSpec, env: Record<string, string>): ContainerSpec {
  const list = [...spec.env];
  for (const [k, v] of Object.entries(env)) {
    const i = list.findIndex((e) => e.split("=")[0] === k);
    if (i >= 0) list[i] = `${k}=${v}`;
    else list.push(`${k}=${v}`);
  }
  return { ...spec, env: list };
}

/**
 * createImageBuildOptions + buildDockerImage + enableBuildKitIfSupported: the ImageBuild query.
 * Tags: the image `name` then build.tag; BuildKit (version "2", with a session) when the engine's API
 * is >= 1.39, the legacy builder ("1") otherwise; rm defaults to true (schema default of `remove`).
 * Test environment: networkmode "host" when the stack declares none (or "default"/"bridge").
 */
export function imageBuildQuery(name: string, build: Body, relDockerfile: string, apiVersion: string): Record<string, unknown> {
  const tags = [name, ...((build.tag as string[] | undefined) ?? [])];
  const declared = String(build.network_mode ?? "");
  const flag = (v: unknown, dflt = false) => ((v === undefined ? dflt : v === true || v === "true") ? "1" : "0");
  const q: Record<string, unknown> = {
    t: tags,
    dockerfile: relDockerfile,
    networkmode: ["", "default", "bridge"].includes(declared) ? "host" : declared,
    rm: flag(build.remove, true),
    version: versionAtLeast(apiVersion, "1.39") ? "2" : "1",
  };
  if (flag(build.force_remove) === "1") q.forcerm = "1";
  if (flag(build.no_cache) === "1") q.nocache = "1";
  if (flag(build.pull_parent) === "1") q.pull = "1";
  if (flag(build.suppress_output) === "1") q.q = "1";
  if (build.target) q.target = String(build.target);
  const args = build.build_args as Record<string, unknown> | undefined;
  if (args && Object.keys(args).length) q.buildargs = Object.fromEntries(Object.entries(args).map(([k, v]) => [k, String(v)]));
  const labels = build.labels as Record<string, unknown> | undefined;
  if (labels && Object.keys(labels).length) q.labels = Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, String(v)]));
  return q;
}

export function versionAtLeast(v: string, min: string): boolean {
  const [a, b] = v.split(".").map(Number);
  const [x, y] = min.split(".").map(Number);
  return a > x || (a === x && b >= y);
}

/**
 * prepareBuildContext (docker/cli build.GetContextFromLocalDir): `context` AND `dockerfile` are relative to
 * Terraform's working directory (the provider docs: "relative to the local Terraform process
 * (path.cwd)"), i.e. the stack directory — not the dockerfile relative to the context. Symlinks
 * evaluated; a Dockerfile outside the context is added as ".dockerfile.<random>" (0600) and listed in
 * .dockerignore (AddDockerfileToBuildContext). .dockerignore honoured (ReadDockerignore,
 * TrimBuildFilesFromExcludes with the Dockerfile name as given); entries owned 0:0 (getBuildContext ChownOpts).
 */
export function prepareBuildContext(cwd: string, context: string, dockerfile: string): { entries: ContextEntry[]; relDockerfile: string } {
  const contextAbs = resolvePath(cwd, context);
  let contextDir: string;
  try {
    contextDir = realpathSync(contextAbs);
  } catch (e) {
    throw new Error(`unable to evaluate symlinks in context path: ${(e as Error).message}`);
  }
  if (!statSync(contextDir).isDirectory()) throw new Error(`context must be a directory: ${contextDir}`);
  const dockerfileAbs = resolvePath(cwd, dockerfile);
  let dockerfileReal: string;
  try {
    dockerfileReal = realpathSync(dockerfileAbs);
  } catch (e) {
    throw new Error(
      `unable to evaluate symlinks in Dockerfile path: ${(e as Error).message} — the provider takes build.dockerfile relative to ` +
        `Terraform's working directory (${cwd}), not to the context; declare it as "<context>/Dockerfile"`,
    );
  }
  let relDockerfile = relative(contextDir, dockerfileReal);
  let excludes: string[] = [];
  try {
    excludes = readDockerignore(readFileSync(join(contextDir, ".dockerignore"), "utf8"));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  excludes = trimBuildFilesFromExcludes(excludes, dockerfile);
  const entries = contextEntries(contextDir, excludes);
  if (relDockerfile.startsWith("../")) {
    // AddDockerfileToBuildContext
    const now = new Date();
    const randomName = `.dockerfile.${randomBytes(10).toString("hex")}`;
    entries.push({ name: randomName, type: "file", mode: 0o600, mtime: now, content: readFileSync(dockerfileReal) });
    const ignore = entries.find((e) => e.name === ".dockerignore");
    if (ignore) ignore.content = Buffer.concat([ignore.content!, Buffer.from(`\n${randomName}\n`)]);
    else entries.push({ name: ".dockerignore", type: "file", mode: 0o600, mtime: now, content: Buffer.from(`.dockerignore\n${randomName}\n`) });
    relDockerfile = randomName;
  }
  return { entries, relDockerfile };
}

const statusOf = (e: unknown) => (e as { statusCode?: number }).statusCode;
const messageOf = (e: unknown) => {
  const err = e as { json?: { message?: string }; message?: string };
  return err.json?.message ?? err.message ?? String(e);
};
/** containsIgnorableErrorMessage: case-insensitive substring. */
const ignorable = (e: unknown, ...msgs: string[]) => msgs.some((m) => messageOf(e).toLowerCase().includes(m.toLowerCase()));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tail = (text: string, n = 50) => text.split("\n").filter((l) => l.trim()).slice(-n).join("\n");

// ---------------------------------------------------------------------------------------------
// The deployment

export class Deployment {
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  readonly docker: Dockerode;
  readonly stackDir: string;
  /** Every modelled resource, in the order it is applied (random/tls values computed in place). */
  readonly order: string[];
  /** The docker_* resources created so far, in creation order. */
  readonly created: string[] = [];
  readonly imagesBuilt: string[] = [];
  readonly imagesReused: string[] = [];
  private stack: Stack;
  private readonly log: (line: string) => void;
  private readonly standIns: StandIn[];
  private readonly engines = new Map<string, Dockerode>();
  private readonly values = new Map<string, string>();
  private readonly computing = new Set<string>();
  private readonly state = new Map<string, Record<string, string>>();
  private readonly standInFor = new Map<string, StandIn>();
  private readonly envOverrides = new Map<string, Record<string, string>>();
  private workDir?: string;
  private cas?: Record<string, { pem: string; file: string }>;

  private constructor(o: ApplyOptions) {
    this.stackDir = resolvePath(o.stackDir);
    this.stack = JSON.parse(readFileSync(join(this.stackDir, "cdk.tf.json"), "utf8"));
    this.json = this.stack;
    this.log = o.log ?? (() => undefined);
    this.standIns = o.standIns ?? [];
    this.docker = this.configureProviders();
    // Everything is checked before the engine is touched: modelled attributes, references, order.
    for (const a of addresses(this.stack)) if (a.startsWith("docker_")) checkModelled(a, bodyOf(this.stack, a)!);
    this.order = applyOrder(this.stack);
    for (const a of this.order) if (PURE.includes(a.split(".")[0])) this.pureValue(a);
  }

  /** Synthesised stack → resources on the engine, in dependency order. On failure, what was created is destroyed. */
  static async apply(o: ApplyOptions): Promise<Deployment> {
    const d = new Deployment(o);
    try {
      for (const a of d.order) {
        const type = a.split(".")[0];
        if (type === "docker_network") await d.createNetwork(a);
        else if (type === "docker_volume") await d.createVolume(a);
        else if (type === "docker_image") await d.createImage(a);
        else if (type === "docker_container") await d.createContainer(a);
      }
    } catch (e) {
      d.log(`apply failed: ${(e as Error).message}; destroying what was created`);
      await d.destroy().catch((x) => d.log(`cleanup after the failed apply failed too: ${(x as Error).message}`));
      throw e;
    }
    return d;
  }

  /**
   * `terraform apply` of a changed configuration, for the one kind of change the applier models:
   * containers whose declaration changed are replaced (deleted, then created: the provider's
   * semantics, every attribute forces a new container), new containers are created, removed ones
   * deleted. Any other resource that was added, removed or changed is refused (NotModelled). Returns
   * the addresses replaced, created and deleted, which a test can hold against what it expected.
   */
  async update(o: { stackDir: string }): Promise<{ replaced: string[]; created: string[]; deleted: string[] }> {
    const next: Stack = JSON.parse(readFileSync(join(resolvePath(o.stackDir), "cdk.tf.json"), "utf8"));
    for (const a of addresses(next)) if (a.startsWith("docker_")) checkModelled(a, bodyOf(next, a)!);
    const before = this.stack;
    const same = (a: string) => JSON.stringify(bodyOf(before, a)) === JSON.stringify(bodyOf(next, a));
    const created = addresses(next).filter((a) => !bodyOf(before, a));
    const deleted = addresses(before).filter((a) => !bodyOf(next, a));
    const replaced = addresses(next).filter((a) => bodyOf(before, a) && !same(a));
    const others = [...created, ...deleted, ...replaced].filter((a) => !a.startsWith("docker_container."));
    if (others.length) throw new NotModelled(`applier updates containers only; this change also touches ${others.join(", ")}`);
    for (const a of deleted) {
      await this.deleteContainer(a);
      this.log(`destroyed ${a}`);
    }
    this.stack = next;
    this.json = next;
    const order = applyOrder(next);
    for (const a of order.filter((x) => replaced.includes(x))) {
      await this.deleteContainer(a);
      await this.createContainer(a);
      this.log(`replaced ${a}`);
    }
    for (const a of order.filter((x) => created.includes(x))) await this.createContainer(a);
    return { replaced, created, deleted };
  }

  /**
   * Only the stack's docker_image resources, built (or reused by tag) as apply would: for suites that
   * run the deployed images themselves (versions, the programs' unit tests, promtool). Name → image id.
   */
  static async buildImages(o: ApplyOptions): Promise<Record<string, string>> {
    const d = new Deployment(o);
    const out: Record<string, string> = {};
    for (const a of d.order.filter((x) => x.startsWith("docker_image."))) {
      await d.createImage(a);
      out[String(d.evaluate(a).name)] = d.state.get(a)!.image_id;
    }
    return out;
  }

  // --- providers ----------------------------------------------------------------------------

  /** Provider blocks: docker (alias, host: unix sockets only), random, tls, aws (ignored). */
  private configureProviders(): Dockerode {
    const providers = this.stack.provider ?? {};
    for (const [name, blocks] of Object.entries(providers)) {
      if (name === "aws" || name === "random" || name === "tls") continue;
      if (name !== "docker") throw new NotModelled(`applier does not model provider ${name}`);
      for (const b of blocks) {
        for (const k of Object.keys(b)) if (k !== "alias" && k !== "host") throw new NotModelled(`applier does not model ${k} of provider docker${b.alias ? `.${b.alias}` : ""}`);
        const host = String(b.host ?? process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock");
        if (!host.startsWith("unix://")) throw new NotModelled(`provider docker${b.alias ? `.${b.alias}` : ""} has host ${host}: the applier applies to local engines (unix sockets) only`);
        this.engines.set(b.alias ? `docker.${b.alias}` : "docker", this.engineAt(host.slice("unix://".length)));
      }
    }
    if (!this.engines.has("docker")) {
      const first = [...this.engines.values()][0];
      this.engines.set("docker", first ?? this.engineAt((process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock").replace(/^unix:\/\//, "")));
    }
    return this.engines.get("docker")!;
  }

  private readonly sockets = new Map<string, Dockerode>();
  private engineAt(socketPath: string): Dockerode {
    if (!this.sockets.has(socketPath)) this.sockets.set(socketPath, new Dockerode({ socketPath }));
    return this.sockets.get(socketPath)!;
  }

  private engineOf(address: string): Dockerode {
    const p = String(bodyOf(this.stack, address)?.provider ?? "docker");
    const e = this.engines.get(p);
    if (!e) throw new Error(`${address} uses provider ${p}, which is not configured`);
    return e;
  }

  // --- values --------------------------------------------------------------------------------

  /** Terraform-template evaluation with this deployment's values (one pass). */
  resolve(text: string): string {
    return evaluateTemplate(text, (r) => this.reference(r));
  }

  private evaluate(address: string): Body {
    return evaluateDeep(bodyOf(this.stack, address)!, (r) => this.reference(r));
  }

  private reference(ref: string): string {
    const parts = ref.split(".");
    if (parts[0] === "data") throw new NotModelled(`applier cannot resolve \${${ref}}: data sources are not modelled`);
    const [type, name, ...rest] = parts;
    const attr = rest.join(".");
    const address = `${type}.${name}`;
    const body = bodyOf(this.stack, address);
    if (!body) throw new Error(`\${${ref}} names ${address}, which is not declared`);
    if (!RESOLVABLE[type]?.includes(attr)) throw new NotModelled(`applier cannot resolve the reference \${${ref}}`);
    if (PURE.includes(type)) return this.pureValue(address);
    const applied = this.state.get(address);
    if (applied?.[attr] !== undefined) return applied[attr];
    // Attributes known from the configuration (Terraform knows them at plan time).
    if (attr === "name" && body.name !== undefined) return this.resolve(String(body.name));
    throw new Error(`\${${ref}} is not known yet: ${address} has not been applied`);
  }

  /** The value a random/tls resource contributes (memoised; cycles throw). */
  private pureValue(address: string): string {
    const cached = this.values.get(address);
    if (cached !== undefined) return cached;
    if (this.computing.has(address)) throw new Error(`reference cycle through ${address}`);
    this.computing.add(address);
    try {
      const type = address.split(".")[0];
      for (const ref of referencesIn(bodyOf(this.stack, address))) {
        if (!PURE.includes(ref.split(".")[0])) throw new NotModelled(`${address} references \${${ref}}: the applier computes random/tls values before the engine is touched`);
      }
      const b = this.evaluate(address);
      let v: string;
      if (type === "random_password") v = pki.randomPassword(address, b);
      else if (type === "tls_private_key") v = pki.privateKeyPem(address, b);
      else if (type === "tls_self_signed_cert") v = pki.selfSignedCertPem(address, b, String(b.private_key_pem));
      else if (type === "tls_cert_request") v = pki.certRequestPem(address, b, String(b.private_key_pem));
      else if (type === "tls_locally_signed_cert") v = pki.locallySignedCertPem(address, b, String(b.cert_request_pem), String(b.ca_cert_pem), String(b.ca_private_key_pem));
      else throw new NotModelled(`applier does not model ${type}`);
      this.values.set(address, v);
      return v;
    } finally {
      this.computing.delete(address);
    }
  }

  /** The random_password test value whose resource name starts with `resourcePrefix`. */
  secret(resourcePrefix: string): string {
    const names = Object.keys(this.stack.resource?.random_password ?? {}).filter((n) => n.startsWith(resourcePrefix));
    if (names.length !== 1) {
      throw new Error(`secret(${resourcePrefix}): ${names.length ? `ambiguous: ${names.join(", ")}` : `no random_password starts with it; there are ${Object.keys(this.stack.resource?.random_password ?? {}).join(", ")}`}`);
    }
    return this.pureValue(`random_password.${names[0]}`);
  }

  /** A Terraform output, resolved. */
  output(name: string): string {
    const o = this.stack.output?.[name];
    if (!o) throw new Error(`no output ${name}; there are ${Object.keys(this.stack.output ?? {}).join(", ")}`);
    return typeof o.value === "string" ? this.resolve(o.value) : JSON.stringify(evaluateDeep(o.value, (r) => this.reference(r)));
  }

  private dir(): string {
    this.workDir ??= mkdtempSync(join(tmpdir(), "pgharbor-applier-"));
    return this.workDir;
  }

  /** The test CAs standing in for each tls_self_signed_cert, by resource address, with a PEM file each. */
  get caCerts(): Record<string, { pem: string; file: string }> {
    if (!this.cas) {
      this.cas = {};
      for (const name of Object.keys(this.stack.resource?.tls_self_signed_cert ?? {})) {
        const address = `tls_self_signed_cert.${name}`;
        const pem = this.pureValue(address);
        const file = join(this.dir(), `${name}.crt`);
        writeFileSync(file, pem);
        this.cas[address] = { pem, file };
      }
    }
    return this.cas;
  }

  private onlyCa(): { pem: string; file: string } {
    const all = Object.entries(this.caCerts);
    if (all.length !== 1) throw new Error(`the stack has ${all.length} tls_self_signed_cert resources (${all.map(([a]) => a).join(", ")}): use caCerts`);
    return all[0][1];
  }

  get caCertPem(): string {
    return this.onlyCa().pem;
  }

  get caFile(): string {
    return this.onlyCa().file;
  }

  // --- networks, volumes ------------------------------------------------------------------------

  /** resourceDockerNetworkCreate: NetworkCreate{Labels, Driver, Options, Internal, Attachable (each if set)}; CheckDuplicate as the Go client sends it for API < 1.44. */
  private async createNetwork(address: string): Promise<void> {
    const b = this.evaluate(address);
    const opts: Dockerode.NetworkCreateOptions = { Name: String(b.name), CheckDuplicate: true };
    if (nonZero(b.labels)) opts.Labels = Object.fromEntries((b.labels as Array<{ label: string; value: string }>).map((l) => [l.label, l.value]));
    if (nonZero(b.driver)) opts.Driver = String(b.driver);
    if (nonZero(b.options)) opts.Options = b.options as Record<string, string>;
    if (b.internal === true || b.internal === "true") opts.Internal = true;
    if (b.attachable === true || b.attachable === "true") opts.Attachable = true;
    // resourceDockerNetworkCreate: ipam_config becomes IPAM{Driver: ipam_driver ("default"), Config: [{Subnet, IPRange, Gateway}]}.
    if (nonZero(b.ipam_config)) {
      const cfg = b.ipam_config as Array<{ subnet?: string; ip_range?: string; gateway?: string }>;
      opts.IPAM = {
        Driver: nonZero(b.ipam_driver) ? String(b.ipam_driver) : "default",
        Config: cfg.map((c) => ({ ...(c.subnet ? { Subnet: c.subnet } : {}), ...(c.ip_range ? { IPRange: c.ip_range } : {}), ...(c.gateway ? { Gateway: c.gateway } : {}) })),
      };
    }
    const net = await this.engineOf(address).createNetwork(opts);
    this.track(address, { id: net.id, name: String(b.name) });
    this.log(`created ${address} (network ${b.name})`);
  }

  /** resourceDockerNetworkDelete: NetworkRemove, retried while "has active endpoints" (30 s); gone = done. */
  private async deleteNetwork(address: string): Promise<void> {
    const st = this.state.get(address)!;
    const net = this.engineOf(address).getNetwork(st.id);
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await net.remove();
        return;
      } catch (e) {
        if (statusOf(e) === 404) return;
        if (!ignorable(e, "has active endpoints") || Date.now() > deadline) throw new Error(`removing ${address}: ${messageOf(e)}`);
        await sleep(500);
      }
    }
  }

  /** resourceDockerVolumeCreate: VolumeCreate{Name, Labels, Driver (each if set)}; the engine's name is the id. */
  private async createVolume(address: string): Promise<void> {
    const b = this.evaluate(address);
    const opts: Record<string, unknown> = {};
    if (nonZero(b.name)) opts.Name = String(b.name);
    if (nonZero(b.labels)) opts.Labels = Object.fromEntries((b.labels as Array<{ label: string; value: string }>).map((l) => [l.label, l.value]));
    if (nonZero(b.driver)) opts.Driver = String(b.driver);
    const v = (await this.engineOf(address).createVolume(opts)) as unknown as { name?: string; Name?: string };
    const name = v.Name ?? v.name ?? String(b.name);
    this.track(address, { id: name, name });
    this.log(`created ${address} (volume ${name})`);
  }

  /** resourceDockerVolumeDelete: VolumeRemove(force), retried while "volume is in use" (30 s). */
  private async deleteVolume(address: string): Promise<void> {
    const st = this.state.get(address)!;
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await this.engineOf(address).getVolume(st.name).remove({ force: true });
        return;
      } catch (e) {
        if (statusOf(e) === 404) return;
        if (!ignorable(e, "volume is in use") || Date.now() > deadline) throw new Error(`removing ${address}: ${messageOf(e)}`);
        await sleep(500);
      }
    }
  }

  private track(address: string, attrs: Record<string, string>): void {
    this.state.set(address, attrs);
    if (!this.created.includes(address)) this.created.push(address);
  }

  // --- images ---------------------------------------------------------------------------------

  private async imageId(docker: Dockerode, name: string): Promise<string | undefined> {
    try {
      return (await docker.getImage(name).inspect()).Id;
    } catch (e) {
      if (statusOf(e) === 404) return undefined;
      throw e;
    }
  }

  /**
   * resourceDockerImageCreate: with `build` (no `builder`: the legacy path, buildDockerImage) build then
   * findImage(name); without, findImage(name) (local, else pull). Test environment: a tag that exists is
   * reused (cache by tag); a StandIn replaces an image that cannot be had here.
   */
  private async createImage(address: string): Promise<void> {
    const b = this.evaluate(address);
    const name = String(b.name);
    const build = block(b.build);
    const docker = this.engineOf(address);
    const standIn = this.standIns.find((s) => s.matches({ name, build }));
    if (standIn) {
      this.standInFor.set(address, standIn);
      const id = await this.buildCached(docker, standIn.image.tag, () => this.build(docker, standIn.image.tag, { context: standIn.image.context, dockerfile: join(standIn.image.context, standIn.image.dockerfile ?? "Dockerfile") }, process.cwd()));
      this.track(address, { id, image_id: id, name });
      this.log(`${address}: ${name} replaced by the stand-in ${standIn.image.tag} (${standIn.reason})`);
      return;
    }
    let id: string | undefined;
    if (build) {
      id = await this.buildCached(docker, name, () => this.build(docker, name, build, this.stackDir));
    } else {
      id = await this.imageId(docker, name);
      if (!id) {
        // findImage → pullImage
        try {
          const stream = await docker.pull(name);
          const p = await followProgress(docker, stream);
          if (p.error) throw new Error(p.error);
        } catch (e) {
          throw new Error(`${address}: unable to pull image ${name}: ${(e as Error).message} (no registry is reachable here: give the applier a StandIn for it)`);
        }
        id = await this.imageId(docker, name);
      }
    }
    if (!id) throw new Error(`${address}: Unable to read Docker image into resource: unable to find or pull image ${name}`);
    this.track(address, { id, image_id: id, name });
  }

  private async buildCached(docker: Dockerode, tag: string, build: () => Promise<void>): Promise<string> {
    const reuse = async () => {
      const existing = await this.imageId(docker, tag);
      if (existing) {
        this.imagesReused.push(tag);
        this.log(`image ${tag} exists: reused`);
      }
      return existing;
    };
    const present = await reuse();
    if (present) return present;
    // Suites running at once (jest workers) build each tag once: the others wait and reuse it.
    mkdirSync(IMAGE_LOCKS, { recursive: true });
    return withDirLock(join(IMAGE_LOCKS, tag.replace(/[^A-Za-z0-9_.-]/g, "_")), { staleMs: 120_000, log: this.log }, async () => {
      const built = await reuse();
      if (built) return built;
      const t0 = Date.now();
      await build();
      const id = await this.imageId(docker, tag);
      if (!id) throw new Error(`built ${tag} but the engine has no image by that name`);
      this.imagesBuilt.push(tag);
      this.log(`built ${tag} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      return id;
    });
  }

  /** buildDockerImage: the context as the provider sends it, the query of createImageBuildOptions; output kept only for errors (last 50 lines). */
  private async build(docker: Dockerode, name: string, build: Body, cwd: string): Promise<void> {
    const { entries, relDockerfile } = prepareBuildContext(cwd, String(build.context), String(build.dockerfile ?? "Dockerfile"));
    const api = String((await docker.version()).ApiVersion ?? "1.41");
    const query = imageBuildQuery(name, build, relDockerfile, api);
    let progress;
    try {
      const stream = await docker.buildImage(tarGz(entries) as unknown as NodeJS.ReadableStream, query);
      progress = await followProgress(docker, stream);
    } catch (e) {
      throw new Error(`Error running legacy build of ${name}: ${messageOf(e)}`);
    }
    if (progress.error) throw new Error(`Error running legacy build of ${name}: ${progress.error}\n--- last build output ---\n${tail(progress.lines.join("\n"))}`);
  }

  /** resourceDockerImageDelete → removeImage: nothing when keep_locally; else ImageRemove(name) if present. Stand-in images are kept. */
  private async deleteImage(address: string): Promise<void> {
    const b = bodyOf(this.stack, address)!;
    if (b.keep_locally === true || b.keep_locally === "true" || this.standInFor.has(address)) return;
    const name = this.resolve(String(b.name));
    try {
      await this.engineOf(address).getImage(name).remove();
    } catch (e) {
      if (statusOf(e) !== 404) throw new Error(`removing ${address}: ${messageOf(e)}`);
    }
  }

  // --- containers -----------------------------------------------------------------------------

  private containerAddress(name: string): string {
    for (const [key, body] of Object.entries(this.stack.resource?.docker_container ?? {})) {
      if (this.resolve(String(body.name)) === name) return `docker_container.${key}`;
    }
    throw new Error(`no docker_container is named ${name}; there are ${this.containerNames().join(", ")}`);
  }

  containerNames(): string[] {
    return Object.values(this.stack.resource?.docker_container ?? {}).map((b) => this.resolve(String(b.name)));
  }

  /** The declared container, references resolved (with the env changes recreate() was given). */
  spec(name: string): ContainerSpec {
    return this.specOf(this.containerAddress(name));
  }

  private specOf(address: string): ContainerSpec {
    const spec = toContainerSpec(address, this.evaluate(address));
    const env = this.envOverrides.get(address);
    return env ? withEnv(spec, env) : spec;
  }

  /** The stand-in replacing the image a container uses, if any (by reference to the docker_image, or by its name). */
  private standInOf(address: string, spec: ContainerSpec): { standIn: StandIn; imageId: string } | undefined {
    const raw = String(bodyOf(this.stack, address)!.image);
    for (const [img, s] of this.standInFor) {
      const refsIt = referencesIn(raw).some((r) => referencedAddress(r) === img);
      const st = this.state.get(img);
      if (!st) continue;
      if (refsIt || spec.image === st.name) return { standIn: s, imageId: st.image_id };
    }
    return undefined;
  }

  /**
   * resourceDockerContainerCreate, in its order: findImage(image); ContainerCreate; networks_advanced
   * (NetworkDisconnect "bridge", then NetworkConnect each with aliases / ipv4_address); uploads (one tar
   * per file, CopyToContainer "/"); ContainerStart; `wait` (healthy within wait_timeout); then
   * resourceDockerContainerRead's refresh (`must_run`).
   */
  private async createContainer(address: string): Promise<void> {
    const docker = this.engineOf(address);
    const declared = this.specOf(address);
    let spec = declared;
    let extraBinds: string[] = [];
    const s = this.standInOf(address, declared);
    if (s) {
      const { extraBinds: binds, extraEnv, ...patch } = s.standIn.container(declared);
      spec = { ...declared, ...patch, image: s.imageId, env: [...(patch.env ?? declared.env), ...(extraEnv ?? [])] };
      extraBinds = binds ?? [];
      this.log(`${address}: runs the stand-in ${s.standIn.image.tag} (${s.standIn.reason})`);
    }
    const opts = containerCreateOptions(spec);
    if (extraBinds.length) opts.HostConfig!.Binds = [...(opts.HostConfig!.Binds ?? []), ...extraBinds];

    // findImage: the image must exist (the provider would pull it otherwise)
    if (!(await this.imageId(docker, spec.image))) throw new Error(`${address}: Unable to create container with image ${spec.image}: not found locally (and nothing can be pulled here)`);
    const created = await docker.createContainer(opts);
    this.track(address, { id: created.id, name: spec.name, destroy_grace_seconds: String(spec.destroyGraceSeconds ?? 0) });
    const container = docker.getContainer(created.id);

    // networks_advanced: disconnect the default bridge (ignoring "is not connected to the network bridge"), then connect
    if (nonZero(spec.networksAdvanced)) {
      try {
        await docker.getNetwork("bridge").disconnect({ Container: created.id, Force: false });
      } catch (e) {
        if (!ignorable(e, "is not connected to the network bridge")) throw new Error(`${address}: Unable to disconnect the default network: ${messageOf(e)}`);
      }
      for (const n of spec.networksAdvanced) {
        const endpoint = { Aliases: n.aliases ?? [], IPAMConfig: { IPv4Address: n.ipv4Address ?? "", IPv6Address: "" } };
        try {
          await docker.getNetwork(n.name).connect({ Container: created.id, EndpointConfig: endpoint });
        } catch (e) {
          throw new Error(`${address}: Unable to connect to network '${n.name}': ${messageOf(e)}`);
        }
      }
    }

    // upload: after networks, before start
    for (const u of spec.upload) {
      const tar = await uploadTar(u.file, uploadContent(u, this.stackDir), uploadMode(u));
      try {
        await container.putArchive(tar, { path: "/", noOverwriteDirNonDir: "true" });
      } catch (e) {
        throw new Error(`${address}: Unable to upload volume content (${u.file}): ${messageOf(e)}`);
      }
    }

    // start (the `start` attribute, default true, is not modelled: always started)
    const creationTime = Date.now();
    await container.start();

    // wait: poll the health status every second until healthy, at most wait_timeout (default 60) s
    if (spec.wait) {
      const deadline = Date.now() + (spec.waitTimeout ?? 60) * 1000;
      for (;;) {
        const info = await container.inspect();
        if (!info.State.Health) throw new Error(`${address}: you have supplied a 'wait' argument, but the container does not have a healthcheck defined`);
        if (info.State.Health.Status === "healthy") break;
        if (Date.now() > deadline) throw new Error(`${address}: container failed to be in healthy state`);
        await sleep(1000);
      }
    }

    // resourceDockerContainerRead: refresh after 100 ms: running, or (must_run) an error — the provider
    // deletes the container that exited ("container exited immediately") and fails
    await sleep(100);
    const info = await container.inspect();
    const mustRun = spec.mustRun ?? true;
    if (!info.State.Running && mustRun) {
      const logs = await this.logsOf(docker, created.id).catch(() => "");
      const finished = Date.parse(info.State.FinishedAt);
      const why = finished >= creationTime ? "container exited immediately" : "container failed to be in running state";
      await this.deleteContainer(address);
      throw new Error(`${address} (${spec.name}): ${why} (exit code ${info.State.ExitCode}); its logs:\n${tail(logs)}`);
    }
    this.log(`created ${address} (container ${spec.name})`);
  }

  /**
   * resourceDockerContainerDelete: ContainerStop with timeout destroy_grace_seconds (0 when unset — the
   * provider passes 0, so the container gets its stop signal and is killed at once; stop_timeout only
   * applies to stops without a timeout), ContainerRemove{RemoveVolumes: remove_volumes (default true),
   * RemoveLinks: rm (false), Force}, then wait until not running; "No such container" is not an error.
   */
  private async deleteContainer(address: string): Promise<void> {
    const st = this.state.get(address);
    if (!st) return;
    const docker = this.engineOf(address);
    const c = docker.getContainer(st.id);
    const grace = Number(st.destroy_grace_seconds ?? 0);
    try {
      await c.stop({ t: grace > 0 ? grace : 0 });
    } catch (e) {
      // 304: already stopped (not an error for the Go client); 404: already gone
      if (statusOf(e) !== 304 && statusOf(e) !== 404) throw new Error(`Error stopping container ${st.name}: ${messageOf(e)}`);
    }
    try {
      await c.remove({ v: true, link: false, force: true });
    } catch (e) {
      if (statusOf(e) !== 404 && !ignorable(e, "No such container", "is already in progress")) throw new Error(`Error deleting container ${st.name}: ${messageOf(e)}`);
    }
    try {
      await c.wait({ condition: "not-running" });
    } catch (e) {
      if (statusOf(e) !== 404 && !ignorable(e, "No such container", "is already in progress")) throw new Error(`Error waiting for container removal '${st.name}': ${messageOf(e)}`);
    }
    this.state.delete(address);
  }

  /** What terraform does when a container is replaced: delete (provider semantics), then create — optionally with env changed (a rotated secret). */
  async recreate(name: string, patch?: { env?: Record<string, string> }): Promise<void> {
    const address = this.containerAddress(name);
    const lifecycle = block(bodyOf(this.stack, address)!.lifecycle);
    if (lifecycle?.create_before_destroy) throw new NotModelled(`applier does not model lifecycle.create_before_destroy of ${address}`);
    await this.deleteContainer(address);
    if (patch?.env) this.envOverrides.set(address, { ...(this.envOverrides.get(address) ?? {}), ...patch.env });
    await this.createContainer(address);
  }

  // --- running containers ---------------------------------------------------------------------

  private engineOfContainer(name: string): Dockerode {
    return this.engineOf(this.containerAddress(name));
  }

  /** Runs argv in the container (docker exec), stdin from `input`; stdout and stderr apart. */
  async exec(name: string, argv: string[], o: { user?: string; env?: string[]; input?: string | Buffer; timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    const docker = this.engineOfContainer(name);
    const withInput = o.input !== undefined;
    const ex = await docker.getContainer(name).exec({ Cmd: argv, AttachStdout: true, AttachStderr: true, AttachStdin: withInput, Tty: false, User: o.user, Env: o.env });
    const stream = (await ex.start({ hijack: true, stdin: withInput })) as NodeJS.ReadWriteStream & { destroy(): void };
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const sink = (into: Buffer[]) => ({ write: (b: Buffer) => (into.push(Buffer.from(b)), true) }) as unknown as NodeJS.WritableStream;
    docker.modem.demuxStream(stream, sink(out), sink(err));
    const timeoutMs = o.timeoutMs ?? 120_000;
    await new Promise<void>((res, rej) => {
      const timer = setTimeout(() => {
        stream.destroy();
        rej(new Error(`exec in ${name} timed out after ${timeoutMs} ms: ${argv.join(" ")}\nstdout: ${Buffer.concat(out).toString()}\nstderr: ${Buffer.concat(err).toString()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        res();
      };
      stream.on("end", done);
      stream.on("close", done);
      stream.on("error", (e) => {
        clearTimeout(timer);
        rej(e);
      });
      if (withInput) stream.end(o.input as string | Buffer);
    });
    let info = await ex.inspect();
    for (let i = 0; info.Running && i < 100; i++) {
      await sleep(20);
      info = await ex.inspect();
    }
    return { code: info.ExitCode ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
  }

  private async logsOf(docker: Dockerode, id: string, since?: number): Promise<string> {
    const buf = (await docker.getContainer(id).logs({ stdout: true, stderr: true, follow: false, ...(since ? { since } : {}) })) as unknown as Buffer;
    return demux(Buffer.from(buf)).combined;
  }

  /** The container's stdout+stderr so far (since a Unix time in seconds, if given), demultiplexed. */
  async logs(name: string, since?: number): Promise<string> {
    return this.logsOf(this.engineOfContainer(name), name, since);
  }

  async health(name: string): Promise<"healthy" | "unhealthy" | "starting" | "none"> {
    const info = await this.engineOfContainer(name).getContainer(name).inspect();
    return (info.State.Health?.Status as "healthy" | "unhealthy" | "starting" | undefined) ?? "none";
  }

  /** Waits until all are healthy; fails naming the others with their last health-check output (and the logs of one that stopped). */
  async waitHealthy(names: string[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const problems: string[] = [];
      let dead = "";
      for (const n of names) {
        const info = await this.engineOfContainer(n).getContainer(n).inspect();
        const h = info.State.Health;
        if (h?.Status === "healthy") continue;
        const last = (h?.Log ?? []).slice(-3).map((l: { ExitCode: number; Output: string }) => `    exit ${l.ExitCode}: ${String(l.Output).trim().split("\n").slice(-5).join(" | ")}`);
        problems.push(`  ${n}: ${h?.Status ?? "no healthcheck"} (${info.State.Status})${last.length ? `\n${last.join("\n")}` : ""}`);
        if (!info.State.Running && !info.State.Restarting && !dead) dead = `\n--- ${n} is ${info.State.Status} (exit ${info.State.ExitCode}); its logs ---\n${tail(await this.logs(n))}`;
      }
      if (!problems.length) return;
      if (dead || Date.now() > deadline) throw new Error(`not healthy after ${Math.round((timeoutMs - Math.max(0, deadline - Date.now())) / 1000)} s:\n${problems.join("\n")}${dead}`);
      await sleep(500);
    }
  }

  /**
   * Terraform destroy: dependents first (reverse creation order): containers (resourceDockerContainerDelete),
   * volumes (unless keepVolumes), networks; images only when keep_locally is not set (removeImage).
   * Idempotent: what is gone is skipped. `lifecycle.prevent_destroy` is not enforced: this is test teardown.
   */
  async destroy(o: { keepVolumes?: boolean } = {}): Promise<void> {
    const errors: string[] = [];
    for (const address of [...this.created].reverse()) {
      if (!this.state.has(address)) continue;
      const type = address.split(".")[0];
      if (type === "docker_volume" && o.keepVolumes) continue;
      try {
        if (type === "docker_container") await this.deleteContainer(address);
        else if (type === "docker_volume") await this.deleteVolume(address);
        else if (type === "docker_network") await this.deleteNetwork(address);
        else if (type === "docker_image") await this.deleteImage(address);
        this.state.delete(address);
        this.log(`destroyed ${address}`);
      } catch (e) {
        errors.push(`${address}: ${(e as Error).message}`);
      }
    }
    if (this.workDir) {
      rmSync(this.workDir, { recursive: true, force: true });
      this.workDir = undefined;
      this.cas = undefined;
    }
    if (errors.length) throw new Error(`destroy failed for:\n${errors.join("\n")}`);
  }

  /** Is the resource applied (in the deployment's state)? */
  applied(address: string): boolean {
    return this.state.has(address);
  }
}
