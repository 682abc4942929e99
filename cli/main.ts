/**
 * pgharbor operations CLI: `npx pgharbor <command> --env <name>`.
 * Acts on a deployed environment through `docker exec` on that environment's Docker host.
 */
import { spawn } from "child_process";
import { readFileSync } from "fs";
import { createInterface } from "readline";
import { Command } from "commander";
import { ENVIRONMENTS } from "../stacks/environments";
import type { EnvironmentConfig } from "../stacks/schema";
import { checkEnvironmentShape } from "../stacks/schema";
import { PgharborConfigError } from "../constructs/errors";
import { dockerHostProblem } from "../constructs/validation/addresses";
import { checkIdentity, checkLogicalSet, checkNewDatabaseName, checkRestoreDirectory, checkSourceDatabase, parseTarget } from "./arguments";
import {
  backupNow,
  cleanup,
  cleanupPlan,
  drillNow,
  DrillEvidence,
  ExecOptions,
  ExecResult,
  Executor,
  isUnreadable,
  jobStatus,
  listBackups,
  listDrills,
  listLogical,
  logicalBackupNow,
  OperationError,
  recoverabilityWindow,
  restore,
  restoreLogical,
  verify,
} from "./operations";
import { CliExit, registerReview } from "./review";
import { healthExitCode, renderHealth } from "./health";
import { clusterEnvironment, ClusterEnvironment, clusterStatus, failover, planFailover, planReinit, planSwitchover, reinit, renderClusterStatus, restart, RoleChange, statusExitCode, switchover } from "./cluster";
import { health, indexAdvice, lastPlan, maintenanceNow, QUERY_ORDER, QueryOrder, renderIndexAdvice, renderMaintenance, renderPlan, renderTopQueries, resetQueries, topQueries } from "./insights";

/**
 * docker exec on the host a container runs on: the environment's primary's host (the backup
 * container's too), or the host `roleHosts` names for a role (a replica on another host).
 */
export class DockerExecutor implements Executor {
  constructor(
    private readonly environment: string,
    private readonly dockerHost: string,
    private readonly dockerBin = "docker",
    private readonly roleHosts: Readonly<Record<string, string>> = {},
  ) {}

  private hostOf(role: string): string {
    return Object.prototype.hasOwnProperty.call(this.roleHosts, role) ? this.roleHosts[role] : this.dockerHost;
  }

  exec(role: string, argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return new Promise((resolve) => {
      const interactive = opts.input !== undefined ? ["-i"] : [];
      // As postgres, like the scheduled jobs after they drop privileges: pgBackRest's lock and spool
      // files and the scratch copies stay owned by the user the jobs run as. `docker exec` hands the
      // process the container's environment (the bucket credentials) whatever the user.
      const p = spawn(this.dockerBin, ["--host", this.hostOf(role), "exec", "--user", "postgres", ...interactive, `pgharbor-${this.environment}-${role}`, ...argv], { timeout: opts.timeoutMs });
      let stdout = "";
      let stderr = "";
      let partial = "";
      p.stdout.on("data", (d) => (stdout += d));
      p.stderr.on("data", (d) => {
        stderr += d;
        if (!opts.onStderr) return;
        const lines = (partial + d).split("\n");
        partial = lines.pop()!;
        for (const l of lines) opts.onStderr(l);
      });
      p.on("error", (e) => resolve({ code: 127, stdout, stderr: `${stderr}${e.message}` }));
      p.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
      if (opts.input !== undefined) p.stdin.end(opts.input);
    });
  }

  logs(role: string, sinceSeconds: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const p = spawn(this.dockerBin, ["--host", this.hostOf(role), "logs", "--since", `${Math.max(1, Math.round(sinceSeconds))}s`, `pgharbor-${this.environment}-${role}`]);
      let text = "";
      let errors = "";
      // PostgreSQL logs to stderr; docker logs hands each stream back on its own.
      p.stdout.on("data", (d) => (text += d));
      p.stderr.on("data", (d) => (errors += d));
      p.on("error", (e) => reject(new OperationError(`docker logs: ${e.message}`)));
      p.on("close", (code) => (code === 0 ? resolve(text + errors) : reject(new OperationError(`docker logs pgharbor-${this.environment}-${role} failed (exit ${code}): ${errors.trim().split("\n").pop()}`))));
    });
  }
}

