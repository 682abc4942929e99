/** Renderers of a Review: Markdown (a PR comment), plain text (a terminal) and JSON (other tools). */
import { EnvironmentReview, Review, SettingChange } from "./types";

export type Format = "markdown" | "text" | "json";

const changedEnvs = (r: Review) => r.environments.filter((e) => e.status !== "unchanged");

/** The one line a review with no effect is. */
function noEffect(r: Review): string {
  return `No effect: ${r.head} synthesises the same stacks as ${r.base} in ${r.environments.map((e) => e.name).join(", ") || "every environment"}.`;
}

const md = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");
const code = (s: string) => `\`${s.replace(/`/g, "'")}\``;
const arrow = (o: string | null, n: string | null) => `${o ?? "unset"} → ${n ?? "unset"}`;

/** At most `max` reasons on a line; the JSON keeps them all. */
const reasons = (all: string[], max = 8) => (all.length > max ? [...all.slice(0, max), `and ${all.length - max} more (--format json lists them)`] : all).join("; ");

function verdict(r: Review): string {
  if (r.blockers) return `BLOCKED: ${r.blockers} blocker${r.blockers > 1 ? "s" : ""} (exit 1)`;
  const accepted = r.environments.reduce((s, e) => s + e.blockers.length, 0);
  return accepted ? `No open blocker (${accepted} accepted)` : "No blocker";
}

function settingRow(s: SettingChange): string {
  return `| ${code(s.name)} | ${md(arrow(s.old, s.new))} | ${s.containers.join(", ")} | ${md(s.needsText)} (${code(s.context)}) | ${md(s.applied)} |`;
}

function markdownEnvironment(e: EnvironmentReview): string[] {
  const out = [`### ${e.name}`, "", `**${e.summary}**`, ""];
  if (e.blockers.length) {
    out.push("#### Blockers", "");
    for (const b of e.blockers) out.push(`- **${b.accepted ? "ACCEPTED" : "BLOCKER"}** ${code(b.id)}: ${md(b.what)}`, `  - resource: ${code(b.resource)}`, `  - safely: ${md(b.safely)}`);
    out.push("");
  }
  if (e.downtime.length) {
    out.push("#### Downtime", "");
    const verb = { replace: "replaced", delete: "removed", update: "updated in place", create: "new" };
    for (const d of e.downtime) {
      out.push(`- **${d.container}** ${verb[d.action]}: ${md(d.means)}`);
      if (d.action === "replace" || d.action === "update") out.push(`  - why: ${md(reasons(d.reasons))}`);
      if (d.avoidable) out.push(`  - avoidable: ${md(d.avoidable)}`);
    }
    out.push("");
  }
  for (const [server, title] of [
    ["postgresql", "PostgreSQL settings"],
    ["pgbouncer", "PgBouncer settings"],
  ] as const) {
    const rows = e.settings.filter((s) => s.server === server);
    if (!rows.length) continue;
    out.push(`#### ${title}`, "", "| setting | old → new | on | applying it needs | this change |", "|---|---|---|---|---|", ...rows.map(settingRow), "");
  }
  if (e.exposure.length) {
    out.push("#### Exposure", "");
    for (const x of e.exposure) out.push(`- ${x.loosened ? "**loosened**" : "tightened"} (${x.kind}): ${md(x.what)}`);
    out.push("");
  }
  if (e.secrets.length) {
    out.push("#### Secrets", "");
    for (const s of e.secrets) out.push(`- ${s.action}: ${md(s.what)}${s.clients.length ? `. ${s.action === "removed" ? "Was used by" : "Picks it up"}: ${md(s.clients.join("; "))}` : ""}`);
    out.push("");
  }
  if (e.policy.length || e.alerts.length) {
    out.push("#### Policy and alerts", "");
    for (const p of e.policy) out.push(`- policy ${p.status}: ${p.rule} ${md(p.title)} (${p.level}): ${md(`${p.subject} ${p.detail}`.trim())}`);
    for (const a of e.alerts) out.push(`- alert ${a.alert} ${a.change}: ${md(a.detail)}`);
    out.push("");
  }
  if (e.backups.length) {
    out.push("#### Backups", "");
    for (const b of e.backups) out.push(`- ${md(b.what)}: ${b.old === null ? "unset" : code(b.old)} → ${b.new === null ? "unset" : code(b.new)}`);
    out.push("");
  }
  if (e.resources.length) {
    const count = (a: string) => e.resources.filter((r) => r.action === a).length;
    const counts = ["create", "replace", "update", "delete"].map((a) => [a, count(a)] as const).filter(([, n]) => n);
    out.push(`<details><summary>Terraform: ${counts.map(([a, n]) => `${n} to ${a}`).join(", ")}</summary>`, "", ...e.resources.map((r) => `- ${r.action} ${code(r.address)}${r.changes.length ? `: ${md(r.changes.map((c) => c.detail).join("; "))}` : ""}`), "", "</details>", "");
  }
  return out;
}

