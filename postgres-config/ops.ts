/**
 * The settings file of the backup container's operations tool (images/backup/pgharbor_ops.py:
 * logical backups, restore drills, the recoverability window). Settings carry no secrets: the tool
 * takes the bucket credentials from the container's environment.
 */
import { CONTAINER_PATHS as P, PROGRAMS, STANZA } from "./paths";
import { RepoSettings } from "./pgbackrest-conf";
import { ROLE_NAMES } from "./roles";

export interface LogicalSettings {
  /** age recipients (public keys): whoever holds a matching identity can restore; nobody else can. */
  recipients: string[];
  retentionDays: number;
}

export interface DrillSettings {
  /** The newest heartbeat in the restored copy may be at most this much older than the target. */
  heartbeatToleranceSeconds: number;
  /** Targets stay this far before the newest archived WAL (a time target needs a commit after it). */
  marginSeconds: number;
  recoveryTimeoutSeconds: number;
  sharedBuffersMiB: number;
  /** Port of the scratch server's Unix socket (it listens on no TCP address). */
  port: number;
}

export interface OpsConfigInput {
  environment: string;
  repo: RepoSettings;
  appDatabase: string;
  logical?: LogicalSettings;
  drill: DrillSettings;
  /** The replicas' application_name values: `health` expects each one streaming. */
  replicas: readonly string[];
}

export function renderOpsConfig(i: OpsConfigInput): string {
  const doc = {
    environment: i.environment,
    stanza: STANZA,
    pgbackrestConf: P.pgbackrestConf,
    restoreScript: PROGRAMS.restore,
    statusDir: P.statusDir,
    scratchDir: P.restoreScratchDir,
    socketDir: P.socketDir,
    appDatabase: i.appDatabase,
    bucket: i.repo.bucket,
    endpoint: i.repo.endpoint,
    port: i.repo.port,
    region: i.repo.region,
    uriStyle: i.repo.uriStyle,
    path: i.repo.path,
    verifyTls: i.repo.verifyTls,
    caFile: i.repo.caFile,
    kmsKeyId: i.repo.kmsKeyId,
    partSizeMiB: 64,
    logical: i.logical ?? null,
    drill: i.drill,
    replicas: [...i.replicas],
    // pgharbor's own roles: `queries` leaves their statements out unless asked (--all-roles).
    serviceRoles: ["postgres", ...Object.values(ROLE_NAMES)],
  };
  return JSON.stringify(doc, null, 2) + "\n";
}

/** age X25519 recipients: "age1" + 58 bech32 characters. */
export const AGE_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;
