import { spawnSync } from "child_process";
import { join } from "path";

const root = join(__dirname, "..");

/** Runs the project's ESLint config on a snippet, as `npm run lint` would on a file in constructs/. */
function restrictedImportErrors(code: string): number {
  const r = spawnSync(process.execPath, [join(root, "node_modules", "eslint", "bin", "eslint.js"), "--stdin", "--stdin-filename", "constructs/fixture.ts", "--format", "json"], {
    cwd: root,
    input: `${code}\nexport const x = 1;\n`,
    encoding: "utf8",
  });
  const [result] = JSON.parse(r.stdout) as Array<{ messages: Array<{ ruleId: string }> }>;
  return result.messages.filter((m) => m.ruleId === "no-restricted-imports").length;
}

describe("lint rule: provider classes from submodule paths", () => {
  test.each([
    ['import { S3Bucket } from "@cdktf/provider-aws";', 1],
    ['import * as docker from "@cdktf/provider-docker";', 1],
    ['import { docker } from "@cdktf/provider-docker/lib";', 1],
    ['import { S3Bucket } from "@cdktf/provider-aws/lib/s3-bucket";', 0],
  ])("%s -> %i error(s)", (code, errors) => {
    expect(restrictedImportErrors(code)).toBe(errors);
  });
});
