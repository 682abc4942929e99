/**
 * Five-field cron expressions (minute hour day-of-month month day-of-week), as Debian's cron reads
 * them: numbers, `*`, ranges `a-b`, steps `/n`, lists `a,b`, month and weekday names, 7 = Sunday.
 */

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: string[];
}

const FIELDS: FieldSpec[] = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day of month", min: 1, max: 31 },
  { name: "month", min: 1, max: 12, names: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"] },
  { name: "day of week", min: 0, max: 7, names: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"] },
];

export interface CronSchedule {
  expression: string;
  minutes: Set<number>;
  hours: Set<number>;
  daysOfMonth: Set<number>;
  months: Set<number>;
  daysOfWeek: Set<number>;
  domRestricted: boolean;
  dowRestricted: boolean;
}

export class CronError extends Error {}

function parseValue(token: string, spec: FieldSpec): number {
  const lower = token.toLowerCase();
  if (spec.names) {
    const i = spec.names.indexOf(lower);
    if (i >= 0) return spec.name === "month" ? i + 1 : i;
  }
  if (!/^\d+$/.test(token)) throw new CronError(`${spec.name} value "${token}" is not a number${spec.names ? " or a name" : ""}`);
  const n = Number(token);
  if (n < spec.min || n > spec.max) throw new CronError(`${spec.name} value ${n} is outside ${spec.min}-${spec.max}`);
  return n;
}

function parseField(text: string, spec: FieldSpec): Set<number> {
  const out = new Set<number>();
  for (const part of text.split(",")) {
    const m = /^([^/]+)(?:\/(\d+))?$/.exec(part);
    if (!m) throw new CronError(`${spec.name} field "${text}" is malformed`);
    const step = m[2] === undefined ? 1 : Number(m[2]);
    if (step < 1) throw new CronError(`${spec.name} step in "${part}" must be at least 1`);
    let lo: number;
    let hi: number;
    if (m[1] === "*") {
      lo = spec.min;
      hi = spec.max;
    } else if (m[1].includes("-")) {
      const [a, b, extra] = m[1].split("-");
      if (extra !== undefined || !a || !b) throw new CronError(`${spec.name} range "${m[1]}" is malformed`);
      lo = parseValue(a, spec);
      hi = parseValue(b, spec);
      if (lo > hi) throw new CronError(`${spec.name} range "${m[1]}" runs backwards`);
    } else {
      lo = parseValue(m[1], spec);
      hi = m[2] === undefined ? lo : spec.max;
    }
    for (let v = lo; v <= hi; v += step) out.add(spec.name === "day of week" && v === 7 ? 0 : v);
  }
  return out;
}

/** Parses an expression or throws a CronError saying which field is wrong and why. */
export function parseCron(expression: string): CronSchedule {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 5 || expression.trim() === "") {
    throw new CronError(`expected 5 fields (minute hour day-of-month month day-of-week), got ${expression.trim() === "" ? 0 : fields.length}`);
  }
  const sets = fields.map((f, i) => parseField(f, FIELDS[i]));
  return {
    expression,
    minutes: sets[0],
    hours: sets[1],
    daysOfMonth: sets[2],
    months: sets[3],
    daysOfWeek: sets[4],
    domRestricted: fields[2] !== "*",
    dowRestricted: fields[4] !== "*",
  };
}

function dayMatches(s: CronSchedule, d: Date): boolean {
  if (!s.months.has(d.getUTCMonth() + 1)) return false;
  const dom = s.daysOfMonth.has(d.getUTCDate());
  const dow = s.daysOfWeek.has(d.getUTCDay());
  if (s.domRestricted && s.dowRestricted) return dom || dow;
  return dom && dow;
}

/**
 * The longest gap between two consecutive runs, in minutes, over two years from 2027-01-01 (UTC).
 * Infinity when the expression never fires (e.g. 30 February).
 */
export function maxIntervalMinutes(s: CronSchedule): number {
  const start = Date.UTC(2027, 0, 1);
  const minutesOfDay = [...s.hours].sort((a, b) => a - b).flatMap((h) => [...s.minutes].sort((a, b) => a - b).map((m) => h * 60 + m));
  let prev: number | undefined;
  let first: number | undefined;
  let max = 0;
  for (let day = 0; day < 731; day++) {
    const d = new Date(start + day * 86_400_000);
    if (!dayMatches(s, d)) continue;
    for (const m of minutesOfDay) {
      const t = day * 1440 + m;
      if (prev !== undefined) max = Math.max(max, t - prev);
      if (first === undefined) first = t;
      prev = t;
    }
  }
  if (prev === undefined || first === prev) return Infinity;
  return max;
}

/** A crontab line for /etc/cron.d (with a user column). */
export function cronLine(expression: string, user: string, command: string): string {
  return `${expression.trim().split(/\s+/).join(" ")} ${user} ${command}`;
}

/**
 * The first time (UTC, within two years from 2027-01-01) both schedules fire in the same minute, or
 * undefined when they never do. Two pgBackRest jobs in the same minute contend for its lock: one fails.
 */
export function firstCommonMinute(a: CronSchedule, b: CronSchedule): Date | undefined {
  const minutes = [...a.minutes].filter((m) => b.minutes.has(m)).sort((x, y) => x - y);
  const hours = [...a.hours].filter((h) => b.hours.has(h)).sort((x, y) => x - y);
  if (!minutes.length || !hours.length) return undefined;
  const start = Date.UTC(2027, 0, 1);
  for (let day = 0; day < 731; day++) {
    const d = new Date(start + day * 86_400_000);
    if (dayMatches(a, d) && dayMatches(b, d)) return new Date(d.getTime() + (hours[0] * 60 + minutes[0]) * 60_000);
  }
  return undefined;
}
