import { main } from "../cli/main";
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
  test("no backup yet: window says so", async () => {
    const r = await run("window", "--env", "dev");
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/the archive holds no backup yet/);
  });
  test("bad backup type", async () => {
    expect((await run("backup", "now", "--type", "incr", "--env", "dev")).err).toMatch(/--type incr: use full or diff/);
  });
});
