// Lint: TypeScript recommended rules, plus the project's import rule: provider classes come from
// submodule paths (`@cdktf/provider-aws/lib/s3-bucket`), never a provider package's root, which
// loads every resource of the provider and costs seconds per synth and per test file.
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/**", "cdktf.out/**", "coverage/**", "**/*.js", "**/*.d.ts"] },
  ...tseslint.configs.recommended,
  {
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: "^@cdktf/provider-[a-z0-9-]+$",
              message: "Import provider classes from their submodule path, e.g. '@cdktf/provider-aws/lib/s3-bucket', not the package root.",
            },
            {
              regex: "^@cdktf/provider-[a-z0-9-]+/lib$",
              message: "Import provider classes from their submodule path, e.g. '@cdktf/provider-aws/lib/s3-bucket'.",
            },
          ],
        },
      ],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
);
