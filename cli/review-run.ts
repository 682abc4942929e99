/**
 * The work of `pgharbor review --base <git-ref>`: synthesises the base revision (in a temporary git
 * worktree, with this checkout's node_modules linked in) and this working tree (into a temporary
 * directory), and compares them environment by environment (review/review.ts). Nothing of the
 * checkout is written: both synths go to temporary output directories, and the worktree is removed
 * (and pruned) whatever happens.
 */
import { spawn, spawnSync } from "child_process";
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { review, Review, StackJson } from "../review/review";
import { CliExit } from "./review";

/** The review could not be made: exit 2. */
export const cannot = (message: string) => new CliExit(2, `pgharbor review: ${message}`);

function git(root: string, args: string[]): { ok: boolean; out: string; err: string } {
  const r = spawnSync("git", ["-C", root, ...args], { encoding: "utf8" });
  return { ok: r.status === 0, out: (r.stdout ?? "").trim(), err: (r.stderr ?? r.error?.message ?? "").trim() };
}

/** Runs `main.ts` of `dir` with ts-node into `outdir`; returns the stacks by name. */
export function synthesise(dir: string, outdir: string, what: string, nodeModules: string): Promise<Record<string, StackJson>> {
  return new Promise((resolve, reject) => {
    const tsNode = join(nodeModules, "ts-node", "dist", "bin.js");
    const p = spawn(process.execPath, [tsNode, "--transpile-only", "main.ts"], { cwd: dir, env: { ...process.env, CDKTF_OUTDIR: outdir }, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    p.stderr.on("data", (d) => (stderr += d));
    p.stdout.on("data", () => undefined);
    p.on("error", (e) => reject(cannot(`${what} could not be synthesised: ${e.message}`)));
    p.on("close", (code) => {
      if (code !== 0) {
        const tail = stderr.trim().split("\n").slice(-12).join("\n");
        reject(cannot(`${what} does not synthesise (exit ${code}):\n${tail}`));
        return;
      }
      try {
        const manifest = JSON.parse(readFileSync(join(outdir, "manifest.json"), "utf8")) as { stacks: Record<string, { synthesizedStackPath: string }> };
        resolve(Object.fromEntries(Object.entries(manifest.stacks).map(([name, s]) => [name, JSON.parse(readFileSync(join(outdir, s.synthesizedStackPath), "utf8")) as StackJson])));
      } catch (e) {
        reject(cannot(`${what}: no synthesised stacks in ${outdir}: ${(e as Error).message}`));
      }
    });
  });
}

export interface ReviewRun {
  /** A git revision of the repository `root` belongs to. */
  readonly base: string;
  /** The checkout to review (its working tree is the head). @default the checkout this file is in */
  readonly root?: string;
  readonly environments?: readonly string[];
  readonly accept?: readonly string[];
  /** Diagnostics (stderr). */
  readonly warn?: (line: string) => void;
}

/** Synthesises base and working tree and reviews the change. */
export async function runReview(run: ReviewRun): Promise<Review> {
  const root = run.root ?? join(__dirname, "..");
  const top = git(root, ["rev-parse", "--show-toplevel"]);
  if (!top.ok) throw cannot(`${root} is not a git checkout (${top.err})`);
  const sha = git(root, ["rev-parse", "--verify", "--quiet", `${run.base}^{commit}`]);
  if (!sha.ok || !sha.out) throw cannot(`--base ${run.base} is not a commit of this repository`);
  const nodeModules = join(root, "node_modules");
  if (!existsSync(join(nodeModules, "ts-node"))) throw cannot(`${nodeModules} has no ts-node: run npm ci first`);
  if (!git(root, ["diff", "--quiet", sha.out, "--", "package-lock.json"]).ok) {
    run.warn?.(`pgharbor review: package-lock.json differs from ${run.base}: the base is synthesised with this checkout's node_modules\n`);
  }
  const tmp = mkdtempSync(join(tmpdir(), "pgharbor-review-"));
  const worktree = join(tmp, "base");
  const cleanUp = () => {
    git(root, ["worktree", "remove", "--force", worktree]);
    rmSync(tmp, { recursive: true, force: true });
    git(root, ["worktree", "prune"]);
  };
  // Interrupted (Ctrl-C, a CI timeout): still leave no worktree behind.
  const onSignal = (signal: NodeJS.Signals) => {
    cleanUp();
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const added = git(root, ["worktree", "add", "--detach", "--quiet", worktree, sha.out]);
    if (!added.ok) throw cannot(`git worktree add ${run.base} failed: ${added.err}`);
    // The base uses this checkout's dependencies: no npm ci, nothing downloaded.
    if (!existsSync(join(worktree, "node_modules"))) symlinkSync(realpathSync(nodeModules), join(worktree, "node_modules"), "dir");
    const [baseStacks, headStacks] = await Promise.all([
      synthesise(worktree, join(tmp, "out-base"), `the base (${run.base})`, nodeModules),
      synthesise(root, join(tmp, "out-head"), "the working tree", nodeModules),
    ]);
    const short = sha.out.slice(0, 7);
    const label = sha.out.startsWith(run.base) ? short : `${run.base} (${short})`;
    return review({ label, stacks: baseStacks }, { label: "working tree", stacks: headStacks }, { accept: run.accept, environments: run.environments?.length ? run.environments : undefined });
  } finally {
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
    cleanUp();
  }
}
