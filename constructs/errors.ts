/**
 * Configuration errors: every message names where (environment/construct), the field, the bad value
 * and the fix. main.ts prints them without a stack trace.
 */
export class PgharborConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PgharborConfigError";
  }
}

export interface Rule {
  /** True when the input is wrong. */
  when: boolean;
  field: string;
  value: unknown;
  problem: string;
  fix: string;
}

export function describeValue(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (v === undefined) return "(unset)";
  if (typeof v === "number" && !Number.isFinite(v)) return String(v);
  return JSON.stringify(v);
}

export function formatProblem(scope: string, r: Omit<Rule, "when">): string {
  return `[${scope}] ${r.field} = ${describeValue(r.value)}: ${r.problem}. Fix: ${r.fix}.`;
}

/** Throws one error listing every rule that fails, so a user fixes them all in one pass. */
export function check(scope: string, rules: Rule[]): void {
  const failed = rules.filter((r) => r.when);
  if (failed.length) throw new PgharborConfigError(failed.map((r) => formatProblem(scope, r)).join("\n"));
}

export const isInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v);
