/**
 * Terraform's own parser over every string of every synthesised stack. Terraform reads each string
 * of the JSON as a template: an unescaped `${` in an uploaded file or an environment entry (a shell
 * `${VAR:?}`, say) fails `terraform plan` of the real stack. Providers cannot be downloaded here, so
 * the strings go into a provider-less configuration (as locals) and `terraform validate` parses them;
 * references to the stack's resources point at an `any`-typed variable instead, which keeps every
 * template's syntax and every other reference as it is.
 */
import { spawnSync } from "child_process";
import { mkdtempSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { ENVIRONMENTS } from "../stacks/environments";
import { Json, synthEnv } from "./helpers";

const hasTerraform = spawnSync("terraform", ["version"], { encoding: "utf8" }).status === 0;

/** Every string in a JSON document, with where it is. */
function strings(v: unknown, path = "$"): Array<[string, string]> {
  if (typeof v === "string") return [[path, v]];
  if (Array.isArray(v)) return v.flatMap((x, i) => strings(x, `${path}[${i}]`));
  if (v && typeof v === "object") return Object.entries(v).flatMap(([k, x]) => strings(x, `${path}.${k}`));
  return [];
}

/** A provider-less configuration holding every string of the stack as a local. */
export function parseOnlyConfig(json: Json): { config: object; where: string[] } {
  const roots = [...Object.keys(json.resource ?? {}), "data"];
  const ref = new RegExp(`(?<!\\$)\\$\\{(${roots.map((r) => r.replace(/[^a-z0-9_]/g, "")).join("|")})\\.`, "g");
  const all = strings(json);
  const locals: Record<string, string> = {};
  all.forEach(([, s], i) => (locals[`s${i}`] = s.replace(ref, (_m, root: string) => `\${var.stub.${root}.`)));
  return { config: { variable: { stub: { type: "any" } }, locals }, where: all.map(([p]) => p) };
}

interface Diagnostic {
  severity: string;
  summary: string;
  detail?: string;
  snippet?: { code?: string };
  range?: { start: { line: number } };
}

function validate(config: object): { valid: boolean; diagnostics: Diagnostic[] } {
  const dir = mkdtempSync(join(tmpdir(), "pgharbor-tf-"));
  writeFileSync(join(dir, "main.tf.json"), JSON.stringify(config, null, 1));
  const r = spawnSync("terraform", ["validate", "-json", "-no-color"], { cwd: dir, encoding: "utf8", env: { ...process.env, TF_IN_AUTOMATION: "1", CHECKPOINT_DISABLE: "1" } });
  return JSON.parse(r.stdout);
}

(hasTerraform || process.env.CI === "true" ? describe : describe.skip)("terraform validate over every string of every stack", () => {
  test.each(ENVIRONMENTS.map((e) => [e.name, e] as const))("%s parses", (_n, env) => {
    const { config, where } = parseOnlyConfig(synthEnv(env));
    const r = validate(config);
    const errors = r.diagnostics.filter((d) => d.severity === "error").map((d) => {
      const local = /"(s\d+)"/.exec(d.snippet?.code ?? "")?.[1];
      return `${d.summary}${local ? ` at ${where[Number(local.slice(1))]}` : ""}: ${d.detail ?? ""}`;
    });
    expect(errors).toEqual([]);
    expect(r.valid).toBe(true);
    expect(where.length).toBeGreaterThan(100);
  });

  test("it fails on an unescaped shell expansion (the SeaweedFS entrypoint defect)", () => {
    const json = synthEnv(ENVIRONMENTS[0]) as Json;
    const container = Object.values(json.resource!.docker_container)[0] as { env: string[] };
    container.env = [...container.env, 'S3_CHECK=${S3_WRITER_ACCESS_KEY:?}'];
    const r = validate(parseOnlyConfig(json).config);
    expect(r.valid).toBe(false);
    expect(r.diagnostics.map((d) => d.summary)).toContain("Extra characters after interpolation expression");
  });

  test("it fails on a reference to something the stack does not declare", () => {
    const json = synthEnv(ENVIRONMENTS[0]) as Json;
    const container = Object.values(json.resource!.docker_container)[0] as { env: string[] };
    container.env = [...container.env, "X=${HOME.dir}"];
    expect(validate(parseOnlyConfig(json).config).valid).toBe(false);
  });
});
if (!hasTerraform) console.warn(`\n${"!".repeat(80)}\nTERRAFORM PARSE TESTS ${process.env.CI === "true" ? "FAIL" : "SKIPPED"}: terraform is not installed\n${"!".repeat(80)}\n`);
