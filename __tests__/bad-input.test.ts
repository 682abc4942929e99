/**
 * Issue 11: nothing wrong or dangerous synthesises silently. One table per class of bad input; every
 * case is an environment a user could write and the message pgharbor answers with (environment,
 * field, value, problem, fix), never a stack trace.
 */
import { buildApp } from "../stacks/app";
import { EnvironmentConfig } from "../stacks/environments";
import { PgharborConfigError } from "../constructs/errors";
import { dev, prod, staging, variant } from "./helpers";

type Case = [string, unknown, RegExp];

function refusal(env: unknown, others: unknown[] = []): Error {
  try {
    buildApp({ environments: [env, ...others] as EnvironmentConfig[], outdir: "/tmp/pgharbor-bad-input-unused" });
  } catch (e) {
    return e as Error;
  }
  throw new Error("synthesised without an error");
}

function expectRefused(env: unknown, message: RegExp, others: unknown[] = []): void {
  const e = refusal(env, others);
  expect(e).toBeInstanceOf(PgharborConfigError);
  expect(e.message).toMatch(message);
  for (const line of e.message.split("\n")) expect(line).toMatch(/^\[[a-z0-9/.-]+\] .+ = .+: .+\. Fix: .+\.$/);
}

/** A deep patch: `{ primary: { … } }` merges into the base's primary. */
const v = (base: EnvironmentConfig, patch: Record<string, unknown>) => variant(base, patch) as unknown;

export const class1: Case[] = [
  ["typo of protect on prod", { ...prod, protected: true }, /^\[prod\] protected = true: is not an environment setting, so it would be silently ignored\. Fix: did you mean "protect"\? Rename it\.$/],
  ["typo of rpoSeconds", v(dev, { primary: { rpoSecond: 5 } }), /^\[dev\/primary\] rpoSecond = 5: is not a setting of primary.*Fix: did you mean "rpoSeconds"\?/],
  ["wrong case of a key", v(dev, { primary: { maxconnections: 80 } }), /\[dev\/primary\] maxconnections = 80: .*did you mean "maxConnections"/],
  ["unknown key without a near one", v(dev, { pgbouncer: { colour: "blue" } }), /\[dev\/pgbouncer\] colour = "blue": is not a setting of pgbouncer.*Fix: remove it; valid keys here are host, port, publishAddress/],
  ["typo inside a host", v(dev, { hosts: { local: { dockerhost: "unix:///var/run/docker.sock" } } }), /\[dev\/hosts\.local\] dockerhost = .*did you mean "dockerHost"/],
  ["typo inside the archive", v(staging, { archive: { ...staging.archive, regoin: "eu-west-1" } }), /\[staging\/archive\] regoin = "eu-west-1": .*did you mean "region"/],
  ["typo inside objectLock", v(prod, { archive: { ...prod.archive, objectLock: { mode: "GOVERNANCE", day: 14 } } }), /\[prod\/archive\] objectLock\.days = \(unset\): is required[\s\S]*objectLock\.day = 14: .*did you mean "days"/],
  ["typo inside backup.logical", v(dev, { backup: { logical: { recipients: dev.backup!.logical!.recipients, retentionDay: 3 } } }), /\[dev\/backup\] logical\.retentionDay = 3: .*did you mean "retentionDays"/],
  ["typo inside drill", v(dev, { backup: { drill: { schedul: "0 4 * * 6" } } }), /\[dev\/backup\] drill\.schedul = .*did you mean "schedule"/],
  ["typo inside monitoring", v(dev, { monitoring: { probeInterval: 10 } }), /\[dev\/monitoring\] probeInterval = 10: .*did you mean "probeIntervalSeconds"/],
  ["typo inside state", v(prod, { state: { ...prod.state, buckets: "x" } }), /\[prod\/state\] buckets = "x": .*did you mean "bucket"/],
  ["replica section key the replica construct has no use for", v(dev, { replica: { memoryMiB: 512, protectData: true } }), /\[dev\/replica\] protectData = true: is not a setting of replica/],
  ["number as a string", v(dev, { replicas: "2" }), /^\[dev\] replicas = "2": must be a number\. Fix: write it as a number\.$/],
  ["boolean as a string", { ...prod, protect: "yes" }, /^\[prod\] protect = "yes": must be a boolean \(true or false\)/],
  ["parameter value that is an object", v(dev, { primary: { parameters: { work_mem: { mb: 64 } } } }), /\[dev\/primary\] parameters\.work_mem = \{"mb":64\}: must be a string, a number or a boolean/],
  ["recipients not a list", v(dev, { backup: { logical: { recipients: "age1x22sas7ypvznx95hsgmlvqtv3hmfk8g6s9qfq4rp530xa497sqhqyuk8zm" } } }), /\[dev\/backup\] logical\.recipients = "age1.*": must be a list/],
  ["drill: true", v(dev, { backup: { drill: true } }), /\[dev\/backup\] drill = true: must be false or an object/],
  ["NaN", v(dev, { primary: { memoryMiB: NaN } }), /\[dev\/primary\] memoryMiB = NaN: must be a number/],
  ["Infinity", v(dev, { primary: { maxConnections: Infinity } }), /\[dev\/primary\] maxConnections = Infinity: must be a number/],
  ["state kind unknown", v(dev, { state: { kind: "consul" } }), /\[dev\/state\] kind = "consul": must be "local" or "s3"/],
];

