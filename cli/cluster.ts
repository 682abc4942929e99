/**
 * `npx pgharbor cluster …`: the Patroni cluster of an environment (issue 14). Pure functions over an
 * Executor: every call is `patronictl -c /etc/pgharbor/patroni.yml …` run as postgres in one of the
 * environment's PostgreSQL member containers (`pgharbor-<env>-<member>`), which reaches the other
 * members' REST API and the DCS itself. The REST API credentials come from the container's
 * environment; nothing here sees or passes them.
 *
 * What patronictl 4.0.7 does that shapes this module (captured from a real cluster, see
 * __tests__/fixtures/patroni-4.0.7):
 * - `list` reads the DCS: a killed member keeps its last role and state ("Leader"/"running") until
 *   its key expires (the ttl), then disappears from the list. So a member absent from the list is
 *   down, and a member whose container cannot be reached is reported as such whatever the DCS says.
 * - the leader has no "Lag in MB"; a stopped member has no "TL" and "Lag in MB": "unknown";
 *   "Pending restart": "*" and "Pending restart reason" appear only when a restart is pending.
 * - `switchover` to a candidate Patroni refuses (not the sync standby in synchronous mode) exits 0,
 *   printing "Switchover failed, details: 412, …": the exit code alone does not say it happened.
 * - `restart --pending` on a member with nothing pending exits 0 and does nothing, silently.
 * - without `--force` every command prompts on stdin ("Aborted!", exit 1, without a terminal).
 * - with the DCS unreachable, `list` retries for ever: every call here has a timeout.
 */
import type { EnvironmentConfig } from "../stacks/schema";
import { formatProblem } from "../constructs/errors";
import { ArgumentError, OperationError } from "./errors";
import type { ExecResult, Executor } from "./operations";
import { PATRONI_PATHS } from "../postgres-config/patroni";

/** Patroni's configuration file in every member container. */
export const PATRONI_CONFIG = PATRONI_PATHS.config;

/** The Patroni cluster (scope) of an environment. */
export const clusterName = (environment: string) => `pgharbor-${environment}`;

/** The environment's PostgreSQL members, in the order the CLI tries them: primary, replica-1 … replica-N. */
export function clusterMembers(env: Pick<EnvironmentConfig, "replicas">): string[] {
  return ["primary", ...Array.from({ length: env.replicas }, (_, i) => `replica-${i + 1}`)];
}

/** The environment as the cluster commands need it. */
export interface ClusterEnvironment {
  name: string;
  /** Member names, primary first (clusterMembers). */
  members: string[];
}

export const clusterEnvironment = (env: Pick<EnvironmentConfig, "name" | "replicas">): ClusterEnvironment => ({ name: env.name, members: clusterMembers(env) });

/** A member name given on the command line, checked against the environment's members before anything runs. */
export function checkMember(env: ClusterEnvironment, value: string, field: string): string {
  if (env.members.includes(value)) return value;
  throw new ArgumentError(
    formatProblem(env.name, {
      field,
      value,
      problem: `is not a PostgreSQL member of ${env.name} (its members: ${env.members.join(", ")}; replicas come from \`replicas\` in stacks/environments.ts)`,
      fix: `give one of ${env.members.join(", ")}`,
    }),
  );
}

const patronictl = (args: string[]) => ["patronictl", "-c", PATRONI_CONFIG, ...args];

/** One member as `patronictl list -f json` prints it (Patroni 4.0.7). */
export interface PatroniListEntry {
  Cluster: string;
  Member: string;
  Host: string;
  Role: string;
  State: string;
  TL?: number;
  "Lag in MB"?: number | string;
  "Pending restart"?: string;
  "Pending restart reason"?: string;
  "Scheduled restart"?: string;
  Tags?: Record<string, unknown>;
}

export type MemberRole = "leader" | "sync standby" | "replica" | "standby leader" | "quorum standby" | "absent" | string;

export interface MemberStatus {
  member: string;
  /** From Patroni, never from the name: the member called primary may be a replica. "absent": not in the DCS. */
  role: MemberRole;
  /** Patroni's state (running, streaming, stopped, starting, creating replica, …) or "absent". */
  state: string;
  timeline: number | null;
  /** Replication lag in MB as Patroni reports it; null for the leader, an absent member or when Patroni does not know. */
  lagMB: number | null;
  /** true when Patroni reports the lag as unknown (a stopped member). */
  lagUnknown: boolean;
  pendingRestart: boolean;
  pendingRestartReason: string | null;
  scheduledRestart: string | null;
  tags: Record<string, unknown>;
  /** Listed in the DCS but not a member the environment declares (a leftover, or another deployment's). */
  unexpected?: boolean;
  /** Why its container could not run patronictl, when the CLI tried it. */
  unreachable?: string;
}

