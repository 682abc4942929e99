import { IConstruct } from "constructs";
import { Annotations, IAspect, TerraformStack } from "cdktf";
import { Finding, PolicyRule, StackJson } from "./types";
import { archivingOn } from "./rules/archiving-on";
import { bucketEncrypted } from "./rules/bucket-encrypted";
import { bucketPublicAccessBlocked } from "./rules/bucket-public-access-blocked";
import { bucketTlsOnly } from "./rules/bucket-tls-only";
import { bucketVersioned } from "./rules/bucket-versioned";
import { noSuperuserClients } from "./rules/no-superuser-clients";
import { retentionSet } from "./rules/retention-set";
import { slotWalCapped } from "./rules/slot-wal-capped";
import { tlsRequired } from "./rules/tls-required";
import { scramOnly } from "./rules/scram-only";
import { poolerTls } from "./rules/pooler-tls";
import { replicationTls } from "./rules/replication-tls";
import { loggingBaseline } from "./rules/logging-baseline";
import { kmsRotation } from "./rules/kms-rotation";
import { bucketEncryptedPuts } from "./rules/bucket-encrypted-puts";
import { leastPrivilegePrincipals } from "./rules/least-privilege-principals";
import { repositoryTlsVerified } from "./rules/repository-tls-verified";
import { restoreDrillsScheduled } from "./rules/restore-drills-scheduled";
import { logicalBackupsEncrypted } from "./rules/logical-backups-encrypted";

export const RULES: readonly PolicyRule[] = [
  bucketEncrypted,
  bucketVersioned,
  bucketPublicAccessBlocked,
  bucketTlsOnly,
  retentionSet,
  archivingOn,
  slotWalCapped,
  noSuperuserClients,
  tlsRequired,
  scramOnly,
  poolerTls,
  loggingBaseline,
  replicationTls,
  kmsRotation,
  bucketEncryptedPuts,
  leastPrivilegePrincipals,
  repositoryTlsVerified,
  restoreDrillsScheduled,
  logicalBackupsEncrypted,
];

export interface RuleResult {
  readonly rule: PolicyRule;
  readonly findings: Finding[];
}

export function evaluate(stack: StackJson, rules: readonly PolicyRule[] = RULES): RuleResult[] {
  return rules.map((rule) => ({ rule, findings: rule.evaluate(stack) }));
}

export function violations(results: RuleResult[], level: "error" | "warning"): string[] {
  return results
    .filter((r) => r.rule.level === level)
    .flatMap((r) => r.findings.filter((f) => f.status === "non-compliant").map((f) => `${r.rule.id} ${r.rule.title}: ${f.subject ?? ""} ${f.detail ?? ""}`.trim() + ` (${r.rule.explanation})`));
}

/**
 * The pgharbor policy pack as a cdktf Aspect: on each stack it adds a validation that evaluates every
 * rule on the stack's Terraform JSON. Error findings fail synth; warnings become annotations.
 */
export class PolicyPack implements IAspect {
  private readonly seen = new WeakSet<TerraformStack>();
  constructor(private readonly rules: readonly PolicyRule[] = RULES) {}

  visit(node: IConstruct): void {
    if (!(node instanceof TerraformStack) || this.seen.has(node)) return;
    this.seen.add(node);
    const stack = node;
    stack.node.addValidation({
      validate: () => {
        const results = evaluate(stack.toTerraform() as StackJson, this.rules);
        for (const w of violations(results, "warning")) Annotations.of(stack).addWarning(w);
        return violations(results, "error");
      },
    });
  }
}
