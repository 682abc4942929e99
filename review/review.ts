/**
 * `review(base, head)`: what a change does, environment by environment, from the synthesised JSON of
 * both revisions alone (pure: no git, no Docker, no providers). Renderers are in render.ts; the CLI
 * (cli/review.ts) synthesises the revisions and prints.
 */
import { alertChanges } from "./alerts";
import { backupChanges, backupFacts } from "./backups";
import { blockersOf } from "./blockers";
import { containerImpacts } from "./downtime";
import { exposureChanges } from "./exposure";
import { containersOf } from "./files";
import { policyChanges } from "./policy";
import { secretChanges } from "./secrets";
import { settingsDiff } from "./settings";
import { brief, plan, referencesIn } from "./terraform";
import { EnvironmentReview, ExposureChange, Review, REVIEW_SCHEMA_VERSION, ResourceChange, StackJson, SynthesisedApp } from "./types";

export * from "./types";

export interface ReviewOptions {
  /** Blocker ids accepted on purpose: still listed, no longer failing the review. */
  readonly accept?: Iterable<string>;
  /** Only these environments (default: every environment of either revision). */
  readonly environments?: readonly string[];
}

const SSLMODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"];

/** Outputs that change: applications read them (DATABASE_URL, ca_cert_pem). */
function outputChanges(base: StackJson | undefined, head: StackJson | undefined, regenerated: Set<string>): { changes: ResourceChange[]; exposure: ExposureChange[] } {
  const changes: ResourceChange[] = [];
  const exposure: ExposureChange[] = [];
  const [b, h] = [base?.output ?? {}, head?.output ?? {}];
  for (const name of new Set([...Object.keys(b), ...Object.keys(h)])) {
    const [o, n] = [b[name], h[name]];
    const address = `output.${name}`;
    if (!o) changes.push({ address, path: address, action: "create", changes: [] });
    else if (!n) changes.push({ address, path: address, action: "delete", changes: [] });
    else {
      const via = referencesIn(n.value).find((r) => regenerated.has(r.target));
      const literal = JSON.stringify(o.value) !== JSON.stringify(n.value);
      if (!literal && !via) continue;
      const detail = n.sensitive ? `${name} changes (sensitive)` : literal ? `${name} ${brief(o.value)} → ${brief(n.value)}` : `${name} takes a new value from ${via!.target}`;
      changes.push({ address, path: address, action: "update", changes: [{ attribute: "value", effect: "in-place", detail, via: via?.target }] });
      const mode = (v: unknown) => /sslmode=([a-z-]+)/.exec(String(v))?.[1];
      const [om, nm] = [mode(o.value), mode(n.value)];
      if (om && nm && om !== nm) exposure.push({ kind: "tls", loosened: SSLMODES.indexOf(nm) < SSLMODES.indexOf(om), resource: address, what: `${name}: sslmode ${om} → ${nm}` });
    }
  }
  return { changes, exposure };
}

const withoutMetadata = (stack: StackJson | undefined) => JSON.stringify(stack ?? {}, (k, v) => (k === "//" ? undefined : v));

function reviewEnvironment(name: string, base: StackJson | undefined, head: StackJson | undefined, accepted: ReadonlySet<string>): EnvironmentReview {
  const p = plan(base, head);
  const [bc, hc] = [containersOf(base), containersOf(head)];
  const replaced = new Set([...p.changes.values()].filter((c) => c.action === "replace").map((c) => c.address));
  const regenerated = new Set([...p.changes.values()].filter((c) => c.action === "replace" || c.action === "create").map((c) => c.address));
  const nameOf = (address: string) => (hc.get(address) ?? bc.get(address))?.short ?? address;
  const settings = settingsDiff(bc, hc, replaced, nameOf);
  const facts = { base: backupFacts(bc, p.base), head: backupFacts(hc, p.head) };
  const outputs = outputChanges(base, head, regenerated);
  const blockers = blockersOf(name, p, bc, facts, accepted);
  const downtime = containerImpacts(p, bc, hc, settings.byContainer);
  const review: EnvironmentReview = {
    name,
    status: !base ? "added" : !head ? "removed" : "changed",
    summary: "",
    blockers,
    downtime,
    settings: settings.changes,
    exposure: [...exposureChanges(p, bc, hc), ...outputs.exposure],
    secrets: secretChanges(p, bc, hc, { base, head }),
    policy: policyChanges(base, head),
    alerts: alertChanges(bc, hc),
    backups: backupChanges(facts.base, facts.head),
    // Data sources are read at plan time, not changed: they show through the resources that use them.
    resources: [...[...p.changes.values()].filter((c) => !c.address.startsWith("data.")), ...outputs.changes],
  };
  const nothing = review.resources.length === 0 && blockers.length === 0 && review.policy.length === 0;
  if (base && head && (nothing || withoutMetadata(base) === withoutMetadata(head))) {
    return { ...review, status: "unchanged", summary: "no effect", blockers: [], downtime: [], settings: [], exposure: [], secrets: [], policy: [], alerts: [], backups: [], resources: [] };
  }
  return { ...review, summary: summarize(review) };
}