export interface ClusterMode {
  synchronous: boolean;
  synchronousStrict: boolean;
  /** Maintenance mode (`patronictl pause`): Patroni does not fail over. */
  paused: boolean;
}

export interface ClusterStatus {
  environment: string;
  cluster: string;
  /** The member whose patronictl answered. */
  via: string;
  /** The member holding the leader key and running, or null. */
  leader: string | null;
  /** null when show-config could not be read. */
  mode: ClusterMode | null;
  members: MemberStatus[];
  /** Members the CLI tried and could not run patronictl in, before one answered. */
  unreachable: Unreachable[];
  problems: string[];
}

export interface Unreachable {
  member: string;
  error: string;
  /** The container itself is down (docker exec could not enter it), not only patronictl failing in it. */
  containerDown: boolean;
}

/** docker exec's own refusals: the container is stopped, missing or paused (patronictl never ran). */
const CONTAINER_DOWN = /^Error response from daemon: (Container \S+ is not running|No such container|Container \S+ is paused)/m;

const ROLES: Record<string, MemberRole> = { Leader: "leader", "Sync Standby": "sync standby", Replica: "replica", "Standby Leader": "standby leader", "Quorum Standby": "quorum standby" };

/** Patroni's JSON list, checked enough that a different shape fails loudly rather than printing nonsense. */
export function parsePatroniList(stdout: string): PatroniListEntry[] {
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch {
    throw new OperationError(`patronictl list -f json printed no JSON: ${oneLine(stdout, 120) || "(nothing)"}`);
  }
  if (!Array.isArray(doc) || !doc.every((m) => m && typeof m === "object" && typeof m.Member === "string" && typeof m.Role === "string" && typeof m.State === "string")) {
    throw new OperationError(`patronictl list -f json printed an unexpected document (a list of {Member, Role, State, …} expected): ${oneLine(stdout, 120)}`);
  }
  return doc as PatroniListEntry[];
}

/** The dynamic configuration's top-level switches, from `patronictl show-config` (YAML; only top-level scalars read). */
export function parseShowConfig(stdout: string): ClusterMode {
  const top = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const m = /^([a-z_]+):\s*(.*?)\s*$/.exec(line);
    if (m) top.set(m[1], m[2].replace(/^'(.*)'$/, "$1"));
  }
  const on = (k: string) => top.get(k) === "true" || top.get(k) === "on" || top.get(k) === "quorum";
  return { synchronous: on("synchronous_mode"), synchronousStrict: on("synchronous_mode_strict"), paused: on("pause") };
}

function memberFrom(e: PatroniListEntry, expected: boolean): MemberStatus {
  const lag = e["Lag in MB"];
  return {
    member: e.Member,
    role: ROLES[e.Role] ?? e.Role.toLowerCase(),
    state: e.State,
    timeline: typeof e.TL === "number" ? e.TL : null,
    lagMB: typeof lag === "number" ? lag : null,
    lagUnknown: lag === "unknown",
    pendingRestart: e["Pending restart"] !== undefined && e["Pending restart"] !== "",
    pendingRestartReason: e["Pending restart reason"] || null,
    scheduledRestart: e["Scheduled restart"] || null,
    tags: e.Tags ?? {},
    ...(expected ? {} : { unexpected: true }),
  };
}

/**
 * The status from a parsed list: every declared member (absent ones included, in the environment's
 * order), then anything else the DCS lists; the leader only when it is running and its container was
 * not found unreachable.
 */
