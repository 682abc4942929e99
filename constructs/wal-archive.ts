import { ITerraformDependable } from "cdktf";
import { ContainerUpload } from "@cdktf/provider-docker/lib/container";
import { RepoSettings } from "../postgres-config/pgbackrest-conf";
import { DockerHost } from "./docker-host";

/**
 * Where WAL and backups go: an S3 (or S3-compatible) repository pgBackRest writes to with client-side
 * AES-256 encryption. Consumers (primary, replicas, backup container) take this object, never a URL.
 */
export interface IWalArchive {
  /** "aws-s3" or "local-s3"; policy rules and docs use it. */
  readonly kind: "aws-s3" | "local-s3";
  /** Repository settings as seen from a container on `host`. */
  repoFor(host: DockerHost): RepoSettings;
  /**
   * Environment entries (Terraform references, never values) carrying the repository secrets for one
   * kind of access: "write" may put, get and list (primary, backups) but never delete; "read" may get
   * and list (replicas, restores).
   */
  containerEnv(access: ArchiveAccess): string[];
  /** PGHARBOR_EXPIRER_S3_KEY/_SECRET: the only credentials that may delete, for the expire job. */
  expirerEnv(): string[];
  /** Files the containers need to talk to the repository (e.g. a private CA). */
  containerUploads(): ContainerUpload[];
  /** Resources that must exist before a container uses the repository. */
  readonly dependables: ITerraformDependable[];
}

export type ArchiveAccess = "write" | "read";

/** Where the expire job finds the deleting credentials. */
export const EXPIRER_ENV = { key: "PGHARBOR_EXPIRER_S3_KEY", secret: "PGHARBOR_EXPIRER_S3_KEY_SECRET" } as const;

/** Bucket prefix of an environment's repository. */
export function repoPath(environment: string): string {
  return `/pgharbor/${environment}`;
}

/** S3 bucket naming rules (the subset that matters for a new general-purpose bucket). */
export function bucketNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return "must be 3 to 63 characters long";
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name)) return "may hold only lowercase letters, digits, dots and hyphens, and must start and end with a letter or digit";
  if (/\.\./.test(name) || /^\d+\.\d+\.\d+\.\d+$/.test(name)) return "must not hold two adjacent dots or look like an IP address";
  if (name.includes(".")) return "must not hold dots (virtual-host TLS certificates do not cover dotted names)";
  return undefined;
}
