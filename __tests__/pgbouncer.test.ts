import { containers, dev, file, prod, synthEnv, variant } from "./helpers";

describe("PgBouncer", () => {
  const json = synthEnv(dev);
  const b = containers(json)["pgharbor-dev-pgbouncer"];
  const ini = file(b, "/etc/pgbouncer/pgbouncer.ini");

  test("only PgBouncer publishes a port, on loopback in dev", () => {
    const published = Object.values(containers(json)).filter((c) => c.ports);
    expect(published.map((c) => c.name)).toEqual(["pgharbor-dev-pgbouncer"]);
    expect(b.ports).toEqual([{ internal: 6432, external: 6432, ip: "127.0.0.1", protocol: "tcp" }]);
  });

  test("read-write pool to the primary, read-only to the replica", () => {
    expect(ini).toMatch(/^app = host=pgharbor-dev-primary port=5432 dbname=app$/m);
    expect(ini).toMatch(/^app_ro = host=pgharbor-dev-replica-1 port=5432 dbname=app$/m);
    expect(ini).toMatch(/^pool_mode = transaction$/m);
    expect(ini).toMatch(/^default_pool_size = 10$/m);
    expect(ini).toMatch(/^max_db_connections = 12$/m);
  });

  test("no password in any file; the lookup and monitoring roles' passwords come from the environment", () => {
    expect(b.env).toEqual([
      expect.stringMatching(/^PGHARBOR_POOLER_PASSWORD=\$\{random_password\.primary_pooler-password_[0-9A-F]+\.result\}$/),
      expect.stringMatching(/^PGHARBOR_MONITOR_PASSWORD=\$\{random_password\.primary_monitor-password_[0-9A-F]+\.result\}$/),
    ]);
    for (const u of b.upload!) expect(u.content).not.toMatch(/random_password/);
  });

  test("DATABASE_URL and DATABASE_READ_URL are sensitive outputs through PgBouncer", () => {
    expect(json.output!.DATABASE_URL).toEqual(expect.objectContaining({ sensitive: true, value: expect.stringMatching(/^postgres:\/\/app:\$\{random_password\.primary_app-password_[0-9A-F]+\.result\}@localhost:6432\/app\?sslmode=verify-full$/) }));
    expect(json.output!.DATABASE_READ_URL).toEqual(expect.objectContaining({ sensitive: true, value: expect.stringMatching(/^postgres:\/\/app_ro:\$\{random_password\.primary_app-ro-password_[0-9A-F]+\.result\}@localhost:6432\/app_ro\?sslmode=verify-full$/) }));
  });

  test("no replicas: the read-only database pools to the primary", () => {
    const j = synthEnv(variant(dev, { replicas: 0 }));
    expect(file(containers(j)["pgharbor-dev-pgbouncer"], "/etc/pgbouncer/pgbouncer.ini")).toMatch(/^app_ro = host=pgharbor-dev-primary port=5432 dbname=app$/m);
  });

  test("prod: read-only pool over both replica hosts", () => {
    const p = containers(synthEnv(prod))["pgharbor-prod-pgbouncer"];
    expect(file(p, "/etc/pgbouncer/pgbouncer.ini")).toMatch(/^app_ro = host=10.30.0.12,10.30.0.13 port=5432 dbname=app$/m);
    expect(p.ports).toEqual([{ internal: 6432, external: 6432, ip: "10.30.0.11", protocol: "tcp" }]);
  });
});
