/** Alert rules (the Prometheus rules file pgharbor renders) added, removed, or with changed thresholds. */
import { ContainerView, parseAlertRules, PATHS } from "./files";
import { AlertChange } from "./types";

function rulesOf(containers: Map<string, ContainerView>) {
  const text = [...containers.values()].map((c) => c.files.get(PATHS.alertRules)).find((t) => t !== undefined);
  return text === undefined ? undefined : parseAlertRules(text);
}

/** "pgharbor_rpo_seconds > 30" vs "… > 60": "threshold 30 → 60"; otherwise both expressions. */
function exprChange(o: string, n: string): string {
  const [on, nn] = [o.match(/-?\d+(\.\d+)?/g) ?? [], n.match(/-?\d+(\.\d+)?/g) ?? []];
  if (o.replace(/-?\d+(\.\d+)?/g, "#") === n.replace(/-?\d+(\.\d+)?/g, "#") && on.length === nn.length) {
    const diffs = on.map((v, i) => (v === nn[i] ? undefined : `${v} → ${nn[i]}`)).filter(Boolean);
    return `threshold ${diffs.join(", ")} (${n})`;
  }
  return `expr ${o} → ${n}`;
}

export function alertChanges(base: Map<string, ContainerView>, head: Map<string, ContainerView>): AlertChange[] {
  const [b, h] = [rulesOf(base), rulesOf(head)];
  if (!b && !h) return [];
  const out: AlertChange[] = [];
  const [bm, hm] = [b ?? new Map(), h ?? new Map()];
  for (const [name, r] of hm) {
    const o = bm.get(name);
    if (!o) {
      out.push({ alert: name, change: "added", detail: `${r.severity}: ${r.expr} for ${r.for}` });
      continue;
    }
    const parts: string[] = [];
    if (o.expr !== r.expr) parts.push(exprChange(o.expr, r.expr));
    if (o.for !== r.for) parts.push(`for ${o.for} → ${r.for}`);
    if (o.severity !== r.severity) parts.push(`severity ${o.severity} → ${r.severity}`);
    if (parts.length) out.push({ alert: name, change: "changed", detail: parts.join("; ") });
  }
  for (const [name, o] of bm) if (!hm.has(name)) out.push({ alert: name, change: "removed", detail: h ? `${o.severity}: ${o.expr}` : "Prometheus (and with it every alert rule) is removed" });
  return out;
}
