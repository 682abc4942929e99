/**
 * The CLI side of query insights and maintenance, with a fake executor: captured plans parsed from a
 * server log, what each command asks pgharbor-ops for, exit codes (health's 0/1/2), confirmations and
 * argument errors. The runtime suite (insights.runtime.test.ts) runs the same commands on the engine.
 */
import { main } from "../cli/main";
import { capturedPlans } from "../cli/insights";
import { HealthDocument, renderHealth } from "../cli/health";
import { ExecOptions, ExecResult, Executor } from "../cli/operations";

const LOG = [
  "2026-11-22 12:44:01.100 UTC [77] app@app app=psql client=10.0.0.5 LOG:  duration: 61.402 ms  plan:",
  "\tQuery Text: SELECT count(*) FROM orders WHERE customer_id = $1",
  "\tAggregate  (cost=10944.47..10944.48 rows=1 width=8) (actual rows=1 loops=1)",
  "\t  Output: count(*)",
  "\t  Buffers: shared hit=4412",
  "\t  ->  Seq Scan on public.orders  (cost=0.00..10944.00 rows=120 width=0) (actual rows=120 loops=1)",
  "\tQuery Identifier: -7167232764852807186",
  "2026-11-22 12:44:02.000 UTC [78] @ app= client= LOG:  checkpoint starting: time",
  "2026-11-22 12:45:01.100 UTC [77] app@app app=psql client=10.0.0.5 LOG:  duration: 70.000 ms  plan:",
  "\tQuery Text: SELECT count(*) FROM orders WHERE customer_id = $1",
  "\tSeq Scan on public.orders  (cost=0.00..10944.00 rows=120 width=0) (actual rows=118 loops=1)",
  "\tQuery Identifier: -7167232764852807186",
  "2026-11-22 12:45:03.000 UTC [79] app@app LOG:  duration: 1500.000 ms  plan:",
  "\tQuery Text: SELECT 1",
  "\tResult  (cost=0.00..0.01 rows=1 width=4) (actual rows=1 loops=1)",
].join("\n");

class Fake implements Executor {
  calls: string[][] = [];
  constructor(private readonly answer: (argv: string[]) => ExecResult) {}
  async exec(_role: string, argv: string[], _o?: ExecOptions): Promise<ExecResult> {
    this.calls.push(argv);
    return this.answer(argv);
  }
  async logs(): Promise<string> {
    return LOG;
  }
}

async function run(fake: Fake, argv: string[], answer = false) {
  let out = "";
  let err = "";
  const code = await main([...argv, "--env", "dev"], () => fake, (t) => (out += t), (t) => (err += t), async () => answer);
  return { code, out, err };
}

const json = (doc: unknown): ExecResult => ({ code: 0, stdout: `${JSON.stringify(doc)}\n`, stderr: "" });

