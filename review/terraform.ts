/**
 * A plan from two synthesised stacks, without providers: which resources Terraform would create,
 * destroy, replace or update, and why, from the JSON and the providers' schemas (provider-schemas.ts).
 *
 * Like `terraform plan`, a value that refers to an attribute of a resource being created or replaced
 * (a regenerated password's `result`, a rebuilt image's `image_id`) is unknown until apply, so a
 * ForceNew attribute holding it replaces its resource too; that is followed to a fixed point (a new
 * CA key reissues every certificate, which replaces every container they are uploaded to).
 */
import { effectOf, keptWhenRemoved, knownType } from "./provider-schemas";
import { Action, AttributeChange, ResourceChange, StackJson } from "./types";

export interface Resource {
  /** `type.name`, or `data.type.name`. */
  readonly address: string;
  readonly type: string;
  readonly mode: "managed" | "data";
  readonly config: Record<string, unknown>;
  /** Construct path from cdktf's metadata. */
  readonly path: string;
}

/** Keys that are Terraform meta-arguments or cdktf metadata, not provider attributes. */
const META = new Set(["//", "depends_on", "lifecycle", "provider", "count", "for_each", "connection", "provisioner", "timeouts"]);

export function resourcesOf(stack: StackJson | undefined): Map<string, Resource> {
  const out = new Map<string, Resource>();
  if (!stack) return out;
  for (const [mode, block] of [
    ["managed", stack.resource],
    ["data", stack.data],
  ] as const) {
    for (const [type, byName] of Object.entries(block ?? {})) {
      for (const [name, config] of Object.entries(byName)) {
        const address = `${mode === "data" ? "data." : ""}${type}.${name}`;
        const meta = (config["//"] as { metadata?: { path?: string } } | undefined)?.metadata;
        out.set(address, { address, type, mode, config, path: meta?.path ?? address });
      }
    }
  }
  return out;
}

/** Where a resource is, for a person: its construct path without the stack (`primary/app-password`), else its address. */
export function shortPath(r: Resource | undefined, address: string): string {
  return r && r.path.includes("/") ? r.path.split("/").slice(1).join("/") : address;
}

export interface Reference {
  /** Address of the resource referred to. */
  readonly target: string;
  readonly attribute: string;
}

/** Terraform references in a value: `${type.name.attr…}` (escaped `$${` is literal text). */
export function referencesIn(value: unknown): Reference[] {
  const out: Reference[] = [];
  const visit = (v: unknown) => {
    if (typeof v === "string") {
      for (const m of v.matchAll(/(?<!\$)\$\{([^}]*)\}/g)) {
        for (const r of m[1].matchAll(/(?<![\w.-])(data\.)?([a-z][a-z0-9_]*)\.([A-Za-z0-9_-]+)\.([a-z_][a-z0-9_]*)/g)) {
          out.push({ target: `${r[1] ?? ""}${r[2]}.${r[3]}`, attribute: r[4] });
        }
      }
    } else if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === "object") Object.values(v).forEach(visit);
  };
  visit(value);
  return out;
}

