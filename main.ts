/**
 * pgharbor: one Terraform stack per environment (stacks/environments.ts).
 * `npm run synth` writes them to cdktf.out; `cdktf deploy <env>` applies one.
 */
import { buildApp } from "./stacks/app";
import { reportFailure, reportWarnings } from "./stacks/report";

try {
  const app = buildApp();
  app.synth();
  reportWarnings(app.outdir);
} catch (e) {
  process.exitCode = reportFailure(e);
}
