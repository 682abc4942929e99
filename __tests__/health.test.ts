import { formatBytes, HealthCheck, HealthDocument, healthExitCode, HealthStatus, renderHealth } from "../cli/health";

const MIB = 1048576;

function check(id: string, status: HealthStatus, summary: string): HealthCheck {
  return { check: id, status, summary, value: null, details: [] };
}

/** A document as pgharbor-ops health prints it (shape of images/backup/health.py). */
function doc(statuses: Partial<Record<string, HealthStatus>> = {}, extra: Partial<HealthDocument> = {}): HealthDocument {
  const checks = [
    check("primary", "ok", "primary up for 3 h 12 min, accepting writes (PostgreSQL 17.11)"),
    check("replicas", "ok", "1 of 1 replicas streaming (replica-1)"),
    check("long-running-queries", "ok", "no statement has run long; warn at 60 s, critical at 5 min"),
    check("blocking-locks", "ok", "no session waits for a lock another one holds; warn at 10 s, critical at 2 min"),
    check("table-bloat", "ok", "estimate: none of the tables of 10 MiB or more is over 50% bloat, most app.public.fresh ~4%"),
  ].map((c) => ({ ...c, status: statuses[c.check] ?? c.status }));
  const worst = (["critical", "warn", "ok"] as HealthStatus[]).find((s) => checks.some((c) => c.status === s)) ?? "ok";
  return {
    format: 1,
    status: worst,
    thresholds: {},
    checks,
    largest: [
      { database: "app", schema: "public", relation: "bloated", kind: "table", totalBytes: 63873024, tableBytes: 54648832, indexBytes: 9224192, exact: true },
      { database: "app", schema: "public", relation: "fresh", kind: "table", totalBytes: 18 * MIB, tableBytes: 14 * MIB, indexBytes: 4 * MIB, exact: false },
      { database: "shop", schema: "reports", relation: "daily", kind: "materialized view", totalBytes: 900 * 1024, tableBytes: 900 * 1024, indexBytes: 0, exact: true },
    ],
    largestErrors: [],
    ...extra,
  };
}

describe("healthExitCode: the Nagios convention", () => {
  test.each([
    [{}, 0],
    [{ "table-bloat": "warn" }, 1],
    [{ "table-bloat": "warn", "blocking-locks": "critical" }, 2],
    [{ replicas: "critical" }, 2],
  ] as const)("%j -> %i", (statuses, code) => expect(healthExitCode(doc(statuses))).toBe(code));

  test("the worst of the document's status and its checks' (a document that says ok over a critical check is not believed)", () => {
    expect(healthExitCode({ ...doc({ "blocking-locks": "critical" }), status: "ok" })).toBe(2);
    expect(healthExitCode({ ...doc(), status: "warn" })).toBe(1);
  });

  test("a status it does not know is critical, never healthy", () => {
    expect(healthExitCode({ ...doc(), status: "unknown" as HealthStatus })).toBe(2);
    expect(healthExitCode(doc({ primary: "degraded" as HealthStatus }))).toBe(2);
  });
});

describe("renderHealth: one screen", () => {
  test("a line per check, the status word and the check id aligned, then the largest relations", () => {
    const text = renderHealth(doc({ "blocking-locks": "critical", "table-bloat": "warn" }));
    expect(text).toBe(
      [
        "health: CRITICAL (5 checks: 3 ok, 1 warn, 1 critical)",
        "ok        primary               primary up for 3 h 12 min, accepting writes (PostgreSQL 17.11)",
        "ok        replicas              1 of 1 replicas streaming (replica-1)",
        "ok        long-running-queries  no statement has run long; warn at 60 s, critical at 5 min",
        "CRITICAL  blocking-locks        no session waits for a lock another one holds; warn at 10 s, critical at 2 min",
        "WARN      table-bloat           estimate: none of the tables of 10 MiB or more is over 50% bloat, most app.public.fresh ~4%",
        "",
        "largest relations (table with TOAST + indexes):",
        "  60.9 MiB  app.public.bloated (52.1 MiB + 8.8 MiB)",
        "    18 MiB  app.public.fresh (14 MiB + 4 MiB, from pg_class: locked)",
        "   900 KiB  shop.reports.daily materialized view (900 KiB + 0 B)",
        "",
      ].join("\n"),
    );
  });

  test("the overall word follows the exit code", () => {
    expect(renderHealth(doc()).split("\n")[0]).toBe("health: ok (5 checks: 5 ok, 0 warn, 0 critical)");
    expect(renderHealth(doc({ replicas: "warn" })).split("\n")[0]).toBe("health: WARN (5 checks: 4 ok, 1 warn, 0 critical)");
    expect(renderHealth({ ...doc(), status: "critical" }).split("\n")[0]).toMatch(/^health: CRITICAL /);
  });

  test("no relations, and relations that could not be sized", () => {
    const text = renderHealth(doc({}, { largest: [], largestErrors: [{ database: "shop", error: "query on shop: canceling statement due to lock timeout" }, { database: null, error: "boom" }] }));
    expect(text.split("\n").slice(-4)).toEqual(["largest relations: none found", "  could not size the relations of shop: query on shop: canceling statement due to lock timeout", "  could not size the relations of the databases: boom", ""]);
  });

  test("names from the server reach the terminal without control characters", () => {
    const d = doc({}, { largest: [{ database: "app", schema: "public", relation: "evil\u001b[2J\nname", kind: "table", totalBytes: 1, tableBytes: 1, indexBytes: 0, exact: true }] });
    d.checks[0].summary = "line one\nline two\r";
    const text = renderHealth(d);
    expect(text).toContain("app.public.evil\\x1b[2J\\x0aname (1 B + 0 B)");
    expect(text).toContain("line one\\x0aline two\\x0d");
    expect(text.split("\n")).toHaveLength(1 + 5 + 1 + 2 + 1);
  });
});

test("formatBytes as health.py writes sizes", () => {
  expect([0, 1023, 1024, 10 * MIB, 1.5 * 1024 * MIB, 63873024].map(formatBytes)).toEqual(["0 B", "1023 B", "1 KiB", "10 MiB", "1.5 GiB", "60.9 MiB"]);
});
