import { readFileSync } from "fs";
import { join } from "path";
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

/**
 * Prints the policy warnings of a synthesised app (the cdktf CLI shows them from the manifest; a plain
 * `npm run synth` would not). Returns how many it printed.
 */
export function reportWarnings(outdir: string, write: (s: string) => void = (s) => process.stderr.write(s)): number {
  const manifest = JSON.parse(readFileSync(join(outdir, "manifest.json"), "utf8")) as { stacks: Record<string, { annotations?: Array<{ level: string; message: string }> }> };
  let n = 0;
  for (const [stack, s] of Object.entries(manifest.stacks)) {
    for (const a of s.annotations ?? []) {
      if (a.level !== "@cdktf/warn") continue;
      write(`pgharbor: warning [${stack}] ${a.message}\n`);
      n++;
    }
  }
  return n;
}
