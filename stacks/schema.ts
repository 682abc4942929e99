/**
 * The run-time schema of an environment config (stacks/environments.ts). `npm run synth` runs with
 * `ts-node --transpile-only`, so TypeScript never checks those files: this schema does, with strict
 * objects, so a typo (`protected: true`, `rpoSecond: 5`) fails synth instead of being ignored.
 *
 * The schema checks shape and types; what a value means (ranges, cron, names, addresses) is checked
 * by each construct's rule table, which has the better message. `EnvironmentConfig` is derived from
 * the schema, and the assertions at the end keep the schema and the construct props in step.
 */
import { z } from "zod";
import type { PostgresPrimaryProps } from "../constructs/postgres-primary";
import type { PostgresReplicaProps } from "../constructs/postgres-replica";
import type { PgBouncerProps } from "../constructs/pgbouncer";
import type { BackupCronProps, LogicalBackupProps, RestoreDrillProps } from "../constructs/backup-cron";
import type { MonitoringProps } from "../constructs/monitoring";
import type { DockerHostProps } from "../constructs/docker-host";
import type { FailoverSettings } from "../constructs/ha-cluster";
import { PgharborConfigError, formatProblem } from "../constructs/errors";
import { nearest } from "../postgres-config/suggest";

/** A choice among literals, with pgharbor's own problem and fix. */
function choice<T extends string>(values: readonly [T, ...T[]], problem: string, fix: string) {
  return z.enum(values, { error: () => `${problem}|${fix}` });
}

const num = z.number();
const str = z.string();
const bool = z.boolean();
/** `acknowledgeRisk`: field → why the risk is accepted (constructs/validation/acknowledgements.ts). */
const acknowledgements = z.record(str, str);
/** Any number, NaN and ±Infinity included: the parameter check names those with a better message. */
const anyNumber = z.custom<number>((v) => typeof v === "number", { error: "a number" });

export const hostSchema = z.strictObject({
  dockerHost: str.optional(),
  privateAddress: str.optional(),
  bindAddress: str.optional(),
  acknowledgeRisk: acknowledgements.optional(),
});

export const primarySchema = z.strictObject({
  host: str.optional(),
  majorVersion: num.optional(),
  memoryMiB: num.optional(),
  cpus: num.optional(),
  maxConnections: num.optional(),
  rpoSeconds: num.optional(),
  maxSlotWalKeepSizeMiB: num.optional(),
  parameters: z.record(str, z.union([str, anyNumber, bool])).optional(),
  appUser: str.optional(),
  appDatabase: str.optional(),
  publishPort: num.optional(),
  archivePushQueueMaxMiB: num.optional(),
  tlsMinVersion: choice(["TLSv1.2", "TLSv1.3"], "is not a TLS version pgharbor allows", 'use "TLSv1.3" (default) or "TLSv1.2" for old clients').optional(),
  logMinDurationStatementMs: num.optional(),
  autoExplainMinDurationMs: num.optional(),
  acknowledgeRisk: acknowledgements.optional(),
});

export const replicaSchema = z.strictObject({
  memoryMiB: num.optional(),
  cpus: num.optional(),
});

export const pgbouncerSchema = z.strictObject({
  host: str.optional(),
  port: num.optional(),
  publishAddress: str.optional(),
  poolMode: choice(["transaction", "session"], 'must be "transaction" or "session"', 'use "transaction" (statement mode breaks multi-statement transactions)').optional(),
  defaultPoolSize: num.optional(),
  reservePoolSize: num.optional(),
  maxClientConnections: num.optional(),
  memoryMiB: num.optional(),
});

const objectLockSchema = z.strictObject({
  mode: choice(["GOVERNANCE", "COMPLIANCE"], 'must be "GOVERNANCE" or "COMPLIANCE"', 'use "GOVERNANCE" (admins may lift it) or "COMPLIANCE" (nobody may)'),
  days: num,
});

export const archiveSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("local-s3"), bucketName: str.optional(), image: str.optional() }),
  z.strictObject({
    kind: z.literal("aws-s3"),
    bucketName: str,
    region: str,
    noncurrentVersionRetentionDays: num.optional(),
    objectLock: objectLockSchema.optional(),
  }),
]);

