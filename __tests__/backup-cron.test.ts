import { readFileSync } from "fs";
import { join } from "path";
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
      expect.objectContaining({ container_path: "/var/lib/pgharbor/scratch", volume_name: expect.stringContaining("docker_volume.backup_scratch") }),
      // The jobs' records outlive a replaced container (a redeploy, a rotated password).
      expect.objectContaining({ container_path: "/var/lib/pgharbor/status", volume_name: expect.stringContaining("docker_volume.backup_status") }),
    ]);
    expect(json.resource!.docker_volume!.backup_scratch_1947AC68.name).toBe("pgharbor-dev-backup-scratch");
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
  test("healthy only once this container's own start created the stanza (not an earlier container's record)", () => {
    expect(b.healthcheck!.test).toEqual(["CMD", "test", "-f", "/run/pgharbor/ready"]);
    expect(readFileSync(join(__dirname, "..", "images", "backup", "backup-entrypoint.sh"), "utf8")).toMatch(/rm -f "\$PGHARBOR_SECRETS\/ready"\n[\s\S]*until "\$PGHARBOR_LIB\/backup-job.sh" stanza-create; do[\s\S]*touch "\$PGHARBOR_SECRETS\/ready"/);
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
  test("logical backups and drills: cron lines, the ops tool and its settings (no secrets in them)", () => {
    const tab = file(b, "/etc/cron.d/pgharbor");
    expect(tab).toMatch(/^0 2 \* \* \* root \/usr\/local\/lib\/pgharbor\/backup-job.sh logical /m);
    expect(tab).toMatch(/^0 4 \* \* 6 root \/usr\/local\/lib\/pgharbor\/backup-job.sh drill /m);
    expect(b.upload!.some((u) => u.file.startsWith("/usr/local/lib/pgharbor/"))).toBe(false);
    const ops = JSON.parse(file(b, "/etc/pgharbor/ops.json"));
    expect(ops).toEqual(expect.objectContaining({ environment: "dev", bucket: "pgharbor-dev-wal", path: "/pgharbor/dev", uriStyle: "path", caFile: "/etc/pgharbor/tls/s3-ca.crt" }));
    expect(ops.logical).toEqual({ recipients: dev.backup!.logical!.recipients, retentionDays: 7 });
    expect(ops.drill).toEqual(expect.objectContaining({ heartbeatToleranceSeconds: 300, recoveryTimeoutSeconds: 7200 }));
    expect(JSON.stringify(ops)).not.toMatch(/random_password|secret|KEY/i);
  });
  test("prod: the ops tool puts with the archive's KMS key", () => {
    const ops = JSON.parse(file(containers(synthEnv(prod))["pgharbor-prod-backup"], "/etc/pgharbor/ops.json"));
    expect(ops).toEqual(expect.objectContaining({ uriStyle: "host", endpoint: "s3.eu-west-1.amazonaws.com", kmsKeyId: expect.stringMatching(/^\$\{aws_kms_key\.\w+\.arn\}$/) }));
  });
  test("without logical backups and with drills off: no such cron lines", () => {
    const c = containers(synthEnv({ ...dev, backup: { retentionDays: 7, drill: false } }))["pgharbor-dev-backup"];
    expect(file(c, "/etc/cron.d/pgharbor")).not.toMatch(/logical|drill/);
    expect(JSON.parse(file(c, "/etc/pgharbor/ops.json")).logical).toBeNull();
  });
  test("first start: a full backup and a first drill when the archive has none (default), or not", () => {
    expect(b.env).toEqual(expect.arrayContaining(["PGHARBOR_INITIAL_FULL_BACKUP=1", "PGHARBOR_INITIAL_DRILL=1", "PGHARBOR_APP_DATABASE=app"]));
    const noDrill = containers(synthEnv({ ...dev, backup: { ...dev.backup, drill: false } }))["pgharbor-dev-backup"];
    expect(noDrill.env).toEqual(expect.arrayContaining(["PGHARBOR_INITIAL_FULL_BACKUP=1", "PGHARBOR_INITIAL_DRILL=0"]));
    const off = containers(synthEnv(variant(dev, { backup: { ...dev.backup, initialFullBackup: false } })))["pgharbor-dev-backup"];
    expect(off.env).toContain("PGHARBOR_INITIAL_FULL_BACKUP=0");
  });
});
