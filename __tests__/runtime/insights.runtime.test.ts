/**
 * Query insights and routine maintenance on the Docker engine, with a workload that makes them mean
 * something: pgbench, and a purpose-built `orders` table queried by customer without an index.
 * `queries` must list that statement first, `indexes` must propose the missing index with a
 * hypothetical-index cost drop (and, once the test applies the proposed statement, the statement's
 * measured mean time must drop by at least half), an index never used must be reported unused,
 * `health` must report a long transaction and a blocking lock opened on purpose (exit code
 * reflecting it), and the maintenance job must record what it analysed and vacuumed.
 */
import { Client } from "pg";
import { describeEngine } from "./engine";
import { appQuery, cli, deployStack, run, RuntimeStack, sql, teardown, verifiedUrl, waitFor } from "./scenario";
import { dev, variant } from "../helpers";
import { CONTAINER_PATHS as P } from "../../postgres-config/paths";
import { EXPORTER_PORTS } from "../../constructs/monitoring";

jest.setTimeout(900_000);

describeEngine("runtime: query insights and maintenance", () => {
  let s: RuntimeStack;
  let pgharbor: ReturnType<typeof cli>;
  const rw = () => verifiedUrl(s, "DATABASE_URL");
  const byCustomer = "SELECT count(*) AS n, max(id) AS last FROM orders WHERE customer_id = $1";
  /** The slow statement `calls` times with varying customers; the client-side mean, ms. */
  const runByCustomer = async (calls: number): Promise<number> => {
    const c = new Client({ connectionString: rw() });
    await c.connect();
    try {
      const start = process.hrtime.bigint();
      for (let i = 0; i < calls; i++) await c.query(byCustomer, [(i * 37) % 5000]);
      return Number(process.hrtime.bigint() - start) / 1e6 / calls;
    } finally {
      await c.end();
    }
  };
  let queryid = "";
  let meanBefore = 0;

  beforeAll(async () => {
    s = await deployStack(
      variant(dev, {
        name: "rtinsight",
        replicas: 0,
        // Plans of statements over 20 ms reach the log, so the test's slow statement leaves one.
        primary: { ...dev.primary, autoExplainMinDurationMs: 20 },
        pgbouncer: { ...dev.pgbouncer, port: 16434 },
        backup: { initialFullBackup: false, drill: false },
        monitoring: { prometheus: false },
      }),
    );
    pgharbor = cli(s, true);
    // Roles and the application database exist once the backup container has reconciled them.
    await s.d.waitHealthy([s.name("primary"), s.name("pgbouncer"), s.name("backup")], 600_000);
    await appQuery(rw(), "CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL, status text NOT NULL, note text, created_at timestamptz NOT NULL DEFAULT now())");
    await appQuery(rw(), "INSERT INTO orders (customer_id, status, note) SELECT g % 5000, (ARRAY['new','paid','shipped'])[1 + g % 3], md5(g::text) FROM generate_series(1, 600000) g");
    await appQuery(rw(), "CREATE INDEX orders_note_idx ON orders (note)");
    await appQuery(rw(), "ANALYZE orders");
    // A table autovacuum leaves alone: the maintenance job's work.
    await appQuery(rw(), "CREATE TABLE stale (id int PRIMARY KEY, payload text) WITH (autovacuum_enabled = false)");
    await appQuery(rw(), "INSERT INTO stale SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g");
    await appQuery(rw(), "DELETE FROM stale WHERE id % 2 = 0");
    // pgbench as the application, inside the primary's container over TLS.
    const password = (await run(s, "backup", ["printenv", "PGHARBOR_APP_PASSWORD"])).trim();
    await s.d.exec(s.name("primary"), ["sh", "-c", `PGPASSWORD="$0" PGSSLMODE=require pgbench -h 127.0.0.1 -U app -i -s 2 -q app`, password], { user: "postgres", timeoutMs: 300_000 });
    expect(await pgharbor("queries", "--reset")).toEqual(expect.objectContaining({ code: 0, out: expect.stringMatching(/^pg_stat_statements reset at /) }));
    const r = await s.d.exec(s.name("primary"), ["sh", "-c", `PGPASSWORD="$0" PGSSLMODE=require pgbench -h 127.0.0.1 -U app -c 2 -t 300 -n app`, password], { user: "postgres", timeoutMs: 300_000 });
    expect(r.code).toBe(0);
    meanBefore = await runByCustomer(30);
    // A statement calling an application function the planner folds: `indexes` must plan it as the
    // application's role, never as the superuser (the function raises when it is not the app).
    await appQuery(rw(), "CREATE FUNCTION app_floor() RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$BEGIN IF current_user <> 'app' THEN RAISE EXCEPTION 'planned as %', current_user; END IF; RETURN 0; END$$");
    for (let i = 0; i < 5; i++) await appQuery(rw(), "SELECT count(*) FROM orders WHERE status = $1 AND customer_id > app_floor()", ["paid"]);
  });

  afterAll(async () => {
    await teardown(s);
  });

  test("queries: the statement without a supporting index is first by total time, with its share and I/O", async () => {
    const top = await pgharbor("queries", "--by", "total", "--limit", "5", "--json");
    expect(top.code).toBe(0);
    const doc = JSON.parse(top.out);
    expect(doc.statements[0]).toEqual(expect.objectContaining({ query: "SELECT count(*) AS n, max(id) AS last FROM orders WHERE customer_id = $1", calls: 30, role: "app", database: "app" }));
    expect(doc.statements[0].share).toBeGreaterThan(0.3);
    queryid = doc.statements[0].queryid;
    expect(doc.statements.some((x: { query: string }) => /pgbench_accounts/.test(x.query))).toBe(true);
    const text = await pgharbor("queries", "--by", "mean", "--limit", "3");
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/^top 3 statements by mean time \(statistics since .*; pgharbor's own roles left out\)\n#\s+queryid/);
    expect(text.out).toContain(queryid);
    console.log(`pgharbor queries --by mean --limit 3:\n${text.out}`);
  });

  test("queries explain: the plan auto_explain logged for it, with row counts and buffers", async () => {
    const r = await pgharbor("queries", "explain", queryid);
    expect(r).toEqual(expect.objectContaining({ code: 0 }));
    expect(r.out).toMatch(new RegExp(`^plan of queryid ${queryid}, captured `));
    expect(r.out).toMatch(/Seq Scan on public\.orders/);
    expect(r.out).toMatch(/Buffers: shared/);
    expect(r.out).toMatch(/actual rows=\d+ loops=\d+/);
    expect(await pgharbor("queries", "explain", "12345")).toEqual(expect.objectContaining({ code: 1, out: expect.stringMatching(/^no plan captured for queryid 12345/) }));
  });

  test("indexes: the missing index proposed, checked with a hypothetical one; the unused index reported; applying the advice halves the mean time", async () => {
    const r = await pgharbor("indexes", "--json");
    expect(r.code).toBe(0);
    const advice = JSON.parse(r.out);
    expect(advice.unused.map((u: { index: string }) => u.index)).toContain("public.orders_note_idx");
    const orders = advice.seqScanTables.find((t: { table: string }) => t.table === "public.orders");
    expect(orders).toBeDefined();
    const candidate = orders.candidates.find((c: { queryid: string }) => c.queryid === queryid);
    const folded = orders.candidates.find((c: { query?: string; error?: string }) => /app_floor/.test(c.query ?? "") || /planned as/.test(c.error ?? ""));
    expect(folded).toEqual(expect.objectContaining({ columns: ["status", "customer_id"] }));
    expect(folded.error).toBeUndefined();
    expect(candidate).toEqual(expect.objectContaining({ columns: ["customer_id"], usesIndex: true, recommended: true, create: "CREATE INDEX CONCURRENTLY ON public.orders (customer_id);" }));
    expect(candidate.costAfter).toBeLessThan(candidate.costBefore / 2);
    // Advice only: no index was created, and hypopg is not left installed.
    expect(await sql(s, "primary", "SELECT count(*) FROM pg_indexes WHERE tablename = 'orders'", "app")).toBe("2");
    expect(await sql(s, "primary", "SELECT count(*) FROM pg_extension WHERE extname = 'hypopg'", "app")).toBe("0");
    const text = await pgharbor("indexes");
    expect(text.out).toMatch(/\(customer_id\) for queryid \S+ \(30 calls, mean [\d.]+ ms\): estimated cost [\d.]+ -> [\d.]+ \(-[\d.]+%\) with a hypothetical index: RECOMMENDED/);
    console.log(`pgharbor indexes:\n${text.out}`);

    await appQuery(rw(), candidate.create);
    const meanAfter = await runByCustomer(30);
    console.log(`index advice: mean time of the statement ${meanBefore.toFixed(2)} ms before, ${meanAfter.toFixed(2)} ms after ${candidate.create} (estimated cost ${candidate.costBefore} -> ${candidate.costAfter})`);
    expect(meanAfter).toBeLessThan(meanBefore / 2);
  });

  test("health: a long idle transaction and a blocking lock are reported, and the exit code says so", async () => {
    const before = await pgharbor("health", "--json");
    expect([before.code, before.err]).toEqual([expect.any(Number), ""]);
    expect(JSON.parse(before.out).checks.find((c: { check: string }) => c.check === "blocking-locks").status).toBe("ok");
    const holder = new Client({ connectionString: rw() });
    const blocked = new Client({ connectionString: rw() });
    await holder.connect();
    await blocked.connect();
    try {
      await holder.query("BEGIN");
      await holder.query("UPDATE orders SET status = 'held' WHERE id = 1");
      const waiting = blocked.query("UPDATE orders SET status = 'waiting' WHERE id = 1").catch(() => undefined);
      await waitFor("the second UPDATE waits for the first", async () => (await sql(s, "primary", "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")) === "1", 30_000, 250);
      // Past the warning thresholds for idle-in-transaction and lock waits.
      await new Promise((r) => setTimeout(r, 35_000));
      const r = await pgharbor("health", "--json");
      const doc = JSON.parse(r.out);
      const bad = doc.checks.filter((c: { status: string }) => c.status !== "ok").map((c: { check: string }) => c.check);
      console.log(`pgharbor health with a held lock: exit ${r.code}, not ok: ${bad.join(", ")}`);
      expect(r.code).toBeGreaterThanOrEqual(1);
      expect(bad).toEqual(expect.arrayContaining([expect.stringMatching(/block|lock/), expect.stringMatching(/idle/)]));
      const text = await pgharbor("health");
      expect(text.code).toBe(r.code);
      console.log(`pgharbor health:\n${text.out}`);
      await holder.query("ROLLBACK");
      await waiting;
    } finally {
      await holder.end().catch(() => undefined);
      await blocked.end().catch(() => undefined);
    }
  });

  test("maintenance: the job vacuums and analyses the table autovacuum left alone, and records it", async () => {
    const plan = await pgharbor("maintenance", "now", "--dry-run");
    expect(plan.code).toBe(0);
    expect(plan.out).toMatch(/^app: would vacuum public\.stale \(.*\d+ dead rows/m);
    console.log(`pgharbor maintenance now --dry-run:\n${plan.out}`);
    const r = await pgharbor("maintenance", "now");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^app: vacuum public\.stale /m);
    expect(r.out).toMatch(/^done: [1-9]\d* tables vacuumed, [1-9]\d* analysed/m);
    expect(await sql(s, "primary", "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'stale'", "app")).toBe("0");
    expect(await sql(s, "primary", "SELECT ok, vacuumed >= 1, details::text LIKE '%public.stale%' FROM pgharbor.maintenance_runs ORDER BY id DESC LIMIT 1", "app")).toBe("t|t|t");
    const status = await pgharbor("maintenance", "status");
    expect(status.out).toMatch(/^app: vacuum public\.stale /m);
    const jobs = await pgharbor("status");
    expect(jobs.out).toMatch(/^maintenance +ok /m);
    // The exporter publishes the run, the top statements (by queryid, never by text), wraparound age, dead rows.
    const metrics = await run(s, "exporter-primary", ["python3", "-c", "import sys,urllib.request;print(urllib.request.urlopen(sys.argv[1],timeout=10).read().decode())", `http://127.0.0.1:${EXPORTER_PORTS.postgres}/metrics`]);
    expect(metrics).toMatch(/^pgharbor_maintenance_last_vacuumed_tables(\{[^}]*\})? [1-9]/m);
    expect(metrics).toMatch(/^pgharbor_maintenance_last_ok(\{[^}]*\})? 1$/m);
    expect(metrics).toMatch(/^pgharbor_maintenance_last_run_timestamp_seconds(\{[^}]*\})? 1\.[0-9.]+e\+09$/m);
    expect(metrics).toMatch(new RegExp(`^pgharbor_statements_calls_total\\{[^}]*queryid="${queryid}"[^}]*\\} [1-9]`, "m"));
    expect(metrics).not.toMatch(/^pgharbor_statements_[a-z_]+\{[^}]*SELECT/m);
    expect(metrics).toMatch(/^pg_database_wraparound_age_datfrozenxid_seconds\{[^}]*datname="app"[^}]*\} \d/m);
    expect(metrics).toMatch(/^pgharbor_tuples_dead(\{[^}]*\})? \d/m);
    expect(metrics).toMatch(/^pg_long_running_transactions_oldest_timestamp_seconds(\{[^}]*\})? /m);
    // The job is in the crontab, weekly by default.
    expect(await run(s, "backup", ["cat", P.crontab])).toMatch(/^0 5 \* \* 0 root \/usr\/local\/lib\/pgharbor\/backup-job\.sh maintenance /m);
  });
});
