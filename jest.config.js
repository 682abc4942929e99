/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/__tests__"],
  testMatch: ["**/*.test.ts"],
  transform: { "^.+\\.ts$": ["ts-jest", { diagnostics: false }] },
  // Snapshots are only ever written on purpose (`npx jest -u`), never in CI (`--ci`).
  snapshotSerializers: [],
  testTimeout: 30000,
};
