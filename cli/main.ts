/**
 * pgharbor operations CLI: `npx pgharbor <command> --env <name>`.
 * Acts on a deployed environment through `docker exec` on that environment's Docker host.
 */
import { spawn } from "child_process";
import { Command } from "commander";
import { ENVIRONMENTS } from "../stacks/environments";
import { backupNow, ExecResult, Executor, listBackups, OperationError, recoverabilityWindow, restore, verify } from "./operations";

/** docker exec on the host the environment's primary (and backup container) run on. */
export class DockerExecutor implements Executor {
  constructor(
    private readonly environment: string,
    private readonly dockerHost: string,
  ) {}

  exec(role: string, argv: string[], opts: { timeoutMs?: number } = {}): Promise<ExecResult> {
    return new Promise((resolve) => {
      const p = spawn("docker", ["--host", this.dockerHost, "exec", `pgharbor-${this.environment}-${role}`, ...argv], { timeout: opts.timeoutMs });
      let stdout = "";
      let stderr = "";
      p.stdout.on("data", (d) => (stdout += d));
      p.stderr.on("data", (d) => (stderr += d));
      p.on("error", (e) => resolve({ code: 127, stdout, stderr: `${stderr}${e.message}` }));
      p.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    });
  }
}

function executorFor(envName: string): Executor {
  const env = ENVIRONMENTS.find((e) => e.name === envName);
  if (!env) throw new OperationError(`--env ${envName} is not an environment of this project (${ENVIRONMENTS.map((e) => e.name).join(", ")})`);
  const hostName = env.primary.host ?? Object.keys(env.hosts)[0];
  return new DockerExecutor(env.name, env.hosts[hostName].dockerHost ?? "unix:///var/run/docker.sock");
}

const iso = (t: number) => new Date(t * 1000).toISOString();

export function buildCli(executor: (env: string) => Executor = executorFor, out: (s: string) => void = (s) => process.stdout.write(s)): Command {
  const program = new Command("pgharbor").description("Operate a deployed pgharbor environment").exitOverride();
  const withEnv = (c: Command) => c.requiredOption("--env <name>", "environment (stacks/environments.ts)");

  withEnv(program.command("window").description("oldest and newest restorable time, WAL continuity")).action(async (o) => {
    const w = await recoverabilityWindow(executor(o.env));
    out(`recoverable from ${iso(w.oldest)} to ${iso(w.newest)} (newest WAL ${w.newestSegment}); WAL ${w.continuous ? "continuous" : `GAP: ${w.missingSegments.join(", ")}`}\n`);
  });
  const backups = program.command("backups").description("backups in the archive");
  withEnv(backups.command("list")).action(async (o) => {
    for (const b of await listBackups(executor(o.env))) out(`${b.label}  ${b.type.padEnd(4)}  ${iso(b.startedAt)} .. ${iso(b.finishedAt)}  ${(b.sizeBytes / 1048576).toFixed(1)} MiB\n`);
  });
  const backup = program.command("backup").description("take a backup");
  withEnv(backup.command("now"))
    .option("--type <type>", "full or diff", "full")
    .action(async (o) => {
      if (o.type !== "full" && o.type !== "diff") throw new OperationError(`--type ${o.type}: use full or diff`);
      out(`taking a ${o.type} backup…\n`);
      const b = await backupNow(executor(o.env), o.type);
      out(`done: ${b.label} (${b.type}) in ${b.finishedAt - b.startedAt} s\n`);
    });
  withEnv(program.command("restore").description("restore into an empty directory of the backup container"))
    .requiredOption("--to <target>", "latest, an LSN, or a time with zone")
    .option("--into <dir>", "target directory in the backup container", "/var/lib/pgharbor/scratch/restore")
    .action(async (o) => {
      out(`restoring to ${o.to} into ${o.into}…\n`);
      const r = await restore(executor(o.env), o.to, o.into);
      out(`restored into ${r.into} (window ${iso(r.window.oldest)} .. ${iso(r.window.newest)})\n`);
    });
  withEnv(program.command("verify").description("pgbackrest verify: every backup and WAL file readable and intact")).action(async (o) => {
    await verify(executor(o.env));
    out("verify: archive and backups intact\n");
  });
  return program;
}

/** Runs the CLI; returns the exit code. Errors print one line, no stack trace. */
export async function main(argv: string[], executor?: (env: string) => Executor, out?: (s: string) => void, err: (s: string) => void = (s) => process.stderr.write(s)): Promise<number> {
  try {
    await buildCli(executor, out).parseAsync(argv, { from: "user" });
    return 0;
  } catch (e) {
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
