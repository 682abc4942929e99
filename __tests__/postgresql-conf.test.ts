import {
  checkParameterOverrides,
  deriveMemorySettings,
  formatValue,
  memoryValueToMiB,
  postgresParameters,
  renderPostgresqlConf,
  PostgresConfInput,
} from "../postgres-config/postgresql-conf";
import { isKnownParameter, parameterInfo, parameterNames } from "../postgres-config/parameter-catalogue";
import { canonicalParameters, checkParameterValue } from "../postgres-config/parameter-policy";
import { PG17_SETTINGS } from "../postgres-config/catalogue/pg17";

const base: PostgresConfInput = {
  major: 17,
  role: "primary",
  maxConnections: 100,
  memory: deriveMemorySettings(1024, 100),
  replicaCount: 2,
  archiveTimeoutSeconds: 50,
  maxSlotWalKeepSizeMiB: 4096,
  stanza: "pgharbor",
  tlsMinVersion: "TLSv1.3",
  logMinDurationStatementMs: 1000,
  autoExplainMinDurationMs: 1000,
};

const conf = (p: Partial<PostgresConfInput> = {}) => new Map(postgresParameters({ ...base, ...p }));

describe("memory derivation", () => {
  test.each([
    [512, 50, "128MB", "384MB", "64MB"],
    [1024, 100, "256MB", "768MB", "64MB"],
    [4096, 200, "1024MB", "3072MB", "204MB"],
    [65536, 300, "16384MB", "49152MB", "2048MB"],
  ])("%i MiB, %i connections", (mem, conns, shared, cache, maint) => {
    const m = deriveMemorySettings(mem, conns);
    expect(m.shared_buffers).toBe(shared);
    expect(m.effective_cache_size).toBe(cache);
    expect(m.maintenance_work_mem).toBe(maint);
    expect(memoryValueToMiB(m.work_mem, 1)).toBeGreaterThanOrEqual(1);
  });

  test("work_mem shrinks as connections grow", () => {
    const few = memoryValueToMiB(deriveMemorySettings(4096, 50).work_mem, 1)!;
    const many = memoryValueToMiB(deriveMemorySettings(4096, 500).work_mem, 1)!;
    expect(many).toBeLessThan(few);
  });

  test.each([
    ["128MB", 128],
    ["4GB", 4096],
    ["512kB", 0.5],
    [16384, 128],
    ["lots", undefined],
  ])("memoryValueToMiB(%p)", (v, mib) => expect(memoryValueToMiB(v as string)).toBe(mib));
});