export function executorFor(envName: string): Executor {
  const env = ENVIRONMENTS.find((e) => e.name === envName);
  if (!env) throw new OperationError(`--env ${envName} is not an environment of this project (${ENVIRONMENTS.map((e) => e.name).join(", ")})`);
  try {
    checkEnvironmentShape(env);
  } catch (e) {
    if (e instanceof PgharborConfigError) throw new OperationError(`--env ${envName}: its configuration is invalid (npm run synth says why): ${e.message.split("\n")[0]}`);
    throw e;
  }
  const hostNames = Object.keys(env.hosts);
  const primaryHost = env.primary.host ?? hostNames[0];
  const daemonOf = (hostName: string, whose: string): string => {
    const host = env.hosts[hostName];
    if (!host) throw new OperationError(`--env ${envName}: ${whose} host ${hostName} is not declared (npm run synth says why)`);
    const dockerHost = host.dockerHost ?? "unix:///var/run/docker.sock";
    // The address goes to `docker --host`, and through it to ssh: never an option, never unacknowledged plain TCP.
    const daemon = dockerHostProblem(dockerHost);
    if (daemon && !(daemon.plainTcp && host.acknowledgeRisk?.dockerHost)) throw new OperationError(`--env ${envName}: hosts.${hostName}.dockerHost ${JSON.stringify(dockerHost)} ${daemon.problem}`);
    return dockerHost;
  };
  // Replicas go round robin over replicaHosts (default: the primary's host), as stacks/postgres-stack.ts places them.
  const replicaHosts = env.replicaHosts ?? [hostNames.includes(env.primary.host ?? "") ? env.primary.host! : hostNames[0]];
  const roleHosts: Record<string, string> = {};
  for (let i = 0; i < env.replicas; i++) roleHosts[`replica-${i + 1}`] = daemonOf(replicaHosts[i % replicaHosts.length], `replica-${i + 1}'s`);
  return new DockerExecutor(env.name, daemonOf(primaryHost, "its primary's"), "docker", roleHosts);
}

/** The environment's Patroni members (primary, replica-1 … replica-N), from stacks/environments.ts. */
function clusterEnvFor(envName: string, environments: readonly EnvironmentConfig[]): ClusterEnvironment {
  const env = environments.find((e) => e.name === envName);
  if (!env) throw new OperationError(`--env ${envName} is not an environment of this project (${environments.map((e) => e.name).join(", ")})`);
  if (!env.failover) throw new OperationError(`--env ${envName} has no failover: its PostgreSQL does not run under Patroni (set failover in stacks/environments.ts to have a cluster)`);
  return clusterEnvironment(env);
}

/** Asks a yes/no question on the terminal; without one, refuses (the caller should pass --yes). */
async function askOnTerminal(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) throw new OperationError(`${question.replace(/\?$/, "")}: no terminal to confirm on; re-run with --yes to confirm`);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await new Promise<string>((resolve) => rl.question(`${question} [y/N] `, resolve));
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

const iso = (t: number) => new Date(t * 1000).toISOString().replace(/\.000Z$/, "Z");
const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;

export interface CliIo {
  out: (s: string) => void;
  /** Progress and diagnostics. */
  err: (s: string) => void;
  ask: (question: string) => Promise<boolean>;
  /** The environments `--env` names (stacks/environments.ts; the runtime suites add theirs). */
  environments?: readonly EnvironmentConfig[];
}

function drillSummary(e: DrillEvidence): string {
  const order = ["heartbeat", "amcheck", "dump"];
  const checks = Object.entries(e.checks ?? {})
    .sort(([a], [b]) => (order.indexOf(a) >>> 0) - (order.indexOf(b) >>> 0))
    .map(([k, v]) => `${k} ${v.ok ? "ok" : "FAILED"}`)
    .join(", ");
  const when = iso(e.startedAt);
  if (!e.ok) return `drill ${when} FAILED: ${e.error}${checks ? ` (${checks})` : ""}`;
  return `drill ${when} passed: target ${e.target?.time} from ${e.backupSet ?? "?"}, restored ${mib(e.restoredBytes ?? 0)} in ${e.restoreSeconds} s + recovery ${e.recoverySeconds} s = RTO ${e.rtoSeconds} s; ${checks}`;
}