export const class7: Case[] = [
  ["no primary", { ...dev, primary: undefined }, /^\[dev\] primary = \(unset\): is required\. Fix: add primary \(an object\)/],
  ["no state", { ...dev, state: undefined }, /^\[dev\] state = \(unset\): is required\. Fix: add state/],
  ["no archive", { ...dev, archive: undefined }, /^\[dev\] archive = \(unset\): is required/],
  ["no hosts", { ...dev, hosts: undefined }, /^\[dev\] hosts = \(unset\): is required/],
  ["no name", { ...dev, name: undefined }, /^\[environment\] name = \(unset\): is required/],
  ["hosts: null", { ...dev, hosts: { local: null } }, /\[dev\] hosts\.local = null: must be an object/],
  ["environment not an object", "dev", /^\[environment\] \(environment\) = "dev": must be an object/],
  ["aws-s3 without a bucket name", { ...staging, archive: { kind: "aws-s3", region: "eu-west-1" } }, /\[staging\/archive\] bucketName = \(unset\): is required/],
];

export const class2: Case[] = [
  ["role named after a reserved keyword", v(dev, { primary: { appUser: "user" } }), /^\[dev\/primary\] appUser = "user": is an SQL keyword, reserved in PostgreSQL: every statement, PgBouncer and each client would have to quote it\. Fix: use a name like "app"/],
  ["role named order", v(dev, { primary: { appUser: "order" } }), /appUser = "order": is an SQL keyword, reserved/],
  ["database named select", v(dev, { primary: { appDatabase: "select" } }), /\[dev\/primary\] appDatabase = "select": is an SQL keyword/],
  ["role named left (function or type names only)", v(dev, { primary: { appUser: "left" } }), /appUser = "left": is an SQL keyword, reserved \(function or type names only\)/],
  ["database named int (column names only)", v(dev, { primary: { appDatabase: "int" } }), /appDatabase = "int": is an SQL keyword, reserved \(column names only\)/],
  ["role current_user targets the superuser", v(dev, { primary: { appUser: "current_user" } }), /appUser = "current_user": is a special name \(as a role it names whoever runs the statement: the superuser during role reconciliation\)/],
  ["role session_user", v(dev, { primary: { appUser: "session_user" } }), /appUser = "session_user": is a special name/],
  ["role current_role", v(dev, { primary: { appUser: "current_role" } }), /appUser = "current_role": is a special name/],
  ["role public", v(dev, { primary: { appUser: "public" } }), /appUser = "public": is a special name \(PUBLIC means every role/],
  ["database public", v(dev, { primary: { appDatabase: "public" } }), /appDatabase = "public": is a special name/],
  ["role none", v(dev, { primary: { appUser: "none" } }), /appUser = "none": is a special name \(PostgreSQL reserves the role name NONE\)/],
  ["role pg_ prefix", v(dev, { primary: { appUser: "pg_app" } }), /appUser = "pg_app": starts with "pg_", which PostgreSQL reserves/],
  ["database pg_ prefix", v(dev, { primary: { appDatabase: "pg_shop" } }), /appDatabase = "pg_shop": starts with "pg_"/],
  ["role pgharbor prefix", v(dev, { primary: { appUser: "pgharbor_app" } }), /appUser = "pgharbor_app": starts with "pgharbor", which pgharbor reserves/],
  ["role replicator", v(dev, { primary: { appUser: "replicator" } }), /appUser = "replicator": is a special name \(it is pgharbor's replication role\)/],
  ["database template1", v(dev, { primary: { appDatabase: "template1" } }), /appDatabase = "template1": is a special name \(it is a template database\)/],
  ["role whose _ro role passes 63 bytes", v(dev, { primary: { appUser: "a".repeat(61) } }), /appUser = "a{61}": is 61 bytes: pgharbor derives "aaaaaaaa…_ro" from it, and PostgreSQL truncates names past 63 bytes\. Fix: use at most 60 bytes/],
  ["database whose PgBouncer _ro name passes 63 bytes", v(dev, { primary: { appDatabase: "d".repeat(62) } }), /appDatabase = "d{62}": is 62 bytes.*Fix: use at most 60 bytes/],
  ["uppercase role", v(dev, { primary: { appUser: "App" } }), /appUser = "App": must be a lowercase SQL identifier/],
  ["role starting with a digit", v(dev, { primary: { appUser: "1app" } }), /appUser = "1app": must be a lowercase SQL identifier/],
  ["empty role", v(dev, { primary: { appUser: "" } }), /appUser = "": must be a lowercase SQL identifier/],
  ["role with a quote", v(dev, { primary: { appUser: 'app"; DROP ROLE postgres; --' } }), /appUser = .*: must be a lowercase SQL identifier/],
];

describe("class 2: SQL identifiers", () => {
  test.each(class2)("%s", (_n, env, message) => expectRefused(env, message));
  test.each([["data (an unreserved keyword)", "data"], ["60 bytes", "a".repeat(60)], ["underscores", "shop_eu_1"]])("allowed: %s", (_n, name) => {
    expect(() => buildApp({ environments: [variant(dev, { primary: { appUser: name, appDatabase: name } })], outdir: "/tmp/pgharbor-bad-input-unused" })).not.toThrow();
  });
});

describe("class 1: unknown or mistyped keys fail synth with the path and the nearest valid key", () => {
  test.each(class1)("%s", (_n, env, message) => expectRefused(env, message));
  test("every problem of an environment is listed, each on its own line", () => {
    const e = refusal({ ...prod, protected: true, primary: { ...prod.primary, rpoSecond: 5 } });
    expect(e.message.split("\n")).toHaveLength(2);
  });
});

describe("class 7: no stack trace, whatever is missing", () => {
  test.each(class7)("%s", (_n, env, message) => expectRefused(env, message));
});
