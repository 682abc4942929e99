import { execFileSync } from "child_process";
import { mkdtempSync, readFileSync, readdirSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { ENVIRONMENTS } from "../stacks/environments";
import { Json, synthEnv } from "./helpers";

/** The stack with provider versions stripped, so a provider bump does not rewrite the snapshots. */
function forSnapshot(json: Json): Json {
  const copy = JSON.parse(JSON.stringify(json)) as Json;
  const providers = (copy.terraform?.required_providers ?? {}) as Record<string, { version?: string }>;
  for (const p of Object.values(providers)) p.version = "<stripped>";
  return copy;
}

/** Provider versions are stripped and asset hashes are content hashes, so snapshots move only with the stack. */
describe.each(ENVIRONMENTS.map((e) => [e.name, e] as const))("%s stack", (_name, env) => {
  const json: Json = synthEnv(env);
  test("snapshot", () => {
    expect(forSnapshot(json)).toMatchSnapshot();
  });
  test("declares primary, replicas, PgBouncer, archive and backup container", () => {
    const names = Object.values(json.resource!.docker_container).map((c) => c.name as string);
    expect(names).toEqual(expect.arrayContaining([`pgharbor-${env.name}-primary`, `pgharbor-${env.name}-pgbouncer`, `pgharbor-${env.name}-backup`]));
    expect(names.filter((n) => new RegExp(`^pgharbor-${env.name}-replica-\\d+$`).test(n))).toHaveLength(env.replicas);
    expect(json.resource!.aws_s3_bucket ?? json.resource!.docker_container).toBeDefined();
  });
});

describe("environment differences are data", () => {
  test("dev: local state, local S3 server; staging and prod: S3 state with lockfile, AWS bucket", () => {
    const [d, s, p] = ENVIRONMENTS.map(synthEnv);
    expect(d.terraform!.backend).toEqual({ local: { path: "terraform.dev.tfstate" } });
    expect(Object.keys(d.resource!)).not.toContain("aws_s3_bucket");
    for (const [j, key] of [
      [s, "staging/terraform.tfstate"],
      [p, "prod/terraform.tfstate"],
    ] as const) {
      expect(j.terraform!.backend).toEqual({ s3: expect.objectContaining({ key, encrypt: true, use_lockfile: true }) });
      expect(Object.keys(j.resource!)).toContain("aws_s3_bucket");
    }
  });
  test("constructs never branch on the environment name", () => {
    const dir = join(__dirname, "..", "constructs");
    const offenders = readdirSync(dir, { recursive: true })
      .map(String)
      .filter((f) => f.endsWith(".ts"))
      .filter((f) => /environment\s*===?\s*["'`]|===?\s*["'`](dev|staging|prod)["'`]/.test(readFileSync(join(dir, f), "utf8")));
    expect(offenders).toEqual([]);
  });
});

describe("npm run synth", () => {
  test("writes all three stacks with exit code 0", () => {
    const out = mkdtempSync(join(tmpdir(), "pgharbor-synth-"));
    execFileSync(process.execPath, [require.resolve("ts-node/dist/bin.js"), "--transpile-only", "main.ts"], { cwd: join(__dirname, ".."), env: { ...process.env, CDKTF_OUTDIR: out }, stdio: "pipe" });
    expect(readdirSync(join(out, "stacks")).sort()).toEqual(["dev", "prod", "staging"]);
  }, 60000);
});
