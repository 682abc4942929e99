/**
 * Query insights and routine maintenance on a deployed environment: the operations (pgharbor-ops in
 * the backup container, images/backup/insights.py; the primary's log for captured plans) and how
 * `npx pgharbor queries | indexes | maintenance` print them.
 */
import { CONTAINER_PATHS as P } from "../postgres-config/paths";
import { OperationError } from "./errors";
import { HealthDocument } from "./health";
import { Executor, ops } from "./operations";

export const QUERY_ORDER = ["total", "mean", "calls", "rows", "reads"] as const;
export type QueryOrder = (typeof QUERY_ORDER)[number];

export interface StatementStats {
  queryid: string;
  database: string;
  role: string;
  query: string;
  calls: number;
  totalMs: number;
  meanMs: number;
  rows: number;
  share: number;
  ioMs: number;
  ioShare: number;
  sharedBlocksRead: number;
  cacheHitRatio: number | null;
}

export interface TopQueries {
  by: QueryOrder;
  statsSince: string | null;
  statements: StatementStats[];
}

export function topQueries(ex: Executor, o: { by: QueryOrder; limit: number; database?: string; allRoles?: boolean }): Promise<TopQueries> {
  return ops<TopQueries>(ex, ["queries", "--by", o.by, "--limit", String(o.limit), ...(o.database ? ["--database", o.database] : []), ...(o.allRoles ? ["--all-roles"] : [])]);
}

export function resetQueries(ex: Executor): Promise<{ reset: boolean; at: string }> {
  return ops(ex, ["queries-reset"]);
}

interface IndexRef {
  index: string;
  table: string;
  bytes: number;
  scans: number;
  definition: string;
}

export interface IndexCandidate {
  columns: string[];
  queryid: string;
  query?: string;
  calls?: number;
  meanMs?: number;
  costBefore?: number;
  costAfter?: number;
  costReduction?: number;
  usesIndex?: boolean;
  recommended?: boolean;
  create?: string;
  error?: string;
}

export interface IndexAdvice {
  database: string;
  statsSince: string | null;
  unused: Array<IndexRef & { drop: string }>;
  duplicates: Array<{ table: string; indexes: IndexRef[] }>;
  overlapping: Array<{ redundant: IndexRef; coveredBy: IndexRef }>;
  invalid: IndexRef[];
  seqScanTables: Array<{ table: string; rows: number; bytes: number; seqScans: number; rowsPerSeqScan: number; indexScans: number; candidates: IndexCandidate[] }>;
  note: string;
}

export function indexAdvice(ex: Executor, database?: string): Promise<IndexAdvice> {
  return ops<IndexAdvice>(ex, ["indexes", ...(database ? ["--database", database] : [])]);
}

export interface MaintenanceReport {
  startedAt: string;
  finishedAt: string;
  dryRun: boolean;
  ok: boolean;
  analyzed: number;
  vacuumed: number;
  databases: Array<{ database: string; analyzed: MaintenanceAction[]; vacuumed: MaintenanceAction[]; skipped: MaintenanceAction[]; error?: string }>;
}

interface MaintenanceAction {
  table: string;
  why: string;
  command: string;
}

/** A maintenance run now: the scheduled job itself (its record and metrics), or only its plan. */
export async function maintenanceNow(ex: Executor, dryRun: boolean, progress?: (line: string) => void): Promise<MaintenanceReport> {
  if (dryRun) return ops<MaintenanceReport>(ex, ["maintenance", "--dry-run"], { progress });
  const r = await ex.exec("backup", [`${P.scriptsDir}/backup-job.sh`, "maintenance"], { timeoutMs: 6 * 3600_000, onStderr: progress });
  const last = r.stdout.trim().split("\n").pop() ?? "";
  if (r.code !== 0 && !last.startsWith("{")) throw new OperationError(`the maintenance job failed in the backup container (exit ${r.code}): ${(r.stderr || r.stdout).trim().split("\n").pop()}`);
  return JSON.parse(last) as MaintenanceReport;
}

