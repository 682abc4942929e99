import { App } from "cdktf";
import { formatProblem, PgharborConfigError } from "../constructs/errors";
import { crossEnvironmentStateRules } from "./state-rules";
import { ENVIRONMENTS, EnvironmentConfig } from "./environments";
import { crossEnvironmentNetworkRules, PostgresStack } from "./postgres-stack";
import { checkEnvironmentShape } from "./schema";

export interface BuildOptions {
  readonly outdir?: string;
  readonly environments?: readonly EnvironmentConfig[];
}

/** Builds the App: one PostgresStack per environment. Used by main.ts and the tests. */
export function buildApp(options: BuildOptions = {}): App {
  const envs = options.environments ?? ENVIRONMENTS;
  const seen = new Set<string>();
  // Every environment's shape first: a later check must never trip over a missing or mistyped field.
  const problems: string[] = [];
  for (const e of envs) {
    try {
      checkEnvironmentShape(e);
    } catch (err) {
      if (!(err instanceof PgharborConfigError)) throw err;
      problems.push(err.message);
    }
  }
  if (problems.length) throw new PgharborConfigError(problems.join("\n"));
  for (const e of envs) {
    if (seen.has(e.name)) {
      throw new PgharborConfigError(`[environments] name = ${JSON.stringify(e.name)}: two environments share this name (stacks, containers and state would collide). Fix: give every environment its own name.`);
    }
    seen.add(e.name);
  }
  const across = [...crossEnvironmentStateRules(envs), ...crossEnvironmentNetworkRules(envs)].filter((r) => r.when);
  if (across.length) throw new PgharborConfigError(across.map((r) => formatProblem(r.env, r)).join("\n"));
  const app = new App({ outdir: options.outdir, skipValidation: false });
  for (const e of envs) new PostgresStack(app, e);
  return app;
}
