import { archiveTimeoutFor } from "../constructs/postgres-primary";
import { containers, dev, file, prod, synthEnv, variant } from "./helpers";

describe("PostgresPrimary (dev)", () => {
  const json = synthEnv(dev);
  const c = containers(json)["pgharbor-dev-primary"];
  const conf = file(c, "/etc/postgresql/postgresql.conf");

  test("runs the built image with the rendered config file", () => {
    expect(c.image).toMatch(/^\$\{docker_image\.local_PostgresImage17_image_[0-9A-F]+\.image_id\}$/);
    expect(c.command).toEqual(["-c", "config_file=/etc/postgresql/postgresql.conf"]);
    expect(c.entrypoint).toEqual(["/usr/local/lib/pgharbor/primary-entrypoint.sh"]);
  });

  test("no program text in the stack: uploads are configuration and certificates only, each with its mode", () => {
    expect(c.upload!.map((u) => u.file).sort()).toEqual([
      "/etc/pgbackrest/pgbackrest.conf",
      "/etc/pgharbor/tls/s3-ca.crt",
      "/etc/postgresql/pg_hba.conf",
      "/etc/postgresql/pg_ident.conf",
      "/etc/postgresql/postgresql.conf",
      "/etc/postgresql/tls/ca.crt",
      "/etc/postgresql/tls/server.crt",
      "/etc/postgresql/tls/server.key",
    ]);
    for (const u of c.upload!) expect([u.file, u.executable, u.permissions]).toEqual([u.file, undefined, u.file.endsWith(".key") ? "0600" : "0644"]);
  });

  test("no superuser password exists: the superuser logs in over the socket only", () => {
    expect(c.env!.some((e) => /POSTGRES_PASSWORD|SUPERUSER/.test(e))).toBe(false);
    expect(Object.keys(json.resource!.random_password).some((k) => /superuser/.test(k))).toBe(false);
  });

  test("named data volume and shared socket volume", () => {
    expect(c.volumes).toEqual([
      expect.objectContaining({ container_path: "/var/lib/postgresql/data", volume_name: expect.stringMatching(/docker_volume\.primary_data_/) }),
      expect.objectContaining({ container_path: "/var/run/postgresql", volume_name: expect.stringMatching(/docker_volume\.primary_socket_/) }),
    ]);
    const vol = Object.values(json.resource!.docker_volume).find((v) => v.name === "pgharbor-dev-primary-data")!;
    expect(vol.lifecycle).toBeUndefined();
  });

  test("healthcheck as postgres with a real query, restart policy, limits (CPU without the provider's broken `cpus`)", () => {
    expect(c.healthcheck!.test).toEqual(["CMD", "/usr/local/lib/pgharbor/healthcheck.sh", "primary"]);
    expect(c.restart).toBe("unless-stopped");
    expect(c.memory).toBe(512);
    expect(c.cpus).toBeUndefined();
    expect([c.cpu_period, c.cpu_quota]).toEqual([100000, 100000]);
    expect(c.stop_signal).toBe("SIGINT");
  });

  test.each([
    [0.5, 50000],
    [2, 200000],
    [1.25, 125000],
  ])("cpus %p -> cpu_quota %i per 100 ms period", (cpus, quota) => {
    const p = containers(synthEnv(variant(dev, { primary: { ...dev.primary, cpus } })))["pgharbor-dev-primary"];
    expect([p.cpu_period, p.cpu_quota, p.cpus]).toEqual([100000, quota, undefined]);
  });

  test("memory-derived settings from the 512 MiB limit", () => {
    expect(conf).toMatch(/^shared_buffers = '128MB'$/m);
    expect(conf).toMatch(/^effective_cache_size = '384MB'$/m);
  });

  test("archive_timeout from rpoSeconds, senders with headroom for new replicas", () => {
    expect(conf).toMatch(/^archive_timeout = 50$/m);
    expect(conf).toMatch(/^max_wal_senders = 10$/m);
    expect(conf).toMatch(/^max_slot_wal_keep_size = '4096MB'$/m);
  });

  test("passwords are references, never values", () => {
    for (const e of c.env!.filter((x) => /PASSWORD|PGBACKREST_/.test(x))) expect(e).toMatch(/^[A-Z0-9_]+=\$\{random_password\.[^}]+\.result\}$/);
  });

  test("role passwords stay out of the primary (a rotation must not restart it)", () => {
    expect(c.env!.filter((e) => /^PGHARBOR_.*PASSWORD=/.test(e))).toEqual([]);
    const backup = containers(json)["pgharbor-dev-backup"];
    for (const v of ["PGHARBOR_APP_PASSWORD", "PGHARBOR_APP_RO_PASSWORD", "PGHARBOR_REPLICATION_PASSWORD", "PGHARBOR_POOLER_PASSWORD", "PGHARBOR_MONITOR_PASSWORD"]) {
      expect(backup.env).toContainEqual(expect.stringMatching(new RegExp(`^${v}=\\$\\{random_password\\.`)));
    }
    expect(file(backup, "/etc/pgharbor/roles.sql")).toMatch(/ALTER ROLE "app" LOGIN/);
  });

  test("TLS: server certificate from the environment's CA, key handed to postgres by the entrypoint", () => {
    expect(conf).toMatch(/^ssl = 'on'$/m);
    expect(conf).toMatch(/^ssl_min_protocol_version = 'TLSv1.3'$/m);
    expect(conf).toMatch(/^ssl_key_file = '\/run\/pgharbor\/server.key'$/m);
    expect(c.upload!.find((u) => u.file === "/etc/postgresql/tls/server.crt")!.content).toMatch(/^\$\{tls_locally_signed_cert\.ca_primary-tls_cert_[0-9A-F]+\.cert_pem\}$/);
    expect(c.upload!.find((u) => u.file === "/etc/postgresql/tls/server.key")!.permissions).toBe("0600");
  });

  test("logging baseline", () => {
    for (const line of ["log_connections = 'on'", "log_disconnections = 'on'", "log_replication_commands = 'on'", "log_statement = 'none'", "log_min_error_statement = 'panic'", "log_min_duration_statement = -1", "pg_stat_statements.track_utility = 'off'"]) expect(conf).toContain(`\n${line}\n`);
  });

  test("no port published in a single-host environment", () => {
    expect(c.ports).toBeUndefined();
  });

  test.each([
    [60, 50],
    [30, 20],
    [21, 11],
    [20, 10],
    [5, 3],
    [1, 1],
  ])("rpoSeconds %i -> archive_timeout %i", (rpo, timeout) => expect(archiveTimeoutFor(rpo)).toBe(timeout));
});

