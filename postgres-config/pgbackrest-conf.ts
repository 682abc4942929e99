/**
 * pgbackrest.conf rendering. Secrets (repo1-cipher-pass, repo1-s3-key, repo1-s3-key-secret) never
 * appear here: pgBackRest reads them from PGBACKREST_REPO1_* environment variables.
 */
import { CONTAINER_PATHS, STANZA } from "./paths";
import { ROLE_NAMES } from "./roles";

export interface RepoSettings {
  bucket: string;
  /** Host name of the S3 endpoint (no scheme, no port). */
  endpoint: string;
  /** TCP port of the endpoint. */
  port: number;
  region: string;
  uriStyle: "host" | "path";
  /** Prefix inside the bucket, e.g. `/pgharbor/dev`. */
  path: string;
  /** Verify the endpoint's TLS certificate. */
  verifyTls: boolean;
  /** CA bundle in the container to verify the endpoint with (a private CA, as in dev). */
  caFile?: string;
  /** SSE-KMS key id/ARN for server-side encryption (AWS). */
  kmsKeyId?: string;
}

export type Retention = { kind: "count"; fullBackups: number } | { kind: "time"; days: number };

export interface PgbackrestInput {
  repo: RepoSettings;
  /** Only the backup container expires backups, so only its file carries retention. */
  retention?: Retention;
  role: "primary" | "replica" | "backup";
  /** Parallel processes for backup/restore/async archiving. */
  processMax: number;
  /** zstd level. */
  compressLevel: number;
  /**
   * Primary: stop queueing WAL for the archive past this size and DROP it (pgBackRest's
   * archive-push-queue-max). Unset: WAL is kept in pg_wal until the bucket is back.
   */
  archivePushQueueMaxMiB?: number;
}

/** Environment variable names pgBackRest reads its secrets from. */
export const PGBACKREST_SECRET_ENV = {
  cipherPass: "PGBACKREST_REPO1_CIPHER_PASS",
  s3Key: "PGBACKREST_REPO1_S3_KEY",
  s3KeySecret: "PGBACKREST_REPO1_S3_KEY_SECRET",
} as const;

export function renderPgbackrestConf(input: PgbackrestInput): string {
  const { repo } = input;
  const g: Array<[string, string | number | undefined]> = [
    ["repo1-type", "s3"],
    ["repo1-path", repo.path],
    ["repo1-s3-bucket", repo.bucket],
    ["repo1-s3-endpoint", repo.endpoint],
    ["repo1-storage-port", repo.port],
    ["repo1-s3-region", repo.region],
    ["repo1-s3-uri-style", repo.uriStyle],
    ["repo1-storage-verify-tls", repo.verifyTls ? "y" : "n"],
    ["repo1-storage-ca-file", repo.caFile],
    ["repo1-s3-kms-key-id", repo.kmsKeyId],
    ["repo1-cipher-type", "aes-256-cbc"],
    ["repo1-retention-full-type", input.retention?.kind],
    ["repo1-retention-full", input.retention && (input.retention.kind === "count" ? input.retention.fullBackups : input.retention.days)],
    ["repo1-bundle", "y"],
    ["compress-type", "zst"],
    ["compress-level", input.compressLevel],
    ["process-max", input.processMax],
    ["archive-async", "y"],
    ["spool-path", CONTAINER_PATHS.pgbackrestSpool],
    ["lock-path", CONTAINER_PATHS.pgbackrestLock],
    // archive-push/get run for every WAL segment and print to the server log: warnings only there.
    ["log-level-console", input.role === "backup" ? "info" : "warn"],
    ["log-level-stderr", "warn"],
    ["log-level-file", "off"],
    ["start-fast", "y"],
    ["delta", "y"],
  ];
  if (input.role === "primary" && input.archivePushQueueMaxMiB !== undefined) {
    g.push(["archive-push-queue-max", `${input.archivePushQueueMaxMiB}MiB`]);
  }
  if (input.role === "replica") g.push(["archive-get-queue-max", "256MiB"]);
  // Backups never delete: expiry runs on its own, with the only credentials allowed to delete.
  if (input.role === "backup") g.push(["expire-auto", "n"]);
  const stanza: Array<[string, string | number | undefined]> = [
    ["pg1-path", CONTAINER_PATHS.dataDir],
    ["pg1-socket-path", CONTAINER_PATHS.socketDir],
    ["pg1-port", 5432],
  ];
  if (input.role === "backup") stanza.push(["pg1-user", ROLE_NAMES.backup]);
  const fmt = (rows: Array<[string, string | number | undefined]>) =>
    rows.filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
  return [
    `# pgbackrest.conf rendered by pgharbor (${input.role}). Secrets come from ${Object.values(PGBACKREST_SECRET_ENV).join(", ")}.`,
    "[global]",
    ...fmt(g),
    "",
    `[${STANZA}]`,
    ...fmt(stanza),
  ].join("\n") + "\n";
}
