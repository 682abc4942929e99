import { mkdtempSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { DockerExecutor, executorFor, main } from "../cli/main";
import { OperationError, parseTarget } from "../cli/operations";

describe("restore targets", () => {
  test.each([
    ["latest", { kind: "latest" }],
    ["0/5000028", { kind: "lsn", lsn: "0/5000028" }],
    ["2026-11-21 10:15:00+00", { kind: "time", epoch: Date.UTC(2026, 10, 21, 10, 15) / 1000, text: "2026-11-21 10:15:00+00" }],
    ["2026-11-21T10:15:00Z", { kind: "time", epoch: Date.UTC(2026, 10, 21, 10, 15) / 1000, text: "2026-11-21T10:15:00Z" }],
  ])("%s", (to, parsed) => expect(parseTarget(to)).toEqual(parsed));
  test.each(["yesterday", "2026-11-21 10:15:00", "2026-13-01 00:00:00+00"])("%s is refused (no zone, or not a time)", (to) => {
    expect(() => parseTarget(to)).toThrow(OperationError);
  });
});

describe("CLI errors", () => {
  const run = async (...argv: string[]) => {
    let err = "";
    const code = await main(argv, () => ({ exec: async () => ({ code: 0, stdout: "[]", stderr: "" }) }), () => undefined, (t) => (err += t));
    return { code, err };
  };
  test("unknown environment: one line, exit 1", async () => {
    let err = "";
    const code = await main(["window", "--env", "qa"], undefined, () => undefined, (t) => (err += t));
    expect(code).toBe(1);
    expect(err).toBe("pgharbor: --env qa is not an environment of this project (dev, staging, prod)\n");
  });
  test("a failing command names the container and the exit code", async () => {
    let err = "";
    const code = await main(["verify", "--env", "dev"], () => ({ exec: async () => ({ code: 56, stdout: "", stderr: "ERROR: [056]: unable to connect" }) }), () => undefined, (t) => (err += t));
    expect(code).toBe(1);
    expect(err).toMatch(/^pgharbor: pgbackrest --config=\/etc\/pgbackrest\/pgbackrest.conf --stanza=pgharbor --log-level-console=warn failed in the backup container \(exit 56\): ERROR: \[056\]: unable to connect\n$/);
  });
  test("no backup yet: window relays the backup container's one-line reason", async () => {
    let err = "";
    const code = await main(["window", "--env", "dev"], () => ({ exec: async () => ({ code: 1, stdout: "", stderr: "2026-11-22T01:00:00Z pgharbor-ops: the archive holds no backup yet: nothing can be restored (run `pgharbor backup now --type full`)\n" }) }), () => undefined, (t) => (err += t));
    expect(code).toBe(1);
    expect(err).toBe("pgharbor: pgharbor-ops window failed in the backup container (exit 1): the archive holds no backup yet: nothing can be restored (run `pgharbor backup now --type full`)\n");
  });
  test("bad backup type", async () => {
    expect((await run("backup", "now", "--type", "incr", "--env", "dev")).err).toMatch(/--type incr: use full, diff or logical/);
  });
  test("restore needs exactly one of --to and --logical", async () => {
    expect((await run("restore", "--env", "dev")).err).toMatch(/give either --to <time\|lsn\|latest> \(physical restore\) or --logical <database>/);
    expect((await run("restore", "--to", "latest", "--logical", "app", "--env", "dev")).err).toMatch(/give either/);
    expect((await run("restore", "--logical", "app", "--env", "dev")).err).toMatch(/--logical needs --identity <file>/);
    expect((await run("restore", "--logical", "app", "--identity", "/nonexistent/key.txt", "--env", "dev")).err).toMatch(/--identity \/nonexistent\/key.txt: ENOENT/);
  });
});

describe("status", () => {
  // GIVEN pgharbor-ops status reporting one readable, one unreadable and one unparsable status file
  const statusDoc = {
    full: { job: "full", ok: true, exitCode: 0, startedAt: 1795309200, finishedAt: 1795309260, durationSeconds: 60 },
    diff: { job: "diff", unreadable: "Permission denied: /var/lib/pgharbor/status/diff.json" },
    "drill-last": { job: "drill-last", unreadable: "not JSON: Expecting value: line 1 column 1 (char 0)" },
  };
  const ex = () => ({
    exec: async (_role: string, argv: string[]) => {
      if (argv.includes("status")) return { code: 0, stdout: `${JSON.stringify(statusDoc)}\n`, stderr: "" };
      if (argv.includes("window")) return { code: 1, stdout: "", stderr: "2026-11-22T01:00:00Z pgharbor-ops: the archive holds no backup yet: nothing can be restored\n" };
      return { code: 0, stdout: "", stderr: "" };
    },
  });
  test("an unreadable status file shows as UNREADABLE with its reason, not as never run", async () => {
    // WHEN
    let out = "";
    const code = await main(["status", "--env", "dev"], ex, (t) => (out += t), () => undefined);
    // THEN
    expect(code).toBe(0);
    const lines = out.split("\n");
    expect(lines).toContain("full          ok     2026-11-22T01:01:00Z (60 s)");
    expect(lines).toContain("diff          UNREADABLE (Permission denied: /var/lib/pgharbor/status/diff.json)");
    expect(lines).toContain("expire        never run");
    expect(lines).toContain("last drill    UNREADABLE (not JSON: Expecting value: line 1 column 1 (char 0))");
    expect(lines).toContain("last logical  none yet");
    expect(out).not.toMatch(/diff +never run/);
  });
});

describe("cleanup asks before deleting", () => {
  const calls: string[][] = [];
  const ex = () => ({
    exec: async (_role: string, argv: string[]) => {
      calls.push(argv);
      if (argv.includes("--dry-run") && argv.includes("expire")) return { code: 0, stdout: "P00   INFO: [DRY-RUN] expire full backup 20261101-010000F\n", stderr: "" };
      if (argv.includes("logical-cleanup")) return { code: 0, stdout: '{"wouldDelete": ["20261020T020000Z"], "kept": ["20261121T020000Z"]}\n', stderr: "" };
      return { code: 0, stdout: "", stderr: "" };
    },
  });
  const cli = async (answer: boolean | "no-terminal", ...argv: string[]) => {
    calls.length = 0;
    let out = "";
    let err = "";
    const asked: string[] = [];
    const ask = async (q: string) => {
      asked.push(q);
      if (answer === "no-terminal") throw new OperationError(`${q}: no terminal to confirm on; re-run with --yes to confirm`);
      return answer;
    };
    const code = await main(argv, ex, (t) => (out += t), (t) => (err += t), ask);
    return { code, out, err, asked, deleted: calls.some((a) => a.includes("expire") && !a.includes("--dry-run")) };
  };
  test("shows the plan and deletes nothing when the answer is no", async () => {
    const r = await cli(false, "cleanup", "--env", "dev");
    expect(r.out).toContain("[DRY-RUN] expire full backup 20261101-010000F");
    expect(r.out).toContain("logical sets to delete: 20261020T020000Z");
    expect(r.asked).toEqual(["delete these backups from dev's bucket?"]);
    expect(r).toEqual(expect.objectContaining({ code: 1, deleted: false, err: "pgharbor: cleanup cancelled; nothing deleted\n" }));
  });
  test("deletes when confirmed, or with --yes without asking", async () => {
    expect(await cli(true, "cleanup", "--env", "dev")).toEqual(expect.objectContaining({ code: 0, deleted: true }));
    const yes = await cli(false, "cleanup", "--yes", "--env", "dev");
    expect(yes).toEqual(expect.objectContaining({ code: 0, deleted: true, asked: [] }));
  });
  test("--dry-run never deletes; no terminal and no --yes refuses", async () => {
    expect(await cli(true, "cleanup", "--dry-run", "--env", "dev")).toEqual(expect.objectContaining({ code: 0, deleted: false, asked: [] }));
    const r = await cli("no-terminal", "cleanup", "--env", "dev");
    expect(r).toEqual(expect.objectContaining({ code: 1, deleted: false }));
    expect(r.err).toMatch(/no terminal to confirm on; re-run with --yes/);
  });
});

describe("DockerExecutor", () => {
  // A stand-in `docker` that reports its arguments and stdin, and writes progress to stderr.
  const dir = mkdtempSync(join(tmpdir(), "pgharbor-docker-"));
  const docker = join(dir, "docker");
  writeFileSync(join(dir, "docker"), '#!/bin/sh\necho "step one" >&2\necho "step two" >&2\nprintf "%s|" "$@"\n[ "$5" = "-i" ] || [ "$6" = "-i" ] && { printf "stdin="; cat; }\nexit 3\n', { mode: 0o755 });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  test("docker --host <env host> exec --user postgres pgharbor-<env>-<role>; stdin and progress lines passed through", async () => {
    const lines: string[] = [];
    const r = await new DockerExecutor("prod", "ssh://deploy@db-1", docker).exec("backup", ["pgharbor-ops", "window"], { onStderr: (l) => lines.push(l) });
    expect(r).toEqual({ code: 3, stdout: "--host|ssh://deploy@db-1|exec|--user|postgres|pgharbor-prod-backup|pgharbor-ops|window|", stderr: "step one\nstep two\n" });
    expect(lines).toEqual(["step one", "step two"]);
    const withInput = await new DockerExecutor("dev", "unix:///var/run/docker.sock", docker).exec("backup", ["x"], { input: "AGE-SECRET-KEY-1TEST" });
    expect(withInput.stdout).toBe("--host|unix:///var/run/docker.sock|exec|--user|postgres|-i|pgharbor-dev-backup|x|stdin=AGE-SECRET-KEY-1TEST");
  });
  test("a role on another host is reached there (a replica on db-2), every other role on the default host", async () => {
    const ex = new DockerExecutor("prod", "ssh://deploy@db-1", docker, { "replica-1": "ssh://deploy@db-2" });
    expect((await ex.exec("replica-1", ["patronictl"])).stdout).toBe("--host|ssh://deploy@db-2|exec|--user|postgres|pgharbor-prod-replica-1|patronictl|");
    expect((await ex.exec("primary", ["patronictl"])).stdout).toBe("--host|ssh://deploy@db-1|exec|--user|postgres|pgharbor-prod-primary|patronictl|");
  });
  test("executorFor places replicas as the stack does: round robin over replicaHosts, else the primary's host", () => {
    const hostOf = (env: string, role: string) => (executorFor(env) as unknown as { hostOf(r: string): string }).hostOf(role);
    expect(["primary", "backup", "replica-1", "replica-2"].map((r) => hostOf("prod", r))).toEqual(["ssh://deploy@db-1.example.internal", "ssh://deploy@db-1.example.internal", "ssh://deploy@db-2.example.internal", "ssh://deploy@db-3.example.internal"]);
    expect(hostOf("staging", "replica-1")).toBe("ssh://deploy@staging-db.example.internal");
    expect(hostOf("dev", "replica-1")).toBe("unix:///var/run/docker.sock");
  });
});

describe("progress on long operations", () => {
  test("a line every 30 s while a backup runs, none after it ends", async () => {
    jest.useFakeTimers();
    try {
      let finish: (r: { code: number; stdout: string; stderr: string }) => void = () => undefined;
      const ex = {
        exec: (_role: string, argv: string[]) =>
          argv[0].endsWith("backup-job.sh")
            ? new Promise<{ code: number; stdout: string; stderr: string }>((r) => (finish = r))
            : Promise.resolve({ code: 0, stdout: JSON.stringify([{ backup: [{ label: "20261122-010000F", type: "full", timestamp: { start: 1, stop: 61 }, archive: { start: "x", stop: "y" }, info: { size: 1 } }] }]), stderr: "" }),
      };
      let err = "";
      let out = "";
      const done = main(["backup", "now", "--env", "dev"], () => ex, (t) => (out += t), (t) => (err += t));
      await jest.advanceTimersByTimeAsync(65_000);
      expect(err).toBe("taking a full backup of dev…\n  … still backing up (30 s)\n  … still backing up (60 s)\n");
      finish({ code: 0, stdout: "", stderr: "" });
      expect(await done).toBe(0);
      await jest.advanceTimersByTimeAsync(60_000);
      expect(err.match(/still/g)).toHaveLength(2);
      expect(out).toBe("done: 20261122-010000F (full) in 60 s\n");
    } finally {
      jest.useRealTimers();
    }
  });
});

describe("class 9: the operations CLI refuses impossible input before anything runs", () => {
  const scratch = "/var/lib/pgharbor/scratch";
  /** A backup container: the window, then what realpath and find say about the target directory. */
  const container = (dir: { real?: string; kind?: "absent" | "d" | "f"; entries?: string[] } = {}) => {
    const calls: string[][] = [];
    const ex = {
      exec: async (_role: string, argv: string[]) => {
        calls.push(argv);
        if (argv[1] === "window") return { code: 0, stdout: JSON.stringify({ oldest: 0, newest: 4102444800, newestSegment: "x", continuous: true, missingSegments: [], backups: 1 }), stderr: "" };
        if (argv[0] === "realpath") return { code: 0, stdout: `${scratch}\n${dir.real ?? argv[4]}\n`, stderr: "" };
        if (argv[0] === "find" && argv.includes("-printf")) return dir.kind === "absent" || dir.kind === undefined ? { code: 1, stdout: "", stderr: `find: '${argv[1]}': No such file or directory` } : { code: 0, stdout: dir.kind, stderr: "" };
        if (argv[0] === "find") return { code: 0, stdout: (dir.entries ?? []).map((e) => `${argv[1]}/${e}\n`).join(""), stderr: "" };
        return { code: 0, stdout: "", stderr: "" };
      },
    };
    return { calls, ex, restored: () => calls.some((a) => a[0].endsWith("/restore.sh")), touched: () => calls.length > 0 };
  };
  const cli = async (c: ReturnType<typeof container>, ...argv: string[]) => {
    let err = "";
    const code = await main([...argv, "--env", "dev"], () => c.ex, () => undefined, (t) => (err += t));
    return { code, err };
  };

  test.each([
    ["2026-02-30 10:00:00+00", /2026-02 has no day 30 \(it has 28\)/],
    ["2026-02-29 00:00:00+00", /2026-02 has no day 29 \(it has 28\)/],
    ["2026-04-31 12:00:00Z", /2026-04 has no day 31 \(it has 30\)/],
    ["2026-00-10 12:00:00Z", /month 00 does not exist/],
    ["2026-11-21 24:00:00+00", /hour 24 does not exist/],
    ["2026-11-21 10:60:00+00", /minute 60 does not exist/],
    ["2026-11-21 10:15:60+00", /second 60 does not exist/],
    ["2026-11-21 10:15:00+16", /zone \+16 is not a UTC offset/],
    ["2026-11-21 10:15:00+05:75", /zone \+05:75 is not a UTC offset/],
    ["21/11/2026 10:15", /is not latest, an LSN/],
  ])("--to %s is refused and nothing runs", async (to, message) => {
    const c = container();
    const r = await cli(c, "restore", "--to", to);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(message);
    expect(c.touched()).toBe(false);
  });

  test.each([
    ["2028-02-29 00:00:00+00", Date.UTC(2028, 1, 29) / 1000],
    ["2026-11-21 10:15:00.5+01:30", Date.UTC(2026, 10, 21, 8, 45) / 1000 + 0.5],
    ["2026-11-21T10:15Z", Date.UTC(2026, 10, 21, 10, 15) / 1000],
  ])("--to %s is a real time", (to, epoch) => expect(parseTarget(to)).toEqual({ kind: "time", epoch, text: to }));

  test.each([
    ["/var/lib/postgresql/data", /is the primary's live data directory or on its path/],
    ["/var/lib/postgresql", /is the primary's live data directory or on its path/],
    ["/var/lib/postgresql/data/pitr", /is the primary's live data directory or on its path/],
    ["/", /live data directory or on its path/],
    ["restore", /give an absolute path below \/var\/lib\/pgharbor\/scratch/],
    [scratch, /is not below the scratch volume/],
    [`${scratch}/../../postgresql/data`, /without "\.\.", "\." or repeated or trailing slashes/],
    [`${scratch}//pitr`, /without "\.\.", "\." or repeated or trailing slashes/],
    [`${scratch}/drill`, /drill belongs to restore drills and logical restores/],
    [`${scratch}/logical-abc`, /logical-abc belongs to restore drills/],
    ["/tmp/restore", /is not below the scratch volume/],
    [`${scratch}/my copy`, /use letters, digits, dots, hyphens, underscores and slashes only/],
  ])("--into %s is refused before anything runs", async (into, message) => {
    const c = container();
    const r = await cli(c, "restore", "--to", "latest", "--into", into);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(message);
    expect(c.touched()).toBe(false);
  });

  test.each([
    ["a symbolic link out of the scratch volume", { real: "/var/lib/postgresql/data", kind: "d" as const }, /a symbolic link in the backup container leads it out of the scratch volume/],
    ["a directory that is not empty", { kind: "d" as const, entries: ["PG_VERSION"] }, /is not empty in the backup container: refusing to restore over it/],
    ["a file", { kind: "f" as const }, /exists in the backup container and is not a directory/],
  ])("--into %s: looked at in the container and refused before restore.sh touches it", async (_n, dir, message) => {
    const c = container(dir);
    const r = await cli(c, "restore", "--to", "latest", "--into", `${scratch}/pitr`);
    expect(r.err).toMatch(message);
    expect(c.restored()).toBe(false);
  });

  test.each([
    ["2026-11-21T10:15Z", "2026-11-21 10:15:00+00"],
    ["2026-11-21 10:15:00.5+01:30", "2026-11-21 08:45:00.5+00"],
    ["2026-11-21 10:15:00.123456-02", "2026-11-21 12:15:00.123456+00"],
    ["2026-11-21 10:15:00+00", "2026-11-21 10:15:00+00"],
  ])("--to %s reaches restore.sh as pgBackRest reads a time: %s", async (to, expected) => {
    const c = container({ kind: "absent" });
    expect((await cli(c, "restore", "--to", to, "--into", `${scratch}/pitr`)).code).toBe(0);
    const call = c.calls.find((a) => a[0].endsWith("/restore.sh"))!;
    expect(call.slice(1, 3)).toEqual(["--to", expected]);
  });

  test("an absent or empty directory goes to restore.sh", async () => {
    for (const dir of [{ kind: "absent" as const }, { kind: "d" as const, entries: [] }]) {
      const c = container(dir);
      expect((await cli(c, "restore", "--to", "latest", "--into", `${scratch}/pitr`)).code).toBe(0);
      expect(c.restored()).toBe(true);
    }
  });

  describe("logical restore", () => {
    const dir = mkdtempSync(join(tmpdir(), "pgharbor-identity-"));
    const identity = join(dir, "restore.key");
    const sshKey = join(dir, "id_ed25519");
    writeFileSync(identity, `# created: 2026-11-22\n# public key: age1x\nAGE-SECRET-KEY-1${"Q".repeat(58)}\n`);
    writeFileSync(sshKey, "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n");
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    test.each([
      [["--into-database", "user"], /--into-database user: is an SQL keyword/],
      [["--into-database", "App"], /--into-database App: must be a lowercase SQL identifier/],
      [["--into-database", "postgres"], /--into-database postgres: is a special name/],
      [["--into-database", "pg_copy"], /--into-database pg_copy: starts with "pg_"/],
      [["--set", "yesterday"], /--set yesterday: give "latest" or a set name such as 20261122T020000Z/],
    ])("%j is refused and nothing runs", async (args, message) => {
      const c = container();
      const r = await cli(c, "restore", "--logical", "app", "--identity", identity, ...(args as string[]));
      expect(r.err).toMatch(message);
      expect(c.touched()).toBe(false);
    });
    test("a long database name whose default <db>_restored passes 63 bytes asks for --into-database", async () => {
      const c = container();
      const r = await cli(c, "restore", "--logical", "d".repeat(60), "--identity", identity);
      expect(r.err).toMatch(/--into-database \(default <database>_restored\) d{60}_restored: is 69 bytes/);
      expect(c.touched()).toBe(false);
    });
    test("a file that is not an age identity (an SSH key) is never sent", async () => {
      const c = container();
      const r = await cli(c, "restore", "--logical", "app", "--identity", sshKey);
      expect(r.err).toMatch(/--identity .*id_ed25519: holds no age identity .* nothing was sent/);
      expect(c.touched()).toBe(false);
    });
  });
});
