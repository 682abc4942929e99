import { readFileSync, readdirSync, existsSync } from "fs";
import { join } from "path";
import { ENVIRONMENTS } from "../stacks/environments";
import { synthEnv } from "./helpers";

/**
 * No literal secret in synthesised JSON or snapshots: every password, key and passphrase is a
 * Terraform reference. The scan looks at every env entry, output and upload whose name says secret.
 */
const SECRET_NAME = /(PASSWORD|SECRET|CIPHER_PASS|_KEY=|ACCESS_KEY|private_key)/i;
/** An age private key (identity): logical backups' keys stay with the people who restore. */
const AGE_IDENTITY = /AGE-SECRET-KEY-1[0-9A-Z]{50,}/;
const REFERENCE_ONLY = /^[A-Z0-9_]+=\$\{[a-z_]+\.[A-Za-z0-9_-]+\.[a-z_]+\}$/;

describe.each(ENVIRONMENTS.map((e) => [e.name, e] as const))("%s", (_n, env) => {
  const json = synthEnv(env);
  test("secret environment entries are references", () => {
    const entries = Object.values(json.resource!.docker_container).flatMap((c) => (c.env as string[]) ?? []);
    const secret = entries.filter((e) => SECRET_NAME.test(e.split("=")[0] + "="));
    expect(secret.length).toBeGreaterThan(0);
    for (const e of secret) expect(e).toMatch(REFERENCE_ONLY);
  });
  test("no upload carries a key or password literal", () => {
    for (const c of Object.values(json.resource!.docker_container)) {
      for (const u of (c.upload as Array<{ file: string; content: string }>) ?? []) {
        expect(u.content).not.toMatch(/-----BEGIN [A-Z ]*PRIVATE KEY-----/);
        expect(u.content).not.toMatch(AGE_IDENTITY);
        expect(u.content).not.toMatch(/(password|passwd|secret|cipher-pass)\s*[=:]\s*['"]?[A-Za-z0-9]{12,}/i);
      }
    }
  });
  test("outputs holding passwords are sensitive", () => {
    for (const [name, o] of Object.entries(json.output ?? {})) {
      if (/random_password/.test(o.value)) expect([name, o.sensitive]).toEqual([name, true]);
    }
  });
});

test("snapshots hold no generated secret values", () => {
  const dir = join(__dirname, "__snapshots__");
  if (!existsSync(dir)) return;
  for (const f of readdirSync(dir)) {
    const text = readFileSync(join(dir, f), "utf8");
    expect(text).not.toMatch(/-----BEGIN [A-Z ]*PRIVATE KEY-----/);
    expect(text).not.toMatch(AGE_IDENTITY);
    // Snapshots escape "$" as "\\$": a reference reads "\\${…}", anything else would be a value.
    expect(text).not.toMatch(/"(result|secret|private_key_pem|password)": "(?!\\?\$\{)/);
  }
});

test("no age private key anywhere in the project's sources", () => {
  const walk = (d: string): string[] =>
    readdirSync(d, { withFileTypes: true }).flatMap((e) => (["node_modules", ".git", "cdktf.out"].includes(e.name) ? [] : e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));
  const offenders = walk(join(__dirname, "..")).filter((f) => /\.(ts|js|py|json|md|sh)$/.test(f) && AGE_IDENTITY.test(readFileSync(f, "utf8")));
  expect(offenders).toEqual([]);
});
