// Adds up the vitest JSON reports every package wrote (test-results/vitest.json) and prints one
// closing line, "tests: N passed, N failed, N skipped", so a CI log states what ran.
// Exits non-zero if any report has failed tests or test files, or if no test ran at all.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
let passed = 0;
let failed = 0;
let skipped = 0;
// A test file that fails to load (import error, syntax error) has no failed *test*: count files too.
let failedFiles = 0;
const rows = [];
for (const dir of readdirSync(path.join(root, 'packages'))) {
  const file = path.join(root, 'packages', dir, 'test-results', 'vitest.json');
  if (!existsSync(file)) continue;
  const r = JSON.parse(readFileSync(file, 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  skipped += r.numPendingTests + (r.numTodoTests ?? 0);
  failedFiles += r.numFailedTestSuites ?? 0;
  const files = r.numFailedTestSuites ? `, ${r.numFailedTestSuites} test file(s) failed` : '';
  rows.push(`  @diffmix/${dir}: ${r.numPassedTests} passed, ${r.numFailedTests} failed${files}`);
}
console.log(rows.join('\n'));
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped${failedFiles ? `; ${failedFiles} test file(s) failed` : ''}`);
process.exit(failed > 0 || failedFiles > 0 || passed === 0 ? 1 : 0);