const logicalSchema = z.strictObject({
  recipients: z.array(str),
  schedule: str.optional(),
  retentionDays: num.optional(),
});

const drillSchema = z.strictObject({
  schedule: str.optional(),
  heartbeatToleranceSeconds: num.optional(),
  recoveryTimeoutSeconds: num.optional(),
});

export const backupSchema = z.strictObject({
  fullSchedule: str.optional(),
  diffSchedule: str.optional(),
  expireSchedule: str.optional(),
  retentionDays: num.optional(),
  retentionFullBackups: num.optional(),
  processMax: num.optional(),
  memoryMiB: num.optional(),
  logical: logicalSchema.optional(),
  drill: z.union([z.literal(false), drillSchema]).optional(),
  initialFullBackup: bool.optional(),
  maintenance: z.union([z.literal(false), z.strictObject({ schedule: str.optional() })]).optional(),
});

export const monitoringSchema = z.strictObject({
  prometheus: bool.optional(),
  probeIntervalSeconds: num.optional(),
  certificateWarningDays: num.optional(),
  topStatements: num.optional(),
  wraparoundWarningAge: num.optional(),
  wraparoundCriticalAge: num.optional(),
  longTransactionSeconds: num.optional(),
  deadTupleRatio: num.optional(),
  deadTupleMinCount: num.optional(),
});

export const stateSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("local") }),
  z.strictObject({
    kind: z.literal("s3"),
    bucket: str,
    key: str,
    region: str,
    /** KMS key (ARN) encrypting the state. Required unless acknowledgeRisk: { kmsKeyId: "<why>" }. */
    kmsKeyId: str.optional(),
    acknowledgeRisk: acknowledgements.optional(),
  }),
]);

export const failoverSchema = z.strictObject({
  mode: choice(["async", "sync"], 'must be "async" or "sync"', 'use "async" (bounded loss, maximumLagOnFailoverBytes) or "sync" (no acknowledged commit lost)'),
  ttl: num.optional(),
  loopWait: num.optional(),
  retryTimeout: num.optional(),
  maximumLagOnFailoverBytes: num.optional(),
  readOnlyMaxLagBytes: num.optional(),
  subnet: str.optional(),
  failsafeMode: bool.optional(),
});

export const environmentSchema = z.strictObject({
  /** Stack name: `cdktf deploy <name>`. Lowercase letters, digits, hyphens. */
  name: str,
  /** Docker hosts by name; the first one is the default host for everything. */
  hosts: z.record(str, hostSchema),
  primary: primarySchema,
  /** Number of streaming replicas. */
  replicas: num,
  /** Hosts the replicas are spread over, round robin. @default - the primary's host */
  replicaHosts: z.array(str).optional(),
  replica: replicaSchema.optional(),
  /** Automatic failover with Patroni and etcd; leave it out for a primary that stays the writer. */
  failover: failoverSchema.optional(),
  pgbouncer: pgbouncerSchema.optional(),
  archive: archiveSchema,
  backup: backupSchema.optional(),
  monitoring: monitoringSchema.optional(),
  state: stateSchema,
  /** Refuse destroying volumes, bucket, key and cipher passphrase. */
  protect: bool,
  /** Host name applications use to reach PgBouncer (DATABASE_URL, PgBouncer's certificate). @default - pgbouncer.publishAddress */
  clientAddress: str.optional(),
  /** Where applications find the CA (ca_cert_pem): DATABASE_URL's sslrootcert. @default - libpq's ~/.postgresql/root.crt */
  clientCaFile: str.optional(),
});

/** One environment, as written in stacks/environments.ts. */
export type EnvironmentConfig = z.input<typeof environmentSchema>;
export type HostConfig = z.input<typeof hostSchema>;
export type ArchiveConfig = z.input<typeof archiveSchema>;
export type StateConfig = z.input<typeof stateSchema>;

/** Sections that configure one construct: their problems are reported under `[<env>/<section>]`. */
const SECTIONS: Record<string, string> = { primary: "primary", replica: "replica", failover: "failover", pgbouncer: "pgbouncer", archive: "archive", backup: "backup", monitoring: "monitoring", state: "state" };

