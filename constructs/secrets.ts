import { Construct } from "constructs";
import { Password } from "@cdktf/provider-random/lib/password";

/**
 * A generated secret (random_password): only its reference reaches the synthesised JSON.
 * Alphanumeric so it is safe in URLs, shell and config files without escaping.
 */
export function generatedSecret(scope: Construct, id: string, length: number, protect = false): Password {
  return new Password(scope, id, {
    length,
    special: false,
    minLower: 1,
    minUpper: 1,
    minNumeric: 1,
    lifecycle: protect ? { preventDestroy: true } : undefined,
  });
}
