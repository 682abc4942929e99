import { App, Testing } from "cdktf";
import { EnvironmentConfig, dev, prod, staging } from "../stacks/environments";
import { PostgresStack } from "../stacks/postgres-stack";
import { StackJson } from "../constructs/policy/types";
import { unliteral } from "../constructs/terraform-text";

export type Json = StackJson & { output?: Record<string, { value: string; sensitive?: boolean }>; terraform?: Record<string, unknown> };

/** Synthesises one environment with validations (policy pack included); provider versions stubbed. */
export function synthEnv(env: EnvironmentConfig): Json {
  const app = Testing.app({ stubVersion: true });
  const stack = new PostgresStack(app, env);
  return JSON.parse(Testing.synth(stack, true));
}

export function buildStack(env: EnvironmentConfig): { app: App; stack: PostgresStack } {
  const app = Testing.app({ stubVersion: true });
  return { app, stack: new PostgresStack(app, env) };
}

export interface ContainerJson {
  name: string;
  env?: string[];
  command?: string[];
  entrypoint?: string[];
  upload?: Array<{ file: string; content: string; executable?: boolean; permissions?: string }>;
  volumes?: Array<{ volume_name: string; container_path: string; read_only?: boolean }>;
  ports?: Array<{ internal: number; external: number; ip: string }>;
  healthcheck?: { test: string[] };
  memory?: number;
  provider?: string;
  depends_on?: string[];
  [k: string]: unknown;
}

export function containers(json: Json): Record<string, ContainerJson> {
  const out: Record<string, ContainerJson> = {};
  for (const c of Object.values(json.resource?.docker_container ?? {}) as ContainerJson[]) out[c.name] = c;
  return out;
}

/** The text a container gets at `path`, with Terraform's escapes undone (what lands on disk). */
export function file(c: ContainerJson, path: string): string {
  const u = (c.upload ?? []).find((x) => x.file === path);
  if (!u) throw new Error(`${c.name} has no upload at ${path}; it has ${(c.upload ?? []).map((x) => x.file).join(", ")}`);
  return unliteral(u.content);
}

export function clone<T>(o: T): T {
  return JSON.parse(JSON.stringify(o));
}

/** A deep-merged copy of an environment. */
export function variant(base: EnvironmentConfig, patch: Record<string, unknown>): EnvironmentConfig {
  const out = clone(base) as unknown as Record<string, unknown>;
  for (const [k, v] of Object.entries(patch)) {
    const cur = out[k];
    out[k] = v && typeof v === "object" && !Array.isArray(v) && cur && typeof cur === "object" && !Array.isArray(cur) ? { ...(cur as object), ...(v as object) } : v;
  }
  return out as unknown as EnvironmentConfig;
}

export { dev, prod, staging };
