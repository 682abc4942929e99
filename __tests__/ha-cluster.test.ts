/**
 * Failover at synth: the settings Patroni would silently bend are refused with environment, field,
 * value and fix; the members, etcd, the router and PgBouncer are wired so that no secret lands in the
 * JSON and only the primary's member may bootstrap a cluster.
 */
import { buildApp } from "../stacks/app";
import { EnvironmentConfig } from "../stacks/environments";
import { PgharborConfigError } from "../constructs/errors";
import { defaultSubnet } from "../constructs/ha-cluster";
import { renderDcs, renderHaproxyCfg, renderPatroniConfig } from "../postgres-config/patroni";
import { containers, dev, prod, synthEnv, variant } from "./helpers";
import { renderPgbouncerIni } from "../pgbouncer-config/pgbouncer-ini";

const ha = (failover: Record<string, unknown>, patch: Record<string, unknown> = {}) => variant(dev, { name: "hadev", replicas: 2, failover, ...patch });

function refusal(env: unknown): Error {
  try {
    buildApp({ environments: [env as EnvironmentConfig], outdir: "/tmp/pgharbor-ha-unused" });
  } catch (e) {
    return e as Error;
  }
  throw new Error("synthesised without an error");
}

describe("failover settings: bad input is refused at synth", () => {
  test.each<[string, EnvironmentConfig, RegExp]>([
    ["mode misspelt", ha({ mode: "synchronous" }), /^\[hadev\/failover\] mode = "synchronous": must be "async" or "sync"\. Fix: use "async"/],
    ["ttl below Patroni's floor (it would raise it silently)", ha({ mode: "async", ttl: 10 }), /^\[hadev\/failover\] ttl = 10: must be a whole number of seconds from 20 to 3600 \(Patroni raises a smaller ttl to 20 without saying so\)/],
    ["loopWait + 2 × retryTimeout above ttl", ha({ mode: "async", ttl: 20, loopWait: 10, retryTimeout: 6 }), /^\[hadev\/failover\] ttl = 20: is less than loopWait \+ 2 × retryTimeout \(10 \+ 2 × 6 = 22\): .*two members would accept writes\. Fix: raise ttl to at least 22/],
    ["retryTimeout below 3", ha({ mode: "async", retryTimeout: 2 }), /^\[hadev\/failover\] retryTimeout = 2: must be a whole number of seconds ≥ 3/],
    ["fractional loopWait", ha({ mode: "async", loopWait: 1.5 }), /^\[hadev\/failover\] loopWait = 1\.5: must be a whole number of seconds ≥ 1/],
    ["negative lag bound", ha({ mode: "async", maximumLagOnFailoverBytes: -1 }), /^\[hadev\/failover\] maximumLagOnFailoverBytes = -1: must be a whole number of bytes ≥ 0/],
    ["public subnet", ha({ mode: "async", subnet: "8.8.8.0/24" }), /^\[hadev\/failover\] subnet = "8\.8\.8\.0\/24": must be a private IPv4 \/24/],
    ["subnet not a /24", ha({ mode: "async", subnet: "10.1.0.0/16" }), /^\[hadev\/failover\] subnet = "10\.1\.0\.0\/16": must be a private IPv4 \/24/],
    ["no replica to promote", ha({ mode: "async" }, { replicas: 0 }), /^\[hadev\] failover = \{"mode":"async"\}: needs at least one replica to promote, and replicas is 0\. Fix: set replicas to 2/],
    ["members on several hosts", variant(prod, { failover: { mode: "sync" } }), /^\[prod\] failover = \{"mode":"sync"\}: puts members on more than one Docker host \(db-1, db-2, db-3\): .*Fix: run the primary, the replicas and PgBouncer on one host/],
    ["a synchronous standby named by hand", ha({ mode: "async" }, { primary: { ...dev.primary, parameters: { synchronous_standby_names: "replica-1" } } }), /^\[hadev\] primary\.parameters\.synchronous_standby_names = "replica-1": is Patroni's to set while failover is on \(it names the synchronous standby from the members that stream.*use failover\.mode "sync"\)\. Fix: remove it from parameters\.$/],
    ["cluster_name (any case)", ha({ mode: "sync" }, { primary: { ...dev.primary, parameters: { Cluster_Name: "main" } } }), /^\[hadev\] primary\.parameters\.Cluster_Name = "main": is Patroni's to set while failover is on \(it is the Patroni cluster's name, pgharbor-<env>\)\. Fix: remove it from parameters\.$/],
    ["a replica sized apart from the primary", ha({ mode: "async" }, { replica: { memoryMiB: 1024 } }), /^\[hadev\/replicas\.replica-1\] memoryMiB = 1024: differs from the primary's \(512 MiB\): with failover every member runs the cluster's settings, sized for the primary, and any replica may lead\. Fix: leave memoryMiB out of the replicas/],
    ["typo inside failover", ha({ mode: "async", tll: 30 }), /^\[hadev\/failover\] tll = 30: is not a setting of failover.*did you mean "ttl"/],
  ])("%s", (_n, env, message) => {
    const e = refusal(env);
    expect(e).toBeInstanceOf(PgharborConfigError);
    expect(e.message).toMatch(message);
    for (const line of e.message.split("\n")) expect(line).toMatch(/^\[[a-z0-9/.-]+\] .+ = .+: .+\. Fix: .+\.$/);
  });

  test("allowed: Patroni's defaults, and 20 / 2 / 9, exactly at its rule's edge (loopWait + 2 × retryTimeout = ttl)", () => {
    expect(() => synthEnv(ha({ mode: "async", ttl: 20, loopWait: 2, retryTimeout: 9 }))).not.toThrow();
    expect(() => synthEnv(ha({ mode: "sync" }))).not.toThrow();
  });
});

