/**
 * Changed PostgreSQL and PgBouncer settings, each with what the server needs to take it:
 * - PostgreSQL: pg_settings.context of the target major, from postgres-config/catalogue (17 generated
 *   from a running server's pg_settings; 15 and 16 synth-only). postmaster → restart; sighup, user,
 *   superuser, backend, superuser-backend → a reload (SIGHUP) re-reads postgresql.conf; internal →
 *   cannot be changed at all.
 * - PgBouncer: SHOW CONFIG's `changeable` column of the PgBouncer the stack builds (catalogue/pgbouncer.ts);
 *   `[databases]` entries are reloadable.
 */
import { isExtensionPlaceholder, parameterInfo, PostgresMajor, SUPPORTED_MAJORS } from "../postgres-config/parameter-catalogue";
import { PGBOUNCER_SETTINGS } from "./catalogue/pgbouncer";
import { ContainerView, parseIni, parsePostgresqlConf, PATHS } from "./files";
import { Applies, SettingChange } from "./types";

export interface Classification {
  readonly context: string;
  readonly needs: Applies;
  readonly needsText: string;
}

/** What PostgreSQL `major` needs to take a new value of `name` from postgresql.conf. */
export function postgresClassification(major: number, name: string): Classification {
  const info = (SUPPORTED_MAJORS as readonly number[]).includes(major) ? parameterInfo(major as PostgresMajor, name) : undefined;
  if (!info) {
    const what = isExtensionPlaceholder(name) ? "an extension's placeholder" : `not in PostgreSQL ${major}'s catalogue`;
    return { context: "unknown", needs: "restart", needsText: `restart, to be safe (${what})` };
  }
  return { context: info.context, ...byContext(info.context) };
}

function byContext(context: string): { needs: Applies; needsText: string } {
  switch (context) {
    case "postmaster":
      return { needs: "restart", needsText: "restart" };
    case "sighup":
      return { needs: "reload", needsText: "reload" };
    case "superuser":
      return { needs: "reload", needsText: "reload; superuser-only" };
    case "user":
      return { needs: "reload", needsText: "reload" };
    case "backend":
    case "superuser-backend":
      return { needs: "reload", needsText: "reload; new sessions only" };
    case "internal":
      return { needs: "fixed", needsText: "cannot be changed (fixed at initdb or build time)" };
    default:
      return { needs: "restart", needsText: `restart, to be safe (context ${context})` };
  }
}

const PGBOUNCER = new Map(PGBOUNCER_SETTINGS.map(([key, , changeable]) => [key, changeable]));

/** What PgBouncer needs to take a new value of `key` ("databases.<name>" for a [databases] entry). */
export function pgbouncerClassification(key: string): Classification {
  if (key.startsWith("databases.")) return { context: "changeable", needs: "reload", needsText: "reload (old server connections close when released)" };
  const changeable = PGBOUNCER.get(key);
  if (changeable === undefined) return { context: "unknown", needs: "restart", needsText: "restart, to be safe (not in SHOW CONFIG)" };
  return changeable ? { context: "changeable", needs: "reload", needsText: "reload" } : { context: "boot", needs: "restart", needsText: "restart (boot-time only)" };
}

export interface SettingsDiff {
  /** One per changed setting and value pair, with the containers it happens in. */
  readonly changes: SettingChange[];
  /** Container address → the settings of it that change (for downtime reasons). */
  readonly byContainer: Map<string, SettingChange[]>;
}

type Raw = { server: "postgresql" | "pgbouncer"; name: string; old: string | null; new: string | null; container: string; c: Classification };

function postgresChanges(b: ContainerView, h: ContainerView): Raw[] {
  const [bt, ht] = [b.files.get(PATHS.postgresqlConf), h.files.get(PATHS.postgresqlConf)];
  if (bt === undefined || ht === undefined || bt === ht) return [];
  const [bc, hc] = [parsePostgresqlConf(bt), parsePostgresqlConf(ht)];
  const major = hc.major ?? bc.major ?? 17;
  const out: Raw[] = [];
  for (const k of new Set([...bc.params.keys(), ...hc.params.keys()])) {
    const [o, n] = [bc.params.get(k), hc.params.get(k)];
    if (o?.[1] === n?.[1]) continue;
    const name = (n ?? o)![0];
    out.push({ server: "postgresql", name, old: o?.[1] ?? null, new: n?.[1] ?? null, container: h.address, c: postgresClassification(major, name) });
  }
  return out;
}

function pgbouncerChanges(b: ContainerView, h: ContainerView): Raw[] {
  const [bt, ht] = [b.files.get(PATHS.pgbouncerIni), h.files.get(PATHS.pgbouncerIni)];
  if (bt === undefined || ht === undefined || bt === ht) return [];
  const [bi, hi] = [parseIni(bt), parseIni(ht)];
  const out: Raw[] = [];
  for (const [section, prefix] of [
    ["pgbouncer", ""],
    ["databases", "databases."],
  ] as const) {
    const [bs, hs] = [bi.get(section) ?? new Map<string, string>(), hi.get(section) ?? new Map<string, string>()];
    for (const k of new Set([...bs.keys(), ...hs.keys()])) {
      const [o, n] = [bs.get(k), hs.get(k)];
      if (o === n) continue;
      const name = `${prefix}${k}`;
      out.push({ server: "pgbouncer", name, old: o ?? null, new: n ?? null, container: h.address, c: pgbouncerClassification(name) });
    }
  }
  return out;
}

/**
 * Changed settings of every container present in both revisions. `applied` says what the deploy does:
 * `replaced` holds the containers Terraform replaces (their server restarts whatever the setting needs).
 */
export function settingsDiff(base: Map<string, ContainerView>, head: Map<string, ContainerView>, replaced: Set<string>, nameOf: (address: string) => string): SettingsDiff {
  const raws: Raw[] = [];
  for (const [address, h] of head) {
    const b = base.get(address);
    if (!b) continue;
    raws.push(...postgresChanges(b, h), ...pgbouncerChanges(b, h));
  }
  const groups = new Map<string, { raw: Raw; containers: string[] }>();
  for (const r of raws) {
    const key = JSON.stringify([r.server, r.name, r.old, r.new, replaced.has(r.container)]);
    const g = groups.get(key) ?? { raw: r, containers: [] };
    g.containers.push(r.container);
    groups.set(key, g);
  }
  const changes: SettingChange[] = [];
  const byContainer = new Map<string, SettingChange[]>();
  for (const { raw, containers } of groups.values()) {
    const restarts = replaced.has(raw.container);
    const change: SettingChange = {
      server: raw.server,
      name: raw.name,
      old: raw.old,
      new: raw.new,
      containers: containers.map(nameOf),
      context: raw.c.context,
      needs: raw.c.needs,
      needsText: raw.c.needsText,
      applied: restarts ? "restart (container replaced)" : raw.c.needs === "restart" ? "pending restart (the file changes, the server keeps the old value)" : "reload",
    };
    changes.push(change);
    for (const c of containers) byContainer.set(c, [...(byContainer.get(c) ?? []), change]);
  }
  const order = { postgresql: 0, pgbouncer: 1 };
  const needs = { restart: 0, fixed: 1, reload: 2 };
  changes.sort((a, b) => order[a.server] - order[b.server] || needs[a.needs] - needs[b.needs] || a.name.localeCompare(b.name));
  return { changes, byContainer };
}