export function clusterStatusFrom(env: ClusterEnvironment, via: string, list: PatroniListEntry[], mode: ClusterMode | null, unreachable: Unreachable[]): ClusterStatus {
  const cluster = clusterName(env.name);
  const problems: string[] = [];
  const others = list.filter((e) => e.Cluster !== undefined && e.Cluster !== cluster);
  if (others.length) problems.push(`patronictl listed members of another cluster (${[...new Set(others.map((e) => e.Cluster))].join(", ")}): is ${PATRONI_CONFIG} this environment's?`);
  const byName = new Map(list.map((e) => [e.Member, e]));
  const members: MemberStatus[] = env.members.map((name) => {
    const e = byName.get(name);
    if (e) return memberFrom(e, true);
    return { member: name, role: "absent", state: "absent", timeline: null, lagMB: null, lagUnknown: false, pendingRestart: false, pendingRestartReason: null, scheduledRestart: null, tags: {} };
  });
  for (const e of list) if (!env.members.includes(e.Member)) members.push(memberFrom(e, false));
  // Only a container known down disqualifies what the DCS says about it; patronictl failing in a
  // running container (its DCS connection, say) says nothing about that member's PostgreSQL.
  for (const u of unreachable.filter((x) => x.containerDown)) {
    const m = members.find((x) => x.member === u.member);
    if (m) m.unreachable = u.error;
  }
  const leaders = members.filter((m) => m.role === "leader" || m.role === "standby leader");
  const running = leaders.filter((m) => m.state === "running" && !m.unreachable);
  for (const m of members) {
    if (m.role === "absent") problems.push(`${m.member} is not in the DCS: Patroni is not running in pgharbor-${env.name}-${m.member} (or has not registered yet)`);
    else if (m.unexpected) problems.push(`${m.member} is in the DCS but not a member of ${env.name}`);
    else if (m.unreachable && (m.role === "leader" || m.state === "running" || m.state === "streaming")) problems.push(`${m.member}: its container could not be reached (${m.unreachable}); the DCS still shows it ${m.role}/${m.state} until its key expires`);
    else if (m.state !== "running" && m.state !== "streaming") problems.push(`${m.member} is ${m.state}`);
  }
  if (!running.length) problems.push(leaders.length ? `no running leader (${leaders.map((l) => `${l.member} ${l.state}${l.unreachable ? ", container unreachable" : ""}`).join("; ")})` : "no leader");
  if (mode?.synchronous && !members.some((m) => m.role === "sync standby" && m.state === "streaming")) problems.push("synchronous mode is on but no sync standby is streaming");
  if (mode?.paused) problems.push("maintenance mode is on (`patronictl pause`): Patroni will not fail over");
  return { environment: env.name, cluster, via, leader: running.length === 1 ? running[0].member : null, mode, members, unreachable, problems };
}

export interface ClusterCallOptions {
  /** Per patronictl call; the DCS unreachable makes `list` retry for ever. @default 20 s */
  timeoutMs?: number;
}

const failure = (r: ExecResult) => oneLine(lastLines(r.stderr || r.stdout, 1), 200) || `exit ${r.code}`;

/**
 * `patronictl list -f json` (and show-config) from the first member that answers, trying the
 * environment's members in order; the ones that did not answer are reported, not fatal.
 */
export async function clusterStatus(ex: Executor, env: ClusterEnvironment, o: ClusterCallOptions = {}): Promise<ClusterStatus> {
  const timeoutMs = o.timeoutMs ?? 20_000;
  const unreachable: Unreachable[] = [];
  for (const member of env.members) {
    const r = await ex.exec(member, patronictl(["list", "-f", "json"]), { timeoutMs });
    let list: PatroniListEntry[];
    try {
      if (r.code !== 0) throw new OperationError(failure(r));
      list = parsePatroniList(r.stdout);
    } catch (e) {
      if (!(e instanceof OperationError)) throw e;
      unreachable.push({ member, error: e.message, containerDown: r.code !== 0 && CONTAINER_DOWN.test(r.stderr) });
      continue;
    }
    const cfg = await ex.exec(member, patronictl(["show-config"]), { timeoutMs });
    const mode = cfg.code === 0 ? parseShowConfig(cfg.stdout) : null;
    const status = clusterStatusFrom(env, member, list, mode, unreachable);
    if (!mode) status.problems.push(`patronictl show-config failed in ${member} (${failure(cfg)}): synchronous and maintenance modes unknown`);
    return status;
  }
  throw new OperationError(`no member of ${env.name} could run patronictl: ${unreachable.map((u) => `${u.member}: ${u.error}`).join("; ")}`);
}

/** Exit code of `cluster status`: 0 a leader is running, 2 none is (1 is left to errors: no member answered, bad arguments). */
export const statusExitCode = (s: ClusterStatus): 0 | 2 => (s.leader ? 0 : 2);

const oneLine = (s: string, width: number) => {
  const flat = s.replace(/[\u0000-\u001f\u007f-\u009f]+/g, " ").replace(/\s+/g, " ").trim();
  return flat.length > width ? `${flat.slice(0, width - 1)}…` : flat;
};
const lastLines = (s: string, n: number) => s.trim().split("\n").filter((l) => l.trim()).slice(-n).join(" | ");