export function buildCli(executor: (env: string) => Executor = executorFor, io: CliIo): Command {
  const { out, err } = io;
  const environments = io.environments ?? ENVIRONMENTS;
  /** A line every 30 s while a long operation runs, so a silent multi-hour backup still shows life. */
  const long = async <T>(what: string, p: Promise<T>): Promise<T> => {
    const start = Date.now();
    const timer = setInterval(() => err(`  … still ${what} (${Math.round((Date.now() - start) / 1000)} s)\n`), 30_000);
    try {
      return await p;
    } finally {
      clearInterval(timer);
    }
  };
  const progress = (line: string) => err(`  ${line.replace(/^\S+ pgharbor(-ops)?: /, "")}\n`);
  const program = new Command("pgharbor").description("Operate a deployed pgharbor environment").exitOverride();
  program.configureOutput({ writeOut: out, writeErr: err });
  const withEnv = (c: Command) => c.requiredOption("--env <name>", "environment (stacks/environments.ts)");

  withEnv(program.command("status").description("last outcome of every backup job, the recoverability window, the last drill")).action(async (o) => {
    const ex = executor(o.env);
    const jobs = await jobStatus(ex);
    for (const name of ["full", "diff", "expire", "logical", "drill", "maintenance", "check", "stanza-create"]) {
      const j = jobs[name];
      if (isUnreadable(j)) out(`${name.padEnd(13)} UNREADABLE (${j.unreadable})\n`);
      else out(j ? `${name.padEnd(13)} ${j.ok ? "ok    " : "FAILED"} ${iso(j.finishedAt)} (${j.durationSeconds} s)\n` : `${name.padEnd(13)} never run\n`);
    }
    try {
      const w = await recoverabilityWindow(ex);
      out(`window        ${iso(w.oldest)} .. ${iso(w.newest)}, ${w.backups} backups, WAL ${w.continuous ? "continuous" : `GAP at ${w.missingSegments[0]}`}\n`);
      out(`newest WAL    ${Math.max(0, Math.round(Date.now() / 1000 - w.newest))} s ago in the bucket (what losing every host would lose now)\n`);
    } catch (e) {
      if (!(e instanceof OperationError)) throw e;
      out(`window        unknown: ${e.message}\n`);
    }
    const drillLast = jobs["drill-last"];
    const logicalLast = jobs["logical-last"];
    if (isUnreadable(drillLast)) out(`last drill    UNREADABLE (${drillLast.unreadable})\n`);
    else {
      const drill = drillLast as unknown as DrillEvidence | undefined;
      out(drill ? `last drill    ${drillSummary(drill)}\n` : "last drill    none yet\n");
    }
    if (isUnreadable(logicalLast)) out(`last logical  UNREADABLE (${logicalLast.unreadable})\n`);
    else {
      const logical = logicalLast as unknown as { set: string; bytes: number } | undefined;
      out(logical ? `last logical  ${logical.set} (${mib(logical.bytes)})\n` : "last logical  none yet\n");
    }
  });

  withEnv(program.command("window").description("oldest and newest restorable time, WAL continuity")).action(async (o) => {
    const w = await recoverabilityWindow(executor(o.env));
    out(`recoverable from ${iso(w.oldest)} to ${iso(w.newest)} (newest WAL ${w.newestSegment}); WAL ${w.continuous ? "continuous" : `GAP: ${w.missingSegments.join(", ")}`}\n`);
  });

  const backups = program.command("backups").description("backups in the archive");
  withEnv(backups.command("list").description("physical backups (pgBackRest) and logical sets")).action(async (o) => {
    const ex = executor(o.env);
    for (const b of await listBackups(ex)) out(`${b.label}  ${b.type.padEnd(7)}  ${iso(b.startedAt)} .. ${iso(b.finishedAt)}  ${mib(b.sizeBytes)}\n`);
    for (const s of await listLogical(ex)) {
      out(s.complete ? `${s.set}  logical  ${iso(s.startedAt!)} .. ${iso(s.finishedAt!)}  ${mib(s.bytes)} encrypted  ${s.databases!.join(", ")}\n` : `${s.set}  logical  INCOMPLETE (no manifest; not restorable)\n`);
    }
  });

  const backup = program.command("backup").description("take a backup");
  withEnv(backup.command("now"))
    .option("--type <type>", "full, diff or logical", "full")
    .action(async (o) => {
      if (!["full", "diff", "logical"].includes(o.type)) throw new OperationError(`--type ${o.type}: use full, diff or logical`);
      const ex = executor(o.env);
      err(`taking a ${o.type} backup of ${o.env}…\n`);
      if (o.type === "logical") {
        const r = await long("dumping", logicalBackupNow(ex, progress));
        out(`done: logical set ${r.set} (${r.databases.join(", ")}; ${mib(r.bytes)} encrypted) in ${r.seconds} s\n`);
        return;
      }
      const b = await long("backing up", backupNow(ex, o.type, progress));
      out(`done: ${b.label} (${b.type}) in ${b.finishedAt - b.startedAt} s\n`);
    });

  withEnv(program.command("restore").description("physical restore into an empty directory of the backup container, or one database of a logical set into a new database"))
    .option("--to <target>", "physical: latest, an LSN, or a time with zone")
    .option("--into <dir>", "physical: target directory in the backup container", "/var/lib/pgharbor/scratch/restore")
    .option("--logical <database>", "logical: the database to restore from a logical set")
    .option("--set <set>", "logical: the set (see backups list)", "latest")
    .option("--into-database <name>", "logical: a NEW database to restore into (default <database>_restored)")
    .option("--identity <file>", "logical: age identity file holding the private key; read here, sent on stdin, piped to age, never stored")
    .action(async (o) => {
      if ((o.to === undefined) === (o.logical === undefined)) throw new OperationError("give either --to <time|lsn|latest> (physical restore) or --logical <database> (logical restore)");
      if (o.logical !== undefined) {
        if (!o.identity) throw new OperationError("--logical needs --identity <file>: the age private key matching one of the environment's logical.recipients");
        checkSourceDatabase(o.logical);
        checkLogicalSet(o.set);
        const intoDatabase = checkNewDatabaseName(o.intoDatabase ?? `${o.logical}_restored`, o.intoDatabase === undefined ? "--into-database (default <database>_restored)" : "--into-database");
        let identity: string;
        try {
          identity = checkIdentity(readFileSync(o.identity, "utf8"), o.identity);
        } catch (e) {
          if (e instanceof OperationError) throw e;
          throw new OperationError(`--identity ${o.identity}: ${(e as Error).message}`);
        }
        const ex = executor(o.env);
        err(`restoring database ${o.logical} from logical set ${o.set} into new database ${intoDatabase}…\n`);
        const r = await long("restoring", restoreLogical(ex, { set: o.set, database: o.logical, intoDatabase, identity, progress }));
        out(`restored ${r.database} from ${r.set} into database ${r.into} (${mib(r.bytes)} encrypted) in ${r.seconds} s\n`);
        return;
      }
      parseTarget(o.to);
      checkRestoreDirectory(o.into);
      const ex = executor(o.env);
      err(`restoring to ${o.to} into ${o.into}…\n`);
      const r = await long("restoring", restore(ex, o.to, o.into, progress));
      out(`restored into ${r.into} (window ${iso(r.window.oldest)} .. ${iso(r.window.newest)})\n`);
    });

  const drill = program.command("drill").description("restore drills: restore to a random point in the window, verify, record evidence");
  withEnv(drill.command("now").description("run a drill now (as the schedule does)")).action(async (o) => {
    err(`running a restore drill on ${o.env}…\n`);
    const e = await long("drilling", drillNow(executor(o.env), progress));
    out(`${drillSummary(e)}\n${e.evidence ? `evidence: ${e.evidence}` : `evidence NOT stored: ${e.evidenceError}`}\n`);
    if (!e.ok) throw new OperationError(`restore drill failed: ${e.error}`);
    if (e.evidenceError) throw new OperationError(`the drill passed but its evidence is not in the bucket (monitoring will not see it): ${e.evidenceError}`);
  });
  withEnv(drill.command("list").description("the evidence of the last drills, from the bucket"))
    .option("--last <n>", "how many", "10")
    .option("--json", "print the evidence records as JSON")
    .action(async (o) => {
      const n = Number(o.last);
      if (!Number.isInteger(n) || n < 1) throw new OperationError(`--last ${o.last}: give a whole number ≥ 1`);
      const all = await listDrills(executor(o.env), n);
      if (o.json) out(`${JSON.stringify(all, null, 2)}\n`);
      else for (const e of all) out(`${drillSummary(e)}\n`);
    });

  withEnv(program.command("verify").description("pgbackrest verify: every backup and WAL file readable and intact")).action(async (o) => {
    await verify(executor(o.env));
    out("verify: archive and backups intact\n");
  });

  withEnv(program.command("cleanup").description("apply retention now: expire physical backups and WAL, delete old logical sets"))
    .option("--yes", "do not ask for confirmation")
    .option("--dry-run", "only show what would be deleted")
    .action(async (o) => {
      const ex = executor(o.env);
      const plan = await cleanupPlan(ex);
      out(plan.physical.length ? `physical (pgBackRest expire):\n${plan.physical.map((l) => `  ${l}\n`).join("")}` : "physical: nothing past retention\n");
      out(plan.logical.length ? `logical sets to delete: ${plan.logical.join(", ")}\n` : "logical: nothing past retention\n");
      if (o.dryRun) return;
      if (!plan.physical.length && !plan.logical.length) return;
      if (!o.yes && !(await io.ask(`delete these backups from ${o.env}'s bucket?`))) throw new OperationError("cleanup cancelled; nothing deleted");
      await long("cleaning up", cleanup(ex, progress));
      out("cleanup done\n");
    });
  const queries = program.command("queries").description("slow statements: pg_stat_statements, and the plans auto_explain captured");
  withEnv(queries.command("top", { isDefault: true }).description("the top statements (the default)"))
    .option("--by <order>", `order by ${QUERY_ORDER.join(", ")} (reads: shared blocks read)`, "total")
    .option("--limit <n>", "how many", "10")
    .option("--database <name>", "only this database's statements")
    .option("--all-roles", "include pgharbor's own roles (backup, monitoring, heartbeat)")
    .option("--json", "print the statements as JSON")
    .option("--reset", "reset pg_stat_statements (asks first)")
    .option("--yes", "with --reset: do not ask")
    .action(async (o) => {
      const ex = executor(o.env);
      if (o.reset) {
        if (!o.yes && !(await io.ask(`reset the statement statistics of ${o.env}? (every statement's counts start again from zero)`))) throw new OperationError("reset cancelled; nothing changed");
        const r = await resetQueries(ex);
        out(`pg_stat_statements reset at ${r.at}
`);
        return;
      }
      if (!(QUERY_ORDER as readonly string[]).includes(o.by)) throw new OperationError(`--by ${o.by}: use one of ${QUERY_ORDER.join(", ")}`);
      const limit = Number(o.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new OperationError(`--limit ${o.limit}: give a whole number from 1 to 1000`);
      const t = await topQueries(ex, { by: o.by as QueryOrder, limit, database: o.database, allRoles: o.allRoles });
      out(o.json ? `${JSON.stringify(t, null, 2)}\n` : renderTopQueries(t, !!o.allRoles));
    });
  // allowUnknownOption: a queryid is often negative (`-7167…`), which commander would read as an option.
  withEnv(queries.command("explain <queryid>").description("the last plan auto_explain logged for a statement (primary's log)").allowUnknownOption())
    .option("--since <hours>", "how far back to look in the log", "24")
    .action(async (queryid: string, o) => {
      const hours = Number(o.since);
      if (!Number.isFinite(hours) || hours <= 0) throw new OperationError(`--since ${o.since}: give a number of hours > 0`);
      const env = ENVIRONMENTS.find((e) => e.name === o.env);
      const threshold = env?.primary.autoExplainMinDurationMs ?? 1000;
      const note = threshold < 0 ? "auto_explain is off: set primary.autoExplainMinDurationMs" : `auto_explain logs statements slower than ${threshold} ms`;
      const plan = await lastPlan(executor(o.env), queryid, hours);
      out(renderPlan(queryid, plan, hours, note));
      if (!plan) throw new CliExit(1);
    });

  withEnv(program.command("indexes").description("index advice: unused, duplicate, overlapping, invalid; missing indexes checked with hypothetical ones (nothing is created)"))
    .option("--database <name>", "database to examine (default: the application's)")
    .option("--json", "print the advice as JSON")
    .action(async (o) => {
      err(`examining ${o.database ?? "the application database"} of ${o.env}…\n`);
      const a = await indexAdvice(executor(o.env), o.database);
      out(o.json ? `${JSON.stringify(a, null, 2)}\n` : renderIndexAdvice(a));
    });

  withEnv(program.command("health").description("one screen: primary and replicas, lag, slots, connections, long and idle transactions, locks, wraparound, bloat, cache, pg_wal, autovacuum"))
    .option("--json", "print the report as JSON")
    .action(async (o) => {
      const h = await health(executor(o.env));
      out(o.json ? `${JSON.stringify(h, null, 2)}\n` : renderHealth(h));
      const code = healthExitCode(h);
      if (code) throw new CliExit(code);
    });

  const maintenance = program.command("maintenance").description("routine upkeep: ANALYZE stale statistics, VACUUM beyond autovacuum (never VACUUM FULL)");
  withEnv(maintenance.command("now").description("run the scheduled maintenance job now"))
    .option("--dry-run", "only show what it would do")
    .option("--json", "print the run's record as JSON")
    .action(async (o) => {
      const r = await long("maintaining", maintenanceNow(executor(o.env), !!o.dryRun, o.json ? undefined : progress));
      out(o.json ? `${JSON.stringify(r, null, 2)}\n` : renderMaintenance(r));
      if (!r.ok && !r.dryRun) throw new CliExit(1);
    });
  withEnv(maintenance.command("status").description("what the last maintenance run did")).action(async (o) => {
    const jobs = await jobStatus(executor(o.env));
    const last = jobs["maintenance-last"];
    if (isUnreadable(last)) throw new OperationError(`the last maintenance record is unreadable: ${last.unreadable}`);
    if (!last) {
      out("no maintenance run recorded yet\n");
      return;
    }
    out(renderMaintenance(last as unknown as Parameters<typeof renderMaintenance>[0]));
  });

  const cluster = program.command("cluster").description("the Patroni cluster (high availability): members and roles, switchover, failover, reinit, restart");
  const roleChange = (verb: string, c: RoleChange) =>
    `${verb}: ${c.from ?? "(no leader)"} -> ${c.to} in ${c.seconds.toFixed(1)} s${c.timeline !== null ? ` (timeline ${c.timeline})` : ""}; the old leader rejoins as a replica when it can (\`pgharbor cluster status\` shows it)\n`;
  withEnv(cluster.command("status").description("members, real roles (after a failover the member named primary may be a replica), state, timeline, lag, pending restarts, tags. Exit 0: a leader is running; 2: no running leader; 1: no member could be asked"))
    .option("--json", "print the status as JSON")
    .action(async (o) => {
      const env = clusterEnvFor(o.env, environments);
      const s = await clusterStatus(executor(o.env), env);
      out(o.json ? `${JSON.stringify(s, null, 2)}\n` : renderClusterStatus(s));
      const code = statusExitCode(s);
      if (code) throw new CliExit(code);
    });
  withEnv(cluster.command("switchover").description("planned switchover: the leader hands over to a replica (a write gap of a few seconds, clients reconnect), then waits for the new leader"))
    .option("--to <member>", "the member to promote (default: the healthiest replica, Patroni's choice)")
    .option("--yes", "do not ask for confirmation")
    .action(async (o) => {
      const env = clusterEnvFor(o.env, environments);
      const ex = executor(o.env);
      const plan = await planSwitchover(ex, env, o.to);
      const question = `switch over ${plan.status.cluster} from ${plan.from} to ${plan.to ?? "the healthiest replica"}? Writes stop for a few seconds; clients reconnect`;
      if (!o.yes && !(await io.ask(`${question}?`))) throw new OperationError("switchover cancelled; nothing changed");
      err(`switching over ${plan.status.cluster}…\n`);
      out(roleChange("switched over", await switchover(ex, env, plan, { progress })));
    });
  withEnv(cluster.command("failover").description("promote a member when there is no healthy leader (with a running leader, use switchover)"))
    .requiredOption("--to <member>", "the member to promote")
    .option("--yes", "do not ask for confirmation")
    .action(async (o) => {
      const env = clusterEnvFor(o.env, environments);
      const ex = executor(o.env);
      const plan = await planFailover(ex, env, o.to);
      const c = plan.status.members.find((m) => m.member === o.to)!;
      const lag = c.lagMB !== null ? `${c.lagMB} MB behind` : "lag unknown";
      if (!o.yes && !(await io.ask(`fail over ${plan.status.cluster} to ${o.to} (${c.role}, ${c.state}, ${lag})? It is promoted without the old leader: commits it has not received are lost, and the old leader rejoins as a replica (rewound)`))) {
        throw new OperationError("failover cancelled; nothing changed");
      }
      err(`failing over ${plan.status.cluster} to ${o.to}…\n`);
      out(roleChange("failed over", await failover(ex, env, plan, { progress })));
    });
  withEnv(cluster.command("reinit <member>").description("re-create a replica: its data directory is wiped and cloned again from the leader or the bucket (never the leader)"))
    .option("--yes", "do not ask for confirmation")
    .action(async (member: string, o) => {
      const env = clusterEnvFor(o.env, environments);
      const ex = executor(o.env);
      const plan = await planReinit(ex, env, member);
      if (!o.yes && !(await io.ask(`reinit ${member} of ${plan.status.cluster}? This DELETES ${member}'s data directory and re-creates it from the leader (${plan.status.leader ?? "none running"}) or the bucket; it serves no reads until it streams again`))) {
        throw new OperationError("reinit cancelled; nothing changed");
      }
      err(`reinitialising ${member}…\n`);
      const r = await long("reinitialising", reinit(ex, env, plan, { progress }));
      out(`reinit done: ${r.member} streams from ${r.status.leader} again after ${r.seconds.toFixed(1)} s\n`);
    });
  withEnv(cluster.command("restart <member>").description("restart PostgreSQL in one member through Patroni (settings that need a restart); restarting the leader interrupts writes"))
    .option("--pending", "only if Patroni reports a pending restart for it")
    .action(async (member: string, o) => {
      const env = clusterEnvFor(o.env, environments);
      const r = await restart(executor(o.env), env, member, !!o.pending);
      out(r.restarted ? `restarted ${member}\n` : `${member} had no pending restart: nothing done\n`);
    });

  registerReview(program, out, err);
  return program;
}

/** Runs the CLI; returns the exit code. Errors print one line, no stack trace. */
export async function main(
  argv: string[],
  executor?: (env: string) => Executor,
  out: (s: string) => void = (s) => process.stdout.write(s),
  err: (s: string) => void = (s) => process.stderr.write(s),
  ask: (question: string) => Promise<boolean> = askOnTerminal,
  environments: readonly EnvironmentConfig[] = ENVIRONMENTS,
): Promise<number> {
  try {
    await buildCli(executor, { out, err, ask, environments }).parseAsync(argv, { from: "user" });
    return 0;
  } catch (e) {
    if (e instanceof CliExit) {
      if (e.message) err(`${e.message}\n`);
      return e.code;
    }
    if (e instanceof OperationError) {
      err(`pgharbor: ${e.message}\n`);
      return 1;
    }
    const c = e as { code?: string; exitCode?: number };
    if (typeof c.code === "string" && c.code.startsWith("commander.")) return c.exitCode ?? 1;
    err(`pgharbor: ${(e as Error).message}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
