/**
 * Explicit, written acknowledgement of a risky setting: `acknowledgeRisk: { "<field>": "<why>" }` on
 * the construct (or environment section) whose field carries the risk. The key is the field as the
 * error names it; the reason is a sentence that stays in the repository for the next reader.
 */
import { Rule } from "../errors";

/** field → why the risk is accepted. */
export type RiskAcknowledgements = { readonly [field: string]: string };

/** Shortest reason accepted: a sentence, not "ok". */
export const MIN_REASON_LENGTH = 20;

/**
 * Which of `risks` (field keys) are acknowledged, and rules refusing acknowledgements without a
 * reason or that acknowledge nothing (a stale one would silently cover the next risk on that key).
 */
export function acknowledge(acks: RiskAcknowledgements | undefined, risks: readonly string[]): { acknowledged: ReadonlySet<string>; rules: Rule[] } {
  const rules: Rule[] = [];
  const acknowledged = new Set<string>();
  for (const [key, reason] of Object.entries(acks ?? {})) {
    const field = `acknowledgeRisk["${key}"]`;
    if (!risks.includes(key)) {
      rules.push({ when: true, field, value: reason, problem: `acknowledges nothing: ${key} carries no risk here${risks.length ? ` (risky here: ${risks.join(", ")})` : ""}`, fix: "remove the acknowledgement" });
    } else if (typeof reason !== "string" || reason.trim().length < MIN_REASON_LENGTH) {
      rules.push({ when: true, field, value: reason, problem: `is not a reason (at least ${MIN_REASON_LENGTH} characters saying why the risk is accepted)`, fix: "write why, in a sentence, e.g. \"CI cluster rebuilt from scratch on every run; speed matters, data does not\"" });
    } else {
      acknowledged.add(key);
    }
  }
  return { acknowledged, rules };
}
