/**
 * pgharbor: one Terraform stack per environment (stacks/environments.ts).
 * `npm run synth` writes them to cdktf.out; `cdktf deploy <env>` applies one.
 */
import { buildApp } from "./stacks/app";
import { reportFailure } from "./stacks/report";

try {
  buildApp().synth();
} catch (e) {
  process.exitCode = reportFailure(e);
}
