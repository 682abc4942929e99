/**
 * `pgharbor health`: the document `pgharbor-ops health` prints (images/backup/health.py documents it)
 * on one screen for a person, and its exit code for scripts, the Nagios way: 0 ok, 1 warn, 2 critical.
 */

export type HealthStatus = "ok" | "warn" | "critical";

export interface HealthCheck {
  /** Stable id: primary, replicas, replication-lag, … (health.CHECKS). */
  check: string;
  status: HealthStatus;
  /** One line: the value and the threshold. */
  summary: string;
  value: number | null;
  details: Record<string, unknown>[];
}

export interface LargestRelation {
  database: string;
  schema: string;
  relation: string;
  kind: "table" | "materialized view";
  totalBytes: number;
  /** Heap with TOAST, free space and visibility maps. */
  tableBytes: number;
  indexBytes: number;
  /** false: sized from pg_class (the relation held or awaited an ACCESS EXCLUSIVE lock). */
  exact: boolean;
}

export interface HealthDocument {
  format: number;
  status: HealthStatus;
  thresholds: Record<string, number>;
  checks: HealthCheck[];
  largest: LargestRelation[];
  largestErrors: { database: string | null; error: string }[];
}

const EXIT: Record<HealthStatus, 0 | 1 | 2> = { ok: 0, warn: 1, critical: 2 };

/**
 * 0 ok, 1 warn, 2 critical: the worst of the document's status and its checks'. A status this CLI
 * does not know is critical: a script must never read an unfamiliar answer as healthy.
 */
export function healthExitCode(doc: HealthDocument): 0 | 1 | 2 {
  const statuses = [doc.status, ...(doc.checks ?? []).map((c) => c.status)];
  return Math.max(...statuses.map((s) => (Object.prototype.hasOwnProperty.call(EXIT, s) ? EXIT[s] : 2))) as 0 | 1 | 2;
}

const WORD: Record<HealthStatus, string> = { ok: "ok", warn: "WARN", critical: "CRITICAL" };

/** Text from the server (names of databases and relations, error messages) without control characters: it goes to a terminal. */
const printable = (s: string) => String(s).replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);

export function formatBytes(n: number): string {
  let v = n;
  for (const unit of ["B", "KiB", "MiB", "GiB", "TiB"]) {
    if (Math.abs(v) < 1024 || unit === "TiB") return unit === "B" ? `${Math.round(v)} B` : `${v.toFixed(1).replace(/\.0$/, "")} ${unit}`;
    v /= 1024;
  }
  return `${n} B`;
}

/**
 * One screen: the overall status, a line per check (status word, check id, summary, aligned), then
 * the largest relations.
 */
export function renderHealth(doc: HealthDocument): string {
  const code = healthExitCode(doc);
  const overall = (Object.keys(EXIT) as HealthStatus[]).find((s) => EXIT[s] === code)!;
  const count = (s: HealthStatus) => doc.checks.filter((c) => c.status === s).length;
  const lines = [`health: ${WORD[overall]} (${doc.checks.length} checks: ${count("ok")} ok, ${count("warn")} warn, ${count("critical")} critical)`];
  const idWidth = Math.max(0, ...doc.checks.map((c) => c.check.length));
  for (const c of doc.checks) {
    const word = Object.prototype.hasOwnProperty.call(WORD, c.status) ? WORD[c.status] : printable(String(c.status).toUpperCase());
    lines.push(`${word.padEnd(8)}  ${printable(c.check).padEnd(idWidth)}  ${printable(c.summary)}`);
  }
  lines.push("");
  if (doc.largest.length) {
    lines.push("largest relations (table with TOAST + indexes):");
    const sizes = doc.largest.map((r) => formatBytes(r.totalBytes));
    const sizeWidth = Math.max(...sizes.map((s) => s.length));
    doc.largest.forEach((r, i) => {
      const name = printable(`${r.database}.${r.schema}.${r.relation}`);
      const kind = r.kind === "table" ? "" : ` ${r.kind}`;
      const approx = r.exact ? "" : ", from pg_class: locked";
      lines.push(`  ${sizes[i].padStart(sizeWidth)}  ${name}${kind} (${formatBytes(r.tableBytes)} + ${formatBytes(r.indexBytes)}${approx})`);
    });
  } else {
    lines.push("largest relations: none found");
  }
  for (const e of doc.largestErrors ?? []) lines.push(`  could not size the relations of ${e.database === null ? "the databases" : printable(e.database)}: ${printable(e.error)}`);
  return `${lines.join("\n")}\n`;
}
