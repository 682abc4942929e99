/**
 * A new environment's first minutes, with the backup container's defaults: the first full backup is
 * taken at start (the bucket is empty) and a first restore drill follows, so the window and drill
 * evidence exist minutes after deploy; a restart does neither again.
 */
import { mkdtempSync, readFileSync, rmSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { ageIdentity, describeRuntime, Harness, harnessExecutor } from "./harness";
import { dev } from "../helpers";
import { main as cliMain } from "../../cli/main";
import { CONTAINER_PATHS as P } from "../../postgres-config/paths";

jest.setTimeout(300_000);

describeRuntime("runtime: first start of a new environment", (tools) => {
  const keys = mkdtempSync(join(tmpdir(), "pgharbor-age-"));
  const recipient = ageIdentity(keys, "k");
  const env = { ...dev, replicas: 0, primary: { ...dev.primary, majorVersion: tools.major }, backup: { retentionDays: 7, logical: { recipients: [recipient] } } };
  let h: Harness;
  const cli = async (...argv: string[]) => {
    let out = "";
    let err = "";
    const code = await cliMain(argv, () => harnessExecutor(h), (t) => (out += t), (t) => (err += t), async () => false);
    return { code, out, err };
  };
  const firstBackupLine = "the archive holds no backup yet: taking the first full backup now";

  beforeAll(async () => {
    h = new Harness(env, tools);
    await h.startArchiveAndPrimary();
  });
  afterAll(async () => {
    await h?.teardown();
    rmSync(keys, { recursive: true, force: true });
  });

  test("the backup container takes the first full backup at start; the window exists", async () => {
    h.start("backup");
    await h.waitFor("the first full backup", () => /full succeeded/.test(h.log("backup")), 180_000, 250);
    expect(h.log("backup")).toContain(`${firstBackupLine}, then a first restore drill (in the background)`);
    const w = await cli("window", "--env", "dev");
    expect(w).toEqual(expect.objectContaining({ code: 0, out: expect.stringMatching(/^recoverable from .* WAL continuous\n$/) }));
    expect(JSON.parse(readFileSync(h.hostPath(h.name("backup"), `${P.statusDir}/full.json`), "utf8"))).toEqual(expect.objectContaining({ job: "full", ok: true }));
  });

  test("then a first drill passes on its own (window too narrow for a time target: latest)", async () => {
    await h.waitFor("the first drill", () => /drill (succeeded|FAILED)/.test(h.log("backup")), 120_000, 250);
    const r = await cli("drill", "list", "--env", "dev");
    expect(r).toEqual(expect.objectContaining({ code: 0, out: expect.stringMatching(/^drill \S+ passed: target latest from \d{8}-\d{6}F, .*; heartbeat ok, amcheck ok, dump ok\n$/) }));
    const status = await cli("status", "--env", "dev");
    expect(status.out).toMatch(/^drill +ok /m);
  });

  test("two drills at once: one runs, the other is refused without writing failed evidence", async () => {
    const evidenceBefore = h.bucketKeys("pgharbor/dev/drills/").length;
    const first = h.spawnIn("backup", [P.opsTool, "drill"]);
    const firstDone = new Promise<number>((r) => first.on("exit", (code) => r(code ?? -1)));
    const second = h.exec("backup", [P.opsTool, "drill"]);
    const firstCode = await firstDone;
    const codes = [firstCode, second.code].sort();
    expect(codes).toEqual([0, 1]);
    if (second.code === 1) expect(second.stderr).toMatch(/another restore drill is running in this container/);
    expect(h.bucketKeys("pgharbor/dev/drills/").length).toBe(evidenceBefore + 1);
  });

  test("a restart takes no second first backup", async () => {
    await h.stop("backup");
    const before = h.log("backup").length;
    h.start("backup");
    await h.waitFor("backup container up again", () => /cron stand-in/.test(h.log("backup").slice(before)), 180_000, 250);
    expect(h.log("backup").slice(before)).not.toContain(firstBackupLine);
    const list = await cli("backups", "list", "--env", "dev");
    expect(list.out.split("\n").filter((l) => /F +full/.test(l))).toHaveLength(1);
  });
});