describe("postgresql.conf", () => {
  test("replication settings: headroom of 10 (a new replica restarts nothing), then the replicas attached + 3", () => {
    expect(conf({ replicaCount: 0 }).get("max_wal_senders")).toBe(10);
    expect(conf({ replicaCount: 2 }).get("max_wal_senders")).toBe(10);
    expect(conf({ replicaCount: 7 }).get("max_replication_slots")).toBe(10);
    expect(conf({ replicaCount: 8 }).get("max_wal_senders")).toBe(11);
    expect(conf({ replicaCount: 8 }).get("max_replication_slots")).toBe(11);
  });

  test("archiving through pgBackRest with the given timeout, slot WAL capped", () => {
    const c = conf();
    expect(c.get("archive_mode")).toBe("on");
    expect(c.get("archive_command")).toMatch(/^pgbackrest --config=\/etc\/pgbackrest\/pgbackrest.conf --stanza=pgharbor archive-push %p$/);
    expect(c.get("archive_timeout")).toBe(50);
    expect(c.get("max_slot_wal_keep_size")).toBe("4096MB");
  });

  test("replica gets primary_conninfo and its slot; primary does not", () => {
    expect(conf().has("primary_conninfo")).toBe(false);
    const r = conf({ role: "replica", primaryConninfo: "host=p user=replicator", primarySlotName: "pgharbor_r1" });
    expect(r.get("primary_conninfo")).toBe("host=p user=replicator");
    expect(r.get("primary_slot_name")).toBe("pgharbor_r1");
  });

  test("overrides win over derived values", () => {
    expect(conf({ parameters: { work_mem: "64MB", "pg_stat_statements.max": 10000 } }).get("work_mem")).toBe("64MB");
  });

  test("every emitted parameter exists in the target major", () => {
    for (const major of [15, 16, 17] as const) {
      for (const [name] of postgresParameters({ ...base, major, role: "replica", primaryConninfo: "x", primarySlotName: "y" })) {
        expect([major, name, isKnownParameter(major, name)]).toEqual([major, name, true]);
      }
    }
  });

  test("a parameter a major lacks is never emitted for it", () => {
    const params = { old_snapshot_threshold: -1, transaction_timeout: "0" };
    expect(conf({ major: 15, parameters: params }).has("transaction_timeout")).toBe(false);
    expect(conf({ major: 15, parameters: params }).has("old_snapshot_threshold")).toBe(true);
    expect(conf({ major: 17, parameters: params }).has("old_snapshot_threshold")).toBe(false);
    expect(conf({ major: 17, parameters: params }).has("transaction_timeout")).toBe(true);
  });

  test.each([
    [42, "42"],
    [true, "on"],
    ["it's", "'it''s'"],
    ["C:\\x", "'C:\\\\x'"],
  ])("formatValue(%p)", (v, out) => expect(formatValue(v)).toBe(out));

  test("renders one line per parameter", () => {
    const text = renderPostgresqlConf(base);
    expect(text).toMatch(/^# postgresql.conf rendered by pgharbor for a PostgreSQL 17 primary/);
    expect(text).toContain("shared_buffers = '256MB'\n");
    expect(text.split("\n").filter((l) => l && !l.startsWith("#")).every((l) => / = /.test(l))).toBe(true);
  });
});

describe("parameter overrides", () => {
  test.each([
    [17, "shared_bufers", /not a PostgreSQL 17 parameter/],
    [17, "old_snapshot_threshold", /does not exist in PostgreSQL 17 \(only in 15, 16\); remove it or change majorVersion/],
    [15, "transaction_timeout", /does not exist in PostgreSQL 15 \(only in 17\)/],
    [17, "archive_command", /managed by pgharbor/],
    [17, "max_slot_wal_keep_size", /maxSlotWalKeepSizeMiB.*; remove it from parameters/],
  ])("major %i refuses %s", (major, name, msg) => {
    const problems = checkParameterOverrides(major as 15 | 17, { [name]: "1" });
    expect(problems).toHaveLength(1);
    expect(`${problems[0].problem}; ${problems[0].fix}`).toMatch(msg);
  });

  test("extension parameters and real ones pass", () => {
    expect(checkParameterOverrides(17, { "pg_stat_statements.track": "all", random_page_cost: 1.5 })).toEqual([]);
  });
});

describe("parameter catalogue (17 generated from pg_settings; 15 and 16 synth-only)", () => {
  test("17 is the server's list: real parameters the old list missed are there, case-insensitively", () => {
    for (const name of ["application_name", "TimeZone", "timezone", "TIMEZONE", "config_file", "transaction_isolation", "restrict_nonsystem_relation_kind"]) expect([name, parameterInfo(17, name)?.vartype]).toEqual([name, expect.any(String)]);
    expect(parameterInfo(17, "timezone")!.name).toBe("TimeZone");
    expect(PG17_SETTINGS.length).toBeGreaterThan(350);
  });
  test("every name 15 and 16 list is described (borrowed from 17 or by hand)", () => {
    for (const major of [15, 16] as const) for (const name of parameterNames(major)) expect(parameterInfo(major, name)).toBeDefined();
  });
  test.each([
    ["integer with unit", "work_mem", "16MB", "16384"],
    ["time with unit", "statement_timeout", "2min", "120000"],
    ["bool word", "fsync", "OFF", "off"],
    ["bool prefix", "fsync", "fa", "off"],
    ["enum, any case", "wal_compression", "ZSTD", "zstd"],
    ["enum with on/off", "huge_pages", true, "on"],
    ["real", "random_page_cost", 1.1, "1.1"],
  ])("checkParameterValue: %s", (_n, name, value, normalized) => expect(checkParameterValue(parameterInfo(17, name), value)).toEqual({ normalized }));
  test("overrides replace pgharbor's line whatever their case, and render with the server's spelling", () => {
    const c = renderPostgresqlConf({ ...base, parameters: canonicalParameters(17, { WORK_MEM: "8MB", timezone: "UTC" }) });
    expect(c.match(/^work_mem = /gim)).toHaveLength(1);
    expect(c).toMatch(/^work_mem = '8MB'$/m);
    expect(c).toMatch(/^TimeZone = 'UTC'$/m);
  });
  test("the renderer refuses a control character even if validation were bypassed", () => {
    expect(() => formatValue("a\nb")).toThrow(/control character/);
  });
  test("no statement text in the log: pgharbor's own logging settings", () => {
    const c = conf();
    expect([c.get("log_statement"), c.get("log_min_error_statement"), c.get("log_min_duration_statement"), c.get("pg_stat_statements.track_utility")]).toEqual(["none", "panic", 1000, "off"]);
  });
});