describe("PostgresPrimary (prod)", () => {
  const json = synthEnv(prod);
  const c = containers(json)["pgharbor-prod-primary"];
  test("data volume protected from destroy", () => {
    const vol = Object.values(json.resource!.docker_volume).find((v) => v.name === "pgharbor-prod-primary-data")!;
    expect(vol.lifecycle).toEqual({ prevent_destroy: true });
  });
  test("port published on the private address for replicas on other hosts", () => {
    expect(c.ports).toEqual([{ internal: 5432, external: 5432, ip: "10.30.0.11", protocol: "tcp" }]);
  });
  test("user parameters land in the file", () => {
    const j = synthEnv(variant(prod, { primary: { ...prod.primary, parameters: { random_page_cost: 1.5, "pg_stat_statements.max": 10000 } } }));
    const text = file(containers(j)["pgharbor-prod-primary"], "/etc/postgresql/postgresql.conf");
    expect(text).toMatch(/^random_page_cost = 1.5$/m);
    expect(text).toMatch(/^pg_stat_statements.max = 10000$/m);
  });
  test.each([15, 16])("major %i builds its own image", (major) => {
    const j = synthEnv(variant(dev, { primary: { ...dev.primary, majorVersion: major } }));
    const images = Object.values(j.resource!.docker_image).map((i) => i.name as string);
    expect(images).toContainEqual(expect.stringMatching(new RegExp(`^pgharbor/postgres:${major}-[0-9a-f]{16}$`)));
    const img = Object.values(j.resource!.docker_image).find((i) => String(i.name).startsWith(`pgharbor/postgres:${major}-`))!;
    expect((img.build as { build_args?: Record<string, string> }).build_args).toEqual({ PG_MAJOR: String(major) });
  });
});
