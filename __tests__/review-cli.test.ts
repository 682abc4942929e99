import { spawnSync } from "child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { dirname, join } from "path";
import { main } from "../cli/main";
import type { Review } from "../review/review";

const root = join(__dirname, "..");

/** git in `cwd`, failing the test on an error. */
function git(cwd: string, ...args: string[]): string {
  const r = spawnSync("git", ["-c", "user.name=pgharbor test", "-c", "user.email=test@pgharbor.invalid", "-c", "commit.gpgsign=false", ...args], { cwd, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/**
 * A copy of this checkout as it is now (tracked and untracked files, no node_modules, which is linked),
 * committed in a repository of its own: its HEAD is the base, its working tree the change. The real
 * checkout is never touched.
 */
function copyCheckout(): string {
  const dir = mkdtempSync(join(tmpdir(), "pgharbor-review-test-"));
  const files = git(root, "ls-files", "-co", "--exclude-standard", "-z").split("\0").filter(Boolean);
  for (const f of files) {
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    copyFileSync(join(root, f), join(dir, f));
  }
  git(dir, "init", "-q", "-b", "main");
  git(dir, "add", "-A");
  git(dir, "commit", "-q", "-m", "base");
  symlinkSync(realpathSync(join(root, "node_modules")), join(dir, "node_modules"), "dir");
  writeFileSync(join(dir, ".git", "info", "exclude"), "node_modules\n");
  return dir;
}

function pgharbor(cwd: string, ...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(cwd, "bin", "pgharbor.js"), ...args], { cwd, encoding: "utf8", timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe("npx pgharbor review --base HEAD, end to end on a copy of this repository", () => {
  let dir: string;
  beforeAll(() => {
    dir = copyCheckout();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("GIVEN a working tree that adds a replica to dev WHEN reviewed against HEAD THEN dev shows the new replica, the rest no effect, exit 0, and nothing of the checkout changed", () => {
    const envFile = join(dir, "stacks", "environments.ts");
    const before = readFileSync(envFile, "utf8");
    writeFileSync(envFile, before.replace(/(name: "dev",[\s\S]*?replicas: )1,/, "$12,"));
    const status = git(dir, "status", "--porcelain");
    const r = pgharbor(dir, "review", "--base", "HEAD", "--format", "json");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const review = JSON.parse(r.stdout) as Review;
    expect(review.environments.map((e) => [e.name, e.status])).toEqual([
      ["dev", "changed"],
      ["prod", "unchanged"],
      ["staging", "unchanged"],
    ]);
    expect(review.environments[0].downtime).toEqual(expect.arrayContaining([expect.objectContaining({ container: "pgharbor-dev-replica-2", action: "create" })]));
    expect(review.base).toMatch(/^HEAD \([0-9a-f]{7}\)$/);
    // The checkout is as it was: same status, no worktree left behind, no synth output in it.
    expect(git(dir, "status", "--porcelain")).toBe(status);
    expect(git(dir, "worktree", "list", "--porcelain").match(/^worktree /gm)).toHaveLength(1);
    writeFileSync(envFile, before);
  }, 120_000);

  test("GIVEN a retention cut in prod WHEN reviewed THEN Markdown says BLOCKED and the exit code is 1; accepted, 0", () => {
    const envFile = join(dir, "stacks", "environments.ts");
    const before = readFileSync(envFile, "utf8");
    writeFileSync(envFile, before.replace("retentionDays: 35, processMax: 4", "retentionDays: 14, processMax: 4"));
    try {
      const blocked = pgharbor(dir, "review", "--base", "HEAD", "--format", "markdown", "--env", "prod");
      expect(blocked.code).toBe(1);
      expect(blocked.stdout).toMatch(/^\*\*BLOCKED: 1 blocker \(exit 1\)\*\*$/m);
      expect(blocked.stdout).toMatch(/\*\*BLOCKER\*\* `prod:retention`: backup retention \(backup\.retentionDays\) goes from 35 days to 14 days/);
      const accepted = pgharbor(dir, "review", "--base", "HEAD", "--format", "text", "--env", "prod", "--accept", "prod:retention");
      expect(accepted.code).toBe(0);
      expect(accepted.stdout).toMatch(/^No open blocker \(1 accepted\)$/m);
    } finally {
      writeFileSync(envFile, before);
    }
  }, 120_000);

  test("GIVEN no change WHEN reviewed THEN one line, exit 0", () => {
    const r = pgharbor(dir, "review", "--base", "HEAD", "--format", "text");
    expect([r.code, r.stdout]).toEqual([0, `No effect: working tree synthesises the same stacks as HEAD (${git(dir, "rev-parse", "--short=7", "HEAD").trim()}) in dev, prod, staging.\n`]);
  }, 120_000);
});

describe("review arguments", () => {
  const run = async (...argv: string[]) => {
    let err = "";
    let out = "";
    const code = await main(argv, undefined, (t) => (out += t), (t) => (err += t));
    return { code, out, err };
  };
  test("a base that is no commit: exit 2, one line", async () => {
    expect(await run("review", "--base", "no-such-ref-anywhere")).toEqual({ code: 2, out: "", err: "pgharbor review: --base no-such-ref-anywhere is not a commit of this repository\n" });
  });
  test("an unknown format is refused by the option's choices", async () => {
    const r = await run("review", "--base", "HEAD", "--format", "yaml");
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/argument 'yaml' is invalid\. Allowed choices are markdown, text, json/);
  });
  test("--base is required", async () => {
    expect((await run("review")).err).toMatch(/required option '--base <git-ref>' not specified/);
  });
});
