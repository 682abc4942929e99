import { Aspects, Testing, TerraformStack } from "cdktf";
import { RandomProvider } from "@cdktf/provider-random/lib/provider";
import { TlsProvider } from "@cdktf/provider-tls/lib/provider";
import { DockerHost } from "../constructs/docker-host";
import { LocalS3Server } from "../constructs/local-s3-server";
import { PostgresPrimary } from "../constructs/postgres-primary";
import { PostgresReplica } from "../constructs/postgres-replica";
import { PgBouncer } from "../constructs/pgbouncer";
import { BackupCron } from "../constructs/backup-cron";
import { Monitoring } from "../constructs/monitoring";
import { PolicyPack } from "../constructs/policy/pack";

test("the README's simplest composition synthesises and passes the policy pack", () => {
  const app = Testing.app();
  const stack = new TerraformStack(app, "example");
  // --- as in README.md ---
  new RandomProvider(stack, "random");
  new TlsProvider(stack, "tls");
  const host = new DockerHost(stack, "local", { environment: "dev" });
  const archive = new LocalS3Server(stack, "archive", { environment: "dev", host });
  const primary = new PostgresPrimary(stack, "primary", { environment: "dev", host, archive });
  const replica = new PostgresReplica(stack, "replica-1", { primary });
  const pgbouncer = new PgBouncer(stack, "pgbouncer", { primary, replicas: [replica] });
  const backup = new BackupCron(stack, "backup", { primary });
  new Monitoring(stack, "monitoring", { primary, replicas: [replica], pgbouncer, backup });
  // ---
  Aspects.of(stack).add(new PolicyPack());
  const json = JSON.parse(Testing.synth(stack, true));
  expect(Object.values(json.resource.docker_container).map((c) => (c as { name: string }).name)).toEqual(
    expect.arrayContaining(["pgharbor-dev-primary", "pgharbor-dev-replica-1", "pgharbor-dev-pgbouncer", "pgharbor-dev-backup", "pgharbor-dev-s3", "pgharbor-dev-rpo-probe"]),
  );
});
