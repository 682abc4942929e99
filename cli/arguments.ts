/**
 * Checks of the operations CLI's arguments, before anything runs in a container: a wrong date, a
 * dangerous directory or a file that is not an age identity fails here, with one line.
 */
import { posix } from "path";
import { CONTAINER_PATHS as P } from "../postgres-config/paths";
import { identifierProblem, MAX_IDENTIFIER_BYTES } from "../postgres-config/identifiers";

import { ArgumentError } from "./errors";

export { ArgumentError };

export type RestoreTarget = { kind: "latest" } | { kind: "lsn"; lsn: string } | { kind: "time"; epoch: number; text: string };

const TIME = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?\s*(Z|[+-](\d{2})(?::?(\d{2}))?)$/i;

/**
 * A restore target: "latest", an LSN, or a time with its zone, on the real calendar (2026-02-30 is
 * refused, never rolled over to March) and the real clock (no hour 24, no second 60).
 */
export function parseTarget(to: string): RestoreTarget {
  if (to === "latest") return { kind: "latest" };
  if (/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i.test(to)) return { kind: "lsn", lsn: to };
  const usage = `--to "${to}" is not latest, an LSN (0/5000028) or a time with a zone ("2026-11-21 10:15:00+00")`;
  const m = TIME.exec(to);
  if (!m) throw new ArgumentError(usage);
  const [year, month, day, hour, minute] = m.slice(1, 6).map(Number);
  const second = Number(m[6] ?? 0);
  const frac = m[7] ? Number(m[7]) : 0;
  const offsetMinutes = m[8].toUpperCase() === "Z" ? 0 : (m[8].startsWith("-") ? -1 : 1) * (Number(m[9]) * 60 + Number(m[10] ?? 0));
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  const problems = [
    month < 1 || month > 12 ? `month ${m[2]} does not exist` : undefined,
    month >= 1 && month <= 12 && (day < 1 || day > daysInMonth) ? `${year}-${m[2]} has no day ${m[3]} (it has ${daysInMonth})` : undefined,
    hour > 23 ? `hour ${m[4]} does not exist` : undefined,
    minute > 59 ? `minute ${m[5]} does not exist` : undefined,
    second > 59 ? `second ${second} does not exist` : undefined,
    m[9] !== undefined && (Number(m[9]) > 15 || Number(m[10] ?? 0) > 59) ? `zone ${m[8]} is not a UTC offset` : undefined,
  ].filter((p): p is string => p !== undefined);
  if (problems.length) throw new ArgumentError(`--to "${to}": ${problems.join(", ")}; nothing was restored`);
  const epoch = (Date.UTC(year, month - 1, day, hour, minute, second) - offsetMinutes * 60_000) / 1000 + frac;
  return { kind: "time", epoch, text: to };
}

/**
 * A restore time as pgBackRest takes it (`YYYY-MM-DD HH:MM:SS[.ffffff]+00`, UTC): the forms the CLI
 * accepts beyond that (a `T`, `Z`, no seconds, another offset) would otherwise fail in pgBackRest
 * after every check of pgharbor's had passed.
 */
export function pgbackrestTime(epoch: number): string {
  const whole = Math.floor(epoch);
  const micros = Math.round((epoch - whole) * 1e6);
  const base = new Date(whole * 1000).toISOString().slice(0, 19).replace("T", " ");
  return `${base}${micros ? `.${String(micros).padStart(6, "0").replace(/0+$/, "")}` : ""}+00`;
}

/** Names in the scratch volume that drills and logical restores own. */
const SCRATCH_OWNED = [/^drill$/, /^drill-socket$/, /^drill\.lock$/, /^logical-/];

/**
 * A physical restore's target directory, checked as text: a new directory directly or deeper below
 * the backup container's scratch volume, never the live data directory (mounted there read-only),
 * its parents or children, a symlink trick with "..", or a name drills and logical restores use.
 */
export function checkRestoreDirectory(into: string): string {
  const scratch = P.restoreScratchDir;
  const where = `--into ${into}`;
  if (!/^[A-Za-z0-9._/-]+$/.test(into)) throw new ArgumentError(`${where}: use letters, digits, dots, hyphens, underscores and slashes only`);
  if (!into.startsWith("/")) throw new ArgumentError(`${where}: give an absolute path below ${scratch}`);
  if (posix.normalize(into) !== into || (into !== "/" && into.endsWith("/")) || into.split("/").includes("..")) throw new ArgumentError(`${where}: give the path without "..", "." or repeated or trailing slashes (${posix.normalize(into).replace(/\/$/, "")})`);
  const data = P.dataDir;
  if (into === "/" || into === data || data.startsWith(`${into}/`) || into.startsWith(`${data}/`)) throw new ArgumentError(`${where}: is the primary's live data directory or on its path; a restore never goes there (restore into ${scratch}/<name>, then move it in with the primary stopped)`);
  if (!into.startsWith(`${scratch}/`)) throw new ArgumentError(`${where}: is not below the scratch volume ${scratch} (anywhere else fills the container's own layer or touches what it must not); use ${scratch}/<name>`);
  const first = into.slice(scratch.length + 1).split("/")[0];
  if (SCRATCH_OWNED.some((r) => r.test(first))) throw new ArgumentError(`${where}: ${first} belongs to restore drills and logical restores; choose another name`);
  return into;
}

/** The database a logical restore creates: a new, plain, lowercase identifier. */
export function checkNewDatabaseName(name: string, flag: string): string {
  const bad = identifierProblem(name, "");
  if (bad) throw new ArgumentError(`${flag} ${name}: ${bad.problem}; ${bad.fix.replace(/^use a name like/, "choose a name like")}`);
  return name;
}

/** The database to take from a logical set (any name the set may hold; never more than PostgreSQL allows). */
export function checkSourceDatabase(name: string): string {
  if (!name || Buffer.byteLength(name) > MAX_IDENTIFIER_BYTES || /[\u0000-\u001f\u007f]/.test(name)) throw new ArgumentError(`--logical ${JSON.stringify(name)}: not a database name`);
  return name;
}

export function checkLogicalSet(set: string): string {
  if (set !== "latest" && !/^\d{8}T\d{6}Z$/.test(set)) throw new ArgumentError(`--set ${set}: give "latest" or a set name such as 20261122T020000Z (see backups list)`);
  return set;
}

/** An age identity file's content; anything else (an SSH key, a password file) is never sent. */
export function checkIdentity(text: string, file: string): string {
  if (text.length > 65536 || !/^AGE-SECRET-KEY-1[0-9A-Z]{58}$/m.test(text)) throw new ArgumentError(`--identity ${file}: holds no age identity (a line AGE-SECRET-KEY-1…, as age-keygen writes); nothing was sent`);
  return text;
}