export interface CapturedPlan {
  at: string;
  durationMs: number;
  queryid: string;
  plan: string;
}

/**
 * auto_explain's plans in a server log (text format, log_verbose on): a `duration: … ms  plan:` line,
 * then the plan's lines, each starting with a tab, the Query Identifier among them.
 */
export function capturedPlans(log: string): CapturedPlan[] {
  const out: CapturedPlan[] = [];
  const lines = log.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\S+ \S+ \S+) .*\bLOG:\s+duration: ([\d.]+) ms\s+plan:\s*$/.exec(lines[i]);
    if (!m) continue;
    const body: string[] = [];
    while (i + 1 < lines.length && lines[i + 1].startsWith("\t")) body.push(lines[++i].slice(1));
    const id = body.map((l) => /^Query Identifier: (-?\d+)$/.exec(l.trim())).find(Boolean);
    if (id) out.push({ at: m[1], durationMs: Number(m[2]), queryid: id[1], plan: body.join("\n") });
  }
  return out;
}

/** The newest plan auto_explain logged for `queryid` in the primary's log of the last `sinceHours`. */
export async function lastPlan(ex: Executor, queryid: string, sinceHours: number): Promise<CapturedPlan | undefined> {
  if (!/^-?\d{1,20}$/.test(queryid)) throw new OperationError(`queryid ${JSON.stringify(queryid)}: give the number \`pgharbor queries\` prints in its queryid column`);
  if (!ex.logs) throw new OperationError("this executor cannot read container logs");
  const plans = capturedPlans(await ex.logs("primary", sinceHours * 3600));
  return plans.filter((p) => p.queryid === queryid).pop();
}

const oneLine = (s: string, width: number) => {
  const flat = s.replace(/\s+/g, " ").trim();
  return flat.length > width ? `${flat.slice(0, width - 1)}…` : flat;
};
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const ms = (x: number) => x.toFixed(1);
const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;

export function renderTopQueries(t: TopQueries, allRoles: boolean): string {
  const head = `top ${t.statements.length} statements by ${t.by === "reads" ? "shared blocks read" : t.by === "total" || t.by === "mean" ? `${t.by} time` : t.by} (statistics since ${t.statsSince ?? "the server started"}${allRoles ? "" : "; pgharbor's own roles left out"})\n`;
  if (!t.statements.length) return `${head}no statements recorded yet\n`;
  const rows = t.statements.map((s, i) => [String(i + 1), s.queryid, String(s.calls), ms(s.totalMs), ms(s.meanMs), pct(s.share), pct(s.ioShare), String(s.rows), `${s.database}: ${oneLine(s.query, 90)}`]);
  const header = ["#", "queryid", "calls", "total ms", "mean ms", "share", "I/O", "rows", "statement"];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (r: string[]) => r.map((v, c) => (c === r.length - 1 ? v : c >= 2 && c <= 7 ? v.padStart(widths[c]) : v.padEnd(widths[c]))).join("  ");
  return `${head}${line(header)}\n${rows.map(line).join("\n")}\nshare: of the total execution time of the statements listed and not; I/O: time reading and writing blocks, the rest is CPU and waits. \`pgharbor queries explain <queryid>\` shows a slow one's plan.\n`;
}

export function renderPlan(queryid: string, p: CapturedPlan | undefined, sinceHours: number, thresholdNote: string): string {
  if (!p) return `no plan captured for queryid ${queryid} in the primary's log of the last ${sinceHours} h (${thresholdNote})\n`;
  return `plan of queryid ${queryid}, captured ${p.at} (${ms(p.durationMs)} ms):\n${p.plan.split("\n").map((l) => `  ${l}`).join("\n")}\n`;
}

