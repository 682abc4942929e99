/** Policy findings (the stack's own policy pack, run on both revisions' JSON) that are new or resolved. */
import { evaluate } from "../constructs/policy/pack";
import { StackJson as PolicyStackJson } from "../constructs/policy/types";
import { PolicyChange, StackJson } from "./types";

function findings(stack: StackJson | undefined): Map<string, Omit<PolicyChange, "status">> {
  const out = new Map<string, Omit<PolicyChange, "status">>();
  if (!stack) return out;
  for (const { rule, findings: fs } of evaluate(stack as PolicyStackJson)) {
    for (const f of fs) {
      if (f.status !== "non-compliant") continue;
      const item = { rule: rule.id, title: rule.title, level: rule.level, subject: f.subject ?? "", detail: f.detail ?? "" };
      out.set(JSON.stringify([item.rule, item.subject, item.detail]), item);
    }
  }
  return out;
}

export function policyChanges(base: StackJson | undefined, head: StackJson | undefined): PolicyChange[] {
  const [b, h] = [findings(base), findings(head)];
  return [...[...h].filter(([k]) => !b.has(k)).map(([, f]) => ({ ...f, status: "new" as const })), ...[...b].filter(([k]) => !h.has(k)).map(([, f]) => ({ ...f, status: "resolved" as const }))];
}
