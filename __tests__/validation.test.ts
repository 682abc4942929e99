import { Testing, TerraformStack } from "cdktf";
import { buildApp } from "../stacks/app";
import { EnvironmentConfig } from "../stacks/environments";
import { PgharborConfigError } from "../constructs/errors";
import { DockerHost } from "../constructs/docker-host";
import { LocalS3Server } from "../constructs/local-s3-server";
import { PostgresPrimary } from "../constructs/postgres-primary";
import { PostgresReplica } from "../constructs/postgres-replica";
import { reportFailure } from "../stacks/report";
import { dev, prod, staging, variant } from "./helpers";

const build = (env: EnvironmentConfig) => buildApp({ environments: [env], outdir: "/tmp/pgharbor-validation-unused" });

/** Every case: an environment a user could write, and the message naming environment, field, value and fix. */
const cases: Array<[string, EnvironmentConfig, RegExp]> = [
  ["replicas < 0", variant(dev, { replicas: -1 }), /^\[dev\] replicas = -1: must be a whole number from 0 to 16\. Fix: use 0 for no replica/m],
  ["replicas not whole", variant(dev, { replicas: 1.5 }), /\[dev\] replicas = 1\.5: must be a whole number/],
  ["replicas too many", variant(dev, { replicas: 17 }), /\[dev\] replicas = 17: must be a whole number from 0 to 16/],
  ["pool larger than max_connections", variant(dev, { pgbouncer: { defaultPoolSize: 100 } }), /\[dev\/pgbouncer\] defaultPoolSize = 100: pools need 102 server connections .* maxConnections 50 leaves 42 .*Fix: lower defaultPoolSize\/reservePoolSize or raise the primary's maxConnections to at least 110/],
  ["pools doubled on the primary without replicas", variant(dev, { replicas: 0, pgbouncer: { defaultPoolSize: 20, reservePoolSize: 2 } }), /\[dev\/pgbouncer\] defaultPoolSize = 20: pools need 44 server connections \(read-write and read-only both on the primary/],
  ["malformed full cron", variant(dev, { backup: { fullSchedule: "every sunday" } }), /\[dev\/backup\] fullSchedule = "every sunday": is not a valid cron expression: expected 5 fields .*Fix: write five fields/],
  ["cron field out of range", variant(dev, { backup: { diffSchedule: "0 25 * * 1-6" } }), /\[dev\/backup\] diffSchedule = "0 25 \* \* 1-6": is not a valid cron expression: hour value 25 is outside 0-23/],
  ["cron that never fires", variant(dev, { backup: { expireSchedule: "0 0 30 2 *" } }), /\[dev\/backup\] expireSchedule = "0 0 30 2 \*": never fires/],
  ["memory below the floor", variant(dev, { primary: { memoryMiB: 200 } }), /\[dev\/primary\] memoryMiB = 200: must be a whole number of MiB ≥ 256/],
  ["memory too small for derived settings", variant(dev, { primary: { memoryMiB: 300, maxConnections: 100 } }), /\[dev\/primary\] memoryMiB = 300: is too small: shared_buffers 75MB \+ 100 connections × 4 MiB \+ 64 MiB overhead need 539 MiB\. Fix: raise memoryMiB to at least 539/],
  ["shared_buffers override eats the limit", variant(dev, { primary: { parameters: { shared_buffers: "1GB" } } }), /\[dev\/primary\] memoryMiB = 512: is too small: shared_buffers 1GB/],
  ["memory override without a unit the check understands", variant(dev, { primary: { parameters: { work_mem: "lots" } } }), /\[dev\/primary\] parameters\.work_mem = "lots": work_mem is not a number with an optional unit\. Fix: give a number from 64 to 2147483647 \(unit kB\)/],
  ["rpoSeconds < 1", variant(dev, { primary: { rpoSeconds: 0 } }), /\[dev\/primary\] rpoSeconds = 0: must be a whole number of seconds from 10 to 86400/],
  ["rpoSeconds fractional", variant(dev, { primary: { rpoSeconds: 2.5 } }), /\[dev\/primary\] rpoSeconds = 2\.5/],
  ["retention shorter than the full-backup interval", variant(dev, { backup: { retentionDays: 3 } }), /\[dev\/backup\] retentionDays = 3: is shorter than the longest gap between full backups \(7\.0 days for fullSchedule "0 1 \* \* 0"\)\. Fix: keep at least 7 days/],
  ["two retention kinds", variant(dev, { backup: { retentionDays: 7, retentionFullBackups: 2 } }), /\[dev\/backup\] retentionFullBackups = 2: is set together with retentionDays/],
  ["zero full backups kept", variant(dev, { backup: { retentionDays: undefined, retentionFullBackups: 0 } }), /\[dev\/backup\] retentionFullBackups = 0: must be a whole number from 1 to 999/],
  ["unknown postgres parameter", variant(dev, { primary: { parameters: { shared_bufers: "1GB" } } }), /\[dev\/primary\] parameters\.shared_bufers = "1GB": shared_bufers is not a PostgreSQL 17 parameter\. Fix: did you mean "shared_buffers"\? Check the spelling/],
  ["parameter the major lacks", variant(dev, { primary: { parameters: { old_snapshot_threshold: -1 } } }), /parameters\.old_snapshot_threshold = -1: old_snapshot_threshold does not exist in PostgreSQL 17 \(only in 15, 16\)\. Fix: remove it or change majorVersion/],
  ["parameter pgharbor manages", variant(dev, { primary: { parameters: { archive_command: "cp %p /x" } } }), /parameters\.archive_command = "cp %p \/x": archive_command is managed by pgharbor .*Fix: remove it from parameters/],
  ["unsupported major", variant(dev, { primary: { majorVersion: 14 } }), /\[dev\/primary\] majorVersion = 14: is not a supported PostgreSQL major\. Fix: use one of 15, 16, 17/],
  ["uncapped slot WAL", variant(dev, { primary: { maxSlotWalKeepSizeMiB: -1 } }), /\[dev\/primary\] maxSlotWalKeepSizeMiB = -1: must cap slot WAL/],
  ["reserved application role", variant(dev, { primary: { appUser: "postgres" } }), /\[dev\/primary\] appUser = "postgres": is a special name \(it is PostgreSQL's superuser/],
  ["application database not an identifier", variant(dev, { primary: { appDatabase: "my-db" } }), /\[dev\/primary\] appDatabase = "my-db"/],
  ["cpus zero", variant(dev, { primary: { cpus: 0 } }), /\[dev\/primary\] cpus = 0: must be a number of cores > 0/],
  ["replica on an undeclared host", variant(prod, { replicaHosts: ["db-2", "db-9"] }), /\[prod\] replicaHosts\[1\] = "db-9": is not a declared host\. Fix: use one of the hosts declared in hosts: db-1, db-2, db-3/],
  ["primary on an undeclared host", variant(prod, { primary: { host: "db-0" } }), /\[prod\] primary\.host = "db-0": is not a declared host/],
  ["cross-host without a private address", variant(prod, { hosts: { ...prod.hosts, "db-1": { dockerHost: "ssh://deploy@db-1.example.internal" } } }), /\[prod\/hosts\.db-1\] privateAddress = \(unset\): replica "replica-1" on host "db-2" must reach pgharbor-prod-primary on host "db-1", which has no private address\. Fix: set hosts\.db-1\.privateAddress/],
  ["docker host that is not a daemon address", variant(dev, { hosts: { local: { dockerHost: "http://10.0.0.1:2375" } } }), /\[dev\/hosts\.local\] dockerHost = "http:\/\/10\.0\.0\.1:2375": is not a Docker daemon address/],
  ["no hosts", { ...dev, hosts: {} }, /\[dev\] hosts = \{\}: declares no Docker host/],
  ["environment name", variant(dev, { name: "Dev_1" }), /\[Dev_1\] name = "Dev_1": must be lowercase letters, digits and hyphens/],
  ["bucket name", variant(staging, { archive: { kind: "aws-s3", bucketName: "My_Bucket", region: "eu-west-1" } }), /\[staging\/archive\] bucketName = "My_Bucket": is not a valid S3 bucket name/],
  ["region", variant(staging, { archive: { kind: "aws-s3", bucketName: "acme-wal", region: "europe" } }), /\[staging\/archive\] region = "europe": is not an AWS region name/],
  ["archive kind", variant(dev, { archive: { kind: "gcs" } }), /\[dev\/archive\] kind = "gcs": must be "local-s3" or "aws-s3"/],
  ["pgbouncer port", variant(dev, { pgbouncer: { port: 70000 } }), /\[dev\/pgbouncer\] port = 70000: is not a TCP port/],
  ["pool mode", variant(dev, { pgbouncer: { poolMode: "statement" } }), /\[dev\/pgbouncer\] poolMode = "statement": must be "transaction" or "session"/],
  ["Object Lock longer than retention", variant(prod, { archive: { ...prod.archive, objectLock: { mode: "COMPLIANCE", days: 90 } } }), /\[prod\] archive\.objectLock\.days = 90: locks objects longer than backups are retained \(backup\.retentionDays 35\)\: expiry could not delete them\. Fix: lower objectLock\.days to at most 35/],
  ["no logical recipients", variant(dev, { backup: { ...dev.backup, logical: { recipients: [] } } }), /\[dev\/backup\] logical\.recipients = \[\]: is empty: nobody could decrypt the dumps\. Fix: add the age public key/],
  ["logical recipient not an age key", variant(dev, { backup: { ...dev.backup, logical: { recipients: ["ssh-ed25519 AAAAC3Nz"] } } }), /\[dev\/backup\] logical\.recipients\[0\] = "ssh-ed25519 AAAAC3Nz": is not an age public key .*Fix: paste the "public key: age1…" line/],
  ["private age key as recipient (not echoed)", variant(dev, { backup: { ...dev.backup, logical: { recipients: [`AGE-SECRET-KEY-1${"Q".repeat(58)}`] } } }), /^\[dev\/backup\] logical\.recipients\[0\] = "AGE-SECRET-KEY-…": is a PRIVATE age key: it must never be in the stack\. Fix: remove it, rotate it/m],
  ["logical retention 0", variant(dev, { backup: { ...dev.backup, logical: { ...dev.backup!.logical!, retentionDays: 0 } } }), /\[dev\/backup\] logical\.retentionDays = 0: must be a whole number of days from 1 to 3650/],
  ["logical schedule malformed", variant(dev, { backup: { ...dev.backup, logical: { ...dev.backup!.logical!, schedule: "daily" } } }), /\[dev\/backup\] logical\.schedule = "daily": is not a valid cron expression/],
  ["drill schedule never fires", variant(dev, { backup: { ...dev.backup, drill: { schedule: "0 4 31 2 *" } } }), /\[dev\/backup\] drill\.schedule = "0 4 31 2 \*": never fires/],
  ["drill heartbeat tolerance too small", variant(dev, { backup: { ...dev.backup, drill: { heartbeatToleranceSeconds: 1 } } }), /\[dev\/backup\] drill\.heartbeatToleranceSeconds = 1: must be a whole number of seconds from 10 to 86400/],
  ["Object Lock longer than logical retention", variant(prod, { archive: { ...prod.archive, objectLock: { mode: "GOVERNANCE", days: 30 } }, backup: { ...prod.backup, logical: { ...prod.backup!.logical!, retentionDays: 10 } } }), /\[prod\] archive\.objectLock\.days = 30: locks objects longer than logical backups are retained \(backup\.logical\.retentionDays 10\).*Fix: lower objectLock\.days to at most 10/],
  ["Object Lock with count retention", variant(prod, { backup: { ...prod.backup, retentionDays: undefined, retentionFullBackups: 4 } }), /\[prod\] archive\.objectLock = .*: needs time-based backup retention/],
  ["Object Lock mode", variant(prod, { archive: { ...prod.archive, objectLock: { mode: "FOREVER", days: 7 } } }), /\[prod\/archive\] objectLock\.mode = "FOREVER": must be "GOVERNANCE" or "COMPLIANCE"/],
  ["TLS version", variant(dev, { primary: { tlsMinVersion: "TLSv1.0" } }), /\[dev\/primary\] tlsMinVersion = "TLSv1\.0": is not a TLS version pgharbor allows\. Fix: use "TLSv1\.3" \(default\) or "TLSv1\.2"/],
  ["slow-statement logging", variant(dev, { primary: { logMinDurationStatementMs: -5 } }), /\[dev\/primary\] logMinDurationStatementMs = -5/],
  ["S3 state backend incomplete", variant(prod, { state: { ...prod.state, bucket: "" } }), /\[prod\/state\] bucket = "": is not a valid S3 bucket name/],
];

describe("bad input fails synth with a message naming environment, field, value and fix", () => {
  test.each(cases)("%s", (_name, env, message) => {
    let err: unknown;
    try {
      build(env);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PgharborConfigError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).toMatch(/Fix: /);
  });

  test(`${cases.length} cases, at least 25`, () => expect(cases.length).toBeGreaterThanOrEqual(25));

  test("all problems of a construct are reported at once", () => {
    expect(() => build(variant(dev, { primary: { rpoSeconds: 0, cpus: -1 } }))).toThrow(/rpoSeconds = 0[\s\S]*\n\[dev\/primary\] cpus = -1|cpus = -1[\s\S]*rpoSeconds = 0/);
  });

  test("duplicate environment names", () => {
    expect(() => buildApp({ environments: [dev, dev] })).toThrow(/\[environments\] name = "dev": two environments share this name/);
  });

  test("duplicate replica names (construct API)", () => {
    const app = Testing.app();
    const stack = new TerraformStack(app, "s");
    const host = new DockerHost(stack, "h", { environment: "t" });
    const archive = new LocalS3Server(stack, "a", { environment: "t", host });
    const primary = new PostgresPrimary(stack, "p", { environment: "t", host, archive });
    new PostgresReplica(stack, "replica-1", { primary });
    const other = new TerraformStack(app, "s2");
    expect(() => new PostgresReplica(other, "replica-1", { primary })).toThrow(/\[t\/replicas\] name = "replica-1": two replicas share this name, and with it a replication slot\. Fix: give every replica its own name\./);
  });
});

describe("reporting", () => {
  test("configuration errors print without a stack trace", () => {
    let out = "";
    const code = reportFailure(new PgharborConfigError("[dev] replicas = -1: bad. Fix: x."), (s) => (out += s));
    expect(code).toBe(1);
    expect(out).toBe("pgharbor: invalid configuration\n[dev] replicas = -1: bad. Fix: x.\n");
    expect(out).not.toMatch(/\n\s+at /);
  });
  test("policy failures print without a stack trace", () => {
    let out = "";
    reportFailure(new Error("Validation failed with the following errors:\n  [dev] PGH-PG-1 WAL archiving on: x"), (s) => (out += s));
    expect(out).toBe("pgharbor: policy check failed\n[dev] PGH-PG-1 WAL archiving on: x\n");
  });
  test("anything else is a bug and keeps its trace", () => {
    let out = "";
    reportFailure(new TypeError("boom"), (s) => (out += s));
    expect(out).toMatch(/internal error[\s\S]*TypeError: boom\n\s+at /);
  });
});
