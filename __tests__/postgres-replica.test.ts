import { containers, dev, file, prod, synthEnv, variant } from "./helpers";

describe("PostgresReplica", () => {
  const json = synthEnv(dev);
  const all = containers(json);
  const r = all["pgharbor-dev-replica-1"];
  const conf = file(r, "/etc/postgresql/postgresql.conf");

  test("bootstrap entrypoint, same image and command as the primary", () => {
    expect(r.entrypoint).toEqual(["/usr/local/lib/pgharbor/replica-entrypoint.sh"]);
    expect(r.image).toBe(all["pgharbor-dev-primary"].image);
    expect(r.command).toEqual(all["pgharbor-dev-primary"].command);
  });

  test("hot standby with feedback, its slot and a passfile conninfo", () => {
    expect(conf).toMatch(/^hot_standby = 'on'$/m);
    expect(conf).toMatch(/^hot_standby_feedback = 'on'$/m);
    expect(conf).toMatch(/^primary_slot_name = 'pgharbor_replica_1'$/m);
    expect(conf).toMatch(/^primary_conninfo = 'host=pgharbor-dev-primary port=5432 user=replicator passfile=\/run\/pgharbor\/pgpass application_name=replica-1 sslmode=verify-full sslrootcert=\/etc\/postgresql\/tls\/ca.crt'$/m);
    expect(conf).not.toMatch(/password=/);
  });

  test("restore_command fetches from the archive through pgBackRest", () => {
    expect(conf).toMatch(/^restore_command = 'pgbackrest --config=\/etc\/pgbackrest\/pgbackrest.conf --stanza=pgharbor archive-get %f "%p"'$/m);
  });

  test("standby-critical settings equal the primary's", () => {
    const p = file(all["pgharbor-dev-primary"], "/etc/postgresql/postgresql.conf");
    for (const k of ["max_connections", "max_wal_senders", "max_replication_slots"]) {
      const re = new RegExp(`^${k} = (.*)$`, "m");
      expect([k, re.exec(conf)![1]]).toEqual([k, re.exec(p)![1]]);
    }
  });

  test("the image's entrypoint bootstraps it from its slot, primary and archive settings", () => {
    expect(r.entrypoint).toEqual(["/usr/local/lib/pgharbor/replica-entrypoint.sh"]);
    expect(r.command).toEqual(["-c", "config_file=/etc/postgresql/postgresql.conf"]);
    expect(r.env).toEqual(expect.arrayContaining(["PRIMARY_HOST=pgharbor-dev-primary", "PRIMARY_PORT=5432", "PGHARBOR_SLOT=pgharbor_replica_1"]));
    expect(r.healthcheck!.test).toEqual(["CMD", "/usr/local/lib/pgharbor/healthcheck.sh", "replica"]);
    expect(r.upload!.some((u) => u.file.endsWith(".sh") || u.executable)).toBe(false);
  });

  test("own named data volume; waits for the primary", () => {
    expect(r.volumes![0]).toEqual(expect.objectContaining({ container_path: "/var/lib/postgresql/data", volume_name: expect.stringMatching(/replica-1_data/) }));
    expect(r.depends_on).toContainEqual(expect.stringMatching(/^docker_container\.primary_container_/));
  });

  test("prod: replicas on their own hosts reach the primary through its private address", () => {
    const p = containers(synthEnv(prod));
    expect(p["pgharbor-prod-replica-1"].provider).toBe("docker.db-2");
    expect(p["pgharbor-prod-replica-2"].provider).toBe("docker.db-3");
    expect(p["pgharbor-prod-replica-2"].env).toEqual(expect.arrayContaining(["PRIMARY_HOST=10.30.0.11", "PRIMARY_PORT=5432"]));
    expect(file(p["pgharbor-prod-replica-2"], "/etc/postgresql/postgresql.conf")).toMatch(/slot_name = 'pgharbor_replica_2'/);
  });

  test("replica count drives the number of replicas; the primary's senders keep their headroom up to 7", () => {
    const j = synthEnv(variant(dev, { replicas: 3 }));
    const names = Object.keys(containers(j)).filter((n) => /^pgharbor-dev-replica-\d+$/.test(n));
    expect(names.sort()).toEqual(["pgharbor-dev-replica-1", "pgharbor-dev-replica-2", "pgharbor-dev-replica-3"]);
    expect(file(containers(j)["pgharbor-dev-primary"], "/etc/postgresql/postgresql.conf")).toMatch(/^max_wal_senders = 10$/m);
    const eight = containers(synthEnv(variant(dev, { replicas: 8 })));
    expect(file(eight["pgharbor-dev-primary"], "/etc/postgresql/postgresql.conf")).toMatch(/^max_wal_senders = 11$/m);
    expect(file(eight["pgharbor-dev-replica-8"], "/etc/postgresql/postgresql.conf")).toMatch(/^max_wal_senders = 11$/m);
  });
});