export function renderMarkdown(r: Review): string {
  const changed = changedEnvs(r);
  if (!changed.length) return `${noEffect(r)}\n`;
  const out = [`## pgharbor review: ${code(r.base)} → ${r.head}`, "", `**${verdict(r)}**`, "", "| environment | effect |", "|---|---|", ...r.environments.map((e) => `| ${e.name} | ${md(e.summary)} |`), ""];
  for (const e of changed) out.push(...markdownEnvironment(e));
  if (r.blockers) out.push(`Accept a blocker on purpose with \`npx pgharbor review --accept <id>\` (it stays listed).`, "");
  return out.join("\n").replace(/\n{3,}/g, "\n\n");
}

function textEnvironment(e: EnvironmentReview): string[] {
  const out = [`${e.name}: ${e.summary}`];
  const section = (title: string, lines: string[]) => {
    if (lines.length) out.push(`  ${title}`, ...lines.map((l) => `    ${l}`));
  };
  section(
    "Blockers",
    e.blockers.flatMap((b) => [`${b.accepted ? "accepted" : "BLOCKER"} ${b.id}: ${b.what}`, `  resource: ${b.resource}`, `  safely: ${b.safely}`]),
  );
  section(
    "Downtime",
    e.downtime.flatMap((d) => [`${d.container} ${d.action === "replace" ? "replaced" : d.action === "update" ? "updated in place" : d.action === "create" ? "new" : "removed"}: ${d.means}`, ...(d.action === "replace" || d.action === "update" ? [`  why: ${reasons(d.reasons)}`] : []), ...(d.avoidable ? [`  avoidable: ${d.avoidable}`] : [])]),
  );
  for (const [server, title] of [
    ["postgresql", "PostgreSQL settings"],
    ["pgbouncer", "PgBouncer settings"],
  ] as const) {
    section(
      title,
      e.settings.filter((s) => s.server === server).map((s) => `${s.name} ${arrow(s.old, s.new)} on ${s.containers.join(", ")}: needs ${s.needsText} (context ${s.context}); this change: ${s.applied}`),
    );
  }
  section("Exposure", e.exposure.map((x) => `${x.loosened ? "LOOSENED" : "tightened"} (${x.kind}): ${x.what}`));
  section("Secrets", e.secrets.map((s) => `${s.action}: ${s.what}${s.clients.length ? `. ${s.action === "removed" ? "Was used by" : "Picks it up"}: ${s.clients.join("; ")}` : ""}`));
  section("Policy and alerts", [...e.policy.map((p) => `policy ${p.status}: ${p.rule} ${p.title} (${p.level}): ${`${p.subject} ${p.detail}`.trim()}`), ...e.alerts.map((a) => `alert ${a.alert} ${a.change}: ${a.detail}`)]);
  section("Backups", e.backups.map((b) => `${b.what}: ${arrow(b.old, b.new)}`));
  if (e.resources.length) {
    const count = (a: string) => e.resources.filter((r) => r.action === a).length;
    out.push(`  Terraform: ${["create", "replace", "update", "delete"].map((a) => [a, count(a)] as const).filter(([, n]) => n).map(([a, n]) => `${n} to ${a}`).join(", ")} (--format json lists them)`);
  }
  return out;
}

export function renderText(r: Review): string {
  if (!changedEnvs(r).length) return `${noEffect(r)}\n`;
  const out = [`pgharbor review: ${r.base} → ${r.head}`, verdict(r), ""];
  for (const e of r.environments) out.push(...(e.status === "unchanged" ? [`${e.name}: no effect`] : textEnvironment(e)), "");
  if (r.blockers) out.push("Accept a blocker on purpose with --accept <id> (it stays listed).");
  return out.join("\n").replace(/\n+$/, "") + "\n";
}

export function render(r: Review, format: Format): string {
  if (format === "json") return `${JSON.stringify(r, null, 2)}\n`;
  return format === "markdown" ? renderMarkdown(r) : renderText(r);
}
