/**
 * `pgharbor review --base <git-ref>`: what a change will do, per environment. The command is
 * registered here; the work (git worktree, two synths, the comparison) is in review-run.ts, loaded
 * only when the command runs so the other commands start as fast as before.
 *
 * Exit codes: 0 no blocker, 1 a blocker not accepted, 2 the review could not be made.
 */
import { Command, Option } from "commander";
import type { Format } from "../review/render";

/** Ends the CLI with `code` (and a message on stderr when there is one). */
export class CliExit extends Error {
  constructor(
    readonly code: number,
    message = "",
  ) {
    super(message);
  }
}

const collect = (v: string, all: string[]) => [...all, v];

/** Registers `review` on the CLI. */
export function registerReview(program: Command, out: (s: string) => void, err: (s: string) => void): void {
  program
    .command("review")
    .description("what a change will do, per environment: restarts, settings, blockers, exposure, secrets, policy, alerts, backups")
    .requiredOption("--base <git-ref>", "the revision to compare the working tree with (e.g. origin/main)")
    .addOption(new Option("--format <format>", "markdown (default when stdout is not a terminal), text (default on a terminal) or json").choices(["markdown", "text", "json"]))
    .option("--env <name>", "only this environment (repeatable)", collect, [])
    .option("--accept <blocker-id>", "accept this blocker on purpose: still listed, no longer failing (repeatable)", collect, [])
    .action(async (o: { base: string; format?: Format; env: string[]; accept: string[] }) => {
      const { cannot, runReview } = await import("./review-run");
      const { render } = await import("../review/render");
      const r = await runReview({ base: o.base, environments: o.env, accept: o.accept, warn: err });
      const unknown = o.env.filter((e) => !r.environments.some((x) => x.name === e));
      if (unknown.length) throw cannot(`--env ${unknown.join(", ")}: no such environment in either revision`);
      const format: Format = o.format ?? (process.stdout.isTTY ? "text" : "markdown");
      out(render(r, format));
      if (r.exitCode) throw new CliExit(r.exitCode);
    });
}
