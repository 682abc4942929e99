/**
 * The dev stack, run for real: PostgreSQL primary and replica, PgBouncer, pgBackRest against an
 * S3 server over HTTPS, the backup container's jobs. One harness, scenarios in order.
 */
import { describeRuntime, Harness } from "./harness";
import { dev, variant } from "../helpers";

jest.setTimeout(300_000);

describeRuntime("runtime: dev stack", (tools) => {
  const env = variant(dev, { primary: { ...dev.primary, majorVersion: tools.major }, backup: { retentionFullBackups: 2, retentionDays: undefined } });
  let h: Harness;
  const timings: Record<string, number> = {};
  const timed = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
    const t = Date.now();
    try {
      return await f();
    } finally {
      timings[name] = (Date.now() - t) / 1000;
    }
  };

  beforeAll(async () => {
    h = new Harness(env, tools);
    await h.startS3();
    h.start("primary");
    await h.waitReady("primary");
    await h.waitFor("roles reconciled", () => /roles reconciled/.test(h.log("primary")), 60_000);
  });

  afterAll(async () => {
    // eslint-disable-next-line no-console
    console.log(`runtime scenario timings (s): ${JSON.stringify(timings)}`);
    await h?.teardown();
  });

  test("backup container starts: stanza created, check passes", async () => {
    await timed("backup-start", async () => {
      const r = h.exec("backup", ["/usr/local/lib/pgharbor/backup-entrypoint.sh"], { timeoutMs: 180_000 });
      expect({ code: r.code, out: r.stderr.slice(-2000) }).toEqual({ code: 0, out: expect.stringContaining("stanza-create succeeded") });
      expect(r.stderr).toContain("check succeeded");
    });
  });

  test("primary: data checksums on, roles as declared", () => {
    expect(h.sql("primary", "SHOW data_checksums")).toBe("on");
    expect(h.sql("primary", "SELECT string_agg(rolname || ':' || rolsuper || rolreplication, ',' ORDER BY rolname) FROM pg_roles WHERE rolname IN ('app','replicator','pgharbor_pgbouncer','pgharbor_backup','pgharbor_monitor')")).toBe(
      "app:falsefalse,pgharbor_backup:falsefalse,pgharbor_monitor:falsefalse,pgharbor_pgbouncer:falsefalse,replicator:falsetrue",
    );
  });
});
