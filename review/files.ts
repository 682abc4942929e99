/**
 * The containers of a synthesised stack and the files uploaded into them, read back the way they land
 * on disk (Terraform's `$${`/`%%{` escapes undone), and parsers for the files pgharbor renders.
 */
import { unliteral } from "../constructs/terraform-text";
import { CONTAINER_PATHS as P } from "../postgres-config/paths";
import { resourcesOf } from "./terraform";
import { Role, StackJson } from "./types";

export interface ContainerView {
  readonly address: string;
  readonly name: string;
  readonly role: Role;
  /** The part of the name after `pgharbor-<env>-`: primary, replica-1, pgbouncer, exporter-primary, … */
  readonly short: string;
  readonly config: Record<string, unknown>;
  /** path → content as written to the container (references stay `${…}`). */
  readonly files: Map<string, string>;
}

export const ALERT_RULES_PATH = "/etc/pgharbor/monitoring/alerts.yml";

export function roleOf(short: string): Role {
  if (short === "primary") return "primary";
  if (/^replica-\d+$/.test(short)) return "replica";
  if (short === "pgbouncer") return "pgbouncer";
  if (short === "backup") return "backup";
  if (short === "s3") return "s3";
  if (/^exporter-|^rpo-probe$|^prometheus$/.test(short)) return "monitoring";
  return "other";
}

/** Every docker_container of a stack, by address. */
export function containersOf(stack: StackJson | undefined): Map<string, ContainerView> {
  const out = new Map<string, ContainerView>();
  for (const r of resourcesOf(stack).values()) {
    if (r.type !== "docker_container" || r.mode !== "managed") continue;
    const name = String(r.config.name ?? r.address);
    const short = name.replace(/^pgharbor-[a-z0-9-]+?-(?=primary$|replica-\d+$|pgbouncer$|backup$|s3$|exporter-|rpo-probe$|prometheus$)/, "");
    const files = new Map(((r.config.upload as Array<{ file: string; content?: string }> | undefined) ?? []).map((u) => [u.file, unliteral(u.content ?? "")]));
    out.set(r.address, { address: r.address, name, role: roleOf(short), short, config: r.config, files });
  }
  return out;
}

/** postgresql.conf: parameter (lowercase) → [name as written, value without quotes]; and the major from the header. */
export function parsePostgresqlConf(text: string): { major?: number; role?: string; params: Map<string, [string, string]> } {
  const header = /rendered by pgharbor for a PostgreSQL (\d+) (\w+)/.exec(text);
  const params = new Map<string, [string, string]>();
  for (const line of text.split("\n")) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_.$]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m || line.trim().startsWith("#")) continue;
    const raw = m[2];
    const value = raw.startsWith("'") ? raw.slice(1, raw.lastIndexOf("'")).replace(/''/g, "'").replace(/\\\\/g, "\\") : raw.replace(/\s+#.*$/, "");
    params.set(m[1].toLowerCase(), [m[1], value]);
  }
  return { major: header ? Number(header[1]) : undefined, role: header?.[2], params };
}

/** An ini file (pgbouncer.ini, pgbackrest.conf): section → key → value. */
export function parseIni(text: string): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  let section = "";
  for (const line of text.split("\n")) {
    const t = line.trim();
    if (!t || t.startsWith(";") || t.startsWith("#")) continue;
    const s = /^\[(.+)\]$/.exec(t);
    if (s) {
      section = s[1];
      continue;
    }
    const i = t.indexOf("=");
    if (i < 0) continue;
    if (!out.has(section)) out.set(section, new Map());
    out.get(section)!.set(t.slice(0, i).trim(), t.slice(i + 1).trim());
  }
  return out;
}

export interface HbaRow {
  readonly type: string;
  readonly database: string;
  readonly user: string;
  readonly address: string;
  readonly method: string;
  readonly text: string;
}

/** pg_hba.conf rows in order (first match wins). */
export function parseHba(text: string): HbaRow[] {
  return text
    .split("\n")
    .map((l) => l.replace(/#.*$/, "").trim())
    .filter(Boolean)
    .map((l) => {
      const f = l.split(/\s+/);
      const local = f[0] === "local";
      const [type, database, user] = f;
      const address = local ? "" : (f[3] ?? "");
      const method = f.slice(local ? 3 : 4).join(" ");
      return { type, database, user, address, method, text: [type, database, user, address, method].filter(Boolean).join(" ") };
    });
}

/** The crontab's backup jobs: job → schedule (five fields). */
export function parseCrontab(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^(\S+\s+\S+\s+\S+\s+\S+\s+\S+)\s+\S+\s+\S*backup-job\.sh\s+(\S+)/.exec(line.trim());
    if (m && !line.trim().startsWith("#")) out.set(m[2], m[1]);
  }
  return out;
}

export interface AlertRuleText {
  readonly alert: string;
  readonly expr: string;
  readonly for: string;
  readonly severity: string;
}

/** The alert rules file monitoring-config/alerts.ts renders (one group; expr and summary JSON-quoted). */
export function parseAlertRules(text: string): Map<string, AlertRuleText> {
  const out = new Map<string, AlertRuleText>();
  let cur: { alert: string; expr: string; for: string; severity: string } | undefined;
  const unquote = (v: string) => {
    try {
      return v.startsWith('"') ? (JSON.parse(v) as string) : v;
    } catch {
      return v;
    }
  };
  for (const line of text.split("\n")) {
    const a = /^\s*- alert:\s*(.+)$/.exec(line);
    if (a) {
      cur = { alert: a[1].trim(), expr: "", for: "", severity: "" };
      out.set(cur.alert, cur);
      continue;
    }
    if (!cur) continue;
    const kv = /^\s*(expr|for|severity):\s*(.+)$/.exec(line);
    if (kv) cur[kv[1] as "expr" | "for" | "severity"] = unquote(kv[2].trim());
  }
  return out;
}

/** The file a container has at `path`, if any. */
export function fileAt(c: ContainerView | undefined, path: string): string | undefined {
  return c?.files.get(path);
}

export const PATHS = {
  postgresqlConf: P.postgresqlConf,
  hbaConf: P.hbaConf,
  identConf: P.identConf,
  pgbouncerIni: P.pgbouncerIni,
  pgbackrestConf: P.pgbackrestConf,
  crontab: P.crontab,
  opsConf: P.opsConf,
  alertRules: ALERT_RULES_PATH,
} as const;
