/**
 * The parameter catalogue and keyword list pgharbor validates against are what a running
 * PostgreSQL 17 says: pg_settings (name, context, type, unit, range, enum values, category) and
 * pg_get_keywords(). Started with pgharbor's own postgresql.conf, so pg_stat_statements' parameters
 * are listed and every parameter pgharbor renders is accepted.
 */
import { CATALOGUE_QUERY, ServerCatalogue, SettingRow } from "../../../postgres-config/catalogue/generate";
import { PG17_SETTINGS } from "../../../postgres-config/catalogue/pg17";
import { NON_UNRESERVED_KEYWORDS } from "../../../postgres-config/catalogue/keywords";
import { MANAGED_PARAMETERS, RISKY_VALUES } from "../../../postgres-config/parameter-policy";
import { majorsKnowing } from "../../../postgres-config/parameter-catalogue";
import { deriveMemorySettings, renderPostgresqlConf } from "../../../postgres-config/postgresql-conf";
import { renderPgHba, renderPgIdent } from "../../../postgres-config/pg-hba";
import { Postgres17Engine, superuserPsql } from "./engine";

export interface CatalogueReport {
  serverVersion: string;
  /** Every way the committed catalogue differs from the server (empty when they agree). */
  differences: string[];
  /** Lines of the server log that complain about pgharbor's postgresql.conf. */
  configComplaints: string[];
}

/** pgharbor's postgresql.conf for a PostgreSQL 17 primary, as the stack renders it. */
export function primaryConf(parameters: Record<string, string | number | boolean> = {}): string {
  return renderPostgresqlConf({
    major: 17,
    role: "primary",
    maxConnections: 50,
    memory: deriveMemorySettings(1024, 50),
    replicaCount: 1,
    archiveTimeoutSeconds: 50,
    maxSlotWalKeepSizeMiB: 1024,
    stanza: "pgharbor",
    tlsMinVersion: "TLSv1.3",
    logMinDurationStatementMs: -1,
    autoExplainMinDurationMs: 1000,
    parameters,
  });
}

export function serverFiles(conf: string): Record<string, string> {
  return {
    "/etc/postgresql/postgresql.conf": conf,
    "/etc/postgresql/pg_hba.conf": renderPgHba(),
    "/etc/postgresql/pg_ident.conf": renderPgIdent(),
  };
}

export async function catalogueMatchesServer(engine: Postgres17Engine): Promise<CatalogueReport> {
  const pg = await engine.start(serverFiles(primaryConf()));
  try {
    const r = await superuserPsql(pg, CATALOGUE_QUERY);
    if (r.code !== 0) throw new Error(`pg_settings query failed: ${r.stderr}`);
    const server = JSON.parse(r.stdout) as ServerCatalogue;
    const differences: string[] = [];
    const committed = new Map(PG17_SETTINGS.map((row) => [row[0], row]));
    const live = new Map(server.settings.map((row) => [row[0], row]));
    for (const [name, row] of live) {
      const mine = committed.get(name);
      if (!mine) differences.push(`${name}: on the server, not in the catalogue`);
      else if (JSON.stringify(mine) !== JSON.stringify(row)) differences.push(`${name}: catalogue ${JSON.stringify(mine)} != server ${JSON.stringify(row as SettingRow)}`);
    }
    for (const name of committed.keys()) if (!live.has(name)) differences.push(`${name}: in the catalogue, not on the server`);
    const words = new Set(server.keywords.filter(([, c]) => c !== "U").map(([w, c]) => `${w}:${c}`));
    for (const w of NON_UNRESERVED_KEYWORDS) if (!words.has(w)) differences.push(`keyword ${w}: in the list, not on the server`);
    for (const w of words) if (!NON_UNRESERVED_KEYWORDS.includes(w)) differences.push(`keyword ${w}: on the server, not in the list`);
    const lower = new Set([...live.keys()].map((n) => n.toLowerCase()));
    for (const name of [...Object.keys(MANAGED_PARAMETERS), ...Object.keys(RISKY_VALUES)]) if (!lower.has(name) && majorsKnowing(name).length === 0) differences.push(`${name}: pgharbor manages or guards it, the server does not know it`);
    const log = await pg.serverLog();
    const configComplaints = log.split("\n").filter((l) => /unrecognized configuration parameter|invalid value for parameter|configuration file .* contains errors/.test(l));
    return { serverVersion: server.version, differences, configComplaints };
  } finally {
    await engine.stop(pg);
  }
}