export function renderIndexAdvice(a: IndexAdvice): string {
  const out: string[] = [`database ${a.database} (index statistics since ${a.statsSince ?? "the cluster was created"})`];
  const ref = (r: IndexRef) => `${r.index} on ${r.table} (${mib(r.bytes)}, ${r.scans} scans)`;
  out.push(a.unused.length ? "unused indexes (never scanned; constraint indexes left out):" : "unused indexes: none");
  for (const u of a.unused) out.push(`  ${ref(u)}`, `    ${u.drop}`);
  out.push(a.duplicates.length ? "duplicate indexes (same columns, method, operator classes, predicate):" : "duplicate indexes: none");
  for (const d of a.duplicates) out.push(`  ${d.table}: ${d.indexes.map((i) => i.index).join(" = ")}`);
  out.push(a.overlapping.length ? "overlapping indexes (the first is a leading prefix of the second):" : "overlapping indexes: none");
  for (const o of a.overlapping) out.push(`  ${ref(o.redundant)} is covered by ${o.coveredBy.index}`);
  out.push(a.invalid.length ? "INVALID indexes (a failed CREATE INDEX CONCURRENTLY; drop and recreate):" : "invalid indexes: none");
  for (const i of a.invalid) out.push(`  ${ref(i)}`);
  out.push(a.seqScanTables.length ? "tables read mostly by sequential scans:" : "tables read mostly by sequential scans: none");
  for (const t of a.seqScanTables) {
    out.push(`  ${t.table}: ${t.rows} rows (${mib(t.bytes)}), ${t.seqScans} sequential scans of ~${t.rowsPerSeqScan} rows, ${t.indexScans} index scans`);
    if (!t.candidates.length) out.push("    no candidate index from the captured statements");
    for (const c of t.candidates) {
      if (c.error) {
        out.push(`    (${c.columns.join(", ")}) for queryid ${c.queryid}: could not be checked: ${c.error}`);
        continue;
      }
      const verdict = c.recommended ? "RECOMMENDED" : c.usesIndex ? "not worth it" : "the planner would not use it";
      out.push(
        `    (${c.columns.join(", ")}) for queryid ${c.queryid} (${c.calls} calls, mean ${ms(c.meanMs ?? 0)} ms): estimated cost ${c.costBefore?.toFixed(2)} -> ${c.costAfter?.toFixed(2)} (${c.costReduction !== undefined ? `-${pct(c.costReduction)}` : "?"}) with a hypothetical index: ${verdict}`,
        `      ${c.create}`,
        `      for: ${oneLine(c.query ?? "", 100)}`,
      );
    }
  }
  out.push(`Advice only: nothing was created or dropped. ${a.note}.`);
  return `${out.join("\n")}\n`;
}

export function renderMaintenance(r: MaintenanceReport): string {
  const verb = r.dryRun ? "would " : "";
  const out: string[] = [];
  for (const d of r.databases) {
    if (d.error) out.push(`${d.database}: FAILED: ${d.error}`);
    for (const t of d.vacuumed) out.push(`${d.database}: ${verb}vacuum ${t.table} (${t.why})`);
    for (const t of d.analyzed.filter((a) => !d.vacuumed.some((v) => v.table === a.table))) out.push(`${d.database}: ${verb}analyse ${t.table} (${t.why})`);
    for (const t of d.skipped) out.push(`${d.database}: skipped ${t.table} (${t.why})`);
  }
  if (!out.length) out.push("nothing to do: statistics are fresh and dead rows within autovacuum's reach");
  out.push(r.dryRun ? `plan: ${r.vacuumed} tables to vacuum, ${r.analyzed} to analyse` : `${r.ok ? "done" : "FAILED"}: ${r.vacuumed} tables vacuumed, ${r.analyzed} analysed (${r.startedAt} .. ${r.finishedAt})`);
  return `${out.join("\n")}\n`;
}

/** The health document of pgharbor-ops (images/backup/health.py); cli/health.ts prints it. */
export function health(ex: Executor): Promise<HealthDocument> {
  return ops<HealthDocument>(ex, ["health"]);
}
