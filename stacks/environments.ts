/**
 * The environments pgharbor deploys. Differences between environments are data, here; the constructs
 * never ask which environment they are in. Replace the example hosts, addresses and bucket names
 * with yours before `cdktf deploy staging|prod`.
 */
import type { EnvironmentConfig } from "./schema";

export type { ArchiveConfig, EnvironmentConfig, HostConfig, StateConfig } from "./schema";

/**
 * age public keys logical backups are encrypted to, per environment. These are pgharbor's examples:
 * nobody holds their private keys, so REPLACE them with your team's (`age-keygen -o restore-key.txt`
 * prints the public key; keep the file in your password manager or vault, never in this repository).
 */
const LOGICAL_RECIPIENTS: Record<string, string[]> = {
  dev: ["age1x22sas7ypvznx95hsgmlvqtv3hmfk8g6s9qfq4rp530xa497sqhqyuk8zm"],
  staging: ["age1meapyl5se26zchc986zjf5r30m5ggtzafydya7we0xplz95e3p0qw6ljgu"],
  prod: ["age166q0nadzdc35f3sdyrz5cfd3gr63h40ctmcfdpsytwkzyj39v96s07he9g"],
};

export const dev: EnvironmentConfig = {
  name: "dev",
  hosts: { local: {} },
  primary: { memoryMiB: 512, cpus: 1, maxConnections: 50, rpoSeconds: 60 },
  replicas: 1,
  replica: { memoryMiB: 512 },
  pgbouncer: { port: 6432, publishAddress: "127.0.0.1", defaultPoolSize: 10, reservePoolSize: 2 },
  archive: { kind: "local-s3" },
  backup: { retentionDays: 7, logical: { recipients: LOGICAL_RECIPIENTS.dev, retentionDays: 7 } },
  state: { kind: "local" },
  protect: false,
  clientAddress: "localhost",
};

export const staging: EnvironmentConfig = {
  name: "staging",
  hosts: { "staging-db": { dockerHost: "ssh://deploy@staging-db.example.internal", privateAddress: "10.20.0.10" } },
  primary: { memoryMiB: 4096, cpus: 2, maxConnections: 200, rpoSeconds: 60 },
  replicas: 1,
  pgbouncer: { port: 6432, publishAddress: "10.20.0.10", defaultPoolSize: 40, reservePoolSize: 10 },
  archive: { kind: "aws-s3", bucketName: "example-pgharbor-staging-wal", region: "eu-west-1" },
  backup: { retentionDays: 14, logical: { recipients: LOGICAL_RECIPIENTS.staging, retentionDays: 14 } },
  state: { kind: "s3", bucket: "example-pgharbor-tfstate", key: "staging/terraform.tfstate", region: "eu-west-1", kmsKeyId: "arn:aws:kms:eu-west-1:111122223333:alias/example-pgharbor-tfstate" },
  protect: false,
};

export const prod: EnvironmentConfig = {
  name: "prod",
  hosts: {
    "db-1": { dockerHost: "ssh://deploy@db-1.example.internal", privateAddress: "10.30.0.11" },
    "db-2": { dockerHost: "ssh://deploy@db-2.example.internal", privateAddress: "10.30.0.12" },
    "db-3": { dockerHost: "ssh://deploy@db-3.example.internal", privateAddress: "10.30.0.13" },
  },
  primary: { host: "db-1", memoryMiB: 16384, cpus: 4, maxConnections: 300, rpoSeconds: 30, maxSlotWalKeepSizeMiB: 16384 },
  replicas: 2,
  replicaHosts: ["db-2", "db-3"],
  pgbouncer: { host: "db-1", port: 6432, publishAddress: "10.30.0.11", defaultPoolSize: 80, reservePoolSize: 20, maxClientConnections: 5000 },
  archive: { kind: "aws-s3", bucketName: "example-pgharbor-prod-wal", region: "eu-west-1", noncurrentVersionRetentionDays: 60, objectLock: { mode: "GOVERNANCE", days: 14 } },
  backup: { fullSchedule: "0 1 * * 0", diffSchedule: "0 1 * * 1-6", retentionDays: 35, processMax: 4, logical: { recipients: LOGICAL_RECIPIENTS.prod, retentionDays: 35 } },
  state: { kind: "s3", bucket: "example-pgharbor-tfstate", key: "prod/terraform.tfstate", region: "eu-west-1", kmsKeyId: "arn:aws:kms:eu-west-1:111122223333:alias/example-pgharbor-tfstate" },
  protect: true,
};

export const ENVIRONMENTS: readonly EnvironmentConfig[] = [dev, staging, prod];