const equal = (a: unknown, b: unknown) => JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === "object") {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

/** Short text of a value for a reason line. */
export function brief(v: unknown): string {
  if (v === undefined || v === null) return "unset";
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}…` : s;
}

/** A changed value, short: list items added and removed, or old → new. */
export function valueDiff(o: string, n: string): string {
  const [ol, nl] = [o.split(","), n.split(",")];
  if (ol.length > 1 || nl.length > 1) {
    const added = nl.filter((x) => !ol.includes(x)).map((x) => `+${x}`);
    const removed = ol.filter((x) => !nl.includes(x)).map((x) => `-${x}`);
    if (added.length + removed.length) return [...added, ...removed].join(" ");
  }
  return `${brief(o)} → ${brief(n)}`;
}

interface Upload {
  file: string;
  content?: string;
  [k: string]: unknown;
}

const uploadsOf = (c: Record<string, unknown>) => new Map(((c.upload as Upload[] | undefined) ?? []).map((u) => [u.file, u]));
const envOf = (c: Record<string, unknown>) => new Map(((c.env as string[] | undefined) ?? []).map((e) => [e.split("=")[0], e.slice(e.indexOf("=") + 1)]));
/** A file's name for a reason line: its base name when it has an extension, else the whole path (/etc/cron.d/pgharbor). */
const baseName = (p: string) => (/\.[a-z]+$/.test(p) ? p.slice(p.lastIndexOf("/") + 1) : p);

/** Attribute changes of a docker_container's set-valued attributes, per element. */
function containerSetChanges(attr: "upload" | "env", base: Record<string, unknown>, head: Record<string, unknown>): AttributeChange[] {
  const out: AttributeChange[] = [];
  if (attr === "upload") {
    const [b, h] = [uploadsOf(base), uploadsOf(head)];
    for (const f of new Set([...b.keys(), ...h.keys()])) {
      const [o, n] = [b.get(f), h.get(f)];
      if (!o) out.push({ attribute: `upload:${f}`, effect: "replace", detail: `${f} added` });
      else if (!n) out.push({ attribute: `upload:${f}`, effect: "replace", detail: `${f} removed` });
      else if (!equal(o, n)) {
        const others = [...new Set([...Object.keys(o), ...Object.keys(n)])].filter((k) => k !== "content" && k !== "file" && !equal(o[k], n[k]));
        const what = equal(o.content, n.content) ? others.map((k) => `${k} ${brief(o[k])} → ${brief(n[k])}`).join(", ") : "changed";
        out.push({ attribute: `upload:${f}`, effect: "replace", detail: `${baseName(f)} ${what}` });
      }
    }
  } else {
    const [b, h] = [envOf(base), envOf(head)];
    for (const k of new Set([...b.keys(), ...h.keys()])) {
      if (b.get(k) === h.get(k)) continue;
      const secret = /PASS|SECRET|KEY/.test(k);
      const detail = !b.has(k) ? `${k} added` : !h.has(k) ? `${k} removed` : secret || referencesIn(h.get(k)).length ? `${k} changes` : `${k} ${valueDiff(b.get(k)!, h.get(k)!)}`;
      out.push({ attribute: `env:${k}`, effect: "replace", detail });
    }
  }
  return out;
}

/** The literal changes between two configurations of one resource. */
export function attributeChanges(type: string, base: Record<string, unknown>, head: Record<string, unknown>): AttributeChange[] {
  const out: AttributeChange[] = [];
  for (const attr of new Set([...Object.keys(base), ...Object.keys(head)])) {
    if (META.has(attr) || equal(base[attr], head[attr])) continue;
    if (!(attr in head) && keptWhenRemoved(type, attr)) continue;
    if (type === "docker_container" && (attr === "upload" || attr === "env")) {
      out.push(...containerSetChanges(attr, base, head));
      continue;
    }
    const scalar = (v: unknown) => v === undefined || typeof v !== "object";
    const detail = scalar(base[attr]) && scalar(head[attr]) ? `${attr} ${brief(base[attr])} → ${brief(head[attr])}` : `${attr} changed`;
    out.push({ attribute: attr, effect: effectOf(type, attr), detail });
  }
  if (base.provider !== head.provider) {
    out.push({ attribute: "provider", effect: "replace", detail: `moves from ${brief(base.provider)} to ${brief(head.provider)}: Terraform finds nothing there and creates it anew; the old object stays where it was until removed by hand` });
  }
  return out;
}

/** Splits a configuration into the units a reference can make unknown (upload files and env variables one by one). */
function valueUnits(type: string, config: Record<string, unknown>): Array<[string, string, unknown]> {
  const out: Array<[string, string, unknown]> = [];
  for (const [attr, value] of Object.entries(config)) {
    if (META.has(attr)) continue;
    if (type === "docker_container" && attr === "upload") {
      for (const u of (value as Upload[]) ?? []) out.push([attr, `upload:${u.file}`, u]);
    } else if (type === "docker_container" && attr === "env") {
      for (const e of (value as string[]) ?? []) out.push([attr, `env:${e.split("=")[0]}`, e]);
    } else out.push([attr, attr, value]);
  }
  return out;
}

export interface Plan {
  readonly base: Map<string, Resource>;
  readonly head: Map<string, Resource>;
  /** Resources with an action, by address. */
  readonly changes: Map<string, ResourceChange>;
}

/** True when `attr` of `r` is set in its configuration to a value known at plan time. */
function configKnown(r: Resource | undefined, attr: string): boolean {
  return r !== undefined && r.config[attr] !== undefined && referencesIn(r.config[attr]).length === 0;
}

export function plan(baseStack: StackJson | undefined, headStack: StackJson | undefined): Plan {
  const base = resourcesOf(baseStack);
  const head = resourcesOf(headStack);
  const changes = new Map<string, { address: string; path: string; action: Action; changes: AttributeChange[] }>();
  for (const [address, r] of head) {
    const b = base.get(address);
    if (!b) {
      if (r.mode === "managed") changes.set(address, { address, path: r.path, action: "create", changes: [] });
      continue;
    }
    const attrs = attributeChanges(r.type, b.config, r.config);
    if (!attrs.length) continue;
    const action: Action = r.mode === "data" ? "update" : attrs.some((a) => a.effect === "replace") ? "replace" : "update";
    changes.set(address, { address, path: r.path, action, changes: attrs });
  }
  for (const [address, r] of base) {
    if (!head.has(address) && r.mode === "managed") changes.set(address, { address, path: r.path, action: "delete", changes: [] });
  }

  // Unknown values: a reference to a computed attribute of a resource being created or replaced (or of
  // a data source whose inputs are unknown) is known only after apply.
  const regenerated = (address: string) => {
    const c = changes.get(address);
    if (!c) return false;
    return address.startsWith("data.") ? c.changes.length > 0 : c.action === "create" || c.action === "replace";
  };
  /** The referenced value changes: unknown until apply, or a configured value that changes in place. */
  const moves = (ref: Reference) =>
    (regenerated(ref.target) && !configKnown(head.get(ref.target), ref.attribute)) || (changes.get(ref.target)?.changes.some((a) => a.attribute === ref.attribute && a.via === undefined) ?? false);
  for (let changed = true; changed; ) {
    changed = false;
    for (const [address, r] of head) {
      if (!base.has(address)) continue;
      for (const [attr, unit, value] of valueUnits(r.type, r.config)) {
        const via = referencesIn(value).find(moves);
        if (!via) continue;
        const entry = changes.get(address) ?? { address, path: r.path, action: "update" as Action, changes: [] };
        if (entry.changes.some((a) => a.attribute === unit && a.via === via.target)) continue;
        const effect = r.mode === "data" ? "in-place" : effectOf(r.type, attr);
        entry.changes.push({ attribute: unit, effect, detail: `${unit.startsWith("upload:") ? baseName(unit.slice(7)) : unit.replace(/^env:/, "")} takes a new ${via.attribute} from ${via.target}`, via: via.target });
        if (effect === "replace" && entry.action !== "replace") entry.action = "replace";
        changes.set(address, entry);
        changed = true;
      }
    }
  }
  const out = new Map<string, ResourceChange>();
  for (const [a, c] of [...changes.entries()].sort(([x], [y]) => x.localeCompare(y))) {
    const type = (a.startsWith("data.") ? a.slice(5) : a).split(".")[0];
    const unknownSchema = c.action === "update" && !knownType(type) && !a.startsWith("data.");
    out.set(a, unknownSchema ? { ...c, changes: [...c.changes, { attribute: "(schema)", effect: "in-place", detail: `the review does not know ${type}'s schema: check terraform plan for a replacement` }] } : c);
  }
  return { base, head, changes: out };
}
