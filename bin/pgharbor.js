#!/usr/bin/env node
// pgharbor operations CLI (TypeScript, run through ts-node): pgharbor <command> --env <name>
const path = require("path");
require("ts-node").register({ transpileOnly: true, project: path.join(__dirname, "..", "tsconfig.json") });
require("../cli/main.ts")
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  });