/** A value from Patroni (names, reasons, tags) on a terminal: no control characters. */
const printable = (s: string) => String(s).replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);

export function renderClusterStatus(s: ClusterStatus): string {
  const mode = s.mode ? `${s.mode.synchronous ? `synchronous${s.mode.synchronousStrict ? " (strict)" : ""}` : "asynchronous"} replication${s.mode.paused ? ", MAINTENANCE MODE (no automatic failover)" : ""}` : "mode unknown";
  const lines = [`cluster ${s.cluster}: ${s.leader ? `leader ${s.leader}` : "NO LEADER"}, ${mode} (read through ${s.via})`];
  const header = ["member", "role", "state", "TL", "lag MB", "pending restart", "tags"];
  const rows = s.members.map((m) => [
    printable(m.member) + (m.unexpected ? " (?)" : ""),
    printable(m.role),
    printable(m.state) + (m.unreachable ? " (container unreachable)" : ""),
    m.timeline === null ? "-" : String(m.timeline),
    m.lagMB !== null ? String(m.lagMB) : m.lagUnknown ? "unknown" : "-",
    m.pendingRestart ? `yes${m.pendingRestartReason ? `: ${printable(m.pendingRestartReason)}` : ""}` : m.role === "absent" ? "-" : "no",
    Object.entries(m.tags).map(([k, v]) => printable(`${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)).join(" ") || "-",
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (r: string[]) => r.map((v, c) => (c === r.length - 1 ? v : c === 3 || c === 4 ? v.padStart(widths[c]) : v.padEnd(widths[c]))).join("  ").trimEnd();
  lines.push(line(header), ...rows.map(line));
  for (const m of s.members) if (m.scheduledRestart) lines.push(`${printable(m.member)}: restart scheduled ${printable(m.scheduledRestart)}`);
  for (const u of s.unreachable) lines.push(`${u.containerDown ? "container down" : "patronictl failed in"}: ${printable(u.member)}: ${printable(u.error)}`);
  for (const p of s.problems) lines.push(`problem: ${printable(p)}`);
  const primary = s.members.find((m) => m.member === "primary");
  if (primary && s.leader && s.leader !== "primary" && primary.role !== "absent") {
    lines.push(`note: the member named primary is a ${primary.role} now (after a failover or switchover); \`pgharbor cluster switchover --to primary --env ${s.environment}\` makes it the leader again`);
  }
  if (s.members.some((m) => m.pendingRestart)) lines.push(`pending restarts: \`pgharbor cluster restart <member> --pending --env ${s.environment}\` (replicas first, the leader last)`);
  return `${lines.join("\n")}\n`;
}

export interface WaitOptions extends ClusterCallOptions {
  /** How long to wait for the outcome. */
  waitMs?: number;
  pollMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** A line when the cluster's state changes while waiting. */
  progress?: (line: string) => void;
}

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls the status until `done` holds; the last status it saw on a timeout goes in the error. */
async function waitFor(ex: Executor, env: ClusterEnvironment, what: string, done: (s: ClusterStatus) => boolean, o: WaitOptions): Promise<ClusterStatus> {
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? realSleep;
  const deadline = now() + (o.waitMs ?? 120_000);
  let seen = "";
  let last: ClusterStatus | undefined;
  let lastError = "";
  for (;;) {
    try {
      last = await clusterStatus(ex, env, o);
      const summary = last.members.map((m) => `${m.member} ${m.role}/${m.state}`).join(", ");
      if (summary !== seen) o.progress?.(summary);
      seen = summary;
      if (done(last)) return last;
    } catch (e) {
      if (!(e instanceof OperationError)) throw e;
      lastError = e.message;
    }
    if (now() >= deadline) {
      throw new OperationError(`timed out after ${Math.round((o.waitMs ?? 120_000) / 1000)} s waiting for ${what}; last seen: ${seen || lastError || "nothing"} (\`pgharbor cluster status --env ${env.name}\`)`);
    }
    await sleep(o.pollMs ?? 1000);
  }
}

/** Runs a patronictl command that changes the cluster; a non-zero exit is an error carrying Patroni's own "Error: …" line. */
async function act(ex: Executor, via: string, args: string[], timeoutMs = 120_000): Promise<ExecResult> {
  const r = await ex.exec(via, patronictl(args), { timeoutMs });
  if (r.code !== 0) {
    const patroniError = r.stderr.split("\n").reverse().find((l) => /^Error: /.test(l));
    throw new OperationError(`patronictl ${args[0]} failed (exit ${r.code}, run in ${via}): ${oneLine(patroniError ?? failure(r), 300)}`);
  }
  return r;
}

export interface SwitchoverPlan {
  status: ClusterStatus;
  from: string;
  to: string | null;
}

/** Checks a switchover can be asked for, before the confirmation: a running leader, a candidate that is not it and is in the cluster. */
export async function planSwitchover(ex: Executor, env: ClusterEnvironment, to: string | undefined, o: ClusterCallOptions = {}): Promise<SwitchoverPlan> {
  if (to !== undefined) checkMember(env, to, "--to");
  const status = await clusterStatus(ex, env, o);
  if (!status.leader) throw new OperationError(`${status.cluster} has no running leader: nothing to switch over from (${status.problems.join("; ")}); \`pgharbor cluster failover --to <member> --env ${env.name}\` promotes one`);
  if (to === status.leader) throw new OperationError(`--to ${to}: ${to} is already the leader of ${status.cluster}`);
  if (to !== undefined) {
    const c = status.members.find((m) => m.member === to)!;
    if (c.role === "absent") throw new OperationError(`--to ${to}: ${to} is not in the cluster (not in the DCS: Patroni is not running there)`);
    if (c.unreachable) throw new OperationError(`--to ${to}: its container could not be reached (${c.unreachable})`);
    if (status.mode?.synchronous && c.role !== "sync standby") {
      const sync = status.members.filter((m) => m.role === "sync standby").map((m) => m.member);
      throw new OperationError(`--to ${to}: in synchronous mode only a sync standby can take over without losing acknowledged commits (${sync.length ? `now: ${sync.join(", ")}` : "there is none now"}); Patroni would refuse`);
    }
  } else if (!status.members.some((m) => m.member !== status.leader && (m.state === "streaming" || m.state === "running") && !m.unreachable && m.role !== "absent")) {
    throw new OperationError(`${status.cluster} has no healthy replica to switch over to`);
  }
  return { status, from: status.leader, to: to ?? null };
}

export interface RoleChange {
  from: string | null;
  to: string;
  seconds: number;
  timeline: number | null;
  status: ClusterStatus;
}

/**
 * `patronictl switchover --leader <current> [--candidate <to>] --force`, then waits until a leader
 * other than the old one is running (the candidate, when one was named).
 */
export async function switchover(ex: Executor, env: ClusterEnvironment, plan: SwitchoverPlan, o: WaitOptions = {}): Promise<RoleChange> {
  const now = o.now ?? Date.now;
  const start = now();
  const r = await act(ex, plan.status.via, ["switchover", "--leader", plan.from, ...(plan.to ? ["--candidate", plan.to] : []), "--force"]);
  // Patroni 4.0.7 exits 0 when the leader refuses (e.g. "Switchover failed, details: 412, candidate name does not match with sync_standby").
  const refused = /^Switchover failed.*$/m.exec(r.stdout);
  if (refused) throw new OperationError(`Patroni refused the switchover: ${oneLine(refused[0].replace(/^Switchover failed,?\s*(details:\s*)?/, ""), 300)}; nothing changed`);
  const s = await waitFor(ex, env, `a new leader${plan.to ? ` (${plan.to})` : ""}`, (x) => x.leader !== null && x.leader !== plan.from && (!plan.to || x.leader === plan.to), o);
  return { from: plan.from, to: s.leader!, seconds: (now() - start) / 1000, timeline: s.members.find((m) => m.member === s.leader)?.timeline ?? null, status: s };
}

export interface FailoverPlan {
  status: ClusterStatus;
  to: string;
}

/** Checks a failover can be asked for: no healthy leader (otherwise switchover is the tool), a candidate in the cluster. */
export async function planFailover(ex: Executor, env: ClusterEnvironment, to: string, o: ClusterCallOptions = {}): Promise<FailoverPlan> {
  checkMember(env, to, "--to");
  const status = await clusterStatus(ex, env, o);
  if (status.leader === to) throw new OperationError(`--to ${to}: ${to} is already the leader of ${status.cluster}`);
  if (status.leader) throw new OperationError(`${status.cluster} has a running leader (${status.leader}): use \`pgharbor cluster switchover --to ${to} --env ${env.name}\`, which hands over without losing acknowledged commits`);
  const c = status.members.find((m) => m.member === to)!;
  if (c.role === "absent") throw new OperationError(`--to ${to}: ${to} is not in the cluster (not in the DCS: Patroni is not running there)`);
  if (c.unreachable) throw new OperationError(`--to ${to}: its container could not be reached (${c.unreachable})`);
  return { status, to };
}

/** `patronictl failover --candidate <to> --force`, then waits until `to` is the running leader. */
export async function failover(ex: Executor, env: ClusterEnvironment, plan: FailoverPlan, o: WaitOptions = {}): Promise<RoleChange> {
  const now = o.now ?? Date.now;
  const start = now();
  const r = await act(ex, plan.status.via, ["failover", "--candidate", plan.to, "--force"]);
  const refused = /^Failover failed.*$/m.exec(r.stdout);
  if (refused) throw new OperationError(`Patroni refused the failover: ${oneLine(refused[0].replace(/^Failover failed,?\s*(details:\s*)?/, ""), 300)}; nothing changed`);
  const s = await waitFor(ex, env, `${plan.to} to lead`, (x) => x.leader === plan.to, o);
  const old = plan.status.members.find((m) => m.role === "leader" || m.role === "standby leader");
  return { from: old?.member ?? null, to: plan.to, seconds: (now() - start) / 1000, timeline: s.members.find((m) => m.member === plan.to)?.timeline ?? null, status: s };
}

export interface ReinitPlan {
  status: ClusterStatus;
  member: string;
}

/** Refuses to reinit the leader (Patroni says only "No replica among provided members"). */
export async function planReinit(ex: Executor, env: ClusterEnvironment, member: string, o: ClusterCallOptions = {}): Promise<ReinitPlan> {
  checkMember(env, member, "<member>");
  const status = await clusterStatus(ex, env, o);
  const m = status.members.find((x) => x.member === member)!;
  if (m.role === "leader" || m.role === "standby leader") {
    const other = status.members.find((x) => x.member !== member && (x.state === "streaming" || x.state === "running"));
    throw new OperationError(`${member} is the leader of ${status.cluster}: reinit would wipe the data every other member follows. Switch over first${other ? ` (\`pgharbor cluster switchover --to ${other.member} --env ${env.name}\`)` : ""}, then reinit it as a replica`);
  }
  if (m.role === "absent") throw new OperationError(`${member} is not in the cluster (not in the DCS: Patroni is not running in pgharbor-${env.name}-${member}); Patroni can only reinit a running member`);
  return { status, member };
}

/** `patronictl reinit <cluster> <member> --force`, then waits until the member streams again. */
export async function reinit(ex: Executor, env: ClusterEnvironment, plan: ReinitPlan, o: WaitOptions = {}): Promise<{ member: string; seconds: number; status: ClusterStatus }> {
  const now = o.now ?? Date.now;
  const start = now();
  const via = plan.status.via === plan.member ? (plan.status.members.find((m) => m.member !== plan.member && !m.unreachable && m.role !== "absent")?.member ?? plan.member) : plan.status.via;
  await act(ex, via, ["reinit", plan.status.cluster, plan.member, "--force"]);
  const s = await waitFor(ex, env, `${plan.member} to stream from the leader again`, (x) => {
    const m = x.members.find((y) => y.member === plan.member);
    const leader = x.members.find((y) => y.member === x.leader);
    return !!m && !!leader && m.state === "streaming" && m.timeline === leader.timeline;
  }, { waitMs: 6 * 3600_000, pollMs: 2000, ...o });
  return { member: plan.member, seconds: (now() - start) / 1000, status: s };
}

/**
 * `patronictl restart <cluster> <member> --force [--pending]`. Resolves with whether a restart
 * happened: with --pending and nothing pending, Patroni exits 0 without restarting.
 */
export async function restart(ex: Executor, env: ClusterEnvironment, member: string, pending: boolean, o: ClusterCallOptions = {}): Promise<{ restarted: boolean; status: ClusterStatus }> {
  checkMember(env, member, "<member>");
  const status = await clusterStatus(ex, env, o);
  const m = status.members.find((x) => x.member === member)!;
  if (m.role === "absent") throw new OperationError(`${member} is not in the cluster (not in the DCS: Patroni is not running in pgharbor-${env.name}-${member}); start its container instead`);
  const r = await act(ex, status.via, ["restart", status.cluster, member, "--force", ...(pending ? ["--pending"] : [])], 600_000);
  const restarted = new RegExp(`^Success: restart on member ${member.replace(/[-.]/g, "\\$&")}$`, "m").test(r.stdout);
  if (!restarted && !pending) throw new OperationError(`patronictl restart reported no success for ${member}: ${oneLine(lastLines(r.stdout, 1), 200)}`);
  return { restarted, status };
}