function pathText(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i ? "." : ""}${String(p)}`)).join("");
}

function at(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const p of path) v = v !== null && typeof v === "object" ? (v as Record<PropertyKey, unknown>)[p] : undefined;
  return v;
}

/** Where a problem at `path` is reported: the construct's scope and the field inside it. */
function locate(env: string, path: readonly PropertyKey[]): { scope: string; field: readonly PropertyKey[] } {
  const [first, second] = path;
  if (first === "hosts" && typeof second === "string" && path.length > 2) return { scope: `${env}/hosts.${second}`, field: path.slice(2) };
  if (typeof first === "string" && SECTIONS[first] && path.length > 1) return { scope: `${env}/${SECTIONS[first]}`, field: path.slice(1) };
  return { scope: env, field: path };
}

const TYPE_NAMES: Record<string, string> = { number: "a number", string: "a string", boolean: "a boolean (true or false)", object: "an object", record: "an object (name: value, …)", array: "a list", false: "false" };

function describeExpected(e: string): string {
  return TYPE_NAMES[e] ?? e;
}

/** The shape of a schema, for "valid keys here are …". */
function keysAt(schema: z.ZodType, path: readonly PropertyKey[], value: unknown): string[] {
  let s: z.ZodType | undefined = schema;
  for (const p of path) {
    s = unwrap(s, at(value, path.slice(0, path.indexOf(p))));
    if (!s) return [];
    if (s instanceof z.ZodObject) s = (s.shape as Record<string, z.ZodType>)[String(p)];
    else if (s instanceof z.ZodRecord) s = s.valueType as z.ZodType;
    else if (s instanceof z.ZodArray) s = s.element as z.ZodType;
    else return [];
  }
  s = unwrap(s, at(value, path));
  return s instanceof z.ZodObject ? Object.keys(s.shape) : [];
}

/** Optional → inner; a discriminated union → the member the value's kind selects; a union → its object member. */
function unwrap(s: z.ZodType | undefined, value: unknown): z.ZodType | undefined {
  for (let i = 0; i < 5 && s; i++) {
    if (s instanceof z.ZodOptional) s = s.unwrap() as z.ZodType;
    else if (s instanceof z.ZodDiscriminatedUnion) {
      const kind = (value as { kind?: unknown } | undefined)?.kind;
      s = (s.options as z.ZodType[]).find((o) => o instanceof z.ZodObject && (o.shape as Record<string, z.ZodType>).kind instanceof z.ZodLiteral && ((o.shape as Record<string, z.ZodLiteral>).kind.values as Set<unknown>).has(kind));
    } else if (s instanceof z.ZodUnion) s = (s.options as z.ZodType[]).find((o) => o instanceof z.ZodObject);
    else break;
  }
  return s;
}

interface Problem {
  scope: string;
  field: string;
  value: unknown;
  problem: string;
  fix: string;
}

function explain(env: string, issue: z.core.$ZodIssue, config: unknown): Problem[] {
  const value = at(config, issue.path);
  const where = (path: readonly PropertyKey[]) => {
    const l = locate(env, path);
    return { scope: l.scope, field: pathText(l.field) || "(environment)" };
  };
  switch (issue.code) {
    case "unrecognized_keys":
      return issue.keys.map((key) => {
        const valid = keysAt(environmentSchema, issue.path, config);
        const near = nearest(key, valid);
        const section = issue.path.length ? `a setting of ${pathText(issue.path)}` : "an environment setting";
        return {
          ...where([...issue.path, key]),
          value: at(value, [key]),
          problem: `is not ${section}, so it would be silently ignored`,
          fix: near ? `did you mean "${near}"? Rename it` : `remove it; valid keys here are ${valid.join(", ")}`,
        };
      });
    case "invalid_type":
      return [
        {
          ...where(issue.path),
          value,
          problem: value === undefined ? "is required" : `must be ${describeExpected(issue.expected)}`,
          fix: value === undefined ? `add ${pathText(issue.path)} (${describeExpected(issue.expected)}); stacks/environments.ts shows one for each environment` : `write it as ${describeExpected(issue.expected)}`,
        },
      ];
    case "invalid_value": {
      const [problem, fix] = issue.message.includes("|") ? issue.message.split("|") : [`must be ${issue.values.map((v) => JSON.stringify(v)).join(" or ")}`, `use ${issue.values.map((v) => JSON.stringify(v)).join(" or ")}`];
      return [{ ...where(issue.path), value, problem, fix }];
    }
    case "invalid_union": {
      const noMatch = issue as unknown as { note?: string; options?: unknown[] };
      if (noMatch.note === "No matching discriminator") {
        const options = (noMatch.options ?? []).map((o) => JSON.stringify(o));
        const kind = at(config, [...issue.path]);
        return [{ ...where(issue.path), value: kind, problem: `must be ${options.join(" or ")}`, fix: `use one of ${options.join(", ")}` }];
      }
      const expected = issue.errors.flatMap((branch) => branch.filter((i) => i.path.length === 0 && (i.code === "invalid_type" || i.code === "invalid_value" || i.code === "custom")).map((i) => (i.code === "invalid_type" ? describeExpected(i.expected) : i.code === "custom" ? i.message : (i as z.core.$ZodIssueInvalidValue).values.map((v) => JSON.stringify(v)).join(" or "))));
      const list = expected.length > 1 ? `${expected.slice(0, -1).join(", ")} or ${expected[expected.length - 1]}` : (expected[0] ?? "a valid value");
      return [{ ...where(issue.path), value, problem: `must be ${list}`, fix: `write it as ${list}` }];
    }
    default:
      return [{ ...where(issue.path), value, problem: issue.message, fix: "correct it against stacks/schema.ts" }];
  }
}

/**
 * Checks one environment config against the schema. Throws one PgharborConfigError naming every
 * problem (environment, field, value, fix), so no unknown or mistyped key is silently ignored.
 */
export function checkEnvironmentShape(config: unknown): asserts config is EnvironmentConfig {
  const env = typeof (config as { name?: unknown })?.name === "string" && (config as { name: string }).name ? (config as { name: string }).name : "environment";
  if (config === null || typeof config !== "object" || Array.isArray(config)) {
    throw new PgharborConfigError(formatProblem(env, { field: "(environment)", value: config, problem: "must be an object", fix: "write the environment as { name, hosts, primary, replicas, archive, state, protect, … }" }));
  }
  const r = environmentSchema.safeParse(config);
  if (r.success) return;
  const problems = r.error.issues.flatMap((i) => explain(env, i, config));
  throw new PgharborConfigError(problems.map((p) => formatProblem(p.scope, p)).join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Compile-time: the schema and the construct props describe the same settings. Adding a prop to a
// construct without adding it here (or saying why not) is a type error, and so is a schema field no
// construct takes (the stack spreads each section into its construct's props).
// ---------------------------------------------------------------------------------------------
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Keys<T> = keyof z.input<T extends z.ZodType ? T : never>;
/** Props the stack sets itself, from other parts of the environment. */
type PrimaryFromStack = "environment" | "host" | "archive" | "ca" | "protectData" | "cluster";
export const schemaMatchesProps: [
  Same<Exclude<Keys<typeof primarySchema>, "host">, Exclude<keyof PostgresPrimaryProps, PrimaryFromStack>>,
  Same<Keys<typeof replicaSchema>, Exclude<keyof PostgresReplicaProps, "primary" | "host" | "protectData" | "publishPort">>,
  // clientAddress and clientCaFile sit at the environment's top level (they are about the applications).
  Same<Exclude<Keys<typeof pgbouncerSchema>, "host">, Exclude<keyof PgBouncerProps, "primary" | "replicas" | "host" | "clientAddress" | "clientCaFile">>,
  Same<Keys<typeof backupSchema>, Exclude<keyof BackupCronProps, "primary">>,
  Same<keyof z.input<typeof logicalSchema>, keyof LogicalBackupProps>,
  Same<keyof z.input<typeof drillSchema>, keyof RestoreDrillProps>,
  Same<Keys<typeof monitoringSchema>, Exclude<keyof MonitoringProps, "primary" | "replicas" | "pgbouncer" | "backup" | "host">>,
  Same<Keys<typeof hostSchema>, Exclude<keyof DockerHostProps, "environment">>,
  Same<Keys<typeof failoverSchema>, keyof FailoverSettings>,
] = [true, true, true, true, true, true, true, true, true];
