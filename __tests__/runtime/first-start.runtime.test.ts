/**
 * A new environment's first minutes, on the Docker engine, with the backup container's defaults: the
 * first full backup is taken at start (the bucket is empty) and a first restore drill follows, so the
 * window and drill evidence exist minutes after deploy; cron runs the jobs for real (expiry every
 * minute here) and `pgharbor status` reads what they recorded; a restart takes no second backup.
 */
import { mkdtempSync, rmSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { describeEngine } from "./engine";
import { ageIdentity, bucketKeys, cli, deployStack, RuntimeStack, teardown, waitFor } from "./scenario";
import { dev, variant } from "../helpers";
import { CONTAINER_PATHS as P } from "../../postgres-config/paths";

jest.setTimeout(600_000);

describeEngine("runtime: first start of a new environment", () => {
  const keys = mkdtempSync(join(tmpdir(), "pgharbor-age-"));
  const recipient = ageIdentity(keys, "k");
  let s: RuntimeStack;
  const firstBackupLine = "the archive holds no backup yet: taking the first full backup now";

  beforeAll(async () => {
    const env = variant(dev, {
      name: "rtfirst",
      replicas: 0,
      pgbouncer: { ...dev.pgbouncer, port: 16433 },
      backup: { retentionDays: 7, expireSchedule: "1-59 * * * *", logical: { recipients: [recipient] } },
      monitoring: { prometheus: false },
    });
    s = await deployStack(env);
  });
  afterAll(async () => {
    await teardown(s);
    rmSync(keys, { recursive: true, force: true });
  });

  test("the backup container takes the first full backup at start; the window exists", async () => {
    await waitFor("the first full backup", async () => /full succeeded/.test(await s.d.logs(s.name("backup"))), 300_000, 1000);
    expect(await s.d.logs(s.name("backup"))).toContain(`${firstBackupLine}, then a first restore drill (in the background)`);
    const w = await cli(s)("window");
    expect(w).toEqual(expect.objectContaining({ code: 0, out: expect.stringMatching(/^recoverable from .* WAL continuous\n$/) }));
  });

  test("then a first drill passes on its own (window too narrow for a time target: latest)", async () => {
    await waitFor("the first drill", async () => /drill (succeeded|FAILED)/.test(await s.d.logs(s.name("backup"))), 300_000, 1000);
    const r = await cli(s)("drill", "list");
    expect(r).toEqual(expect.objectContaining({ code: 0, out: expect.stringMatching(/^drill \S+ passed: target latest from \d{8}-\d{6}F, .*; heartbeat ok, amcheck ok, dump ok\n$/) }));
  });

  test("cron runs a job for real, and `pgharbor status` reads every record the jobs left (the entrypoint's and cron's)", async () => {
    await waitFor("cron's expire job", async () => /expire succeeded/.test(await s.d.logs(s.name("backup"))), 130_000, 1000);
    const status = await cli(s)("status");
    expect(status.code).toBe(0);
    expect(status.out).toMatch(/^full +ok +\S+Z \(\d+ s\)$/m);
    expect(status.out).toMatch(/^drill +ok /m);
    expect(status.out).toMatch(/^expire +ok /m);
    expect(status.out).toMatch(/^stanza-create +ok /m);
    expect(status.out).not.toMatch(/UNREADABLE|never run\n.*full/);
    expect(status.out).toMatch(/^last drill +drill \S+ passed/m);
  });

  test("two drills at once: one runs, the other is refused without writing failed evidence", async () => {
    const evidenceBefore = (await bucketKeys(s, `pgharbor/${s.env.name}/drills/`)).length;
    const [a, b] = await Promise.all([0, 300].map(async (delay) => {
      await new Promise((r) => setTimeout(r, delay));
      return s.d.exec(s.name("backup"), [P.opsTool, "drill"], { user: "postgres", timeoutMs: 300_000 });
    }));
    expect([a.code, b.code].sort()).toEqual([0, 1]);
    expect([a, b].find((x) => x.code === 1)!.stderr).toMatch(/another restore drill is running in this container/);
    expect((await bucketKeys(s, `pgharbor/${s.env.name}/drills/`)).length).toBe(evidenceBefore + 1);
  });

  test("docker stop ends the container at once, cleanly; a restart is not ready on the last run's file and takes no second first backup", async () => {
    const backup = s.d.docker.getContainer(s.name("backup"));
    const t0 = Date.now();
    await backup.stop({ t: 30 });
    const stopSeconds = (Date.now() - t0) / 1000;
    expect({ stopSeconds: stopSeconds < 10, exitCode: (await backup.inspect()).State.ExitCode }).toEqual({ stopSeconds: true, exitCode: 0 });
    const since = Math.floor(Date.now() / 1000);
    await backup.start();
    // The readiness file the stopped container left in /run/pgharbor is gone (or written anew by this run).
    const ready = await s.d.exec(s.name("backup"), ["stat", "-c", "%Y", `${P.secretsDir}/ready`]);
    if (ready.code === 0) expect(Number(ready.stdout.trim())).toBeGreaterThanOrEqual(since);
    await s.d.waitHealthy([s.name("backup")], 300_000);
    expect(await s.d.logs(s.name("backup"), since)).not.toContain(firstBackupLine);
    const list = await cli(s)("backups", "list");
    expect(list.out.split("\n").filter((l) => /F +full/.test(l))).toHaveLength(1);
  });
});