describe("failover across environments: subnets on one Docker daemon", () => {
  const build = (...environments: EnvironmentConfig[]) => () => buildApp({ environments, outdir: "/tmp/pgharbor-ha-unused" });
  test("the same subnet twice on one daemon is refused, with a free one to use", () => {
    const a = ha({ mode: "async", subnet: "10.7.3.0/24" }, { name: "blue" });
    const b = ha({ mode: "async", subnet: "10.7.3.0/24" }, { name: "green" });
    expect(build(a, b)).toThrow(/^\[green\] failover\.subnet = "10\.7\.3\.0\/24": is environment blue's subnet too, on the same Docker daemon \(unix:\/\/\/var\/run\/docker\.sock\): Docker would refuse the second network at deploy\. Fix: set failover\.subnet to a private \/24 no other environment on that daemon uses, e\.g\. "172\.29\.0\.0\/24"\.$/);
  });
  test("two names whose default subnets collide are refused too (env-10 and env-98 both hash to 172.29.255.0/24)", () => {
    expect(defaultSubnet("env-10")).toBe(defaultSubnet("env-98"));
    expect(build(ha({ mode: "async" }, { name: "env-10" }), ha({ mode: "async" }, { name: "env-98" }))).toThrow(/^\[env-98\] failover\.subnet = "172\.29\.255\.0\/24": is environment env-10's subnet too.*\(the default, derived from the name\)/);
  });
  test("allowed: the same subnet on different daemons, and different subnets on one", () => {
    const onOther = ha({ mode: "async", subnet: "10.7.3.0/24" }, { name: "green", hosts: { local: { dockerHost: "ssh://db@10.0.0.9" } } });
    expect(build(ha({ mode: "async", subnet: "10.7.3.0/24" }, { name: "blue" }), onOther)).not.toThrow();
    expect(build(ha({ mode: "async", subnet: "10.7.3.0/24" }, { name: "blue" }), ha({ mode: "async", subnet: "10.7.4.0/24" }, { name: "green" }))).not.toThrow();
  });
});

describe("failover wiring", () => {
  const json = synthEnv(ha({ mode: "sync" }));
  const c = containers(json);
  const upload = (name: string, file: string) => (c[name].upload as Array<{ file: string; content: string }>).find((u) => u.file === file)?.content ?? "";

  test("every member runs Patroni; only the primary's configuration can bootstrap a cluster", () => {
    for (const m of ["primary", "replica-1", "replica-2"]) {
      expect(c[`pgharbor-hadev-${m}`].entrypoint).toEqual(["/usr/local/lib/pgharbor/patroni-entrypoint.sh"]);
      const conf = JSON.parse(upload(`pgharbor-hadev-${m}`, "/etc/pgharbor/patroni.yml").replace(/^#.*\n/, ""));
      expect(conf.name).toBe(m);
      expect(conf.scope).toBe("pgharbor-hadev");
      expect(conf.bootstrap !== undefined).toBe(m === "primary");
      expect(conf.etcd3.hosts).toEqual([`${defaultSubnet("hadev").replace(/0\/24$/, "")}10:2379`]);
    }
    expect(JSON.parse(upload("pgharbor-hadev-primary", "/etc/pgharbor/patroni.yml").replace(/^#.*\n/, "")).tags.failover_priority).toBeGreaterThan(
      JSON.parse(upload("pgharbor-hadev-replica-1", "/etc/pgharbor/patroni.yml").replace(/^#.*\n/, "")).tags.failover_priority,
    );
  });

  test("etcd has the fixed address Patroni dials, inside the network's fixed /24", () => {
    const net = Object.values(json.resource!.docker_network as Record<string, { ipam_config: Array<{ subnet: string; ip_range: string }> }>)[0];
    const base = defaultSubnet("hadev").replace(/\.0\/24$/, "");
    expect(net.ipam_config).toEqual([expect.objectContaining({ subnet: `${base}.0/24`, ip_range: `${base}.128/25` })]);
    expect(c["pgharbor-hadev-etcd"].networks_advanced).toEqual([expect.objectContaining({ ipv4_address: `${base}.10` })]);
    // Members call each other's REST API by address: a leader cut off must not wait on DNS before it demotes.
    ["primary", "replica-1", "replica-2"].forEach((m, i) => {
      expect(c[`pgharbor-hadev-${m}`].networks_advanced).toEqual([expect.objectContaining({ ipv4_address: `${base}.${11 + i}` })]);
      expect(JSON.parse(upload(`pgharbor-hadev-${m}`, "/etc/pgharbor/patroni.yml").replace(/^#.*\n/, "")).restapi.connect_address).toBe(`${base}.${11 + i}:8008`);
    });
  });

  test("PgBouncer reaches the members through the router, and the members' certificates name it", () => {
    const ini = upload("pgharbor-hadev-pgbouncer", "/etc/pgbouncer/pgbouncer.ini");
    expect(ini).toMatch(/^app = host=pgharbor-hadev-router port=5000 dbname=app$/m);
    expect(ini).toMatch(/^app_ro = host=pgharbor-hadev-router port=5001 dbname=app$/m);
    expect(ini).toMatch(/^server_login_retry = 1$/m);
    const reqs = Object.values(json.resource!.tls_cert_request as Record<string, { dns_names: string[] }>);
    expect(reqs.filter((r) => r.dns_names.includes("pgharbor-hadev-router"))).toHaveLength(3);
    const haproxy = upload("pgharbor-hadev-router", "/etc/pgharbor/haproxy.cfg");
    for (const m of ["primary", "replica-1", "replica-2"]) expect(haproxy).toContain(`server pgharbor-hadev-${m} pgharbor-hadev-${m}:5432 check port 8008`);
  });

  test("no secret in the JSON: Patroni's passwords are references", () => {
    for (const m of ["primary", "replica-1"]) {
      const env = c[`pgharbor-hadev-${m}`].env as string[];
      for (const key of ["PATRONI_REPLICATION_PASSWORD", "PATRONI_REWIND_PASSWORD", "PATRONI_RESTAPI_PASSWORD"]) {
        expect(env.find((e) => e.startsWith(`${key}=`))).toMatch(/^[A-Z_]+=\$\{random_password\.[^}]+\.result\}$/);
      }
      // Every member may be promoted: each archives with the writer's key.
      expect(env.some((e) => e.startsWith("PGBACKREST_REPO1_S3_KEY="))).toBe(true);
    }
  });

  test("monitoring scrapes every member's Patroni and carries the cluster's alerts", () => {
    const prom = upload("pgharbor-hadev-prometheus", "/etc/pgharbor/monitoring/prometheus.yml");
    for (const m of ["primary", "replica-1", "replica-2"]) expect(prom).toContain(`pgharbor-hadev-${m}:8008`);
    const rules = upload("pgharbor-hadev-prometheus", "/etc/pgharbor/monitoring/alerts.yml");
    for (const a of ["PatroniNoLeader", "PatroniTwoLeaders", "PatroniFailoverHappened", "PatroniMemberUnhealthy", "PatroniPendingRestart", "PatroniSyncStandbyMissing"]) expect(rules).toContain(`alert: ${a}`);
  });

  test("without failover nothing changes: no etcd, no router, the primary's own entrypoint", () => {
    const plain = containers(synthEnv(dev));
    expect(Object.keys(plain).filter((n) => /etcd|router/.test(n))).toEqual([]);
    expect(plain["pgharbor-dev-primary"].entrypoint).toEqual(["/usr/local/lib/pgharbor/primary-entrypoint.sh"]);
  });
});

describe("renderers", () => {
  test("the dynamic configuration carries every setting but the local ones, plus the 1 s status interval", () => {
    const dcs = renderDcs({
      mode: "async",
      ttl: 30,
      loopWait: 5,
      retryTimeout: 10,
      maximumLagOnFailoverBytes: 123,
      failsafeMode: false,
      parameters: [
        ["listen_addresses", "*"],
        ["port", 5432],
        ["max_connections", 80],
        ["work_mem", "4MB"],
        ["MAX_WAL_SENDERS", 12],
        ["hba_file", "/etc/postgresql/pg_hba.conf"],
        ["restore_command", "pgbackrest archive-get %f %p"],
        ["shared_buffers", "128MB"],
      ],
    }) as { postgresql: { parameters: Record<string, unknown> }; synchronous_mode: boolean; maximum_lag_on_failover: number; failsafe_mode: boolean };
    // Every setting but the files, sockets and recovery settings each member keeps local.
    expect(dcs.postgresql.parameters).toEqual({ max_connections: 80, work_mem: "4MB", max_wal_senders: 12, shared_buffers: "128MB", wal_receiver_status_interval: "1s" });
    expect(dcs).toEqual(expect.objectContaining({ synchronous_mode: false, maximum_lag_on_failover: 123, failsafe_mode: false, ttl: 30, loop_wait: 5, retry_timeout: 10 }));
  });

  test("the router checks with OPTIONS and cuts sessions of a member that stops leading", () => {
    const cfg = renderHaproxyCfg({ members: ["a", "b"], readOnlyMaxLagBytes: 999 });
    expect(cfg).toMatch(/listen primary\n\s+bind \*:5000\n\s+option httpchk OPTIONS \/primary\n/);
    expect(cfg).toMatch(/option httpchk OPTIONS \/replica\?lag=999\n/);
    expect(cfg.match(/on-marked-down shutdown-sessions/g)).toHaveLength(2);
  });

  test("a member configuration without a bootstrap section never names a bootstrap method", () => {
    const conf = renderPatroniConfig({ scope: "s", name: "replica-1", containerName: "c", address: "10.0.0.12", majorBinDir: "/b", etcdHosts: ["10.0.0.10:2379"], failoverPriority: 1, bootstrap: false });
    expect(conf).not.toMatch(/bootstrap"/);
    expect(conf).not.toMatch(/password/i);
  });

  test("every member that can lead bounds its archive queue like the primary: a promoted replica archives under the same rule", () => {
    const bounded = containers(synthEnv(ha({ mode: "async" }, { primary: { ...dev.primary, archivePushQueueMaxMiB: 4096 } })));
    for (const m of ["primary", "replica-1", "replica-2"]) {
      const conf = (bounded[`pgharbor-hadev-${m}`].upload as Array<{ file: string; content: string }>).find((u) => u.file.endsWith("pgbackrest.conf"))!.content;
      expect(conf).toMatch(/^archive-push-queue-max=4096MiB$/m);
    }
    const unbounded = containers(synthEnv(ha({ mode: "async" })));
    const conf = (unbounded["pgharbor-hadev-replica-1"].upload as Array<{ file: string; content: string }>).find((u) => u.file.endsWith("pgbackrest.conf"))!.content;
    expect(conf).not.toMatch(/archive-push-queue-max/);
  });

  test("a change of PostgreSQL settings replaces the config container only: no member, etcd or router is re-created", () => {
    const before = containers(synthEnv(ha({ mode: "sync" })));
    const after = containers(synthEnv(ha({ mode: "sync" }, { primary: { ...dev.primary, parameters: { work_mem: "12MB", shared_buffers: "160MB", checkpoint_timeout: "20min" } } })));
    const changed = Object.keys(before).filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
    expect(changed).toEqual(["pgharbor-hadev-patroni-config"]);
    const dcsOf = (c: Record<string, Record<string, unknown>>) =>
      JSON.parse((c["pgharbor-hadev-patroni-config"].upload as Array<{ file: string; content: string }>).find((u) => u.file === "/etc/pgharbor/patroni-dcs.json")!.content);
    expect(dcsOf(after).postgresql.parameters).toEqual(expect.objectContaining({ work_mem: "12MB", shared_buffers: "160MB", checkpoint_timeout: "20min" }));
    expect(dcsOf(before).postgresql.parameters.work_mem).not.toBe("12MB");
  });

  test("the members carry no setting: the config container holds them, as the dynamic configuration and as a postgresql.conf the policy pack reads", () => {
    const c = containers(synthEnv(ha({ mode: "sync" })));
    const files = (name: string) => (c[name].upload as Array<{ file: string; content: string }>).map((u) => u.file);
    for (const m of ["primary", "replica-1", "replica-2"]) {
      expect(files(`pgharbor-hadev-${m}`)).not.toContain("/etc/postgresql/postgresql.conf");
      expect(files(`pgharbor-hadev-${m}`)).not.toContain("/etc/pgharbor/patroni-dcs.json");
      expect(files(`pgharbor-hadev-${m}`)).toContain("/etc/pgharbor/postgresql.base.conf");
    }
    const config = c["pgharbor-hadev-patroni-config"];
    expect(files("pgharbor-hadev-patroni-config").sort()).toEqual(["/etc/pgharbor/patroni-ctl.json", "/etc/pgharbor/patroni-dcs.json", "/etc/pgharbor/postgresql.conf"]);
    expect(config.entrypoint).toEqual(["python3", "/usr/local/lib/pgharbor/dcs-config.py", "apply", "/etc/pgharbor/patroni-ctl.json", "/etc/pgharbor/patroni-dcs.json"]);
    expect(config.user).toBe("postgres");
    const conf = (config.upload as Array<{ file: string; content: string }>).find((u) => u.file === "/etc/pgharbor/postgresql.conf")!.content;
    expect(conf).toMatch(/^archive_mode = 'on'$/m);
    expect(conf).toMatch(/^password_encryption = 'scram-sha-256'$/m);
  });

  test("PgBouncer without the router keeps its default login retry", () => {
    const base = { listenPort: 6432, database: "app", readOnlyDatabase: "app_ro", primary: { host: "p", port: 5432 }, replicas: [], poolMode: "transaction" as const, defaultPoolSize: 1, reservePoolSize: 1, maxDbConnections: 2, maxClientConnections: 10, tlsMinVersion: "TLSv1.3" as const };
    expect(renderPgbouncerIni(base)).not.toMatch(/server_login_retry/);
    expect(renderPgbouncerIni({ ...base, routed: true })).toMatch(/server_login_retry = 1/);
  });
});
