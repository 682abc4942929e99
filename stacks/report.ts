import { PgharborConfigError } from "../constructs/errors";

/**
 * Prints a synth failure for a human. Configuration and policy errors are the user's to fix: message
 * only, no stack trace. Anything else is a pgharbor bug: full trace.
 */
export function reportFailure(e: unknown, write: (s: string) => void = (s) => process.stderr.write(s)): number {
  if (e instanceof PgharborConfigError) {
    write(`pgharbor: invalid configuration\n${e.message}\n`);
  } else if (e instanceof Error && /Validation failed with the following errors/.test(e.message)) {
    write(`pgharbor: policy check failed\n${e.message.replace(/^.*Validation failed with the following errors:\s*/s, "")}\n`);
  } else {
    write(`pgharbor: internal error (please report it)\n${e instanceof Error ? e.stack : String(e)}\n`);
  }
  return 1;
}
