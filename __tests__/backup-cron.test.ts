import { containers, dev, file, prod, synthEnv, variant } from "./helpers";

describe("BackupCron", () => {
  const json = synthEnv(dev);
  const b = containers(json)["pgharbor-dev-backup"];

  test("runs on the primary's host, shares its data volume read-only and its socket", () => {
    const p = containers(json)["pgharbor-dev-primary"];
    expect(b.provider).toBe(p.provider);
    expect(b.volumes).toEqual([
      expect.objectContaining({ container_path: "/var/lib/postgresql/data", read_only: true, volume_name: p.volumes![0].volume_name }),
      expect.objectContaining({ container_path: "/var/run/postgresql", volume_name: p.volumes![1].volume_name }),
    ]);
  });
  test("never mounts the Docker socket", () => {
    expect(JSON.stringify(b)).not.toMatch(/docker\.sock/);
  });
  test("default schedules in /etc/cron.d", () => {
    const tab = file(b, "/etc/cron.d/pgharbor");
    expect(tab).toMatch(/^0 1 \* \* 0 root \/usr\/local\/lib\/pgharbor\/backup-job.sh full /m);
    expect(tab).toMatch(/^0 1 \* \* 1-6 root \/usr\/local\/lib\/pgharbor\/backup-job.sh diff /m);
    expect(tab).toMatch(/^30 3 \* \* \* root \/usr\/local\/lib\/pgharbor\/backup-job.sh expire /m);
    expect(b.upload!.find((u) => u.file === "/etc/cron.d/pgharbor")!.permissions).toBe("0644");
  });
  test("retention and the least-privileged backup role in its pgbackrest.conf", () => {
    const conf = file(b, "/etc/pgbackrest/pgbackrest.conf");
    expect(conf).toMatch(/^repo1-retention-full-type=time\nrepo1-retention-full=7$/m);
    expect(conf).toMatch(/^pg1-user=pgharbor_backup$/m);
  });
  test("healthy only once the stanza exists", () => {
    expect(b.healthcheck!.test.join(" ")).toMatch(/stanza-create.json/);
  });
  test("count retention and custom schedules", () => {
    const j = synthEnv(variant(dev, { backup: { fullSchedule: "15 2 * * 6", retentionFullBackups: 3, retentionDays: undefined } }));
    const c = containers(j)["pgharbor-dev-backup"];
    expect(file(c, "/etc/cron.d/pgharbor")).toMatch(/^15 2 \* \* 6 root .* full /m);
    expect(file(c, "/etc/pgbackrest/pgbackrest.conf")).toMatch(/^repo1-retention-full-type=count\nrepo1-retention-full=3$/m);
  });
  test("prod: process-max and 35-day retention", () => {
    const conf = file(containers(synthEnv(prod))["pgharbor-prod-backup"], "/etc/pgbackrest/pgbackrest.conf");
    expect(conf).toMatch(/^process-max=4$/m);
    expect(conf).toMatch(/^repo1-retention-full=35$/m);
  });
});