describe("captured plans", () => {
  test("each plan with its Query Identifier; a plan without one is left out", () => {
    const plans = capturedPlans(LOG);
    expect(plans.map((p) => [p.queryid, p.durationMs, p.at])).toEqual([
      ["-7167232764852807186", 61.402, "2026-11-22 12:44:01.100 UTC"],
      ["-7167232764852807186", 70, "2026-11-22 12:45:01.100 UTC"],
    ]);
    expect(plans[0].plan).toContain("  ->  Seq Scan on public.orders");
    expect(plans[0].plan).not.toContain("checkpoint");
  });
  test("queries explain prints the newest, takes a negative queryid, and exits 1 when none was captured", async () => {
    const fake = new Fake(() => json({}));
    const r = await run(fake, ["queries", "explain", "-7167232764852807186"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^plan of queryid -7167232764852807186, captured 2026-11-22 12:45:01.100 UTC \(70.0 ms\):\n {2}Query Text/);
    expect(r.out).toContain("actual rows=118");
    const none = await run(fake, ["queries", "explain", "42"]);
    expect(none).toEqual({ code: 1, out: "no plan captured for queryid 42 in the primary's log of the last 24 h (auto_explain logs statements slower than 1000 ms)\n", err: "" });
    expect((await run(fake, ["queries", "explain", "12; rm -rf /"])).err).toMatch(/queryid "12; rm -rf \/": give the number/);
  });
});

describe("queries", () => {
  const top = { by: "total", statsSince: "2026-11-22T12:43:30+00:00", statements: [{ queryid: "-71", database: "app", role: "app", query: "SELECT count(*)\n  FROM orders WHERE customer_id = $1", calls: 30, totalMs: 1984.2, meanMs: 66.14, rows: 30, share: 0.901, ioMs: 0, ioShare: 0, sharedBlocksRead: 0, cacheHitRatio: 1 }] };
  test("asks pgharbor-ops with the options given and prints one line per statement", async () => {
    const fake = new Fake(() => json(top));
    const r = await run(fake, ["queries", "--by", "mean", "--limit", "5", "--database", "app"]);
    expect(r.code).toBe(0);
    expect(fake.calls).toEqual([["/usr/local/lib/pgharbor/pgharbor-ops", "queries", "--by", "mean", "--limit", "5", "--database", "app"]]);
    expect(r.out).toMatch(/^1 +-71 +30 +1984\.2 +66\.1 +90\.1% +0\.0% +30 {2}app: SELECT count\(\*\) FROM orders WHERE customer_id = \$1$/m);
  });
  test.each([
    [["--by", "slowest"], /--by slowest: use one of total, mean, calls, rows, reads/],
    [["--limit", "0"], /--limit 0: give a whole number from 1 to 1000/],
  ])("%j is refused before anything runs", async (args, message) => {
    const fake = new Fake(() => json(top));
    const r = await run(fake, ["queries", ...args]);
    expect([r.code, fake.calls.length]).toEqual([1, 0]);
    expect(r.err).toMatch(message);
  });
  test("--reset asks first; declined, nothing is reset", async () => {
    const fake = new Fake(() => json({ reset: true, at: "2026-11-22T13:00:00+00:00" }));
    expect(await run(fake, ["queries", "--reset"], false)).toEqual({ code: 1, out: "", err: "pgharbor: reset cancelled; nothing changed\n" });
    expect(fake.calls).toEqual([]);
    expect((await run(fake, ["queries", "--reset"], true)).out).toBe("pg_stat_statements reset at 2026-11-22T13:00:00+00:00\n");
    expect(fake.calls).toEqual([["/usr/local/lib/pgharbor/pgharbor-ops", "queries-reset"]]);
  });
});

describe("health", () => {
  const report = (status: "ok" | "warn" | "critical"): HealthDocument => ({
    format: 1,
    status,
    thresholds: {},
    largest: [{ database: "app", schema: "public", relation: "orders", kind: "table", totalBytes: 100 * 1048576, tableBytes: 80 * 1048576, indexBytes: 20 * 1048576, exact: true }],
    largestErrors: [],
    checks: [
      { check: "primary", status: "ok", summary: "the primary accepts writes", value: null, details: [] },
      { check: "blocking-locks", status, summary: "1 sessions waiting for a lock", value: 1, details: [] },
    ],
  });
  test.each([
    ["ok", 0],
    ["warn", 1],
    ["critical", 2],
  ] as const)("%s exits %d (the Nagios convention) through the CLI, text or JSON", async (status, code) => {
    const fake = new Fake(() => json(report(status)));
    const text = await run(fake, ["health"]);
    expect(text.code).toBe(code);
    expect(text.out).toBe(renderHealth(report(status)));
    expect(text.out).toMatch(/blocking-locks.*1 sessions waiting for a lock$/m);
    const asJson = await run(fake, ["health", "--json"]);
    expect([asJson.code, JSON.parse(asJson.out).status]).toEqual([code, status]);
  });
});

describe("maintenance", () => {
  const runDoc = (dryRun: boolean, ok = true) => ({
    startedAt: "2026-11-22T05:00:00+00:00",
    finishedAt: "2026-11-22T05:00:03+00:00",
    dryRun,
    ok,
    analyzed: 1,
    vacuumed: 1,
    databases: [{ database: "app", vacuumed: [{ table: "public.stale", why: "10000 dead rows (10000 live)", command: "VACUUM (SKIP_LOCKED, ANALYZE) public.stale" }], analyzed: [{ table: "public.stale", why: "never analysed", command: "" }], skipped: [], ...(ok ? {} : { error: "permission denied" }) }],
  });
  test("--dry-run asks pgharbor-ops for the plan; a run goes through the job (its status record)", async () => {
    const fake = new Fake((argv) => json(runDoc(argv.includes("--dry-run"))));
    const plan = await run(fake, ["maintenance", "now", "--dry-run"]);
    expect(plan.out).toBe("app: would vacuum public.stale (10000 dead rows (10000 live))\nplan: 1 tables to vacuum, 1 to analyse\n");
    const done = await run(fake, ["maintenance", "now"]);
    expect(done.out).toBe("app: vacuum public.stale (10000 dead rows (10000 live))\ndone: 1 tables vacuumed, 1 analysed (2026-11-22T05:00:00+00:00 .. 2026-11-22T05:00:03+00:00)\n");
    expect(fake.calls).toEqual([
      ["/usr/local/lib/pgharbor/pgharbor-ops", "maintenance", "--dry-run"],
      ["/usr/local/lib/pgharbor/backup-job.sh", "maintenance"],
    ]);
  });
  test("a failed run prints what it did and exits 1", async () => {
    const fake = new Fake(() => ({ ...json(runDoc(false, false)), code: 1 }));
    const r = await run(fake, ["maintenance", "now"]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^app: FAILED: permission denied$/m);
  });
});
