/**
 * What `pgharbor review` says, as data: the JSON it prints with `--format json` is exactly a `Review`
 * (README, "Reviewing a change", documents each field). Other tools may read it: fields are only ever
 * added within one `schemaVersion`.
 */

/** The synthesised stacks of one revision: environment name → its cdk.tf.json, parsed. */
export interface SynthesisedApp {
  /** What the revision is, for the reader: "main (3f2a1c9)", "working tree". */
  readonly label?: string;
  readonly stacks: Readonly<Record<string, StackJson>>;
}

/** A synthesised Terraform JSON stack (cdk.tf.json). */
export interface StackJson {
  resource?: Record<string, Record<string, Record<string, unknown>>>;
  data?: Record<string, Record<string, Record<string, unknown>>>;
  output?: Record<string, Record<string, unknown>>;
  [k: string]: unknown;
}

export const REVIEW_SCHEMA_VERSION = 1;

export interface Review {
  readonly schemaVersion: typeof REVIEW_SCHEMA_VERSION;
  readonly base: string;
  readonly head: string;
  /** 1 when an environment holds a blocker that was not accepted (`--accept`), else 0. */
  readonly exitCode: 0 | 1;
  /** Blockers not accepted, over every environment. */
  readonly blockers: number;
  readonly environments: EnvironmentReview[];
}

export interface EnvironmentReview {
  readonly name: string;
  /** "unchanged": the stack's JSON is the same (metadata aside); "added"/"removed": the whole stack. */
  readonly status: "unchanged" | "changed" | "added" | "removed";
  /** One line: what the change does to this environment. */
  readonly summary: string;
  readonly blockers: Blocker[];
  readonly downtime: ContainerImpact[];
  readonly settings: SettingChange[];
  readonly exposure: ExposureChange[];
  readonly secrets: SecretChange[];
  readonly policy: PolicyChange[];
  readonly alerts: AlertChange[];
  readonly backups: BackupChange[];
  /** Every resource Terraform would touch, with the action the provider schemas imply. */
  readonly resources: ResourceChange[];
}

export type Action = "create" | "delete" | "replace" | "update";

/** How a changed attribute reaches the real object (from the provider's schema and update code). */
export type Effect =
  /** ForceNew / RequiresReplace: the resource is destroyed and created again. */
  | "replace"
  /** Updated in place, and the running object takes it (docker update for a container's memory). */
  | "in-place"
  /** Updated in Terraform's state only: the running container keeps the old value until it is replaced. */
  | "state-only";

export interface AttributeChange {
  /** Top-level attribute, or attribute:key for uploads (file path) and env (variable name). */
  readonly attribute: string;
  readonly effect: Effect;
  /** What changes, for a person: "postgresql.conf changed", "4096 → 6144". */
  readonly detail: string;
  /** The resource whose regeneration makes this value unknown, when that is why it changes. */
  readonly via?: string;
}

export interface ResourceChange {
  /** Terraform address: `docker_container.primary_container_4A2A61FF`, `data.aws_iam_policy_document.…`. */
  readonly address: string;
  /** The construct path (`prod/primary/container`). */
  readonly path: string;
  readonly action: Action;
  readonly changes: AttributeChange[];
}

export type Role = "primary" | "replica" | "pgbouncer" | "backup" | "s3" | "monitoring" | "other";

export interface ContainerImpact {
  /** Container name, e.g. pgharbor-prod-primary. */
  readonly container: string;
  readonly address: string;
  readonly role: Role;
  readonly action: Action;
  /** True when the running process stops (replace, delete). */
  readonly restarts: boolean;
  /** Why, one item per cause. */
  readonly reasons: string[];
  /** What it means for clients. */
  readonly means: string;
  /** Rough upper bound of the interruption, seconds (primary, replicas, PgBouncer); see README. */
  readonly interruptionSeconds?: number;
  /** Set when a reload would have applied everything that replaces this container: the restart is avoidable. */
  readonly avoidable?: string;
}

/** How PostgreSQL or PgBouncer takes a new value of a setting. */
export type Applies = "reload" | "restart" | "fixed";

export interface SettingChange {
  readonly server: "postgresql" | "pgbouncer";
  readonly name: string;
  /** null: not in the file. */
  readonly old: string | null;
  readonly new: string | null;
  /** Containers whose file changes this way. */
  readonly containers: string[];
  /** pg_settings.context for the major (postmaster, sighup, superuser, user, backend, …); for PgBouncer "changeable" or "boot" (SHOW CONFIG). */
  readonly context: string;
  /** What the server needs to take it. */
  readonly needs: Applies;
  /** needs, for a person: "restart", "reload", "reload (superuser-only per session)". */
  readonly needsText: string;
  /** What the deploy really does to get it there: "restart (container replaced)", "reload". */
  readonly applied: string;
}

export interface Blocker {
  /** Stable id, for `--accept`: "<env>:<address>" or "<env>:<topic>". */
  readonly id: string;
  readonly kind: "stateful-destroyed" | "stateful-replaced" | "protection-off" | "retention-shortened" | "rpo-loosened" | "major-upgrade";
  /** The exact resource (address, and the object's own name where it has one). */
  readonly resource: string;
  readonly what: string;
  /** The way to do it safely. */
  readonly safely: string;
  readonly accepted: boolean;
}

export interface ExposureChange {
  readonly kind: "port" | "pg_hba" | "tls" | "iam" | "bucket-policy" | "principal" | "public-access";
  /** True when something becomes reachable or weaker; false for a tightening, listed for completeness. */
  readonly loosened: boolean;
  readonly what: string;
  readonly resource: string;
}

export interface SecretChange {
  readonly resource: string;
  readonly kind: "password" | "cipher-passphrase" | "access-key" | "private-key" | "certificate" | "ca";
  readonly action: "regenerated" | "new" | "removed";
  /** Whose secret: "the app role's password (PGHARBOR_APP_PASSWORD)". */
  readonly what: string;
  /** Who must pick up the new value. */
  readonly clients: string[];
}

export interface PolicyChange {
  readonly rule: string;
  readonly title: string;
  readonly level: "error" | "warning";
  readonly status: "new" | "resolved";
  readonly subject: string;
  readonly detail: string;
}

export interface AlertChange {
  readonly alert: string;
  readonly change: "added" | "removed" | "changed";
  readonly detail: string;
}

export interface BackupChange {
  readonly topic: "schedule" | "retention" | "drill" | "logical" | "object-lock" | "versions" | "rpo" | "other";
  readonly what: string;
  readonly old: string | null;
  readonly new: string | null;
}