/** One line: blockers, what restarts (and what that means), what is new or gone. */
function summarize(r: EnvironmentReview): string {
  if (r.status === "added") return `new environment: ${r.downtime.filter((d) => d.action === "create").length} containers created`;
  if (r.status === "removed") return `the environment is destroyed: ${r.downtime.length} containers removed`;
  const parts: string[] = [];
  const open = r.blockers.filter((b) => !b.accepted).length;
  const accepted = r.blockers.length - open;
  if (open) parts.push(`${open} blocker${open > 1 ? "s" : ""}`);
  if (accepted) parts.push(`${accepted} accepted blocker${accepted > 1 ? "s" : ""}`);
  const restarts = r.downtime.filter((d) => d.action === "replace");
  const label = (d: (typeof restarts)[number]) => {
    const short = d.container.replace(/^pgharbor-[a-z0-9-]+?-(?=primary$|replica-|pgbouncer$|backup$|s3$|exporter-|rpo-probe$|prometheus$)/, "");
    if (d.role === "primary") return `${short} (writes stop up to ~${d.interruptionSeconds} s)`;
    if (d.role === "pgbouncer") return `${short} (every client reconnects)`;
    return short;
  };
  if (restarts.length) parts.push(`restarts: ${restarts.map(label).join(", ")}${restarts.some((d) => d.avoidable) ? ` (${restarts.filter((d) => d.avoidable).length} avoidable)` : ""}`);
  else parts.push("no restart");
  const created = r.downtime.filter((d) => d.action === "create").map((d) => d.container);
  const deleted = r.downtime.filter((d) => d.action === "delete").map((d) => d.container);
  if (created.length) parts.push(`new: ${created.join(", ")}`);
  if (deleted.length) parts.push(`removed: ${deleted.join(", ")}`);
  if (r.settings.length) parts.push(`${r.settings.length} setting${r.settings.length > 1 ? "s" : ""} change`);
  const loosened = r.exposure.filter((e) => e.loosened).length;
  if (loosened) parts.push(`${loosened} exposure${loosened > 1 ? "s" : ""} loosened`);
  const secrets = r.secrets.filter((s) => s.action === "regenerated").length;
  if (secrets) parts.push(`${secrets} secret${secrets > 1 ? "s" : ""} regenerated`);
  return parts.join("; ");
}

/** Reviews the change from `base` to `head`, environment by environment. */
export function review(base: SynthesisedApp, head: SynthesisedApp, options: ReviewOptions = {}): Review {
  const accepted = new Set(options.accept ?? []);
  const names = [...new Set([...Object.keys(head.stacks), ...Object.keys(base.stacks)])].filter((n) => !options.environments || options.environments.includes(n));
  const environments = names.map((n) => reviewEnvironment(n, base.stacks[n], head.stacks[n], accepted));
  const blockers = environments.reduce((s, e) => s + e.blockers.filter((b) => !b.accepted).length, 0);
  return { schemaVersion: REVIEW_SCHEMA_VERSION, base: base.label ?? "base", head: head.label ?? "head", exitCode: blockers ? 1 : 0, blockers, environments };
}
