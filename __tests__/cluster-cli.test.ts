/**
 * `pgharbor cluster …` with a fake Executor answering with real patronictl 4.0.7 output
 * (__tests__/fixtures/patroni-4.0.7, captured from the issue-14 prototype, renamed to pgharbor's
 * members). prod is used: it has the three members the prototype had (primary, replica-1, replica-2).
 */
import { readFileSync } from "fs";
import { join } from "path";
import { main } from "../cli/main";
import { clusterEnvironment, clusterStatus, parsePatroniList, planSwitchover, reinit, planReinit, switchover } from "../cli/cluster";
import { ExecOptions, ExecResult, Executor } from "../cli/operations";
import { EnvironmentConfig, ENVIRONMENTS, prod } from "../stacks/environments";

/** The project's environments with failover on (none has it yet; the CLI only reads names and replicas). */
const WITH_FAILOVER = ENVIRONMENTS.map((e) => ({ ...e, failover: { mode: "sync" as const } }));

const FIXTURES = join(__dirname, "fixtures", "patroni-4.0.7");
const rename = (s: string) => s.replace(/ha14-pg1/g, "primary").replace(/ha14-pg2/g, "replica-1").replace(/ha14-pg3/g, "replica-2").replace(/\bha14\b/g, "pgharbor-prod").replace(/\/etc\/pgharbor-prod\//g, "/etc/pgharbor/");
/** A captured patronictl run, as the executor returns it. */
const fx = (name: string): ExecResult => ({
  code: Number(readFileSync(join(FIXTURES, `${name}.rc`), "utf8").trim()),
  stdout: rename(readFileSync(join(FIXTURES, `${name}.out`), "utf8")),
  stderr: rename(readFileSync(join(FIXTURES, `${name}.err`), "utf8")),
});

const CTL = ["patronictl", "-c", "/etc/pgharbor/patroni.yml"];
type Call = { role: string; argv: string[]; timeoutMs?: number };

/** Answers by (member, patronictl subcommand); a queue of answers is consumed one per call, the last one repeating. */
class Fake implements Executor {
  calls: Call[] = [];
  constructor(private readonly answers: Record<string, ExecResult | ExecResult[]>) {}
  async exec(role: string, argv: string[], o?: ExecOptions): Promise<ExecResult> {
    this.calls.push({ role, argv, timeoutMs: o?.timeoutMs });
    expect(argv.slice(0, 3)).toEqual(CTL);
    const sub = argv[3];
    const a = this.answers[`${role} ${sub}`] ?? this.answers[role] ?? this.answers[`* ${sub}`];
    if (!a) throw new Error(`unexpected call ${role} ${argv.join(" ")}`);
    if (!Array.isArray(a)) return a;
    return a.length > 1 ? a.shift()! : a[0];
  }
  sub(name: string) {
    return this.calls.filter((c) => c.argv[3] === name);
  }
}

async function run(fake: Executor, argv: string[], answer = true, env = "prod", environments: readonly EnvironmentConfig[] = WITH_FAILOVER) {
  let out = "";
  let err = "";
  const questions: string[] = [];
  const code = await main(
    [...argv, "--env", env],
    () => fake,
    (t) => (out += t),
    (t) => (err += t),
    async (q) => {
      questions.push(q);
      return answer;
    },
    environments,
  );
  return { code, out, err, questions };
}

test("an environment without failover has no cluster: said plainly, nothing run", async () => {
  const fake = healthy();
  const r = await run(fake, ["cluster", "status"], true, "dev", ENVIRONMENTS);
  expect(r).toEqual(expect.objectContaining({ code: 1, err: "pgharbor: --env dev has no failover: its PostgreSQL does not run under Patroni (set failover in stacks/environments.ts to have a cluster)\n" }));
  expect(fake.calls).toEqual([]);
});

const healthy = () => new Fake({ "* list": fx("list"), "* show-config": fx("show-config") });
const ENV = clusterEnvironment(prod);

describe("the captured output is what the parser expects", () => {
  test("patronictl list -f json: leader without lag, stopped member without TL and lag unknown", () => {
    expect(parsePatroniList(fx("list").stdout).map((m) => [m.Member, m.Role, m.State, m.TL, m["Lag in MB"]])).toEqual([
      ["primary", "Leader", "running", 1, undefined],
      ["replica-1", "Replica", "streaming", 1, 0],
      ["replica-2", "Replica", "streaming", 1, 0],
    ]);
    expect(parsePatroniList(fx("list-after-switchover-stopped").stdout)[0]).toMatchObject({ Member: "primary", Role: "Replica", State: "stopped", "Lag in MB": "unknown" });
    expect(parsePatroniList(fx("list-after-switchover-stopped").stdout)[0].TL).toBeUndefined();
  });
  test("output that is not Patroni's list is an error, not an empty cluster", () => {
    expect(() => parsePatroniList("Error: 'Can not find suitable configuration of distributed configuration store'")).toThrow(/printed no JSON/);
    expect(() => parsePatroniList('{"Member": "primary"}')).toThrow(/unexpected document/);
  });
});

describe("cluster status", () => {
  test("normal: one patronictl list and show-config in primary, a table, exit 0", async () => {
    const fake = healthy();
    const r = await run(fake, ["cluster", "status"]);
    expect(r.code).toBe(0);
    expect(fake.calls).toEqual([
      { role: "primary", argv: [...CTL, "list", "-f", "json"], timeoutMs: 20_000 },
      { role: "primary", argv: [...CTL, "show-config"], timeoutMs: 20_000 },
    ]);
    expect(r.out).toBe(
      [
        "cluster pgharbor-prod: leader primary, asynchronous replication (read through primary)",
        "member     role     state      TL  lag MB  pending restart  tags",
        "primary    leader   running     1       -  no               failover_priority=2",
        "replica-1  replica  streaming   1       0  no               failover_priority=1",
        "replica-2  replica  streaming   1       0  no               failover_priority=1",
        "",
      ].join("\n"),
    );
    expect(r.err).toBe("");
  });

  test("--json: every member with its real role, state, timeline, lag; the mode", async () => {
    const r = await run(healthy(), ["cluster", "status", "--json"]);
    const doc = JSON.parse(r.out);
    expect(doc).toMatchObject({ environment: "prod", cluster: "pgharbor-prod", via: "primary", leader: "primary", mode: { synchronous: false, synchronousStrict: false, paused: false }, unreachable: [], problems: [] });
    expect(doc.members[0]).toEqual({ member: "primary", role: "leader", state: "running", timeline: 1, lagMB: null, lagUnknown: false, pendingRestart: false, pendingRestartReason: null, scheduledRestart: null, tags: { failover_priority: 2 } });
    expect(doc.members[1]).toMatchObject({ member: "replica-1", role: "replica", state: "streaming", lagMB: 0 });
  });

  test("synchronous mode: the sync standby's role and the mode from show-config", async () => {
    const r = await run(new Fake({ "* list": fx("list-sync"), "* show-config": fx("show-config-sync") }), ["cluster", "status"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^cluster pgharbor-prod: leader primary, synchronous replication \(read through primary\)$/m);
    expect(r.out).toMatch(/^replica-2 +sync standby +streaming +1 +0 +no/m);
  });

  test("a stopped member after a switchover: the member named primary is shown as the replica it is", async () => {
    const r = await run(new Fake({ "* list": fx("list-after-switchover-stopped"), "* show-config": fx("show-config-sync") }), ["cluster", "status", "--json"]);
    const doc = JSON.parse(r.out);
    expect(r.code).toBe(0);
    expect(doc.leader).toBe("replica-2");
    expect(doc.members[0]).toMatchObject({ member: "primary", role: "replica", state: "stopped", timeline: null, lagMB: null, lagUnknown: true });
    expect(doc.problems).toContain("primary is stopped");
    const text = await run(new Fake({ "* list": fx("list-after-switchover-stopped"), "* show-config": fx("show-config-sync") }), ["cluster", "status"]);
    expect(text.out).toMatch(/^primary +replica +stopped +- +unknown +no/m);
    expect(text.out).toContain("note: the member named primary is a replica now (after a failover or switchover); `pgharbor cluster switchover --to primary --env prod` makes it the leader again");
  });

  test("pending restart: flagged with Patroni's reason, and how to apply it", async () => {
    const r = await run(new Fake({ "* list": fx("list-pending"), "* show-config": fx("show-config") }), ["cluster", "status"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^primary +leader +running +1 +- +yes: max_connections: 100->110 +failover_priority=2$/m);
    expect(r.out).toMatch(/^replica-1 .* yes: max_connections: 100->110 /m);
    expect(r.out).toContain("pending restarts: `pgharbor cluster restart <member> --pending --env prod` (replicas first, the leader last)");
    expect(JSON.parse((await run(new Fake({ "* list": fx("list-pending"), "* show-config": fx("show-config") }), ["cluster", "status", "--json"])).out).members[2]).toMatchObject({ pendingRestart: true, pendingRestartReason: "max_connections: 100->110" });
  });

  test("no leader (maintenance mode, leader's key expired): NO LEADER, the absent member named, exit 2", async () => {
    const fake = new Fake({ primary: fx("exec-container-not-running"), "* list": fx("list-no-leader"), "* show-config": fx("show-config-paused") });
    const r = await run(fake, ["cluster", "status"]);
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/^cluster pgharbor-prod: NO LEADER, asynchronous replication, MAINTENANCE MODE \(no automatic failover\) \(read through replica-1\)$/m);
    expect(r.out).toMatch(/^primary +absent +absent \(container unreachable\) +- +- +- +-$/m);
    expect(r.out).toMatch(/^replica-1 +replica +running +6 +0 +no/m);
    expect(r.out).toContain("container down: primary: Error response from daemon: Container d0e03b26bc4dafad78846da422bab353aad84101c4593e92feb23f3a47963d90 is not running");
    expect(r.out).toContain("problem: primary is not in the DCS: Patroni is not running in pgharbor-prod-primary (or has not registered yet)");
    expect(r.out).toContain("problem: no leader");
    expect(r.out).toContain("problem: maintenance mode is on (`patronictl pause`): Patroni will not fail over");
  });

  test("a killed leader the DCS still lists as running is not counted as the leader: exit 2", async () => {
    // 1 s after `docker kill` of the leader: patronictl still says Leader/running (its key lives until the ttl).
    const fake = new Fake({ primary: fx("exec-container-not-running"), "* list": fx("list-leader-killed-stale"), "* show-config": fx("show-config") });
    const r = await run(fake, ["cluster", "status", "--json"]);
    expect(r.code).toBe(2);
    const doc = JSON.parse(r.out);
    expect(doc.leader).toBeNull();
    expect(doc.members[0]).toMatchObject({ member: "primary", role: "leader", state: "running", unreachable: expect.stringMatching(/is not running$/) });
    expect(doc.problems).toContain("no running leader (primary running, container unreachable)");
  });

  test("patronictl failing on the first member, answering on the second: status from the second, the first reported", async () => {
    // primary: the DCS unreachable from it (patronictl killed by the timeout); replica-1 answers.
    const fake = new Fake({ "primary list": fx("list-dcs-unreachable"), "replica-1 list": fx("list"), "replica-1 show-config": fx("show-config") });
    const r = await run(fake, ["cluster", "status", "--json"]);
    expect(r.code).toBe(0);
    expect(fake.calls.map((c) => `${c.role} ${c.argv[3]}`)).toEqual(["primary list", "replica-1 list", "replica-1 show-config"]);
    const doc = JSON.parse(r.out);
    expect(doc.via).toBe("replica-1");
    expect(doc.leader).toBe("primary");
    expect(doc.unreachable).toEqual([{ member: "primary", error: expect.stringMatching(/^2026-11-22 18:47:31,971 - ERROR - Failed to get list of machines/), containerDown: false }]);
    expect(doc.members[0].unreachable).toBeUndefined(); // its container runs: what the DCS says about it stands
  });

  test("a member killed long enough ago is absent; the killed leader still listed is unreachable: exit 2", async () => {
    const fake = new Fake({ primary: fx("exec-container-not-running"), "replica-1": fx("exec-no-such-container"), "* list": fx("list-member-absent"), "* show-config": fx("show-config") });
    const doc = JSON.parse((await run(fake, ["cluster", "status", "--json"])).out);
    expect(doc.via).toBe("replica-2");
    expect(doc.unreachable.map((u: { member: string }) => u.member)).toEqual(["primary", "replica-1"]);
    expect(doc.members.map((m: { member: string; role: string; state: string }) => `${m.member} ${m.role}/${m.state}`)).toEqual(["primary leader/running", "replica-1 absent/absent", "replica-2 replica/running"]);
    expect(doc.leader).toBeNull();
  });

  test("no member answers: one line naming each, exit 1", async () => {
    const fake = new Fake({ primary: fx("exec-container-not-running"), "replica-1": fx("exec-no-such-container"), "replica-2": fx("list-dcs-unreachable") });
    const r = await run(fake, ["cluster", "status"]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^pgharbor: no member of prod could run patronictl: primary: Error response from daemon: Container \w+ is not running; replica-1: Error response from daemon: No such container: pgharbor-prod-nosuch; replica-2: .*ERROR - Failed to get list of machines/);
  });
});

describe("member names are checked against the environment before anything runs", () => {
  test.each([
    [["cluster", "reinit", "replica-3"], "prod", "<member>", "replica-3", "primary, replica-1, replica-2"],
    [["cluster", "restart", "replica-2"], "dev", "<member>", "replica-2", "primary, replica-1"],
    [["cluster", "switchover", "--to", "pgharbor-prod-replica-1"], "prod", "--to", "pgharbor-prod-replica-1", "primary, replica-1, replica-2"],
    [["cluster", "failover", "--to", "replica-1; rm -rf /"], "prod", "--to", "replica-1; rm -rf /", "primary, replica-1, replica-2"],
  ])("%j --env %s", async (argv, env, field, value, members) => {
    const fake = healthy();
    const r = await run(fake, argv, true, env);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`pgharbor: [${env}] ${field} = ${JSON.stringify(value)}: is not a PostgreSQL member of ${env} (its members: ${members}; replicas come from \`replicas\` in stacks/environments.ts). Fix: give one of ${members}.\n`);
    expect(fake.calls).toEqual([]);
  });
  test("failover needs --to", async () => {
    const r = await run(healthy(), ["cluster", "failover", "--yes"]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/required option '--to <member>' not specified/);
  });
});

describe("cluster switchover", () => {
  test("asks, runs patronictl switchover --leader <current> --candidate <to> --force, waits for the new leader", async () => {
    const fake = new Fake({ "* list": [fx("list-sync"), fx("list-after-switchover-stopped")], "* show-config": fx("show-config-sync"), "primary switchover": fx("switchover") });
    const r = await run(fake, ["cluster", "switchover", "--to", "replica-2"]);
    expect(r.code).toBe(0);
    expect(r.questions).toEqual(["switch over pgharbor-prod from primary to replica-2? Writes stop for a few seconds; clients reconnect?"]);
    expect(fake.sub("switchover")).toEqual([{ role: "primary", argv: [...CTL, "switchover", "--leader", "primary", "--candidate", "replica-2", "--force"], timeoutMs: 120_000 }]);
    expect(r.out).toMatch(/^switched over: primary -> replica-2 in \d+\.\d s \(timeline 1\); the old leader rejoins as a replica when it can/);
    expect(r.err).toContain("  primary replica/stopped, replica-1 replica/running, replica-2 leader/running\n");
  });
  test("declined: nothing runs", async () => {
    const fake = new Fake({ "* list": fx("list"), "* show-config": fx("show-config") });
    const r = await run(fake, ["cluster", "switchover"], false);
    expect(r.code).toBe(1);
    expect(r.questions[0]).toMatch(/^switch over pgharbor-prod from primary to the healthiest replica\?/);
    expect(r.err).toBe("pgharbor: switchover cancelled; nothing changed\n");
    expect(fake.sub("switchover")).toEqual([]);
  });
  test("without --candidate: --leader only; the new leader is whoever Patroni picked, timed with the clock", async () => {
    let t = 1_000_000;
    const sleeps: number[] = [];
    const fake = new Fake({ "* list": [fx("list-sync"), fx("list-sync"), fx("list-after-switchover-stopped")], "* show-config": fx("show-config-sync"), "primary switchover": fx("switchover") });
    const plan = await planSwitchover(fake, ENV, undefined);
    const r = await switchover(fake, ENV, plan, { now: () => (t += 700), sleep: async (ms) => void sleeps.push(ms) });
    expect(fake.sub("switchover")[0].argv).toEqual([...CTL, "switchover", "--leader", "primary", "--force"]);
    expect(r).toMatchObject({ from: "primary", to: "replica-2", timeline: 1 });
    expect(r.seconds).toBeCloseTo(2.1); // start, two polls, the answer: 3 × 0.7 s after the start
    expect(sleeps).toEqual([1000]);
  });
  test("synchronous mode, a candidate that is not the sync standby: refused before Patroni is asked", async () => {
    const fake = new Fake({ "* list": fx("list-sync"), "* show-config": fx("show-config-sync") });
    const r = await run(fake, ["cluster", "switchover", "--to", "replica-1", "--yes"]);
    expect(r.code).toBe(1);
    expect(r.err).toBe("pgharbor: --to replica-1: in synchronous mode only a sync standby can take over without losing acknowledged commits (now: replica-2); Patroni would refuse\n");
    expect(fake.sub("switchover")).toEqual([]);
  });
  test("Patroni refusing with exit 0 (\"Switchover failed, details: 412 …\") is an error, not a success", async () => {
    // The mode changed between the check and the call: show-config said asynchronous, the leader says 412.
    const fake = new Fake({ "* list": fx("list-sync"), "* show-config": fx("show-config"), "primary switchover": fx("switchover-not-sync-standby") });
    const r = await run(fake, ["cluster", "switchover", "--to", "replica-1", "--yes"]);
    expect(fx("switchover-not-sync-standby").code).toBe(0);
    expect(r.code).toBe(1);
    expect(r.err).toBe("switching over pgharbor-prod…\npgharbor: Patroni refused the switchover: 412, candidate name does not match with sync_standby; nothing changed\n");
    expect(fake.sub("list")).toHaveLength(1); // no waiting for a leader that will not change
  });
  test("Patroni's own error line is relayed (exit 1)", async () => {
    const fake = new Fake({ "* list": fx("list"), "* show-config": fx("show-config"), "primary switchover": fx("switchover-wrong-leader") });
    const r = await run(fake, ["cluster", "switchover", "--to", "replica-1", "--yes"]);
    expect(r.code).toBe(1);
    expect(r.err).toBe("switching over pgharbor-prod…\npgharbor: patronictl switchover failed (exit 1, run in primary): Error: Member replica-2 is not the leader of cluster pgharbor-prod\n");
  });
  test("no leader: refused, pointing to failover", async () => {
    const fake = new Fake({ primary: fx("exec-container-not-running"), "* list": fx("list-no-leader"), "* show-config": fx("show-config-paused") });
    const r = await run(fake, ["cluster", "switchover", "--yes"]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^pgharbor: pgharbor-prod has no running leader: nothing to switch over from \(.*no leader.*\); `pgharbor cluster failover --to <member> --env prod` promotes one\n$/);
  });
  test("--to the current leader", async () => {
    const r = await run(healthy(), ["cluster", "switchover", "--to", "primary", "--yes"]);
    expect(r.err).toBe("pgharbor: --to primary: primary is already the leader of pgharbor-prod\n");
  });
});

describe("cluster failover", () => {
  test("no leader: asks (commits may be lost), runs failover --candidate --force, waits until the candidate leads", async () => {
    const fake = new Fake({ primary: fx("exec-container-not-running"), "replica-1 list": [fx("list-no-leader"), fx("list-after-failover")], "* show-config": fx("show-config-paused"), "replica-1 failover": fx("failover") });
    const r = await run(fake, ["cluster", "failover", "--to", "replica-1"]);
    expect(r.code).toBe(0);
    expect(r.questions).toEqual(["fail over pgharbor-prod to replica-1 (replica, running, 0 MB behind)? It is promoted without the old leader: commits it has not received are lost, and the old leader rejoins as a replica (rewound)"]);
    expect(fake.sub("failover")).toEqual([{ role: "replica-1", argv: [...CTL, "failover", "--candidate", "replica-1", "--force"], timeoutMs: 120_000 }]);
    expect(r.out).toMatch(/^failed over: \(no leader\) -> replica-1 in \d+\.\d s \(timeline 7\)/);
  });
  test("a running leader: refused, pointing to switchover", async () => {
    const fake = healthy();
    const r = await run(fake, ["cluster", "failover", "--to", "replica-1", "--yes"]);
    expect(r.code).toBe(1);
    expect(r.err).toBe("pgharbor: pgharbor-prod has a running leader (primary): use `pgharbor cluster switchover --to replica-1 --env prod`, which hands over without losing acknowledged commits\n");
    expect(fake.sub("failover")).toEqual([]);
  });
  test("the leader's container is dead but its key not expired: allowed (Patroni falls back to the DCS, exit 0)", async () => {
    const fake = new Fake({ primary: fx("exec-container-not-running"), "replica-2 list": [fx("list-leader-killed-stale"), fx("list-after-switchover-stopped")], "* show-config": fx("show-config"), "replica-1 list": fx("exec-no-such-container"), "replica-2 failover": fx("failover-dcs-fallback") });
    const r = await run(fake, ["cluster", "failover", "--to", "replica-2", "--yes"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^failed over: primary -> replica-2 in /);
    expect(r.out + r.err).not.toContain("Traceback");
  });
});

describe("cluster reinit", () => {
  test("refuses the leader with a clear message; Patroni is not asked", async () => {
    const fake = healthy();
    const r = await run(fake, ["cluster", "reinit", "primary", "--yes"]);
    expect(r.code).toBe(1);
    expect(r.err).toBe("pgharbor: primary is the leader of pgharbor-prod: reinit would wipe the data every other member follows. Switch over first (`pgharbor cluster switchover --to replica-1 --env prod`), then reinit it as a replica\n");
    expect(fake.sub("reinit")).toEqual([]);
    expect(fx("reinit-leader").stderr).toBe("Error: No replica among provided members\n"); // what Patroni would have said
  });
  test("the leader is known by its role, not its name: after a switchover replica-2 is refused and primary may be reinitialised", async () => {
    const answers = () => ({ "* list": fx("list-after-switchover-2"), "* show-config": fx("show-config-sync"), "replica-1 reinit": fx("reinit") });
    const refused = await run(new Fake(answers()), ["cluster", "reinit", "replica-2", "--yes"]);
    expect(refused.err).toMatch(/^pgharbor: replica-2 is the leader of pgharbor-prod: reinit would wipe/);
    const fake = new Fake({ ...answers(), "primary reinit": fx("reinit") });
    const plan = await planReinit(fake, ENV, "primary");
    await reinit(fake, ENV, plan, { sleep: async () => undefined, waitMs: 0 }).catch(() => undefined);
    expect(fake.sub("reinit")).toEqual([{ role: "replica-1", argv: [...CTL, "reinit", "pgharbor-prod", "primary", "--force"], timeoutMs: 120_000 }]); // run from another member than the one wiped
  });
  test("the prompt says the data is deleted; reinit <cluster> <member> --force; waits until it streams", async () => {
    const fake = new Fake({ "* list": [fx("list"), fx("list-after-reinit")], "* show-config": fx("show-config"), "primary reinit": fx("reinit") });
    const r = await run(fake, ["cluster", "reinit", "replica-1"]);
    expect(r.code).toBe(0);
    expect(r.questions).toEqual(["reinit replica-1 of pgharbor-prod? This DELETES replica-1's data directory and re-creates it from the leader (primary) or the bucket; it serves no reads until it streams again"]);
    expect(fake.sub("reinit")[0].argv).toEqual([...CTL, "reinit", "pgharbor-prod", "replica-1", "--force"]);
    expect(r.out).toMatch(/^reinit done: replica-1 streams from primary again after \d+\.\d s\n$/);
  });
  test("waits through \"creating replica\" until the member streams on the leader's timeline", async () => {
    const sleeps: number[] = [];
    const fake = new Fake({ "* list": [fx("list-after-reinit"), fx("list-creating-replica"), fx("list-creating-replica"), fx("list-after-reinit")], "* show-config": fx("show-config"), "primary reinit": fx("reinit") });
    const plan = await planReinit(fake, ENV, "replica-1");
    const lines: string[] = [];
    await reinit(fake, ENV, plan, { sleep: async (ms) => void sleeps.push(ms), progress: (l) => lines.push(l) });
    expect(sleeps).toEqual([2000, 2000]);
    expect(lines).toEqual(["primary leader/running, replica-1 replica/creating replica, replica-2 replica/streaming", "primary leader/running, replica-1 replica/streaming, replica-2 replica/streaming"]);
  });
  test("declined: nothing runs", async () => {
    const fake = healthy();
    const r = await run(fake, ["cluster", "reinit", "replica-2"], false);
    expect(r.err).toBe("pgharbor: reinit cancelled; nothing changed\n");
    expect(fake.sub("reinit")).toEqual([]);
  });
});

describe("cluster restart", () => {
  test("--pending: restart <cluster> <member> --force --pending", async () => {
    const fake = new Fake({ "* list": fx("list-pending"), "* show-config": fx("show-config"), "primary restart": fx("restart-pending") });
    const r = await run(fake, ["cluster", "restart", "replica-1", "--pending"]);
    expect(r.code).toBe(0);
    expect(fake.sub("restart")[0].argv).toEqual([...CTL, "restart", "pgharbor-prod", "replica-1", "--force", "--pending"]);
    expect(r.out).toBe("restarted replica-1\n");
  });
  test("--pending with nothing pending: Patroni exits 0 and does nothing; said so", async () => {
    const fake = new Fake({ "* list": fx("list"), "* show-config": fx("show-config"), "primary restart": fx("restart-pending-nothing") });
    const r = await run(fake, ["cluster", "restart", "replica-1", "--pending"]);
    expect(r.code).toBe(0);
    expect(r.out).toBe("replica-1 had no pending restart: nothing done\n");
  });
  test("without --pending", async () => {
    const fake = new Fake({ "* list": fx("list"), "* show-config": fx("show-config"), "primary restart": fx("restart") });
    const r = await run(fake, ["cluster", "restart", "replica-2"]);
    expect(fake.sub("restart")[0].argv).toEqual([...CTL, "restart", "pgharbor-prod", "replica-2", "--force"]);
    expect(r.out).toBe("restarted replica-2\n");
  });
  test("Patroni's error is relayed", async () => {
    const fake = new Fake({ "* list": fx("list"), "* show-config": fx("show-config"), "primary restart": fx("restart-bad-member") });
    const r = await run(fake, ["cluster", "restart", "replica-2"]);
    expect(r.code).toBe(1);
    expect(r.err).toBe("pgharbor: patronictl restart failed (exit 1, run in primary): Error: No any among provided members\n");
  });
});

describe("executor failures", () => {
  test("status tolerates a member whose executor throws nothing but fails (exit 127: docker missing)", async () => {
    const fake = new Fake({ primary: { code: 127, stdout: "", stderr: "spawn docker ENOENT" }, "* list": fx("list"), "* show-config": fx("show-config") });
    const s = await clusterStatus(fake, ENV);
    expect(s.unreachable).toEqual([{ member: "primary", error: "spawn docker ENOENT", containerDown: false }]);
    expect(s.via).toBe("replica-1");
  });
});
